"""`alps genesis ...`: the genesis ceremony on a JSON file passed between members.

new -> add-member (each member, validators with --validator) -> show / hash (everyone
compares the hash out of band) -> install into every node home. The file is rewritten
atomically after each step; the hash depends only on the canonical encoding.
"""

from __future__ import annotations

import pathlib
import re
import time

import click

from cli.home import install_genesis
from node.genesis_file import (
    DEFAULT_MAX_BLOCK_TXS,
    DEFAULT_RULE_GAS_LIMIT,
    GenesisDraft,
    default_params,
    genesis_hash,
    genesis_to_json,
    read_draft,
    read_genesis,
    write_genesis,
)
from node.ledger.tx import CHAIN_ID_RE

FILE = click.argument("file", type=click.Path(dir_okay=False, path_type=pathlib.Path))
_KEY_HEX = re.compile(r"^[0-9a-fA-F]{64}$")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def parse_key(value: str) -> bytes:
    value = value.strip()
    if not _KEY_HEX.match(value):
        raise click.BadParameter("expected a public key as 64 hex digits", param_hint="--key")
    return bytes.fromhex(value)


def parse_roles(value: str) -> tuple[str, ...]:
    return tuple(sorted({r.strip() for r in value.split(",") if r.strip()}))


@click.group()
def genesis() -> None:
    """The genesis ceremony: new, add-member, show, hash, install."""


@genesis.command("new")
@FILE
@click.option("--chain-id", required=True)
@click.option("--time-ms", type=click.IntRange(0), default=None, help="default: now")
@click.option("--max-block-txs", type=click.IntRange(1, 10_000), default=DEFAULT_MAX_BLOCK_TXS)
@click.option("--rule-gas-limit", type=click.IntRange(0, 10**9), default=DEFAULT_RULE_GAS_LIMIT)
def genesis_new(
    file: pathlib.Path,
    chain_id: str,
    time_ms: int | None,
    max_block_txs: int,
    rule_gas_limit: int,
) -> None:
    """Start a genesis file (no members yet); refuses an existing FILE."""
    if not CHAIN_ID_RE.match(chain_id):
        raise click.BadParameter("expected [a-z0-9._-], at most 64", param_hint="--chain-id")
    draft = GenesisDraft(
        chain_id,
        now_ms() if time_ms is None else time_ms,
        params=default_params(max_block_txs, rule_gas_limit),
    )
    write_genesis(file, draft, exclusive=True)
    click.echo(f"created {file} (chain {chain_id}, genesis time {draft.genesis_time_ms} ms)")


@genesis.command("add-member")
@FILE
@click.option("--name", required=True)
@click.option("--key", "key_hex", required=True, help="the member's public key (hex)")
@click.option("--roles", default="", help="comma-separated, e.g. licensor,licensee")
@click.option("--validator", is_flag=True, help="also a validator (appended in order)")
def genesis_add_member(
    file: pathlib.Path, name: str, key_hex: str, roles: str, validator: bool
) -> None:
    """Add a consortium member to FILE."""
    key = parse_key(key_hex)
    role_list = parse_roles(roles)
    if not role_list and not validator:
        raise click.BadParameter("give at least one role or --validator", param_hint="--roles")
    draft = read_draft(file).add_member(name, key, role_list, validator=validator)
    write_genesis(file, draft)
    click.echo(f"added {name} ({', '.join(draft.members[-1].roles)}) to {file}")


@genesis.command("show")
@FILE
@click.option("--json", "as_json", is_flag=True, help="print the file's canonical JSON")
def genesis_show(file: pathlib.Path, as_json: bool) -> None:
    """Print the genesis: chain, parameters, members, validators and hash."""
    draft = read_draft(file)
    if as_json:
        click.echo(genesis_to_json(draft), nl=False)
        return
    p = draft.params
    click.echo(f"chain_id         {draft.chain_id}")
    click.echo(f"genesis_time_ms  {draft.genesis_time_ms}")
    click.echo(
        f"params           vm_version={p.vm_version} rule_gas_limit={p.rule_gas_limit}"
        f" max_block_txs={p.max_block_txs}"
    )
    click.echo(f"members ({len(draft.members)}):")
    order = {v: i for i, v in enumerate(draft.validators)}
    for m in draft.members:
        mark = f"  (validator #{order[m.public_key]})" if m.public_key in order else ""
        click.echo(f"  {m.name:<16} {m.public_key.hex()}  {','.join(m.roles)}{mark}")
    member_keys = {m.public_key for m in draft.members}
    for v, i in order.items():
        if v not in member_keys:
            click.echo(f"  (not a member)   {v.hex()}  (validator #{i})")
    if draft.validators:
        click.echo(f"validators       {len(draft.validators)}")
        click.echo(f"hash             {genesis_hash(draft.finish())}")
    else:
        click.echo("hash             (incomplete: no validators yet)")


@genesis.command("hash")
@FILE
def genesis_hash_cmd(file: pathlib.Path) -> None:
    """Print the genesis hash (hex SHA-256 of its canonical encoding)."""
    click.echo(genesis_hash(read_genesis(file)))


@genesis.command("install")
@FILE
@click.option("--home", required=True, type=click.Path(file_okay=False, path_type=pathlib.Path))
@click.option("--force", is_flag=True, help="replace a different installed genesis")
def genesis_install(file: pathlib.Path, home: pathlib.Path, force: bool) -> None:
    """Copy FILE into the node home and pin its hash in config.toml."""
    done = install_genesis(home, file, force=force)
    if done.warning:
        click.echo(f"warning: {done.warning}", err=True)
    click.echo(f"installed genesis {done.genesis_hash} into {done.config.home}")
