"""`alps testnet`: n validator homes on this machine, wired as each other's peers, the
demo licensing web's member keys, and one genesis installed in every home.

Layout of DIR: node-<i>/ (a home each: config.toml, keys/validator.json, genesis.json),
members/<name>.json (member keys, mode 0600), genesis.json. Node i listens for peers on
base_port + i and serves the API on api_base_port + 2i (admin on the next port).
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

import click

from cli.genesis import now_ms
from cli.home import HomeError, init_home, install_genesis, new_config, p2p_multiaddr, with_peers
from node.config import write_config
from node.genesis_file import GenesisDraft, default_params, genesis_hash, write_genesis
from node.keys import create_key_file
from node.ledger.tx import CHAIN_ID_RE


@dataclass(frozen=True, slots=True)
class DemoMember:
    name: str
    roles: tuple[str, ...]
    what: str


# The licensing web of tests/ledger/test_licensing_web.py, plus an auditor.
LICENSING_WEB = (
    DemoMember("codec", ("licensor",), "video codec licensor (tiered per-unit licence)"),
    DemoMember("r1", ("licensor",), "radio patent licensor in the pool (10 patents)"),
    DemoMember("r2", ("licensor",), "radio patent licensor in the pool (7 patents)"),
    DemoMember("r3", ("licensor",), "radio patent licensor in the pool (3 patents)"),
    DemoMember("radio-pool", ("pool",), "radio patent pool administrator"),
    DemoMember("osv", ("licensee", "licensor"), "OS vendor: licenses graphics, sublicenses"),
    DemoMember("gfx", ("licensor",), "graphics licensor upstream of the OS vendor"),
    DemoMember("oem", ("licensee",), "OEM licensee making cameras and hubs"),
    DemoMember("bank", ("bank",), "settlement bank acknowledging deposits"),
    DemoMember("auditor", ("auditor",), "independent auditor"),
)
MEMBER_SETS = {"licensing-web": LICENSING_WEB, "none": ()}


@dataclass(frozen=True, slots=True)
class NodePorts:
    p2p: int
    api: int
    admin: int


def plan_ports(n: int, base_port: int, api_base_port: int) -> list[NodePorts]:
    """Ports for n nodes; HomeError if any is out of range or two coincide."""
    plan = [
        NodePorts(base_port + i, api_base_port + 2 * i, api_base_port + 2 * i + 1) for i in range(n)
    ]
    ports = [p for node in plan for p in (node.p2p, node.api, node.admin)]
    if max(ports) > 65535:
        raise HomeError("ports", f"port {max(ports)} is above 65535; lower the base ports")
    if len(set(ports)) != len(ports):
        raise HomeError("ports", "p2p and API port ranges overlap; move --base-port")
    return plan


@click.command()
@click.option("--validators", "n", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option(
    "--dir", "out", required=True, type=click.Path(file_okay=False, path_type=pathlib.Path)
)
@click.option("--base-port", type=click.IntRange(1, 65535), default=27000, show_default=True)
@click.option("--api-base-port", type=click.IntRange(1, 65535), default=8700, show_default=True)
@click.option("--chain-id", default="alps-testnet", show_default=True)
@click.option(
    "--members", type=click.Choice(sorted(MEMBER_SETS)), default="licensing-web", show_default=True
)
@click.option("--time-ms", type=click.IntRange(0), default=None, help="genesis time; default now")
def testnet(
    n: int,
    out: pathlib.Path,
    base_port: int,
    api_base_port: int,
    chain_id: str,
    members: str,
    time_ms: int | None,
) -> None:
    """Create a local testnet: n wired validator homes, member keys and one genesis."""
    if not CHAIN_ID_RE.match(chain_id):
        raise click.BadParameter("expected [a-z0-9._-], at most 64", param_hint="--chain-id")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise HomeError(str(out), "exists and is not empty")
    plan = plan_ports(n, base_port, api_base_port)
    out.mkdir(parents=True, exist_ok=True, mode=0o755)
    genesis_time = now_ms() if time_ms is None else time_ms
    draft = GenesisDraft(chain_id, genesis_time, params=default_params())
    configs = []
    for i, ports in enumerate(plan):
        cfg = new_config(out / f"node-{i}", f"node-{i}", chain_id, ports.p2p, ports.api)
        key = init_home(cfg).public_key
        draft = draft.add_member(f"node-{i}", key, (), validator=True)
        configs.append((cfg, key))
    addresses = {
        key: p2p_multiaddr(ports.p2p) for (_, key), ports in zip(configs, plan, strict=True)
    }
    for cfg, key in configs:
        write_config(with_peers(cfg, {k: a for k, a in addresses.items() if k != key}))
    for member in MEMBER_SETS[members]:
        signer = create_key_file(out / "members" / f"{member.name}.json")
        draft = draft.add_member(member.name, signer.public_key, member.roles)
    genesis_file = out / "genesis.json"
    genesis = draft.finish()
    write_genesis(genesis_file, genesis, exclusive=True)
    for cfg, _ in configs:
        install_genesis(cfg.home, genesis_file)
    click.echo(f"testnet {chain_id}: {n} validators in {out}, genesis {genesis_hash(genesis)}")
    for (cfg, key), ports in zip(configs, plan, strict=True):
        click.echo(
            f"  {cfg.node.moniker}: p2p {ports.p2p}, api {ports.api} (admin {ports.admin})"
            f", key {key.hex()}"
        )
    for member in MEMBER_SETS[members]:
        click.echo(f"  member {member.name:<11} members/{member.name}.json  {member.what}")
    click.echo(f"start each node with: alps node start --home {out}/node-<i>")
