"""ALPS_PROFILE: the event loop's and the worker threads' profiles are both written."""

from __future__ import annotations

import pathlib
import pstats
import threading

import pytest

from node.runtime.profiling import ENV_VAR, profiled


def _in_worker() -> int:
    return sum(range(1000))


def _in_main() -> int:
    return sum(range(1000))


def _functions(path: pathlib.Path) -> set[str]:
    stats = pstats.Stats(str(path))
    return {name for (_file, _line, name) in stats.stats}  # type: ignore[attr-defined]


def test_profiles_main_thread_and_threads_started_inside(tmp_path: pathlib.Path) -> None:
    prefix = tmp_path / "node"
    with profiled(str(prefix)):
        _in_main()
        worker = threading.Thread(target=_in_worker)
        worker.start()
        worker.join()
    loop = _functions(pathlib.Path(f"{prefix}.loop.prof"))
    workers = _functions(pathlib.Path(f"{prefix}.workers.prof"))
    assert "_in_main" in loop and "_in_worker" not in loop
    assert "_in_worker" in workers


def test_without_the_variable_nothing_is_written(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    with profiled():
        _in_main()
    assert list(tmp_path.iterdir()) == []
