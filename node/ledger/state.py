"""State digest and the write overlay that state transitions run against.

Rule kept here: every replica derives the same 32-byte state digest from the same
key/value state, and updating it costs work proportional to the keys a block changed,
not to the size of the state.

The digest is an additive multiset hash (Bellare-Micciancio AdHash): each (key, value)
pair maps to a 4096-bit element via SHAKE-256, the accumulator is their sum modulo
2**4096, and the digest is SHA-256 of the accumulator. Changing a key subtracts its old
element and adds the new one. With a 4096-bit modulus the best known attack (Wagner's
generalised birthday) costs about 2**128 work. The accumulator is stored with the state
(512 bytes), so restarting needs no full rescan. The elements of values recently written
are remembered, since a value one block writes is the old value a later block subtracts.
Inclusion proofs for state values will need a separate authenticated structure; the
digest does not preclude adding one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from node.ledger.errors import LedgerError

ACC_BITS = 4096
ACC_BYTES = ACC_BITS // 8
_MOD = 1 << ACC_BITS
_TAG = b"alps/state/v1"
MAX_KEY_BYTES = 256
MAX_VALUE_BYTES = 1024 * 1024


def element(key: bytes, value: bytes) -> int:
    h = hashlib.shake_256(_TAG + len(key).to_bytes(2, "big") + key + value)
    return int.from_bytes(h.digest(ACC_BYTES), "big")


class _Elements:
    """`element` remembered for the values recent blocks wrote: a value one block writes is
    the old value a later block subtracts (a device's record, a block's accrual).

    A memo of a pure function (the digest cannot depend on it). Bounded: two generations
    of at most MAX_ENTRIES pairs, values over MAX_VALUE_BYTES are not remembered; a
    generation change is one assignment, so concurrent callers at worst recompute.
    """

    __slots__ = ("_old", "_young")
    MAX_ENTRIES = 4096
    MAX_VALUE_BYTES = 4096

    def __init__(self) -> None:
        self._young: dict[tuple[bytes, bytes], int] = {}
        self._old: dict[tuple[bytes, bytes], int] = {}

    def written(self, key: bytes, value: bytes) -> int:
        """`element(key, value)` for a value being written: computed and remembered."""
        found = element(key, value)
        if len(value) <= self.MAX_VALUE_BYTES:
            young = self._young
            if len(young) >= self.MAX_ENTRIES:
                self._old = young
                self._young = young = {}
            young[(key, value)] = found
        return found

    def replaced(self, key: bytes, value: bytes) -> int:
        """`element(key, value)` for a value being replaced or deleted: remembered if it
        was written recently, else computed."""
        pair = (key, value)
        found = self._young.get(pair)
        if found is None:
            found = self._old.get(pair)
            if found is None:
                found = element(key, value)
        return found


_ELEMENTS = _Elements()


@dataclass(frozen=True, slots=True)
class StateAccumulator:
    """The AdHash accumulator; immutable, `apply` returns a new one."""

    value: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.value < _MOD:
            raise ValueError("accumulator out of range")

    def apply(self, changes: Mapping[bytes, tuple[bytes | None, bytes | None]]) -> StateAccumulator:
        """Fold in {key: (old value or None, new value or None)}."""
        acc = self.value
        replaced, written = _ELEMENTS.replaced, _ELEMENTS.written
        for key, (old, new) in changes.items():
            if old is not None:
                acc -= replaced(key, old)
            if new is not None:
                acc += written(key, new)
        return StateAccumulator(acc % _MOD)

    def digest(self) -> bytes:
        return hashlib.sha256(b"alps/state-digest/v1" + self.to_bytes()).digest()

    def to_bytes(self) -> bytes:
        return self.value.to_bytes(ACC_BYTES, "big")

    @classmethod
    def from_bytes(cls, data: bytes) -> StateAccumulator:
        if len(data) != ACC_BYTES:
            raise LedgerError("bad_accumulator", f"expected {ACC_BYTES} bytes")
        return cls(int.from_bytes(data, "big"))


def digest_of(state: Mapping[bytes, bytes]) -> bytes:
    """Digest of a whole state computed from scratch (for checks and tests)."""
    return StateAccumulator().apply({k: (None, v) for k, v in state.items()}).digest()


class StateReader(Protocol):
    def get(self, key: bytes) -> bytes | None: ...


class Encodable(Protocol):
    def encode(self) -> bytes: ...


class Pending:
    """A value written to an overlay but not encoded yet (write-back): its bytes are
    computed on the first raw read (`Overlay.get`, `changes()`, a scan), once.

    Whoever writes one vouches that encoding it cannot fail and gives at most
    MAX_VALUE_BYTES (so deferring it changes no outcome), and that the value is the
    one decoding those bytes would give (so reading it back typed needs no bytes).
    A value that the next transaction replaces is thus never encoded at all.
    """

    __slots__ = ("_raw", "value")

    def __init__(self, value: Encodable) -> None:
        self.value = value
        self._raw: bytes | None = None

    def encode(self) -> bytes:
        raw = self._raw
        if raw is None:
            raw = self._raw = self.value.encode()
        return raw


class Overlay:
    """Reads through to a committed state; buffers writes; yields the write set.

    Transactions run against an overlay; a rejected transaction's overlay is discarded,
    so it changes nothing. `child()` gives a nested overlay for that purpose. A write may
    be `Pending` (encoded when first read as bytes); every read of bytes gets bytes.
    """

    __slots__ = ("_base", "_writes")

    def __init__(self, base: StateReader) -> None:
        self._base = base
        self._writes: dict[bytes, bytes | Pending | None] = {}

    def get(self, key: bytes) -> bytes | None:
        if key in self._writes:
            value = self._writes[key]
            return value.encode() if isinstance(value, Pending) else value
        return self._base.get(key)

    def lookup(self, key: bytes) -> bytes | Pending | None:
        """What `get` answers, except that a pending value is returned unencoded."""
        overlay = self
        while key not in overlay._writes:
            base = overlay._base
            if not isinstance(base, Overlay):
                return base.get(key)
            overlay = base
        return overlay._writes[key]

    def put(self, key: bytes, value: bytes) -> None:
        if len(key) > MAX_KEY_BYTES or len(value) > MAX_VALUE_BYTES:
            raise LedgerError("state_limit", "state key or value too large")
        self._writes[key] = value

    def put_pending(self, key: bytes, value: Pending) -> None:
        """Write `value` unencoded; its writer vouches for it (see `Pending`)."""
        if len(key) > MAX_KEY_BYTES:
            raise LedgerError("state_limit", "state key or value too large")
        self._writes[key] = value

    def delete(self, key: bytes) -> None:
        self._writes[key] = None

    def child(self) -> Overlay:
        return Overlay(self)

    def merge_into_parent(self) -> None:
        """Apply this overlay's writes to its base, which must be an Overlay."""
        if not isinstance(self._base, Overlay):
            raise TypeError("base is not an overlay")
        self._base._writes.update(self._writes)

    def changes(self) -> dict[bytes, tuple[bytes | None, bytes | None]]:
        """{key: (committed value, new value)} for keys whose value really changed, sorted."""
        out = {}
        for key in sorted(self._writes):
            written = self._writes[key]
            new = written.encode() if isinstance(written, Pending) else written
            old = self._base.get(key)
            if old != new:
                out[key] = (old, new)
        return out

    def __iter__(self) -> Iterator[bytes]:
        return iter(sorted(self._writes))
