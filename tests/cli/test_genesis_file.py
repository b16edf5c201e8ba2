"""node/genesis_file.py: genesis JSON round-trips, its hash is the ledger's own genesis
hash and survives any reformatting, malformed files get typed errors, and a node refuses
a genesis whose hash its config does not pin."""

from __future__ import annotations

import json
import pathlib

import pytest

import contracts_vm
from node.config import NodeConfig, NodeSettings, write_config
from node.genesis_file import (
    GenesisDraft,
    GenesisFileError,
    draft_from_json,
    genesis_from_json,
    genesis_hash,
    genesis_to_json,
    load_genesis,
    read_genesis,
    write_genesis,
)
from node.ledger import crypto
from node.ledger.genesis import K_GENESIS, Genesis, Params
from node.ledger.model import Member


def key(name: str) -> bytes:
    return crypto.Signer(crypto.sha256(name.encode())).public_key


def sample(time_ms: int = 1_767_225_600_000) -> Genesis:
    return Genesis(
        "alps-test",
        time_ms,
        (
            Member("v0", key("v0"), ("validator",)),
            Member("oem", key("oem"), ("licensee",)),
            Member("osv", key("osv"), ("licensee", "licensor")),
            Member("v1", key("v1"), ("validator",)),
        ),
        (key("v1"), key("v0")),
        Params(contracts_vm.VM_VERSION, 2_000_000, 2000),
    )


def test_json_round_trip_is_exact_and_deterministic() -> None:
    g = sample()
    text = genesis_to_json(g)
    assert genesis_from_json(text) == g
    assert genesis_to_json(genesis_from_json(text)) == text
    doc = json.loads(text)
    assert doc["validators"] == [key("v1").hex(), key("v0").hex()]  # order is kept
    assert doc["members"][2] == {
        "name": "osv",
        "public_key": key("osv").hex(),
        "roles": ["licensee", "licensor"],
    }
    assert doc["params"] == {"vm_version": 1, "rule_gas_limit": 2_000_000, "max_block_txs": 2000}


def test_hash_is_the_ledgers_genesis_record() -> None:
    g = sample()
    assert genesis_hash(g) == g.state()[K_GENESIS].hex()


def reformatted(text: str) -> list[str]:
    doc = json.loads(text)
    compact = json.dumps(doc, separators=(",", ":"))
    reordered = json.dumps(dict(reversed(list(doc.items()))), indent=7)
    upper = text.replace(key("oem").hex(), key("oem").hex().upper())
    crlf = text.replace("\n", "\r\n  ")
    return [compact, reordered, upper, crlf]


def test_hash_does_not_change_under_reformatting() -> None:
    g = sample()
    h = genesis_hash(g)
    for variant in reformatted(genesis_to_json(g)):
        assert variant != genesis_to_json(g)
        assert genesis_hash(genesis_from_json(variant)) == h


def test_hash_changes_with_content() -> None:
    assert genesis_hash(sample(1)) != genesis_hash(sample(2))
    g = sample()
    swapped = Genesis(g.chain_id, g.genesis_time_ms, g.members, g.validators[::-1], g.params)
    assert genesis_hash(swapped) != genesis_hash(g)  # validator order picks the primary


def mutate(**changes: object) -> str:
    doc = json.loads(genesis_to_json(sample()))
    doc.update(changes)
    return json.dumps(doc)


MEMBER0 = {"name": "v0", "public_key": key("v0").hex(), "roles": ["validator"]}
BAD = [
    ("not json", "{", "not JSON"),
    ("not an object", "[]", "expected a JSON object"),
    ("missing field", json.dumps({"chain_id": "alps-test"}), "missing fields"),
    ("unknown field", mutate(extra=1), "unknown fields ['extra']"),
    ("duplicate key", '{"chain_id": "a", "chain_id": "b"}', "duplicate JSON key"),
    ("bad chain id", mutate(chain_id="Not OK"), "bad chain_id"),
    ("time float", mutate(genesis_time_ms=1.5), "expected an integer"),
    ("time negative", mutate(genesis_time_ms=-1), "genesis_time_ms"),
    ("members not list", mutate(members={}), "expected a list"),
    ("member not object", mutate(members=[1]), "expected an object"),
    ("member extra", mutate(members=[{**MEMBER0, "x": 1}]), "unknown fields ['x']"),
    ("member bad key", mutate(members=[{**MEMBER0, "public_key": "00"}]), "64 hex"),
    ("member bad role", mutate(members=[{**MEMBER0, "roles": ["king"]}]), "roles must be"),
    ("member roles unsorted", mutate(members=[{**MEMBER0, "roles": ["pool", "bank"]}]), "sorted"),
    ("duplicate member", mutate(members=[MEMBER0, MEMBER0]), "duplicate member"),
    ("validator bad hex", mutate(validators=["zz" * 32]), "64 hex"),
    ("duplicate validator", mutate(validators=[key("v0").hex()] * 2), "duplicate validator"),
    ("params field", mutate(params={"vm_version": 1}), "missing fields"),
    (
        "params range",
        mutate(params={"vm_version": 1, "rule_gas_limit": 1, "max_block_txs": 0}),
        "max_block_txs",
    ),
    ("no validators", mutate(validators=[]), "no validators yet"),
]


