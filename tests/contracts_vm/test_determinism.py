"""Same program and input -> same result and same gas, in fresh processes with different
PYTHONHASHSEED values (issue 4: determinism), and repeatedly in one process."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

from .determinism_probe import battery

ROOT = pathlib.Path(__file__).resolve().parents[2]


def probe(seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    out = subprocess.run(
        [sys.executable, "-m", "tests.contracts_vm.determinism_probe"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return out.stdout


def test_identical_outcomes_and_gas_across_hash_seeds() -> None:
    outputs = {seed: probe(seed) for seed in ("0", "1", "4242", "random")}
    assert len(set(outputs.values())) == 1, outputs
    outcomes = json.loads(outputs["0"])
    statuses = [o[0] for o in outcomes]
    assert statuses.count("OK") == 13
    assert statuses[-5:] == ["ERROR", "ERROR", "LIMIT", "LIMIT", "OUT_OF_GAS"]


def test_identical_outcomes_on_repeated_runs_in_one_process() -> None:
    first = json.dumps(battery())
    for _ in range(3):
        assert json.dumps(battery()) == first


GOLDEN_GAS_V1 = [
    111,
    259,
    722,
    241,
    220,
    1145,
    3031,
    375,
    760,
    363,
    153,
    186,
    790,
    71,
    72,
    286,
    1458,
    200000,
]


def test_gas_figures_are_pinned_to_the_schedule_version() -> None:
    """Gas is consensus-critical: if this fails, the change needs a new
    GAS_SCHEDULE_VERSION (or VM_VERSION) and new golden figures, never a silent edit."""
    from contracts_vm import GAS_SCHEDULE_VERSION, VM_VERSION

    assert (VM_VERSION, GAS_SCHEDULE_VERSION) == (1, 1)
    assert [outcome[2] for outcome in battery()] == GOLDEN_GAS_V1  # type: ignore[index]


def other_interpreters() -> list[str]:
    """Every other CPython >= 3.11 on this machine (pyenv versions or pythonX.Y on PATH)."""
    import glob
    import shutil

    found = set(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[1-9]*/bin/python")))
    found.update(p for v in ("3.11", "3.12", "3.13", "3.14") if (p := shutil.which(f"python{v}")))
    this = os.path.realpath(sys.executable)
    found = {os.path.realpath(p) for p in found if "/shims/" not in p}  # shims need pyenv init
    return sorted(p for p in found if p != this)


def test_identical_outcomes_and_gas_across_cpython_versions() -> None:
    """Issue 4: same result and gas on every CPython >= 3.11 (the VM needs only the stdlib)."""
    import pytest

    interpreters = other_interpreters()
    if not interpreters:
        pytest.skip("no other CPython >= 3.11 on this machine")
    reference = probe("0")
    for python in interpreters:
        out = subprocess.run(
            [python, "-m", "tests.contracts_vm.determinism_probe"],
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": "7"},
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        assert out.stdout == reference, python
