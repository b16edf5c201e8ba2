"""The seams between the node's shells: what the driver offers the HTTP API
(`NodeControl`) and what the driver needs from the peer network (`PeerNetwork`).

Rule kept here: these are the only calls that cross between `node/runtime` (the driver),
`node/api` (HTTP) and `node/p2p` (libp2p), so each side can be built and tested against a
twin of the other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from node.ledger.tx import Transaction
from node.store.chain import ChainStore

SubmitStatus = Literal["pending", "committed", "rejected"]


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """One transaction's answer to a submission (docs/api.md `POST /v1/txs`)."""

    tx_id: bytes
    status: SubmitStatus
    code: str  # "ok" or a stable rejection code
    detail: str = ""
    height: int | None = None  # where it committed, when status == "committed"


class MempoolFull(Exception):
    """Nothing in the batch was taken; the client should retry after `retry_after_s`."""

    def __init__(self, retry_after_s: int = 1) -> None:
        super().__init__(f"mempool full; retry after {retry_after_s}s")
        self.retry_after_s = retry_after_s


class NodeControl(Protocol):
    """What the HTTP API may ask of a running node. All methods run in the node's trio
    loop; none blocks for long (reads are single LevelDB gets)."""

    @property
    def chain_id(self) -> str: ...

    @property
    def store(self) -> ChainStore:
        """Read-only use: blocks, receipts, certificates, state, tx index."""
        ...

    async def submit(self, txs: Sequence[Transaction]) -> list[SubmitResult]:
        """Signature and stateless checks, dedup, then into the mempool. Raises MempoolFull
        when the batch does not fit (nothing taken)."""
        ...

    def is_pending(self, tx_id: bytes) -> bool: ...

    async def wait_committed(self, tx_id: bytes, timeout_s: float) -> int | None:
        """The height once `tx_id` is committed, or None at the timeout."""
        ...

    async def wait_height(self, height: int, timeout_s: float) -> bool:
        """True once block `height` is stored here, False at the timeout."""
        ...

    def status(self) -> dict[str, object]:
        """chain_id, height, view, primary, validators (hex), peers (hex, connected),
        mempool (size), mempool_max, syncing (bool), genesis_hash (hex)."""
        ...

    def metrics_text(self) -> bytes:
        """Prometheus exposition text (height, view, peers, mempool, commit latency)."""
        ...


class PeerNetwork(Protocol):
    """Validator-to-validator messaging over long-lived direct streams.

    `send` never blocks: it enqueues into the peer's bounded queue and returns False when
    the message was dropped (queue full, unknown or disallowed peer); PBFT retransmits.
    Received messages arrive on the network's inbound channel as (sender public key,
    data); the sender is authenticated by the transport and is always an allowed key."""

    def send(self, peer: bytes, data: bytes) -> bool: ...

    def set_peers(self, peers: Mapping[bytes, str]) -> None:
        """Replace the allow-list and the dial addresses: validator public key ->
        multiaddr (e.g. "/ip4/127.0.0.1/tcp/27001"). Disallowed peers are disconnected."""
        ...

    def connected(self) -> list[bytes]: ...
