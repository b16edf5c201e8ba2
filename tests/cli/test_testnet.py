"""`alps testnet`: n homes wired as each other's peers with unique ports, the demo
licensing web's member keys, one genesis installed everywhere; and the real `python -m cli`
process (help, testnet, an error)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from cli.testnet import LICENSING_WEB, plan_ports
from node.config import load_config
from node.errors import SetupError
from node.genesis_file import genesis_hash, load_genesis, read_genesis
from node.keys import load_signer
from node.ledger.model import ROLES
from tests.cli.helpers import ok, one_line_error, run

ROOT = pathlib.Path(__file__).resolve().parents[2]


def check_testnet(out: pathlib.Path, n: int, members: bool) -> None:
    homes = [out / f"node-{i}" for i in range(n)]
    configs = [load_config(h) for h in homes]
    keys = [load_signer(c.key_path).public_key for c in configs]
    genesis = read_genesis(out / "genesis.json")
    assert genesis.validators == tuple(keys)  # node-i is validator #i
    assert [load_genesis(c) for c in configs] == [genesis] * n
    assert {c.node.genesis_hash for c in configs} == {genesis_hash(genesis)}
    listen = {key: c.p2p.listen for key, c in zip(keys, configs, strict=True)}
    for key, cfg in zip(keys, configs, strict=True):
        assert dict(cfg.p2p.peers) == {k: a for k, a in listen.items() if k != key}
    ports = [port for cfg in configs for port in cfg.listen_ports.values()]
    assert len(ports) == len(set(ports)) == 3 * n
    by_name = {m.name: m for m in genesis.members}
    assert set(by_name) == {f"node-{i}" for i in range(n)} | (
        {m.name for m in LICENSING_WEB} if members else set()
    )
    for demo in LICENSING_WEB if members else ():
        key_file = out / "members" / f"{demo.name}.json"
        assert load_signer(key_file).public_key == by_name[demo.name].public_key
        assert by_name[demo.name].roles == tuple(sorted(demo.roles))


def test_testnet_of_four_with_the_licensing_web(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "tn"
    ok("testnet", "--validators", "4", "--dir", out, "--time-ms", "1767225600000")
    check_testnet(out, 4, members=True)
    genesis = read_genesis(out / "genesis.json")
    roles = {r for m in genesis.members for r in m.roles}
    assert roles == set(ROLES)  # every role of the domain is represented
    pools = [m for m in genesis.members if "pool" in m.roles]
    assert len(pools) == 1 and sum("licensor" in m.roles for m in genesis.members) >= 5


def test_testnet_of_one_without_members(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "solo"
    ok(
        "testnet",
        "--validators",
        "1",
        "--dir",
        out,
        "--members",
        "none",
        "--base-port",
        "30000",
        "--api-base-port",
        "31000",
        "--chain-id",
        "solo",
    )
    check_testnet(out, 1, members=False)
    cfg = load_config(out / "node-0")
    assert cfg.p2p.listen == "/ip4/127.0.0.1/tcp/30000" and cfg.api.listen == "127.0.0.1:31000"
    assert not (out / "members").exists()


def test_testnet_refuses_a_non_empty_dir_and_clashing_ports(tmp_path: pathlib.Path) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("")
    assert "not empty" in one_line_error(run("testnet", "--dir", tmp_path / "used"))
    line = one_line_error(
        run("testnet", "--dir", tmp_path / "b", "--base-port", "8702", "--api-base-port", "8700")
    )
    assert "overlap" in line
    assert not (tmp_path / "b").exists()  # nothing written before the checks
    with pytest.raises(SetupError, match="65535"):
        plan_ports(4, 65534, 8700)


def alps(*args: str | pathlib.Path, cwd: pathlib.Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "cli", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_real_process_help_testnet_and_error(tmp_path: pathlib.Path) -> None:
    helped = alps("--help", cwd=tmp_path)
    assert helped.returncode == 0
    for command in ("init", "keys", "genesis", "testnet", "node"):
        assert command in helped.stdout
    made = alps("testnet", "--validators", "4", "--dir", tmp_path / "tn", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    check_testnet(tmp_path / "tn", 4, members=True)
    hashed = alps("genesis", "hash", tmp_path / "tn" / "genesis.json", cwd=tmp_path)
    assert hashed.stdout.strip() == load_config(tmp_path / "tn" / "node-2").node.genesis_hash
    failed = alps("genesis", "hash", tmp_path / "missing.json", cwd=tmp_path)
    assert failed.returncode == 1
    assert failed.stderr.count("\n") == 1 and failed.stderr.startswith("Error: ")
    assert "Traceback" not in failed.stderr
