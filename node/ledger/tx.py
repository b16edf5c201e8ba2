"""The transaction envelope: who asks the ledger to do what, signed.

Rule kept here: the signature covers `signing_bytes(DOMAIN_TX, chain_id,
[tx_type, body, signer, nonce])`, so it binds the chain, the purpose (a transaction, not
a consensus vote or a usage record) and the transaction type. The transaction id is the
SHA-256 of those signed bytes, not of the signature, so a re-encoded or re-signed copy of
the same request has the same id (Ed25519 signatures are deterministic, but an id that
does not depend on them removes malleability from deduplication altogether).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from node.ledger import codec, crypto
from node.ledger.errors import SignatureError
from node.ledger.records import Record, require, require_bytes, require_uint

MAX_TX_BYTES = 64 * 1024
CHAIN_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
TX_TYPE_RE = re.compile(r"^[a-z][a-z0-9_.]{0,47}$")


def check_chain_id(chain_id: str) -> None:
    require(isinstance(chain_id, str) and bool(CHAIN_ID_RE.match(chain_id)), "bad chain_id")


@dataclass(frozen=True, slots=True)
class Transaction(Record):
    chain_id: str
    tx_type: str
    body: dict[str, Any]
    signer: bytes
    nonce: int
    signature: bytes
    # Caches (not fields of the record): a transaction's bytes, signed bytes and id are
    # needed by verification, execution, both Merkle roots and the store; compute once.
    _wire: bytes | None = field(default=None, init=False, repr=False, compare=False)
    _signed: bytes | None = field(default=None, init=False, repr=False, compare=False)
    _id: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_chain_id(self.chain_id)
        require(bool(TX_TYPE_RE.match(self.tx_type)), "bad tx_type")
        require(isinstance(self.body, dict), "body must be a map")
        require_bytes(self.signer, crypto.PUBLIC_KEY_BYTES, "signer")
        require_uint(self.nonce, "nonce")
        require_bytes(self.signature, crypto.SIGNATURE_BYTES, "signature")

    def signed_value(self) -> list[Any]:
        return [self.tx_type, self.body, self.signer, self.nonce]

    def signing_bytes(self) -> bytes:
        data = self._signed
        if data is None:
            data = crypto.signing_bytes(crypto.DOMAIN_TX, self.chain_id, self.signed_value())
            object.__setattr__(self, "_signed", data)
        return data

    @property
    def tx_id(self) -> bytes:
        tx_id = self._id
        if tx_id is None:
            tx_id = crypto.sha256(self.signing_bytes())
            object.__setattr__(self, "_id", tx_id)
        return tx_id

    def encode(self) -> bytes:
        data = self._wire
        if data is None:
            data = Record.encode(self)
            object.__setattr__(self, "_wire", data)
        return data

    def signature_valid(self) -> bool:
        return crypto.verify_raw(self.signer, self.signing_bytes(), self.signature)

    def check_signature(self) -> None:
        if not self.signature_valid():
            raise SignatureError("bad_signature", f"transaction {self.tx_id.hex()}")

    @classmethod
    def decode_tx(cls, data: bytes) -> Transaction:
        tx = cls.decode(data, max_bytes=MAX_TX_BYTES)
        object.__setattr__(tx, "_wire", bytes(data))  # strict decoding proved it canonical
        return tx


def make_tx(
    signer: crypto.Signer, chain_id: str, tx_type: str, body: dict[str, Any], nonce: int
) -> Transaction:
    """Build and sign a transaction (the body is normalised through the codec first)."""
    canonical_body = codec.decode(codec.encode(body))
    unsigned = [tx_type, canonical_body, signer.public_key, nonce]
    signature = signer.sign(crypto.DOMAIN_TX, chain_id, unsigned)
    tx = Transaction(chain_id, tx_type, canonical_body, signer.public_key, nonce, signature)
    if len(tx.encode()) > MAX_TX_BYTES:
        raise ValueError(f"transaction larger than {MAX_TX_BYTES} bytes")
    return tx
