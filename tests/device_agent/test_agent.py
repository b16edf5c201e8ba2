"""The run loop (device_agent/agent.py) and config: reports are paced by the record
interval, carry the latest cumulative registers, coalesce when the node is away long
enough to fill the outbox, and the final registers always reach the ledger."""

from __future__ import annotations

import io
import pathlib
from typing import Any

import pytest

from device_agent import config as config_mod
from device_agent.agent import Agent, build_agent
from device_agent.errors import ConfigError
from device_agent.log import Logger
from device_agent.sources import Update
from node.ledger.usage import usage_report_of
from tests.device_agent.fakenode import FakeLedger, FakeNode
from tests.device_agent.helpers import DEVICE


def raw_config(endpoints: list[str], **outbox: Any) -> dict[str, Any]:
    return {
        "device": {
            "chain_id": "alps-test",
            "sku": "cam-1",
            "territory": "DE",
            "key_file": "device.key",
            "state_dir": "state",
        },
        "nodes": {"endpoints": endpoints, "timeout_s": 0.3},
        "upload": {"backoff_base_s": 0.01, "backoff_max_s": 0.05, "jitter_seed": 5},
        "outbox": outbox,
        "record": {"interval_s": 10.0, "tick_s": 0.01},
        "source": {"kind": "simulated", "rate_per_s": 10, "sku": "sim-9", "territory": "FR"},
    }


class ScriptedSource:
    def __init__(self) -> None:
        self.queue: list[Update] = []

    def poll(self, now_s: float) -> list[Update]:
        out, self.queue = self.queue, []
        return out

    def close(self) -> None:
        pass


def make_agent(
    tmp: pathlib.Path, endpoints: list[str], **outbox: Any
) -> tuple[Agent, ScriptedSource]:
    cfg = config_mod.from_dict(raw_config(endpoints, **outbox), tmp)
    agent = build_agent(cfg, DEVICE, Logger(io.StringIO()), tmp)
    source = ScriptedSource()
    agent.source = source
    agent.wall_ms = lambda: 1_700_000_000_000
    return agent, source


def test_simulated_source_overrides_sku_and_territory(tmp_path: pathlib.Path) -> None:
    cfg = config_mod.from_dict(raw_config(["http://127.0.0.1:9"]), tmp_path)
    assert (cfg.sku, cfg.territory) == ("sim-9", "FR")
    assert cfg.outbox_path == tmp_path / "state" / "outbox.sqlite"


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("device", "territory", "Germany"),
        ("device", "chain_id", "Bad Chain"),
        ("nodes", "endpoints", []),
        ("nodes", "endpoints", ["ftp://x"]),
        ("upload", "batch_size_max", 5000),
        ("upload", "backoff_base_s", "fast"),
        ("source", "kind", "telepathy"),
    ],
)
def test_bad_config_values_are_named(
    tmp_path: pathlib.Path, section: str, key: str, value: object
) -> None:
    raw = raw_config(["http://127.0.0.1:9"])
    raw[section][key] = value
    if section == "device" and key == "territory":
        raw["source"]["kind"] = "counter_file"
        raw["source"]["path"] = "x"
    with pytest.raises(ConfigError):
        config_mod.from_dict(raw, tmp_path)


def test_reports_are_paced_by_the_record_interval(tmp_path: pathlib.Path) -> None:
    agent, source = make_agent(tmp_path, ["http://127.0.0.1:9"])
    source.queue = [Update("units", 5, False)]
    assert agent.tick(0.0) is not None
    source.queue = [Update("units", 5, False)]
    assert agent.tick(5.0) is None  # not due: registers accumulate in memory
    source.queue = [Update("units", 1, False)]
    taken = agent.tick(10.0)
    assert taken is not None and taken.seq == 2
    assert agent.tick(30.0) is None  # nothing changed, nothing to report
    report = usage_report_of(agent.outbox.oldest(5)[-1].tx)
    assert report.registers == {"units": 11} and (report.sku, report.territory) == ("sim-9", "FR")


def test_offline_long_enough_to_fill_the_outbox_then_back(tmp_path: pathlib.Path) -> None:
    ledger = FakeLedger()
    node = FakeNode(ledger)
    ledger.enrol(DEVICE.public_key)
    agent, source = make_agent(tmp_path, [node.url], records_max=5)
    try:
        source.queue = [Update("units", 1, False)]
        agent.tick(0.0)
        assert agent.uploader.step() == 0.0 and len(ledger.committed) == 1
        node.stop()
        for i in range(1, 40):  # 39 reports while the node is away
            source.queue = [Update("units", 1, False)]
            agent.tick(i * 10.0)
            agent.uploader.step()
            assert agent.outbox.depth() <= 5
        assert agent.outbox.status()["coalesced_total"] > 0
        node.start()
        for _ in range(50):
            agent.uploader.step()
            if agent.outbox.depth() == 0:
                break
        reports = ledger.reports(DEVICE.public_key)
        assert [s for s, _ in reports] == list(range(1, len(reports) + 1))
        assert reports[-1][1].registers == {"units": 40}  # nothing lost by coalescing
        assert ledger.anomalies == []
    finally:
        node.stop()
        agent.outbox.close()


def test_run_loop_stops_when_asked(tmp_path: pathlib.Path) -> None:
    agent, source = make_agent(tmp_path, ["http://127.0.0.1:9"])
    source.queue = [Update("units", 1, False)]
    agent.run(lambda: False, ticks_max=3)
    assert agent.outbox.depth() == 1


def test_the_example_config_in_the_repo_loads() -> None:
    example = pathlib.Path(__file__).parents[2] / "device_agent/systemd/agent.toml.example"
    cfg = config_mod.load(example)
    assert cfg.endpoints and cfg.source.kind == "counter_file"
