"""The transaction envelope: who asks the ledger to do what, signed.

Rule kept here: the signature covers `signing_bytes(DOMAIN_TX, chain_id,
[tx_type, body, signer, nonce])`, so it binds the chain, the purpose (a transaction, not
a consensus vote or a usage record) and the transaction type. The transaction id is the
SHA-256 of those signed bytes, not of the signature, so a re-encoded or re-signed copy of
the same request has the same id (Ed25519 signatures are deterministic, but an id that
does not depend on them removes malleability from deduplication altogether).

Decoding is every node's hot path (each transaction a peer forwards or a client submits),
so `decode_tx` first tries `decode_tx_fast`: one lenient msgpack read, exact field types
and the constructor's checks, the body's canonical encoding (codec.plain_encoding), and the
wire rebuilt from those encodings must equal the input byte for byte. The signed bytes are
spliced from the same encodings, so the id needs no re-encoding. Whatever the fast path does
not vouch for (a body nested too deep to be signed included) goes to the strict
`Record.decode`, which alone decides rejections: the fast path only makes accepting cheaper.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from node.ledger import codec, crypto
from node.ledger.errors import SignatureError
from node.ledger.records import Record, require, require_bytes, require_uint

MAX_TX_BYTES = 64 * 1024
# A transaction always travels two levels down (a block's or a submission's `txs` list),
# so one nested too deep to fit there is refused wherever it is decoded: otherwise a
# node could accept alone (mempool, a proposal decoded per transaction) what a block
# decoded whole refuses, and its signed bytes (body one level deeper) may not encode.
TX_NESTING = 2
CHAIN_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
TX_TYPE_RE = re.compile(r"^[a-z][a-z0-9_.]{0,47}$")


def check_chain_id(chain_id: str) -> None:
    require(isinstance(chain_id, str) and bool(CHAIN_ID_RE.match(chain_id)), "bad chain_id")


_NAMES: dict[tuple[str, str], tuple[bytes, bytes]] = {}
_NAMES_MAX = 256


def _encoded_names(chain_id: str, tx_type: str) -> tuple[bytes, bytes] | None:
    """The canonical encodings of a valid chain id and transaction type, else None.
    Memoised for valid names only (short, by the patterns): a chain has one id and a few
    types; the memo starts over when full, so garbage can neither fill nor pin it."""
    key = (chain_id, tx_type)
    names = _NAMES.get(key)
    if names is None and CHAIN_ID_RE.match(chain_id) and TX_TYPE_RE.match(tx_type):
        names = codec.encode(chain_id), codec.encode(tx_type)
        if len(_NAMES) >= _NAMES_MAX:
            _NAMES.clear()
        _NAMES[key] = names
    return names


_KEY_BYTES = crypto.PUBLIC_KEY_BYTES
_SIG_BYTES = crypto.SIGNATURE_BYTES
_INT_MAX = codec.INT_MAX


def _plainly_valid(
    chain_id: Any, tx_type: Any, body: Any, signer: Any, nonce: Any, signature: Any
) -> tuple[bytes, bytes] | None:
    """The encodings of chain_id and tx_type if the fields have exact types and pass every
    check of `Transaction.__post_init__`; None only means "check them in detail"."""
    if (
        type(chain_id) is str
        and type(tx_type) is str
        and type(body) is dict
        and type(signer) is bytes
        and len(signer) == _KEY_BYTES
        and type(nonce) is int
        and 0 <= nonce <= _INT_MAX
        and type(signature) is bytes
        and len(signature) == _SIG_BYTES
    ):
        return _NAMES.get((chain_id, tx_type)) or _encoded_names(chain_id, tx_type)
    return None


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
        fields = (self.chain_id, self.tx_type, self.body, self.signer, self.nonce, self.signature)
        if _plainly_valid(*fields) is None:
            self._check_fields()

    def _check_fields(self) -> None:
        """The checks one by one, raising ValueError (or TypeError) for the first failing."""
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
        """Strictly decode a transaction that fits in a block (see TX_NESTING); raises a
        LedgerError (CodecError "too_deep" for one nested too deep)."""
        tx = decode_tx_fast(data, TX_NESTING)
        if tx is None:
            tx = cls.decode(data, max_bytes=MAX_TX_BYTES)
            codec.encode([[tx.to_value()]])  # raises too_deep unless it fits TX_NESTING down
            object.__setattr__(tx, "_wire", bytes(data))  # strict decoding proved it canonical
            _ = tx.tx_id  # now always computable; computed once
        return tx


_FIELDS = ("chain_id", "tx_type", "body", "signer", "nonce", "signature", "_wire", "_signed", "_id")
# The wire is a map of the record's fields; these are its keys in canonical order.
_WIRE_KEYS = ("body", "chain_id", "nonce", "signature", "signer", "tx_type")
if tuple(f.name for f in dataclasses.fields(Transaction)) != _FIELDS or _WIRE_KEYS != tuple(
    sorted(_FIELDS[:6], key=str.encode)
):
    raise TypeError("Transaction's fields changed: update decode_tx_fast")

# Every slot is set through its descriptor: a frozen dataclass's __init__ costs twice that,
# and decode_tx_fast has already made every check __post_init__ makes.
_new: Callable[[type[Transaction]], Transaction] = object.__new__
_setters: list[Callable[[Transaction, Any], None]] = [
    Transaction.__dict__[name].__set__ for name in _FIELDS
]
_set_chain_id, _set_tx_type, _set_body, _set_signer, _set_nonce, _set_signature = _setters[:6]
_set_wire, _set_signed, _set_id = _setters[6:]

# The fixed bytes of the wire, before each value, and of the signed bytes (see signing_bytes).
_K_BODY, _K_CHAIN, _K_NONCE, _K_SIGNATURE, _K_SIGNER, _K_TYPE = [
    codec.encode(k) for k in _WIRE_KEYS
]
_K_BODY = codec.map_header(len(_WIRE_KEYS)) + _K_BODY
_SIGNATURE_HEADER = codec.encode(bytes(_SIG_BYTES))[:-_SIG_BYTES]
_SIGNER_HEADER = codec.encode(bytes(_KEY_BYTES))[:-_KEY_BYTES]
_SIGNED_PREFIX = crypto.signing_prefix(crypto.DOMAIN_TX)
_SIGNED_VALUE_HEADER = codec.array_header(4)  # [tx_type, body, signer, nonce]


def decode_tx_fast(data: bytes, depth: int = 0) -> Transaction | None:
    """`Transaction.decode_tx(data)`, with the signed bytes cached too, if the fast path
    alone vouches for `data`; else None, which rejects nothing (decode_tx decides).

    `depth` is how deep the transaction sits in the value being decoded: 0 alone, 2 as an
    item of a block's or a submission's `txs` (its body must fit MAX_DEPTH there too).
    """
    if type(data) is not bytes or len(data) > MAX_TX_BYTES:
        return None
    wire = codec.loose_map(data)
    if wire is None or tuple(wire) != _WIRE_KEYS:
        return None
    body, chain_id, nonce, signature, signer, tx_type = wire.values()
    names = _plainly_valid(chain_id, tx_type, body, signer, nonce, signature)
    if names is None:
        return None
    # The body sits depth + 1 deep in the value being decoded, and 2 deep in the signed bytes.
    body_enc = codec.plain_encoding(body, max(depth + 1, 2))
    nonce_enc = codec.plain_encoding(nonce)
    if body_enc is None or nonce_enc is None:
        return None
    chain_enc, type_enc = names
    rebuilt = b"".join(
        (
            _K_BODY,
            body_enc,
            _K_CHAIN,
            chain_enc,
            _K_NONCE,
            nonce_enc,
            _K_SIGNATURE,
            _SIGNATURE_HEADER,
            signature,
            _K_SIGNER,
            _SIGNER_HEADER,
            signer,
            _K_TYPE,
            type_enc,
        )
    )
    if rebuilt != data:
        return None
    signed = b"".join(
        (
            _SIGNED_PREFIX,
            chain_enc,
            _SIGNED_VALUE_HEADER,
            type_enc,
            body_enc,
            _SIGNER_HEADER,
            signer,
            nonce_enc,
        )
    )
    tx = _new(Transaction)
    _set_chain_id(tx, chain_id)
    _set_tx_type(tx, tx_type)
    _set_body(tx, body)
    _set_signer(tx, signer)
    _set_nonce(tx, nonce)
    _set_signature(tx, signature)
    _set_wire(tx, data)
    _set_signed(tx, signed)
    _set_id(tx, None)
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