@pytest.mark.parametrize(("what", "text", "fragment"), BAD, ids=[b[0] for b in BAD])
def test_malformed_genesis_gets_a_typed_one_line_error(what: str, text: str, fragment: str) -> None:
    with pytest.raises(GenesisFileError) as err:
        genesis_from_json(text)
    assert fragment in str(err.value), (what, str(err.value))
    assert "\n" not in str(err.value)


def test_a_draft_may_lack_validators_but_not_be_finished() -> None:
    draft = draft_from_json(mutate(validators=[]))
    assert draft.validators == () and len(draft.members) == 4
    with pytest.raises(GenesisFileError, match="no validators"):
        draft.finish()
    g = draft.add_member("v9", key("v9"), (), validator=True).finish()
    assert g.validators == (key("v9"),)
    assert g.members[-1] == Member("v9", key("v9"), ("validator",))


def test_draft_add_member_rejects_bad_input() -> None:
    draft = GenesisDraft("alps-test", 0)
    with pytest.raises(GenesisFileError, match="unknown roles"):
        draft.add_member("a", key("a"), ("king",))
    with pytest.raises(GenesisFileError, match="member name"):
        draft.add_member("bad name", key("a"), ("bank",))
    with pytest.raises(GenesisFileError, match="public_key"):
        draft.add_member("a", b"short", ("bank",))
    one = draft.add_member("a", key("a"), ("bank",))
    with pytest.raises(GenesisFileError, match="duplicate member key"):
        one.add_member("b", key("a"), ("bank",))


def installed_home(tmp_path: pathlib.Path, g: Genesis, pinned: str) -> NodeConfig:
    tmp_path.mkdir(exist_ok=True)
    cfg = NodeConfig(tmp_path, NodeSettings("n0", "alps-test", genesis_hash=pinned))
    write_config(cfg)
    write_genesis(cfg.genesis_path, g)
    return cfg


def test_load_genesis_checks_the_pinned_hash(tmp_path: pathlib.Path) -> None:
    g = sample()
    cfg = installed_home(tmp_path, g, genesis_hash(g))
    assert load_genesis(cfg) == g
    # Reformatting the installed file by hand is harmless...
    cfg.genesis_path.write_text(reformatted(genesis_to_json(g))[0])
    assert load_genesis(cfg) == g
    # ...changing its content is not.
    write_genesis(cfg.genesis_path, sample(5))
    with pytest.raises(GenesisFileError) as err:
        load_genesis(cfg)
    assert f"differs from node.genesis_hash {genesis_hash(g)}" in str(err.value)
    assert err.value.subject == str(cfg.genesis_path)


def test_load_genesis_needs_an_installed_genesis_for_this_chain(tmp_path: pathlib.Path) -> None:
    g = sample()
    with pytest.raises(GenesisFileError, match="no genesis installed"):
        load_genesis(installed_home(tmp_path / "a", g, ""))
    other = Genesis("other-chain", 0, g.members, g.validators, g.params)
    with pytest.raises(GenesisFileError, match=r"differs from node\.chain_id"):
        load_genesis(installed_home(tmp_path / "b", other, genesis_hash(other)))


def test_file_errors_name_the_file(tmp_path: pathlib.Path) -> None:
    with pytest.raises(GenesisFileError, match="cannot read") as err:
        read_genesis(tmp_path / "absent.json")
    assert err.value.subject == str(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text(mutate(chain_id="NO"))
    with pytest.raises(GenesisFileError) as err:
        read_genesis(bad)
    assert err.value.subject == str(bad) and "bad chain_id" in err.value.detail
    write_genesis(bad, sample(), exclusive=False)
    with pytest.raises(GenesisFileError, match="already exists"):
        write_genesis(bad, sample(), exclusive=True)
