"""A fast deterministic stand-in for Ed25519, used for most random seeds.

A "signature" is SHA-512(public_key || message): unforgeable by our Byzantine behaviours
(they never compute it for keys they do not hold) and ~100x cheaper than Ed25519 verify.
Scripted scenarios and a share of seeds use the real `node.ledger.crypto.Signer`.
"""

from __future__ import annotations

import hashlib


class FakeSigner:
    __slots__ = ("public_key",)

    def __init__(self, seed: bytes) -> None:
        self.public_key = hashlib.sha256(b"fake-pk" + seed).digest()

    def sign_raw(self, message: bytes) -> bytes:
        return hashlib.sha512(self.public_key + message).digest()


def fake_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    return hashlib.sha512(public_key + message).digest() == signature
