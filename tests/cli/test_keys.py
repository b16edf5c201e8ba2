"""node/keys.py: key files are created 0600 and never overwritten; loading refuses a key
others can read, a malformed file and a public key that does not match the seed."""

from __future__ import annotations

import json
import os
import pathlib
import stat

import pytest

from node.keys import KeyFileError, create_key_file, key_document, load_signer
from node.ledger import crypto

SEED = bytes(range(32))


def mode(path: pathlib.Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_created_key_is_private_and_loads_to_the_same_signer(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "keys" / "validator.json"
    signer = create_key_file(path)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    doc = json.loads(path.read_text())
    assert doc == {
        "type": "ed25519",
        "seed": doc["seed"],
        "public_key": signer.public_key.hex(),
    }
    loaded = load_signer(path)
    assert loaded.public_key == signer.public_key
    sig = loaded.sign(crypto.DOMAIN_TX, "alps-test", ["hello"])
    assert crypto.verify(signer.public_key, sig, crypto.DOMAIN_TX, "alps-test", ["hello"])


def test_mode_is_0600_even_with_a_permissive_umask(tmp_path: pathlib.Path) -> None:
    old = os.umask(0)
    try:
        create_key_file(tmp_path / "k.json")
    finally:
        os.umask(old)
    assert mode(tmp_path / "k.json") == 0o600


def test_two_keys_differ_and_a_given_seed_is_used(tmp_path: pathlib.Path) -> None:
    a = create_key_file(tmp_path / "a.json")
    b = create_key_file(tmp_path / "b.json")
    assert a.public_key != b.public_key
    c = create_key_file(tmp_path / "c.json", SEED)
    assert c.public_key == crypto.Signer(SEED).public_key


def test_existing_key_is_never_overwritten(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "k.json"
    create_key_file(path, SEED)
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        create_key_file(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize("bits", [0o644, 0o640, 0o604, 0o660])
def test_key_readable_by_others_is_refused_with_chmod_advice(
    tmp_path: pathlib.Path, bits: int
) -> None:
    path = tmp_path / "k.json"
    create_key_file(path, SEED)
    path.chmod(bits)
    with pytest.raises(KeyFileError) as err:
        load_signer(path)
    assert f"chmod 600 {path}" in str(err.value)
    assert f"{bits:04o}" in str(err.value)
    path.chmod(0o600)
    assert load_signer(path).public_key == crypto.Signer(SEED).public_key


def good() -> dict[str, object]:
    return dict(key_document(SEED))


MALFORMED = [
    ("not json", b"{nope", "not JSON"),
    ("not an object", b"[1, 2]", "expected type, seed and public_key"),
    ("missing field", {"type": "ed25519", "seed": SEED.hex()}, "expected type"),
    ("extra field", {**good(), "note": "x"}, "expected type"),
    ("wrong type", {**good(), "type": "rsa"}, "type must be"),
    ("seed not hex", {**good(), "seed": "zz" * 32}, "seed must be"),
    ("seed short", {**good(), "seed": "00" * 31}, "seed must be"),
    ("seed an int", {**good(), "seed": 5}, "seed must be"),
    ("key short", {**good(), "public_key": "00" * 16}, "public_key must be"),
    ("key mismatch", {**good(), "public_key": "00" * 32}, "does not match"),
    ("too large", b" " * 5000, "too large"),
    ("not utf-8", b"\xff\xfe\x00", "not JSON"),
]


@pytest.mark.parametrize(("what", "content", "fragment"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_key_file_is_refused(
    tmp_path: pathlib.Path, what: str, content: object, fragment: str
) -> None:
    path = tmp_path / "k.json"
    data = content if isinstance(content, bytes) else json.dumps(content).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, data)
    os.close(fd)
    with pytest.raises(KeyFileError) as err:
        load_signer(path)
    assert fragment in err.value.detail, (what, err.value.detail)
    assert err.value.path == path and "\n" not in str(err.value)


def test_missing_key_file(tmp_path: pathlib.Path) -> None:
    with pytest.raises(KeyFileError, match="cannot read"):
        load_signer(tmp_path / "absent.json")
