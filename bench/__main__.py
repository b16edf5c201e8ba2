"""`python -m bench`: run every benchmark in turn."""

from __future__ import annotations

import importlib
import platform

MODULES = [
    "bench.foundation",
    "bench.txcodec",
    "bench.pipeline",
    "bench.vm",
    "bench.agent",
    "bench.api",
    "bench.p2p",
    "bench.cluster",
]


def main() -> None:
    print(f"python {platform.python_version()} on {platform.machine()}, {platform.node()}")
    for name in MODULES:
        importlib.import_module(name).main()


if __name__ == "__main__":
    main()
