"""A validator seed is its libp2p identity, and peer IDs give back the validator key."""

from __future__ import annotations

import pytest
from libp2p.crypto.secp256k1 import create_new_key_pair as new_secp256k1
from libp2p.peer.id import ID
from nacl.signing import SigningKey

from node.p2p.errors import IdentityError
from node.p2p.identity import key_pair_of, peer_id_of, pubkey_bytes, pubkey_of


def test_seed_gives_the_pynacl_key_and_a_stable_peer_id() -> None:
    seed = bytes(range(32))
    pub = pubkey_bytes(key_pair_of(seed))
    assert pub == bytes(SigningKey(seed).verify_key)
    assert ID.from_pubkey(key_pair_of(seed).public_key) == peer_id_of(pub)
    assert peer_id_of(pub) == peer_id_of(pubkey_bytes(key_pair_of(seed)))
    assert pubkey_of(peer_id_of(pub)) == pub


def test_distinct_seeds_give_distinct_peer_ids() -> None:
    ids = {peer_id_of(pubkey_bytes(key_pair_of(bytes([i]) * 32))) for i in range(20)}
    assert len(ids) == 20


def test_peer_id_survives_its_text_form() -> None:
    pub = pubkey_bytes(key_pair_of(b"\x07" * 32))
    assert pubkey_of(ID.from_base58(str(peer_id_of(pub)))) == pub


@pytest.mark.parametrize("seed", [b"", b"\x01" * 31, b"\x01" * 33, "x" * 32])
def test_bad_seed_is_refused(seed: object) -> None:
    with pytest.raises(IdentityError):
        key_pair_of(seed)  # type: ignore[arg-type]


@pytest.mark.parametrize("pub", [b"", b"\x01" * 31, b"\x01" * 64])
def test_bad_pubkey_is_refused(pub: bytes) -> None:
    with pytest.raises(IdentityError):
        peer_id_of(pub)


def test_non_ed25519_peer_ids_have_no_validator_key() -> None:
    secp = ID.from_pubkey(new_secp256k1().public_key)
    with pytest.raises(IdentityError):
        pubkey_of(secp)
    hashed = ID.from_base58("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N")
    with pytest.raises(IdentityError):
        pubkey_of(hashed)
