"""Hashing and Ed25519 signatures with domain separation.

Rule kept here: every signature in ALPS is over `signing_bytes(domain, chain_id, value)`,
the canonical encoding of [domain, chain_id, value]. A signature made for one purpose
(a transaction, a PREPARE, a COMMIT, a usage record) or on one chain is therefore never
valid for another. Key generation needs randomness and lives in the shells; this module
only uses keys it is given (PyNaCl signing is deterministic).
"""

from __future__ import annotations

import hashlib
from typing import Any

from nacl.exceptions import BadSignatureError, CryptoError
from nacl.signing import SigningKey, VerifyKey

from node.ledger import codec
from node.ledger.errors import SignatureError

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
SEED_BYTES = 32
HASH_BYTES = 32

# Domain tags. Add new purposes here, never reuse one for two meanings.
DOMAIN_TX = "alps/tx/v1"
DOMAIN_COMMIT = "alps/commit/v1"
DOMAIN_CONSENSUS = "alps/consensus/v1"
DOMAIN_USAGE = "alps/usage/v1"
DOMAIN_POSSESSION = "alps/device-possession/v1"


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def signing_bytes(domain: str, chain_id: str, value: Any) -> bytes:
    return codec.encode([domain, chain_id, value])


def signing_prefix(domain: str) -> bytes:
    """What `signing_bytes(domain, chain_id, value)` starts with; the canonical encodings of
    chain_id and then value follow it (for callers that splice encodings they hold)."""
    return codec.array_header(3) + codec.encode(domain)


class Signer:
    """An Ed25519 key pair built from a 32-byte seed (the seed comes from the shell)."""

    __slots__ = ("_key", "public_key")

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, bytes) or len(seed) != SEED_BYTES:
            raise SignatureError("bad_seed", f"seed must be {SEED_BYTES} bytes")
        self._key = SigningKey(seed)
        self.public_key: bytes = bytes(self._key.verify_key)

    @property
    def seed(self) -> bytes:
        """The secret seed (the node's libp2p identity is derived from it)."""
        return bytes(self._key)

    def sign(self, domain: str, chain_id: str, value: Any) -> bytes:
        return self.sign_raw(signing_bytes(domain, chain_id, value))

    def sign_raw(self, message: bytes) -> bytes:
        signature: bytes = self._key.sign(message).signature
        return signature


def verify_raw(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True iff `signature` is a valid Ed25519 signature of `message` by `public_key`."""
    if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        VerifyKey(public_key).verify(message, signature)
    except (BadSignatureError, CryptoError, ValueError, TypeError):
        return False
    return True


def verify(public_key: bytes, signature: bytes, domain: str, chain_id: str, value: Any) -> bool:
    return verify_raw(public_key, signing_bytes(domain, chain_id, value), signature)
