"""Counters of a peer network, and the frozen snapshot `stats()` hands out (for the
status endpoint and Prometheus). Counts only grow; a snapshot never changes after."""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass(slots=True)
class PeerCounters:
    """Live per-peer counters, mutated by one network only."""

    queued: int = 0  # messages accepted by send()
    dropped: int = 0  # refused by send(): queue full or message too large
    sent: int = 0  # messages written to the peer's stream
    lost: int = 0  # taken from the queue, but the write failed (stream died)
    frames: int = 0  # frames written (one libp2p write each)
    bytes: int = 0  # frame bytes written, headers included
    received: int = 0  # messages from this peer put on the inbound channel
    reconnects: int = 0  # outbound streams opened after the first

    def snapshot(self, connected: bool) -> PeerStats:
        return PeerStats(
            connected=connected, **{f.name: getattr(self, f.name) for f in fields(self)}
        )


@dataclass(frozen=True, slots=True)
class PeerStats:
    connected: bool
    queued: int
    dropped: int
    sent: int
    lost: int
    frames: int
    bytes: int
    received: int
    reconnects: int

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "connected" and (not isinstance(value, int) or value < 0):
                raise ValueError(f"{f.name} must be a non-negative int")

    @property
    def messages_per_frame(self) -> float:
        return self.sent / self.frames if self.frames else 0.0


@dataclass(frozen=True, slots=True)
class NetworkStats:
    peers: dict[bytes, PeerStats] = field(default_factory=dict)
    inbound_dropped: int = 0  # messages dropped because `.inbound` was full
    refused: int = 0  # connections or streams from keys not in the allow-list
    framing_errors: int = 0  # inbound streams reset for bad frames
    unknown_peer: int = 0  # send() to a key not in the allow-list
