"""A cluster of real replicas over the simulated network, with the checkers.

Each `Node` is the imperative shell in miniature: it applies every `Ready` in field order
(persist hard state, send, validate, execute, report, serve), keeps a durable ledger of
committed blocks with certificates, and a mempool of submitted requests. The checkers
(agreement, validity, equal state digests, certificates, replica invariants) run after
every event; `SimFailure` carries the seed so the run can be replayed.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from consensus import (
    Committed,
    Config,
    Executed,
    FetchedBlock,
    ProposalVerdict,
    Propose,
    Ready,
    Receive,
    Replica,
    ServeBlocks,
    Tick,
)
from consensus.messages import (
    COMMIT,
    NULL_DIGEST,
    PRE_PREPARE,
    PREPARE,
    Commit,
    Envelope,
    Prepare,
    PrePrepare,
    body_of,
)
from node.ledger import codec, crypto
from node.ledger.certificate import CommitCertificate, ValidatorSet
from tests.sim.fake_crypto import FakeSigner, fake_verify
from tests.sim.network import Network, NetworkFaults

CHAIN_ID = "alps-sim"
TICK_TIME = 10  # network time units per logical tick
INPUTS_PER_EVENT_MAX = 10_000


class SimFailure(AssertionError):
    pass


def caching(verify: Callable[[bytes, bytes, bytes], bool]) -> Callable[[bytes, bytes, bytes], bool]:
    """What a node's shell does (performance.md: verify each signature once per node): here
    one bounded cache serves the whole simulated cluster. `verify` is a pure function."""
    cache: dict[tuple[bytes, bytes, bytes], bool] = {}

    def cached(public_key: bytes, message: bytes, signature: bytes) -> bool:
        key = (public_key, message, signature)
        verdict = cache.get(key)
        if verdict is None:
            if len(cache) >= 100_000:
                cache.clear()
            verdict = cache[key] = verify(public_key, message, signature)
        return verdict

    return cached


def make_block(
    txs: list[str], proposer: int, nonce: int, validators: list[int] | None = None
) -> bytes:
    value: dict[str, object] = {"txs": sorted(txs), "by": proposer, "nonce": nonce}
    if validators is not None:
        value["validators"] = validators
    return codec.encode(value)


def block_txs(payload: bytes) -> list[str]:
    block = parse_block(payload)
    txs = block["txs"] if block is not None else []
    return [t for t in txs if isinstance(t, str)] if isinstance(txs, list) else []


def parse_block(payload: bytes) -> dict[str, object] | None:
    try:
        value = codec.decode(payload)
    except Exception:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("txs"), list):
        return None
    return value


@dataclass
class Node:
    index: int
    signer: object
    config: Config
    replica: Replica
    durable_hard_state: bytes | None = None
    ledger: list[tuple[bytes, CommitCertificate, bytes]] = field(default_factory=list)
    crashed: bool = False
    crash_before_send: bool = False
    signaled: bool = False
    nonce: int = 0
    misbehaviour_seen: int = 0
    misbehaviour_codes: Counter[str] = field(default_factory=Counter)
    txs: set[str] = field(default_factory=set)  # requests in the ledger

    @property
    def key(self) -> bytes:
        return self.replica.me

    def state_digest(self) -> bytes:
        return self.ledger[-1][2] if self.ledger else b""


class Cluster:
    """n replicas; `byzantine` maps a node index to a behaviour (see tests.sim.byzantine)."""

    def __init__(
        self,
        n: int,
        seed: int,
        *,
        real_crypto: bool = False,
        faults: NetworkFaults | None = None,
        byzantine: dict[int, Callable[..., object]] | None = None,
        checkpoint_interval: int = 4,
        watermark_window: int = 8,
        timeout_ticks: int = 20,
        spare_nodes: int = 0,
        max_backoff_exponent: int = 3,
        max_outstanding: int = 1,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.net = Network(self.rng, faults or NetworkFaults())
        self.now = 0
        self.real_crypto = real_crypto
        total = n + spare_nodes
        seeds = [hashlib.sha256(f"sim-{seed}-{i}".encode()).digest() for i in range(total)]
        signers = [crypto.Signer(s) if real_crypto else FakeSigner(s) for s in seeds]
        self.verify = caching(crypto.verify_raw if real_crypto else fake_verify)
        self.keys = [s.public_key for s in signers]
        self.genesis = ValidatorSet(tuple(self.keys[:n]))
        self.index_of = {k: i for i, k in enumerate(self.keys)}
        self.nodes: list[Node] = []
        for i, signer in enumerate(signers):
            config = Config(
                chain_id=CHAIN_ID,
                signer=signer,
                validators=self.genesis,  # type: ignore[arg-type]
                checkpoint_interval=checkpoint_interval,
                watermark_window=watermark_window,
                view_change_timeout_ticks=timeout_ticks,
                retransmit_ticks=max(2, timeout_ticks // 3),
                fetch_batch_max=16,
                max_backoff_exponent=max_backoff_exponent,
                max_outstanding=max_outstanding,
                verifier=self.verify,
            )
            self.nodes.append(Node(i, signer, config, Replica(config, None)))
        self.byzantine: dict[int, object] = {}
        for i, make in (byzantine or {}).items():
            self.byzantine[i] = make(self, i)
        self.submitted: list[str] = []
        self.submitted_set: set[str] = set()
        self.proposed: set[bytes] = set()  # digests of every payload any node proposed
        self.agreed: dict[int, bytes] = {}  # seq -> digest first committed by an honest node
        self.state_at: dict[int, bytes] = {}
        self.txs_per_block = 5
        self.replay_hint = f"re-run this test; the cluster is Cluster(n={n}, seed={seed}, ...)"
        self.signed: dict[tuple[int, str, int, int], bytes] = {}
        self.pending_reconfig: list[int] | None = None  # next block carries this validator set
        self.members = list(range(n))  # the latest agreed validator set (indices)
        self.events = 0

    # ---- helpers --------------------------------------------------------------------------

    def honest(self) -> list[Node]:
        return [n for n in self.nodes if n.index not in self.byzantine]

    def fail(self, message: str) -> None:
        raise SimFailure(
            f"{message}\n  seed={self.seed} time={self.now}\n  replay: {self.replay_hint}"
        )

    def submit(self, tx: str) -> None:
        self.submitted.append(tx)
        self.submitted_set.add(tx)

    def digest(self, payload: bytes) -> bytes:
        return NULL_DIGEST if payload == b"" else crypto.sha256(payload)

    def block_is_valid(self, payload: bytes) -> bool:
        block = parse_block(payload)
        if block is None:
            return False
        txs = block["txs"]
        assert isinstance(txs, list)
        return bool(txs) and all(isinstance(t, str) and t in self.submitted_set for t in txs)

    # ---- driving one node -------------------------------------------------------------------

    def step(self, node: Node, event: object) -> None:
        """Feed `event` and everything it causes (verdicts, executions) to `node`."""
        if node.crashed:
            return
        pending = [event]
        budget = INPUTS_PER_EVENT_MAX
        while pending:
            budget -= 1
            if budget < 0:
                self.fail(f"node {node.index}: runaway input loop")
            ready = node.replica.step(pending.pop(0))  # type: ignore[arg-type]
            pending.extend(self.apply(node, ready))
            if node.crashed:
                return

    def apply(self, node: Node, ready: Ready) -> list[object]:
        """The shell's contract, in field order."""
        follow: list[object] = []
        if ready.hard_state is not None:
            node.durable_hard_state = ready.hard_state  # fsync before sending
        if node.crash_before_send:
            self.crash(node)
            return []
        byz = self.byzantine.get(node.index)
        if byz is None:
            self.check_no_equivocation(node, ready)
        for out in ready.outbound:
            targets = (
                [self.index_of[out.destination]]
                if out.destination is not None
                else [self.index_of[key] for key in node.replica.broadcast_peers]
            )
            for t in targets:
                if byz is not None:
                    for data in byz.outbound(t, out.data):  # type: ignore[attr-defined]
                        self.net.send(self.now, node.index, t, data)
                else:
                    self.net.send(self.now, node.index, t, out.data)
        for item in ready.to_validate:
            valid = self.block_is_valid(item.payload)
            follow.append(ProposalVerdict(item.view, item.seq, item.digest, valid))
        for committed in ready.committed:
            follow.extend(self.execute(node, committed))
        node.misbehaviour_seen += len(ready.misbehaviour)
        node.misbehaviour_codes.update(m.code for m in ready.misbehaviour)
        for req in ready.to_serve:
            blocks = tuple(
                FetchedBlock(seq, node.ledger[seq - 1][0], node.ledger[seq - 1][1])
                for seq in range(req.from_seq, min(req.to_seq, len(node.ledger)) + 1)
            )
            if blocks:
                follow.append(ServeBlocks(req.requester, blocks))
        return follow

    def execute(self, node: Node, committed: Committed) -> list[object]:
        seq = committed.seq
        if seq <= len(node.ledger):  # already executed before a crash: report, don't redo
            payload, _, state = node.ledger[seq - 1]
            if payload != committed.payload:
                self.fail(f"node {node.index} re-delivered a different block at {seq}")
            return [Executed(seq, state)]
        if seq != len(node.ledger) + 1:
            self.fail(f"node {node.index} delivered {seq} after {len(node.ledger)}")
        state = crypto.sha256(node.state_digest() + self.digest(committed.payload))
        node.ledger.append((committed.payload, committed.certificate, state))
        node.txs.update(block_txs(committed.payload))
        block = parse_block(committed.payload)
        pending = self.pending_reconfig
        if pending is not None and block is not None and block.get("validators") == pending:
            self.members = list(pending)
            self.pending_reconfig = None
        node.signaled = False
        if node.index not in self.byzantine:
            self.check_commit(node, committed, state)
        validators = None
        if block is not None and isinstance(block.get("validators"), list):
            validators = ValidatorSet(tuple(self.keys[i] for i in block["validators"]))  # type: ignore[union-attr]
        return [Executed(seq, state, validators)]

    # ---- checkers -------------------------------------------------------------------------

    def check_commit(self, node: Node, committed: Committed, state: bytes) -> None:
        seq, payload, cert = committed.seq, committed.payload, committed.certificate
        digest = self.digest(payload)
        # agreement: no two honest replicas commit different blocks at one seq
        first = self.agreed.setdefault(seq, digest)
        if first != digest:
            self.fail(
                f"AGREEMENT: node {node.index} committed {digest.hex()[:8]} at {seq}, "
                f"another honest node {first.hex()[:8]}"
            )
        # validity: proposed by someone and valid (or a §4.4 null request)
        if payload != b"" and (digest not in self.proposed or not self.block_is_valid(payload)):
            self.fail(f"VALIDITY: node {node.index} committed an unproposed/invalid block at {seq}")
        # equal state digests
        if self.state_at.setdefault(seq, state) != state:
            self.fail(f"STATE: node {node.index} state digest differs at {seq}")
        # the certificate proves finality to a third party
        if cert.height != seq or cert.block_hash != digest:
            self.fail(f"CERT: node {node.index} certificate does not match block {seq}")
        vset = node.replica.set_for(seq)
        if self.real_crypto:
            try:
                cert.verify(CHAIN_ID, vset, digest)
            except Exception as exc:
                self.fail(f"CERT: certificate at {seq} fails CommitCertificate.verify: {exc}")
        else:
            from node.ledger.certificate import commit_vote_value

            message = crypto.signing_bytes(
                crypto.DOMAIN_COMMIT, CHAIN_ID, commit_vote_value(cert.view, seq, digest)
            )
            signers = {
                s.validator
                for s in cert.signatures
                if s.validator in vset.validators and fake_verify(s.validator, message, s.signature)
            }
            if len(signers) < vset.quorum:
                self.fail(f"CERT: certificate at {seq} has {len(signers)} valid signatures")

    def check_no_equivocation(self, node: Node, ready: Ready) -> None:
        """An honest replica never signs two digests for one (kind, view, seq), even across
        crashes and restarts (the hard state rule)."""
        if ready.hard_state is None and not ready.outbound:
            return
        for out in ready.outbound:
            env = Envelope.from_value(codec.decode(out.data))
            if env.kind not in (PRE_PREPARE, PREPARE, COMMIT):
                continue
            body = body_of(env)
            assert isinstance(body, PrePrepare | Prepare | Commit)
            key = (node.index, env.kind, body.view, body.seq)
            if self.signed.setdefault(key, body.digest) != body.digest:
                self.fail(f"EQUIVOCATION: honest node {node.index} signed two digests for {key}")

    def check_invariants(self) -> None:
        for node in self.honest():
            if not node.crashed:
                node.replica.check_invariants()

    # ---- events ---------------------------------------------------------------------------

    def crash(self, node: Node) -> None:
        node.crashed = True
        node.crash_before_send = False

    def restart(self, node: Node) -> None:
        """Restart from durable state: hard state + ledger (the ledger's writes are synced)."""
        node.replica = Replica(node.config, node.durable_hard_state)
        node.crashed = False
        node.crash_before_send = False
        node.signaled = False
        for seq in range(node.replica.executed_seq + 1, len(node.ledger) + 1):
            payload, _, state = node.ledger[seq - 1]
            block = parse_block(payload)
            validators = None
            if block is not None and isinstance(block.get("validators"), list):
                validators = ValidatorSet(tuple(self.keys[i] for i in block["validators"]))  # type: ignore[union-attr]
            self.step(node, Executed(seq, state, validators))

    def drive_proposals(self) -> None:
        """Honest shells propose pending requests (primary) or signal work (backup)."""
        for node in self.nodes:
            if node.crashed or (
                node.index in self.byzantine
                and not getattr(self.byzantine[node.index], "proposes", False)
            ):
                continue
            pending = [t for t in self.submitted if t not in node.txs][: self.txs_per_block]
            if not pending:
                continue
            if node.replica.can_propose or not node.signaled:
                node.nonce += 1
                payload = make_block(pending, node.index, node.nonce, self.pending_reconfig)
                self.proposed.add(self.digest(payload))
                node.signaled = True
                self.step(node, Propose(payload))

    def run_until(self, end_time: int, condition: Callable[[], bool] | None = None) -> bool:
        """Advance time; after every event run the checkers. True if `condition` became true."""
        while self.now < end_time:
            self.now += 1
            for packet in self.net.due(self.now):
                node = self.nodes[packet.destination]
                self.events += 1
                byz = self.byzantine.get(packet.destination)
                if byz is not None:
                    byz.inbound(packet.source, packet.data)  # type: ignore[attr-defined]
                self.step(node, Receive(self.keys[packet.source], packet.data))
                # Replica.step checks the stepped replica's invariants after every input.
            if self.now % TICK_TIME == 0:
                for node in self.nodes:
                    self.step(node, Tick())
                    byz = self.byzantine.get(node.index)
                    if byz is not None:
                        byz.tick()  # type: ignore[attr-defined]
                self.drive_proposals()
                self.check_invariants()
                if condition is not None and condition():
                    return True
        return condition() if condition is not None else True

    def all_committed(self) -> bool:
        want = set(self.submitted)
        for node in self.honest():
            if node.crashed or node.index not in self.members:
                continue  # removed validators and spares that never joined owe nothing
            if not want <= node.txs:
                return False
        return True
