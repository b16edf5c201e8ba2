"""`alps-agent`: init (device key + enrolment request), request, run, status.

argparse only (the agent stays light). Every AgentError ends as one JSON log line on
stderr and exit status 2; `run` stops cleanly on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import pathlib
import signal
import sys
from typing import Any

from device_agent import config as config_mod
from device_agent import keys
from device_agent.errors import AgentError, KeyFileError
from device_agent.log import Logger
from device_agent.outbox import open_readonly, read_status

DEFAULT_CONFIG = "/etc/alps/agent.toml"


def _licensee(text: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("licensee key must be hex") from exc
    if len(key) != 32:
        raise argparse.ArgumentTypeError("licensee key must be 32 bytes (64 hex digits)")
    return key


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="alps-agent", description="ALPS device agent")
    p.add_argument(
        "--config",
        default=os.environ.get("ALPS_AGENT_CONFIG", DEFAULT_CONFIG),
        help=f"config file (TOML; default $ALPS_AGENT_CONFIG or {DEFAULT_CONFIG})",
    )
    sub = p.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="create the device key; print the enrolment request")
    init.add_argument("--licensee", type=_licensee, required=True, help="owner's public key hex")
    init.add_argument("--encrypt", action="store_true", help="seal the key with a passphrase")
    init.add_argument(
        "--passphrase-env", metavar="VAR", help="read the passphrase from this env variable"
    )
    req = sub.add_parser("request", help="print the enrolment request again")
    req.add_argument("--licensee", type=_licensee, required=True)
    run = sub.add_parser("run", help="meter, record and upload until stopped")
    run.add_argument("--ticks-max", type=int, default=None, help=argparse.SUPPRESS)
    status = sub.add_parser("status", help="queue depth, last committed seq, last error")
    status.add_argument("--json", action="store_true")
    return p


def _new_passphrase(args: argparse.Namespace) -> bytes | None:
    if args.passphrase_env:
        value = os.environb.get(args.passphrase_env.encode())
        if not value:
            raise KeyFileError("passphrase_needed", f"${args.passphrase_env} is empty")
        return value
    if not args.encrypt:
        return None
    first = getpass.getpass("device key passphrase: ")
    if first != getpass.getpass("again: ") or not first:
        raise KeyFileError("passphrase_mismatch", "passphrases differ or are empty")
    return first.encode()


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=1, sort_keys=True))


def cmd_init(cfg: config_mod.AgentConfig, args: argparse.Namespace, log: Logger) -> int:
    signer = keys.create_key_file(cfg.key_file, _new_passphrase(args))
    log.info("device_key_created", path=str(cfg.key_file), device=signer.public_key)
    _print_json(keys.enrolment_request(signer, cfg.chain_id, cfg.sku, args.licensee))
    return 0


def cmd_request(cfg: config_mod.AgentConfig, args: argparse.Namespace, log: Logger) -> int:
    signer = keys.load_key_file(cfg.key_file, keys.read_passphrase(cfg.passphrase_file))
    _print_json(keys.enrolment_request(signer, cfg.chain_id, cfg.sku, args.licensee))
    return 0


def cmd_run(cfg: config_mod.AgentConfig, args: argparse.Namespace, log: Logger) -> int:
    from device_agent.agent import build_agent

    signer = keys.load_key_file(cfg.key_file, keys.read_passphrase(cfg.passphrase_file))
    stop = {"now": False}

    def on_signal(signum: int, frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    agent = build_agent(cfg, signer, log, pathlib.Path(args.config).resolve().parent)
    try:
        agent.run(lambda: stop["now"], args.ticks_max)
    finally:
        agent.source.close()
        agent.outbox.close()
    return 0


def cmd_status(cfg: config_mod.AgentConfig, args: argparse.Namespace, log: Logger) -> int:
    db = open_readonly(cfg.outbox_path)
    try:
        status = read_status(db)
    finally:
        db.close()
    if args.json:
        _print_json(status)
    else:
        for key in sorted(status):
            print(f"{key:<20} {json.dumps(status[key], sort_keys=True)}")
    return 0


COMMANDS = {"init": cmd_init, "request": cmd_request, "run": cmd_run, "status": cmd_status}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    log = Logger()
    try:
        cfg = config_mod.load(args.config)
        log = Logger(level=cfg.log_level)
        return COMMANDS[args.command](cfg, args, log)
    except AgentError as exc:
        log.error(exc.code, error=type(exc).__name__, detail=exc.detail)
        return 2


if __name__ == "__main__":
    sys.exit(main())
