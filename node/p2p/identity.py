"""A validator's Ed25519 key is its libp2p identity.

The 32-byte seed gives the libp2p key pair (the same seed always gives the same peer
ID), and an Ed25519 peer ID embeds the public key (identity multihash of the protobuf
key), so peer ID <-> validator public key converts both ways without a lookup table.

Rule kept here: only Ed25519 identities are accepted; anything else (RSA, secp256k1,
hashed peer IDs, wrong lengths) raises `IdentityError`, so a connection from a peer
whose key cannot be read as a validator key is never mistaken for one.
"""

from __future__ import annotations

from libp2p.crypto.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from libp2p.crypto.keys import KeyPair
from libp2p.peer.id import ID

from node.p2p.errors import IdentityError

SEED_BYTES = 32
PUBKEY_BYTES = 32


def key_pair_of(seed: bytes) -> KeyPair:
    """The libp2p Ed25519 key pair of a validator's 32-byte signing seed."""
    if not isinstance(seed, bytes) or len(seed) != SEED_BYTES:
        raise IdentityError("bad_seed", f"seed must be {SEED_BYTES} bytes")
    private = Ed25519PrivateKey.from_bytes(seed)
    return KeyPair(private, private.get_public_key())


def pubkey_bytes(key_pair: KeyPair) -> bytes:
    """The raw 32-byte public key (equal to PyNaCl's VerifyKey bytes)."""
    return bytes(key_pair.public_key.to_bytes())


def peer_id_of(pubkey: bytes) -> ID:
    """The libp2p peer ID of a validator public key."""
    if not isinstance(pubkey, bytes) or len(pubkey) != PUBKEY_BYTES:
        raise IdentityError("bad_pubkey", f"public key must be {PUBKEY_BYTES} bytes")
    try:
        key = Ed25519PublicKey.from_bytes(pubkey)
    except Exception as exc:  # PyNaCl raises its own types for bad points
        raise IdentityError("bad_pubkey", str(exc)) from exc
    return ID.from_pubkey(key)


def pubkey_of(peer_id: ID) -> bytes:
    """The validator public key embedded in an Ed25519 peer ID."""
    key = peer_id.extract_public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise IdentityError("not_ed25519", f"peer {peer_id} has no embedded Ed25519 key")
    raw = bytes(key.to_bytes())
    if len(raw) != PUBKEY_BYTES:
        raise IdentityError("bad_pubkey", f"embedded key is {len(raw)} bytes")
    return raw
