"""The genesis file: `node.ledger.genesis.Genesis` as pretty JSON, and the ceremony draft.

Rule kept here: the genesis hash is the hex SHA-256 of the genesis' canonical msgpack
encoding (`Genesis.encode()`), never of the JSON text, so reformatting the file (spaces,
key order, hex case) cannot change it; a node loads a genesis only when its hash equals
the `node.genesis_hash` its config pins. Byte strings are lowercase hex in JSON. During
the ceremony the file may have no validators yet (`GenesisDraft`); `Genesis` needs one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
from dataclasses import dataclass
from typing import Any

import contracts_vm
from node.config import NodeConfig, write_atomic
from node.errors import SetupError
from node.ledger import crypto
from node.ledger.certificate import ValidatorSet
from node.ledger.errors import LedgerError
from node.ledger.genesis import Genesis, Params
from node.ledger.model import ROLES, Member
from node.ledger.records import require, require_uint
from node.ledger.tx import check_chain_id

GENESIS_FILE_BYTES_MAX = 4 * 1024 * 1024
DEFAULT_RULE_GAS_LIMIT = 2_000_000
DEFAULT_MAX_BLOCK_TXS = 2000
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_TOP_KEYS = ("chain_id", "genesis_time_ms", "members", "validators", "params")


class GenesisFileError(SetupError):
    """A genesis file that is unreadable, malformed, incomplete or not the pinned one."""


def default_params(
    max_block_txs: int = DEFAULT_MAX_BLOCK_TXS, rule_gas_limit: int = DEFAULT_RULE_GAS_LIMIT
) -> Params:
    """Chain parameters for a new genesis: this build's VM version and sensible limits."""
    try:
        return Params(contracts_vm.VM_VERSION, rule_gas_limit, max_block_txs)
    except ValueError as exc:
        raise GenesisFileError("params", str(exc)) from exc


@dataclass(frozen=True, slots=True)
class GenesisDraft:
    """A genesis under construction: like `Genesis`, but validators may still be empty."""

    chain_id: str
    genesis_time_ms: int
    members: tuple[Member, ...] = ()
    validators: tuple[bytes, ...] = ()
    params: Params = dataclasses.field(default_factory=default_params)

    def __post_init__(self) -> None:
        try:
            check_chain_id(self.chain_id)
            require_uint(self.genesis_time_ms, "genesis_time_ms")
            keys = [m.public_key for m in self.members]
            require(len(set(keys)) == len(keys), "duplicate member key")
            require(len({m.name for m in self.members}) == len(keys), "duplicate member name")
            if self.validators:
                ValidatorSet(self.validators)
        except ValueError as exc:
            raise GenesisFileError("genesis", str(exc)) from exc

    @classmethod
    def of(cls, genesis: Genesis) -> GenesisDraft:
        return cls(
            genesis.chain_id,
            genesis.genesis_time_ms,
            genesis.members,
            genesis.validators,
            genesis.params,
        )

    def add_member(
        self, name: str, public_key: bytes, roles: tuple[str, ...], *, validator: bool = False
    ) -> GenesisDraft:
        """A new draft with the member appended (and to the validators, if `validator`;
        a validator member carries the "validator" role)."""
        wanted = set(roles) | ({"validator"} if validator else set())
        unknown = sorted(wanted - set(ROLES))
        if unknown:
            raise GenesisFileError("roles", f"unknown roles {unknown}; known: {', '.join(ROLES)}")
        try:
            member = Member(name, public_key, tuple(sorted(wanted)))
        except ValueError as exc:
            raise GenesisFileError("member", str(exc)) from exc
        validators = self.validators + ((public_key,) if validator else ())
        return dataclasses.replace(self, members=(*self.members, member), validators=validators)

    def finish(self) -> Genesis:
        if not self.validators:
            raise GenesisFileError("genesis", "no validators yet (add-member --validator)")
        try:
            return Genesis(
                self.chain_id, self.genesis_time_ms, self.members, self.validators, self.params
            )
        except ValueError as exc:
            raise GenesisFileError("genesis", str(exc)) from exc


def genesis_hash(genesis: Genesis) -> str:
    """Hex SHA-256 of the canonical encoding (what a node pins in node.genesis_hash)."""
    return crypto.sha256(genesis.encode()).hex()


# -- JSON --------------------------------------------------------------------------------------


