"""Wire framing between validators: pure bytes in, batches out (no I/O).

A frame is a 4-byte big-endian body length followed by the body; the body is a batch,
the canonical msgpack encoding (`node.ledger.codec`) of a non-empty array of bin
messages. One frame carries every message the writer had queued, so the per-frame
cost of libp2p (muxer locks, window updates) is paid once for many messages.

Rule kept here: `FrameDecoder.feed` either yields complete, valid batches or raises
`FramingError` (oversized length, non-canonical or malformed body, an item that is not
bytes, an empty batch); it never raises anything else and never buffers more than one
frame's worth of bytes, so a hostile peer costs at most `frame_bytes_max` of memory
before its stream is reset.
"""

from __future__ import annotations

from collections.abc import Sequence

from node.ledger import codec
from node.ledger.errors import CodecError
from node.p2p.errors import FramingError

HEADER_BYTES = 4
FRAME_BYTES_MAX = codec.MAX_ENCODED_BYTES  # 4 MiB: the codec's own ceiling
MESSAGE_BYTES_MAX = codec.MAX_STR_BYTES  # 1 MiB: the codec's bin limit
BATCH_COUNT_MAX = 10_000  # well under codec.MAX_CONTAINER_LEN


def check_frame_limit(frame_bytes_max: int) -> int:
    """Validate a configured frame limit (header excluded) and return it."""
    if not 1 <= frame_bytes_max <= FRAME_BYTES_MAX:
        raise FramingError("bad_limit", f"frame_bytes_max must be in 1..{FRAME_BYTES_MAX}")
    return frame_bytes_max


def encode_frame(messages: Sequence[bytes], frame_bytes_max: int = FRAME_BYTES_MAX) -> bytes:
    """One frame carrying `messages` in order; FramingError if it cannot be sent."""
    if not messages:
        raise FramingError("empty_batch", "a frame carries at least one message")
    if len(messages) > BATCH_COUNT_MAX:
        raise FramingError("oversize", f"{len(messages)} messages exceed {BATCH_COUNT_MAX}")
    for message in messages:
        if not isinstance(message, bytes):
            raise FramingError("not_bin", f"message is {type(message).__name__}, not bytes")
    try:
        body = codec.encode(list(messages))
    except CodecError as exc:
        raise FramingError("oversize", exc.detail) from exc
    if len(body) > frame_bytes_max:
        raise FramingError("oversize", f"body of {len(body)} bytes exceeds {frame_bytes_max}")
    return len(body).to_bytes(HEADER_BYTES, "big") + body


def decode_batch(body: bytes, frame_bytes_max: int = FRAME_BYTES_MAX) -> list[bytes]:
    """The messages of one frame body; FramingError for anything but a canonical,
    non-empty array of bin values."""
    try:
        value = codec.decode(body, max_bytes=frame_bytes_max)
    except CodecError as exc:
        raise FramingError("malformed", f"{exc.code}: {exc.detail}") from exc
    if not isinstance(value, list):
        raise FramingError("not_batch", f"body is {type(value).__name__}, not an array")
    if not value:
        raise FramingError("empty_batch", "a frame carries at least one message")
    if len(value) > BATCH_COUNT_MAX:
        raise FramingError("oversize", f"{len(value)} messages exceed {BATCH_COUNT_MAX}")
    for item in value:
        if not isinstance(item, bytes):
            raise FramingError("not_bin", f"batch item is {type(item).__name__}, not bin")
    return value


class FrameDecoder:
    """Incremental decoder: feed it byte chunks as they arrive, get whole batches back.

    After a FramingError the decoder is poisoned: every later `feed` raises the same
    error, because the stream has lost frame alignment."""

    __slots__ = ("_buffer", "_error", "_frame_bytes_max", "_need")

    def __init__(self, frame_bytes_max: int = FRAME_BYTES_MAX) -> None:
        self._frame_bytes_max = check_frame_limit(frame_bytes_max)
        self._buffer = bytearray()
        self._need: int | None = None  # body length once the header is read
        self._error: FramingError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held that do not yet make a whole frame."""
        return len(self._buffer)

    def feed(self, chunk: bytes) -> list[list[bytes]]:
        """Add `chunk`; return every batch it completes, oldest first."""
        if self._error is not None:
            raise self._error
        self._buffer += chunk
        batches: list[list[bytes]] = []
        try:
            while True:
                batch = self._next()
                if batch is None:
                    return batches
                batches.append(batch)
        except FramingError as exc:
            self._error = exc
            self._buffer = bytearray()
            raise

    def _next(self) -> list[bytes] | None:
        if self._need is None:
            if len(self._buffer) < HEADER_BYTES:
                return None
            length = int.from_bytes(self._buffer[:HEADER_BYTES], "big")
            if length == 0:
                raise FramingError("empty_frame", "frame length is zero")
            if length > self._frame_bytes_max:
                raise FramingError(
                    "oversize", f"frame of {length} bytes exceeds {self._frame_bytes_max}"
                )
            del self._buffer[:HEADER_BYTES]
            self._need = length
        if len(self._buffer) < self._need:
            return None
        body = bytes(self._buffer[: self._need])
        del self._buffer[: self._need]
        self._need = None
        return decode_batch(body, self._frame_bytes_max)
