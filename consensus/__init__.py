"""PBFT consensus core: a pure state machine, `Replica.step(input) -> Ready`.

Castro & Liskov, "Practical Byzantine Fault Tolerance" (OSDI'99, TOCS'02), with
signatures instead of MACs. The core orders opaque block payloads; the application (the
ledger) validates and executes them. No I/O, no clock, no randomness of its own.

Interface the node daemon drives::

    config = Config(chain_id, signer, validators, checkpoint_interval=K,
                    watermark_window=L, view_change_timeout_ticks=T,
                    digest=header_hash_of_payload, verifier=cached_ed25519_verify)
    replica = Replica(config, hard_state_bytes_or_None)
    ready = replica.step(Receive(sender_key, data) | Tick() | Propose(payload)
                         | ProposalVerdict(view, seq, digest, valid)
                         | Executed(seq, state_digest, new_validators_or_None)
                         | ServeBlocks(requester, blocks))

Apply each `Ready` strictly in field order:

1. `hard_state`: bytes or None; persist with fsync BEFORE sending anything (a restarted
   replica built from them never signs two digests for one (view, seq)).
2. `outbound`: `Outbound(destination_key_or_None_for_broadcast, data)`; broadcast means
   every key in `replica.broadcast_peers` (current and scheduled validator sets).
3. `to_validate`: `ToValidate(view, seq, digest, payload)`; answer `ProposalVerdict` once
   the application can judge it (an invalid verdict starts a view change: §4.2).
4. `committed`: `Committed(seq, payload, CommitCertificate)` in seq order; execute and
   answer `Executed(seq, state_digest[, validators])` once the execution is durable in
   the store (the hard state's `executed_seq` may then be trusted as a lower bound after a
   restart). `payload == b""` is a null request
   (§4.4) to execute as a no-op. For a seq already executed, do not re-execute; answer
   `Executed` with the stored state digest. A block that changes membership passes the new
   `ValidatorSet`; it governs seqs from `activation_seq(seq, K, L)` on.
5. `misbehaviour`: `Misbehaviour(peer, code, detail)` for logs and peer scores; remote bad
   input (malformed, bad signature, unknown sender, not primary, out of watermark,
   equivocation, double vote, bad view change / new view, bad fetched block) never raises.
6. `to_serve`: `ServeRequest(requester, from_seq, to_seq)`: a peer catching up asks for
   committed blocks; answer `ServeBlocks(requester, (FetchedBlock(seq, payload, cert), ...))`
   with those the store holds.

After a restart, feed `Executed` for every block the store holds above
`replica.executed_seq`. Read-only helpers: `replica.validators` (the set in force),
`replica.is_primary`, `replica.can_propose` (propose only then), `replica.view`,
`replica.catch_up_target` (the seq f+1 peers reached; below it the node is syncing),
`replica.next_seq`, `replica.accepted_digest(seq)` (the digest accepted for seq in the
current view). A backup's `Propose` only arms its view-change timer (§4.4).
With `max_outstanding > 1` the primary may propose seq+1 before seq commits; a payload
whose validity depends on its predecessor (the ledger's header commits to its state)
must then be judged valid only once that predecessor is committed with the digest it
builds on: a backup that PREPAREs seq+1 only after seq committed locally keeps PBFT's
guarantee that a prepared seq+1 has a committed (hence fixed) predecessor.
Exceptions: `ConsensusError(code, detail)`; `InvariantError` (stop the node) and
`UsageError` (the shell broke this contract).
"""

from consensus.errors import ConsensusError, InvariantError, UsageError
from consensus.messages import NULL_DIGEST, FetchedBlock
from consensus.replica import Replica, activation_seq
from consensus.types import (
    Committed,
    Config,
    Executed,
    HardState,
    Input,
    Misbehaviour,
    Outbound,
    ProposalVerdict,
    Propose,
    Ready,
    Receive,
    ServeBlocks,
    ServeRequest,
    Signer,
    Tick,
    ToValidate,
)

__all__ = [
    "NULL_DIGEST",
    "Committed",
    "Config",
    "ConsensusError",
    "Executed",
    "FetchedBlock",
    "HardState",
    "Input",
    "InvariantError",
    "Misbehaviour",
    "Outbound",
    "ProposalVerdict",
    "Propose",
    "Ready",
    "Receive",
    "Replica",
    "ServeBlocks",
    "ServeRequest",
    "Signer",
    "Tick",
    "ToValidate",
    "UsageError",
    "activation_seq",
]
