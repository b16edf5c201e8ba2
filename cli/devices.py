"""`alps device`: enrol a device from its agent's enrolment request, revoke, transfer, show.

Rule kept here: an enrolment request is checked before anything is signed: it must be
for this chain and for the signing licensee, and its proof of possession must verify
(`node.ledger.usage.verify_possession`, the ledger's own check), so a wrong or tampered
request is one clear error and never a rejected transaction.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import click

from cli.common import (
    HEX64,
    Directory,
    connect,
    emit,
    key_option,
    member_key,
    node_options,
    output_option,
    pairs,
    public_key_arg,
    report,
    submit_and_report,
    submitter,
    wait_option,
)
from node.ledger.usage import verify_possession

REQUEST_BYTES_MAX = 16 * 1024
REQUEST_FIELDS = ("device", "licensee", "chain_id", "sku", "proof_of_possession")


@click.group()
def device() -> None:
    """Devices: enrol (from `alps-agent request`), revoke, transfer, show."""


def read_request(path: pathlib.Path) -> dict[str, str]:
    """The agent's enrolment request JSON, shape-checked."""
    with path.open("rb") as f:
        data = f.read(REQUEST_BYTES_MAX + 1)
    if len(data) > REQUEST_BYTES_MAX:
        raise click.ClickException(f"{path}: larger than {REQUEST_BYTES_MAX} bytes")
    try:
        doc: Any = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{path}: not JSON ({exc})") from exc
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), str) for k in REQUEST_FIELDS):
        raise click.ClickException(
            f"{path}: an enrolment request has the fields {', '.join(REQUEST_FIELDS)} "
            "(print one with: alps-agent request --licensee <key>)"
        )
    for name in ("device", "licensee"):
        if not HEX64.match(doc[name]):
            raise click.ClickException(f"{path}: {name} must be 64 hex digits")
    return {k: doc[k] for k in REQUEST_FIELDS}


@device.command("enrol")
@click.argument("request_file", metavar="REQUEST.json", type=click.Path(path_type=pathlib.Path))
@node_options
@key_option()
@wait_option
def device_enrol(
    request_file: pathlib.Path, node_url: str, timeout: float, key_file: pathlib.Path, wait_s: float
) -> None:
    """Enrol the device of an agent's enrolment request (you are its licensee)."""
    req = read_request(request_file)
    sub = submitter(node_url, timeout, key_file)
    with sub.client:
        me = sub.signer.public_key
        chain = sub.client.chain_id()
        if req["chain_id"] != chain:
            raise click.ClickException(
                f"{request_file}: the request is for chain {req['chain_id']!r}, the node's is "
                f"{chain!r}"
            )
        if bytes.fromhex(req["licensee"]) != me:
            raise click.ClickException(
                f"{request_file}: the request is for licensee {req['licensee'][:16]}..., "
                f"not for the signing key {me.hex()[:16]}..."
            )
        try:
            proof = bytes.fromhex(req["proof_of_possession"])
        except ValueError:
            proof = b""
        device_key = bytes.fromhex(req["device"])
        if not verify_possession(device_key, me, chain, proof):
            raise click.ClickException(
                f"{request_file}: the proof of possession does not verify for this device, "
                "licensee and chain"
            )
        body = {"device": device_key, "sku": req["sku"], "proof": proof}
        report(sub.submit("device.enrol", body, wait_s), wait_s)


@device.command("revoke")
@click.argument("device_key", metavar="KEY")
@node_options
@key_option()
@wait_option
def device_revoke(
    device_key: str, node_url: str, timeout: float, key_file: pathlib.Path, wait_s: float
) -> None:
    """Revoke a device you own: its later usage reports are refused."""
    body = {"device": public_key_arg(device_key, "KEY")}
    submit_and_report(node_url, timeout, key_file, wait_s, "device.revoke", body)


@device.command("transfer")
@click.argument("device_key", metavar="KEY")
@click.option("--to", "to", required=True, help="the new licensee (member name or key)")
@node_options
@key_option()
@wait_option
def device_transfer(
    device_key: str, to: str, node_url: str, timeout: float, key_file: pathlib.Path, wait_s: float
) -> None:
    """Hand a device you own to another licensee."""
    sub = submitter(node_url, timeout, key_file)
    with sub.client:
        body = {
            "device": public_key_arg(device_key, "KEY"),
            "new_licensee": member_key(sub.client, to, "--to"),
        }
        report(sub.submit("device.transfer", body, wait_s), wait_s)


@device.command("show")
@click.argument("device_key", metavar="KEY")
@node_options
@output_option
def device_show(device_key: str, node_url: str, timeout: float, output: str) -> None:
    """An enrolled device: owner, SKU, revoked, last report, registers, anomalies."""
    key = public_key_arg(device_key, "KEY")
    with connect(node_url, timeout) as client:
        doc = client.get_optional(f"/v1/devices/{key.hex()}")
        if doc is None:
            raise click.ClickException(f"device {key.hex()} is not enrolled")
        directory = Directory(client)

        def render(d: dict[str, Any]) -> None:
            registers = ", ".join(f"{k}={v}" for k, v in sorted(d["registers"].items()))
            pairs(
                [
                    ("device", d["device"]),
                    ("licensee", directory.name_of(d["licensee"])),
                    ("sku", d["sku"]),
                    ("revoked", "yes" if d["revoked"] else "no"),
                    ("last seq", d["last_seq"]),
                    ("registers", registers or "-"),
                    ("anomalies", d["anomalies"]),
                ]
            )

        emit(doc, output, render)
