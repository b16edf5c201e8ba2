"""Device identity: key file 0600, never overwritten, optional passphrase sealing, and the
proof of possession bound to the licensee and the chain (node/ledger/usage.py)."""

from __future__ import annotations

import os
import pathlib

import nacl.pwhash
import pytest

from device_agent import keys
from device_agent.errors import KeyFileError
from node.ledger.usage import verify_possession
from tests.device_agent.helpers import CHAIN, LICENSEE

FAST = {
    "opslimit": nacl.pwhash.argon2id.OPSLIMIT_MIN,
    "memlimit": nacl.pwhash.argon2id.MEMLIMIT_MIN,
}


def test_key_file_is_private_and_never_overwritten(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "state" / "device.key"
    signer = keys.create_key_file(path, None)
    assert path.stat().st_mode & 0o777 == 0o600
    assert keys.load_key_file(path, None).public_key == signer.public_key
    with pytest.raises(KeyFileError, match="exists"):
        keys.create_key_file(path, None)
    assert keys.load_key_file(path, None).public_key == signer.public_key


def test_encrypted_key_needs_the_right_passphrase(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "device.key"
    signer = keys.create_key_file(path, b"correct horse", **FAST)
    assert signer.public_key.hex() in path.read_text()
    assert keys.load_key_file(path, b"correct horse").public_key == signer.public_key
    for passphrase, code in [(None, "passphrase_needed"), (b"wrong", "bad_passphrase")]:
        with pytest.raises(KeyFileError) as info:
            keys.load_key_file(path, passphrase)
        assert info.value.code == code


def test_readable_by_others_is_refused(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "device.key"
    keys.create_key_file(path, None)
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        keys.load_key_file(path, None)


@pytest.mark.parametrize("data", [b"", b"{}", b'{"version": 1, "encrypted": false}', b"\xff"])
def test_malformed_key_file(data: bytes) -> None:
    with pytest.raises(KeyFileError):
        keys.decode_key_file(data, None)


def test_seed_must_match_public_key() -> None:
    good = keys.encode_key_file(b"\x01" * 32, None).decode()
    tampered = good.replace("01" * 32, "02" * 32)
    with pytest.raises(KeyFileError, match="does not match"):
        keys.decode_key_file(tampered.encode(), None)


def test_proof_of_possession_binds_licensee_and_chain(tmp_path: pathlib.Path) -> None:
    signer = keys.create_key_file(tmp_path / "device.key", None)
    request = keys.enrolment_request(signer, CHAIN, "cam-1", LICENSEE.public_key)
    proof = bytes.fromhex(request["proof_of_possession"])
    device = bytes.fromhex(request["device"])
    assert device == signer.public_key and request["sku"] == "cam-1"
    assert verify_possession(device, LICENSEE.public_key, CHAIN, proof)
    assert not verify_possession(device, b"\x99" * 32, CHAIN, proof)  # another licensee
    assert not verify_possession(device, LICENSEE.public_key, "other-chain", proof)
    assert not verify_possession(LICENSEE.public_key, LICENSEE.public_key, CHAIN, proof)
    assert not verify_possession(device[:5], LICENSEE.public_key, CHAIN, proof)
