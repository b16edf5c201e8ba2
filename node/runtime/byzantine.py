"""TEST ONLY: a hostile outbound path for fault injection (`make chaos`, tests/chaos/).

A node started with the environment variable `ALPS_BYZANTINE` wraps its peer network in
`ByzantineNetwork`, which rewrites what the honest driver sends. Nothing else changes:
the node still executes and stores blocks honestly; only its messages lie. Without the
variable `wrap` returns the network unchanged, so production nodes never run this code.

`ALPS_BYZANTINE=<mode>` lies from the start; `ALPS_BYZANTINE=file:<path>` starts honest
and, on each SIGUSR1, takes its mode from the file (empty: honest again), so a chaos
controller can turn whichever node is primary right now into a Byzantine one. Modes:

- `equivocate`: as primary, every PRE-PREPARE goes to half the peers with a conflicting,
  equally valid block (same transactions, timestamp + 1 ms, so a different hash) signed
  with the node's own key; every PREPARE/COMMIT is accompanied by a conflicting vote for a
  digest nobody proposed.
- `garbage`: alongside (sometimes instead of) real messages, sends random bytes, unknown
  message kinds, bit-flipped and truncated copies of real messages and bad transaction
  batches.

Rule kept here: the node only ever signs with its own key (a Byzantine node cannot forge
others); the randomness is seeded from `ALPS_BYZANTINE_SEED` so a chaos run can replay it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
import random
import signal
from collections.abc import Mapping

from consensus.messages import (
    COMMIT,
    PRE_PREPARE,
    PREPARE,
    Commit,
    Envelope,
    Prepare,
    PrePrepare,
    body_of,
    seal,
)
from node.ledger import codec, crypto
from node.ledger.block import Block
from node.ledger.errors import LedgerError
from node.runtime.interface import PeerNetwork

ENV_MODE = "ALPS_BYZANTINE"
ENV_SEED = "ALPS_BYZANTINE_SEED"
MODES = ("equivocate", "garbage")
MSG_CONSENSUS = 0x01  # node.runtime.driver's message kinds (not imported: no cycle)
MSG_TXS = 0x02

log = logging.getLogger("alps.node")


class ByzantineNetwork:
    """A `PeerNetwork` that forwards to `inner` after rewriting outbound messages."""

    def __init__(
        self,
        inner: PeerNetwork,
        mode: str,
        signer: crypto.Signer,
        chain_id: str,
        seed: int,
        control: pathlib.Path | None = None,
    ) -> None:
        self.inner = inner
        self.signer = signer
        self.chain_id = chain_id
        self.rng = random.Random(seed)
        self.control = control
        self.sent_lies = 0
        self._reload = False
        self.mode = ""
        self._set_mode(mode)

    def _set_mode(self, mode: str) -> None:
        if mode and mode not in MODES:
            raise ValueError(f"{ENV_MODE} mode must be one of {MODES}, got {mode!r}")
        if mode != self.mode:
            log.warning("BYZANTINE TEST MODE", extra={"mode": mode or "honest"})
        self.mode = mode

    def request_reload(self) -> None:
        """Signal-safe: the next send re-reads the control file."""
        self._reload = True

    def _read_control(self) -> None:
        self._reload = False
        assert self.control is not None
        try:
            mode = self.control.read_text().strip()
            self._set_mode(mode)
        except (OSError, ValueError) as exc:
            log.warning("bad byzantine control file", extra={"error": repr(exc)})

    # -- PeerNetwork ---------------------------------------------------------------------

    def send(self, peer: bytes, data: bytes) -> bool:
        if self._reload:
            self._read_control()
        if not self.mode:
            return self.inner.send(peer, data)
        out = self._equivocate(peer, data) if self.mode == "equivocate" else self._garbage(data)
        ok = True
        for item in out:
            ok = self.inner.send(peer, item) and ok
        return ok

    def set_peers(self, peers: Mapping[bytes, str]) -> None:
        self.inner.set_peers(peers)

    def connected(self) -> list[bytes]:
        return self.inner.connected()

    # -- lies ----------------------------------------------------------------------------

    def _seal(self, body: PrePrepare | Prepare | Commit, payload: bytes = b"") -> bytes:
        env = seal(self.chain_id, self.signer.public_key, self.signer.sign_raw, body, payload)
        self.sent_lies += 1
        return bytes([MSG_CONSENSUS]) + codec.encode(env.to_value())

    def _equivocate(self, peer: bytes, data: bytes) -> list[bytes]:
        if not data or data[0] != MSG_CONSENSUS:
            return [data]
        try:
            env = Envelope.from_value(codec.decode(data[1:]))
            body = body_of(env)
        except (LedgerError, TypeError, ValueError):
            return [data]
        if env.kind == PRE_PREPARE and env.payload and peer[0] % 2 == 1:
            assert isinstance(body, PrePrepare)
            try:
                block = Block.decode(env.payload)
            except LedgerError:
                return [data]
            header = dataclasses.replace(block.header, timestamp_ms=block.header.timestamp_ms + 1)
            other = Block(header, block.txs)
            return [self._seal(PrePrepare(body.view, body.seq, other.hash()), other.encode())]
        if env.kind in (PREPARE, COMMIT):
            assert isinstance(body, Prepare | Commit)
            fake = crypto.sha256(b"alps/byzantine/vote" + peer + body.digest)
            lie = self._seal(type(body)(body.view, body.seq, fake))
            return [lie, data] if self.rng.random() < 0.5 else [data, lie]
        return [data]

    def _garbage(self, data: bytes) -> list[bytes]:
        rng = self.rng
        roll = rng.random()
        if roll < 0.5:
            return [data]
        self.sent_lies += 1
        junk: bytes
        choice = rng.randrange(6)
        if choice == 0:
            junk = rng.randbytes(rng.randrange(0, 2048))
        elif choice == 1:
            junk = bytes([rng.randrange(3, 256)]) + rng.randbytes(rng.randrange(0, 64))
        elif choice == 2 and len(data) > 1:
            flipped = bytearray(data)
            i = rng.randrange(1, len(flipped))
            flipped[i] ^= 1 << rng.randrange(8)
            junk = bytes(flipped)
        elif choice == 3 and len(data) > 2:
            junk = data[: rng.randrange(1, len(data))]
        elif choice == 4:
            junk = bytes([MSG_TXS]) + codec.encode([rng.randbytes(rng.randrange(0, 300))])
        else:
            junk = bytes([MSG_CONSENSUS]) + codec.encode(
                {"kind": PRE_PREPARE, "body": rng.randbytes(40), "payload": rng.randbytes(100)}
            )
        return [junk] if roll > 0.9 else [junk, data]


def wrap(net: PeerNetwork, signer: crypto.Signer, chain_id: str) -> PeerNetwork:
    """`net` itself unless `ALPS_BYZANTINE` is set (test-only; see the module docstring)."""
    spec = os.environ.get(ENV_MODE, "")
    if not spec:
        return net
    seed = int(os.environ.get(ENV_SEED, "0"))
    if not spec.startswith("file:"):
        return ByzantineNetwork(net, spec, signer, chain_id, seed)
    byz = ByzantineNetwork(net, "", signer, chain_id, seed, pathlib.Path(spec[len("file:") :]))
    signal.signal(signal.SIGUSR1, lambda _signum, _frame: byz.request_reload())
    log.warning("BYZANTINE TEST HOOK armed (honest until SIGUSR1)", extra={"control": spec})
    return byz
