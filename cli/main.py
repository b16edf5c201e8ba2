"""`alps`: the command line for node operators and consortium members.

Rule kept here: every error a user can cause (bad option, bad file, refused action, a
node that is unreachable or refuses) ends as ONE line on stderr, "Error: ...", and a
non-zero exit status (2 for usage errors, 1 otherwise); no traceback. Commands are thin:
node setup lives in node/config.py, node/keys.py, node/genesis_file.py and cli/home.py;
the commands that talk to a node are in cli/{licensing,devices,money,views,audit}.py
over cli/client.py (HTTP) and cli/common.py (options and output).
"""

from __future__ import annotations

import importlib
import pathlib
import sys
from collections.abc import Sequence
from typing import Any

import click

from cli import views
from cli.audit import audit
from cli.client import NodeError
from cli.devices import device
from cli.genesis import genesis
from cli.home import init_home, new_config
from cli.licensing import bom, licence, rule
from cli.money import deposit, statement, withdraw
from cli.testnet import testnet
from node.config import load_config
from node.errors import SetupError
from node.genesis_file import load_genesis
from node.keys import create_key_file, load_signer
from node.ledger.errors import LedgerError

DAEMON_MODULE = "node.runtime.daemon"


class AlpsGroup(click.Group):
    """The root group: turns every expected error into one line and an exit status."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            hint = f" (see: {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
            _fail(exc.format_message() + hint, exc.exit_code)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            _fail("aborted", 1)
        except NodeError as exc:
            _fail(exc.format_message(), exc.exit_code)
        except (SetupError, LedgerError) as exc:
            _fail(str(exc), 1)
        except OSError as exc:
            _fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "), 1)
        code = rv if isinstance(rv, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


def _fail(message: str, code: int) -> None:
    click.echo(f"Error: {' '.join(message.split())}", err=True)
    sys.exit(code)


HOME = click.option(
    "--home",
    required=True,
    type=click.Path(file_okay=False, path_type=pathlib.Path),
    help="the node's home directory (holds config.toml)",
)


@click.group(cls=AlpsGroup, context_settings={"help_option_names": ["-h", "--help"]})
def alps() -> None:
    """ALPS: automated licensing payment system."""


@alps.command()
@HOME
@click.option("--moniker", required=True, help="this node's name, e.g. node-0")
@click.option("--chain-id", default="alps-local", show_default=True)
@click.option("--p2p-port", type=click.IntRange(1, 65535), default=27000, show_default=True)
@click.option(
    "--api-port",
    type=click.IntRange(1, 65534),
    default=8700,
    show_default=True,
    help="public HTTP API; the admin API listens on the next port",
)
def init(home: pathlib.Path, moniker: str, chain_id: str, p2p_port: int, api_port: int) -> None:
    """Create a node home: config.toml and a validator key (mode 0600)."""
    cfg = new_config(home, moniker, chain_id, p2p_port, api_port)
    signer = init_home(cfg)
    click.echo(f"initialised {cfg.home} (chain {chain_id})", err=True)
    click.echo(signer.public_key.hex())


@alps.group()
def keys() -> None:
    """Ed25519 key files (validators and members)."""


@keys.command("show")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=pathlib.Path),
    help="a node home: show its validator key",
)
@click.option(
    "--file",
    "key_file",
    type=click.Path(dir_okay=False, path_type=pathlib.Path),
    help="a key file (e.g. a member key): show its public key",
)
def keys_show(home: pathlib.Path | None, key_file: pathlib.Path | None) -> None:
    """Print a public key (hex): the node's validator key (--home) or a key file's."""
    if (home is None) == (key_file is None):
        raise click.UsageError("give --home DIR or --file KEYFILE (one of them)")
    path = load_config(home).key_path if home is not None else key_file
    assert path is not None
    click.echo(load_signer(path).public_key.hex())


@keys.command("new")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=pathlib.Path))
def keys_new(out: pathlib.Path) -> None:
    """Create a key file (mode 0600, never overwritten) and print its public key."""
    click.echo(create_key_file(out).public_key.hex())


@alps.group()
def node() -> None:
    """Run a node; see its status and peers."""


@node.command("start")
@HOME
def node_start(home: pathlib.Path) -> None:
    """Start the node daemon for this home (runs until stopped)."""
    cfg = load_config(home)
    load_signer(cfg.key_path)
    load_genesis(cfg)
    try:
        daemon = importlib.import_module(DAEMON_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name in (DAEMON_MODULE, "node.runtime"):
            raise click.ClickException(
                f"the node daemon ({DAEMON_MODULE}) is not built yet"
            ) from None
        raise click.ClickException(
            f"cannot start: missing module {exc.name} (install with: pip install 'alps[node]')"
        ) from exc
    try:
        rv = daemon.run(cfg)
    except daemon.StartError as exc:
        raise click.ClickException(str(exc)) from None
    if isinstance(rv, int) and rv:
        sys.exit(rv)


alps.add_command(genesis)
alps.add_command(testnet)
node.add_command(views.node_status)
node.add_command(views.node_peers)
for command in (
    rule,
    licence,
    bom,
    device,
    deposit,
    withdraw,
    statement,
    views.statements,
    views.accruals,
    views.balance,
    views.block,
    views.tx,
    views.receipts,
    views.account,
    audit,
):
    alps.add_command(command)
alps.add_command(importlib.import_module("cli.verify").verify)
alps.add_command(importlib.import_module("cli.demo").demo)  # alps demo (cli/demo.py)


def main() -> None:
    alps()