def genesis_to_json(genesis: Genesis | GenesisDraft) -> str:
    """Pretty, deterministic JSON (sorted keys, two-space indent, trailing newline)."""
    doc = {
        "chain_id": genesis.chain_id,
        "genesis_time_ms": genesis.genesis_time_ms,
        "members": [
            {"name": m.name, "public_key": m.public_key.hex(), "roles": list(m.roles)}
            for m in genesis.members
        ],
        "validators": [v.hex() for v in genesis.validators],
        "params": genesis.params.to_value(),
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def genesis_from_json(text: str | bytes) -> Genesis:
    """A complete genesis from JSON; GenesisFileError says what is wrong."""
    return draft_from_json(text).finish()


def draft_from_json(text: str | bytes) -> GenesisDraft:
    doc = _json_object(text)
    _exact_keys(doc, _TOP_KEYS, "genesis")
    members = _list(doc["members"], "members")
    validators = _list(doc["validators"], "validators")
    try:
        return GenesisDraft(
            chain_id=doc["chain_id"],
            genesis_time_ms=_int(doc["genesis_time_ms"], "genesis_time_ms"),
            members=tuple(_member(m, f"members[{i}]") for i, m in enumerate(members)),
            validators=tuple(_hex_key(v, f"validators[{i}]") for i, v in enumerate(validators)),
            params=Params.from_value(doc["params"], "params"),
        )
    except LedgerError as exc:
        raise GenesisFileError("genesis", exc.detail or str(exc)) from exc


def _json_object(text: str | bytes) -> dict[str, Any]:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise GenesisFileError("genesis", f"duplicate JSON key among {sorted(keys)}")
        return dict(pairs)

    try:
        doc = json.loads(text, object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GenesisFileError("genesis", f"not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise GenesisFileError("genesis", "expected a JSON object")
    return doc


def _exact_keys(doc: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(doc) - set(keys))
    missing = sorted(set(keys) - set(doc))
    if unknown or missing:
        raise GenesisFileError(where, f"unknown fields {unknown}, missing fields {missing}")


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise GenesisFileError(where, "expected a list")
    return value


def _int(value: Any, where: str) -> int:
    if type(value) is not int:
        raise GenesisFileError(where, "expected an integer")
    return value


def _hex_key(value: Any, where: str) -> bytes:
    if not isinstance(value, str) or not _HEX64.match(value):
        raise GenesisFileError(where, "expected a public key as 64 hex digits")
    return bytes.fromhex(value)


def _member(value: Any, where: str) -> Member:
    if not isinstance(value, dict):
        raise GenesisFileError(where, "expected an object")
    _exact_keys(value, ("name", "public_key", "roles"), where)
    roles = _list(value["roles"], f"{where}.roles")
    return Member.from_value(
        {"name": value["name"], "public_key": _hex_key(value["public_key"], where), "roles": roles},
        where,
    )


# -- files -------------------------------------------------------------------------------------


def _read_text(path: pathlib.Path) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(GENESIS_FILE_BYTES_MAX + 1)
    except OSError as exc:
        raise GenesisFileError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    if len(data) > GENESIS_FILE_BYTES_MAX:
        raise GenesisFileError(str(path), "larger than 4 MiB")
    return data


def _in_file(path: pathlib.Path, exc: GenesisFileError) -> GenesisFileError:
    return GenesisFileError(str(path), f"{exc.subject}: {exc.detail}")


def read_draft(path: str | os.PathLike[str]) -> GenesisDraft:
    path = pathlib.Path(path)
    try:
        return draft_from_json(_read_text(path))
    except GenesisFileError as exc:
        if exc.subject == str(path):
            raise
        raise _in_file(path, exc) from exc


def read_genesis(path: str | os.PathLike[str]) -> Genesis:
    path = pathlib.Path(path)
    try:
        return read_draft(path).finish()
    except GenesisFileError as exc:
        if exc.subject == str(path):
            raise
        raise _in_file(path, exc) from exc


def write_genesis(
    path: str | os.PathLike[str], genesis: Genesis | GenesisDraft, *, exclusive: bool = False
) -> None:
    """Write the JSON atomically; with `exclusive`, refuse an existing file."""
    path = pathlib.Path(path)
    try:
        write_atomic(path, genesis_to_json(genesis).encode(), exclusive=exclusive)
    except FileExistsError as exc:
        raise GenesisFileError(str(path), "already exists") from exc
    except OSError as exc:
        raise GenesisFileError(str(path), f"cannot write: {exc.strerror or exc}") from exc


def load_genesis(config: NodeConfig) -> Genesis:
    """The node's genesis, refused unless its hash is the one config.toml pins and it is
    for the configured chain."""
    pinned = config.node.genesis_hash
    if not pinned:
        raise GenesisFileError(
            "node.genesis_hash",
            f"no genesis installed; run: alps genesis install FILE --home {config.home}",
        )
    path = config.genesis_path
    genesis = read_genesis(path)
    actual = genesis_hash(genesis)
    if actual != pinned:
        raise GenesisFileError(
            str(path), f"genesis hash {actual} differs from node.genesis_hash {pinned}"
        )
    if genesis.chain_id != config.node.chain_id:
        raise GenesisFileError(
            str(path), f"chain_id {genesis.chain_id!r} differs from node.chain_id"
        )
    return genesis
