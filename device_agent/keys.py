"""The device key: a 32-byte Ed25519 seed in a file only its owner can read.

Rule kept here: the key file is created exclusively with mode 0600 and fsynced before it
is renamed into place, so a power cut leaves either no key or a whole one, and an existing
key is never overwritten. With a passphrase the seed is sealed with SecretBox under a key
derived by Argon2id (parameters stored in the file so they can be tuned per device).
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils

from device_agent.errors import KeyFileError
from node.ledger import crypto
from node.ledger.usage import possession_value

KEY_FILE_VERSION = 1
OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE  # 64 MiB: fits a 512 MB board


def _derive(passphrase: bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    key: bytes = nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE, passphrase, salt, opslimit=opslimit, memlimit=memlimit
    )
    return key


def encode_key_file(
    seed: bytes,
    passphrase: bytes | None,
    opslimit: int = OPSLIMIT,
    memlimit: int = MEMLIMIT,
) -> bytes:
    public_key = crypto.Signer(seed).public_key
    doc: dict[str, Any] = {"version": KEY_FILE_VERSION, "public_key": public_key.hex()}
    if passphrase is None:
        doc.update(encrypted=False, seed=seed.hex())
    else:
        salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
        box = nacl.secret.SecretBox(_derive(passphrase, salt, opslimit, memlimit))
        doc.update(
            encrypted=True,
            kdf="argon2id",
            salt=salt.hex(),
            opslimit=opslimit,
            memlimit=memlimit,
            box=bytes(box.encrypt(seed)).hex(),
        )
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()


def decode_key_file(data: bytes, passphrase: bytes | None) -> bytes:
    """The seed in a key file's bytes (raises KeyFileError with a clear reason)."""
    try:
        doc = json.loads(data)
        if doc.get("version") != KEY_FILE_VERSION:
            raise KeyFileError("bad_version", f"key file version {doc.get('version')!r}")
        if doc["encrypted"]:
            if passphrase is None:
                raise KeyFileError("passphrase_needed", "the key file is encrypted")
            key = _derive(
                passphrase, bytes.fromhex(doc["salt"]), int(doc["opslimit"]), int(doc["memlimit"])
            )
            seed = nacl.secret.SecretBox(key).decrypt(bytes.fromhex(doc["box"]))
        else:
            seed = bytes.fromhex(doc["seed"])
        public_key = bytes.fromhex(doc["public_key"])
    except nacl.exceptions.CryptoError as exc:
        raise KeyFileError("bad_passphrase", "wrong passphrase or damaged key file") from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KeyFileError("malformed", f"key file: {exc}") from exc
    if len(seed) != crypto.SEED_BYTES or crypto.Signer(seed).public_key != public_key:
        raise KeyFileError("mismatch", "the seed does not match the stored public key")
    return seed


def create_key_file(
    path: pathlib.Path,
    passphrase: bytes | None,
    opslimit: int = OPSLIMIT,
    memlimit: int = MEMLIMIT,
) -> crypto.Signer:
    """Create a new device key at `path` (0600); refuse to overwrite an existing one."""
    if path.exists():
        raise KeyFileError("exists", f"{path} already exists; refusing to overwrite a device key")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    seed = os.urandom(crypto.SEED_BYTES)
    data = encode_key_file(seed, passphrase, opslimit, memlimit)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # atomic, and fails if someone created `path` meanwhile
    except FileExistsError as exc:
        raise KeyFileError("exists", f"{path} already exists") from exc
    finally:
        os.unlink(tmp)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return crypto.Signer(seed)


def load_key_file(path: pathlib.Path, passphrase: bytes | None) -> crypto.Signer:
    try:
        mode = path.stat().st_mode & 0o777
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError("unreadable", f"{path}: {exc}") from exc
    if mode & 0o077:
        raise KeyFileError("insecure_mode", f"{path} has mode {mode:o}; run chmod 600 on it")
    return crypto.Signer(decode_key_file(data, passphrase))


def read_passphrase(path: pathlib.Path | None) -> bytes | None:
    """The passphrase from a file (systemd credential) or $ALPS_AGENT_PASSPHRASE, if any."""
    if path is not None:
        try:
            return path.read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise KeyFileError("unreadable", f"passphrase file {path}: {exc}") from exc
    env = os.environb.get(b"ALPS_AGENT_PASSPHRASE")
    return env if env else None


def enrolment_request(
    signer: crypto.Signer, chain_id: str, sku: str, licensee_public_key: bytes
) -> dict[str, str]:
    """The JSON the owning licensee signs and submits to enrol this device."""
    value = possession_value(signer.public_key, licensee_public_key)
    proof = signer.sign(crypto.DOMAIN_POSSESSION, chain_id, value)
    return {
        "device": signer.public_key.hex(),
        "licensee": licensee_public_key.hex(),
        "chain_id": chain_id,
        "sku": sku,
        "proof_of_possession": proof.hex(),
    }
