"""Opt-in profiling of a node process (`ALPS_PROFILE=<prefix>`), for benchmarks.

cProfile sees only the thread that enables it, and a node's work is split between the
trio event loop (networking, consensus, the API) and worker threads (block execution,
signature checks, LevelDB writes). So the hook profiles both: the main thread, and every
thread started afterwards (each gets its own profiler through `threading.setprofile`).
On exit it writes `<prefix>.loop.prof` (the event loop) and `<prefix>.workers.prof`
(all worker threads merged); read them with `python -m pstats`. Times are each thread's
CPU time (`time.thread_time`), so waiting (for I/O, for the GIL, for a core on a busy
machine) is not counted: the profiles say where the CPU goes.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

ENV_VAR = "ALPS_PROFILE"


@contextmanager
def profiled(prefix: str | None = None) -> Iterator[None]:
    """Profile the block's main thread and the threads it starts; no-op without a prefix
    (the default reads ALPS_PROFILE)."""
    prefix = os.environ.get(ENV_VAR) if prefix is None else prefix
    if not prefix:
        yield
        return
    workers: list[cProfile.Profile] = []
    lock = threading.Lock()

    def start_in_thread(_frame: FrameType, _event: str, _arg: Any) -> None:
        profile = cProfile.Profile(time.thread_time)
        with lock:
            workers.append(profile)
        profile.enable()  # replaces this bootstrap hook for the rest of the thread

    hook: Callable[[FrameType, str, Any], None] = start_in_thread
    threading.setprofile(hook)
    loop = cProfile.Profile(time.thread_time)
    loop.enable()
    try:
        yield
    finally:
        loop.disable()
        threading.setprofile(None)
        loop.dump_stats(f"{prefix}.loop.prof")
        with lock:
            taken = list(workers)
        if taken:
            merged = pstats.Stats(taken[0])
            for profile in taken[1:]:
                merged.add(profile)
            merged.dump_stats(f"{prefix}.workers.prof")
