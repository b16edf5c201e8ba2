"""PBFT consensus core: a pure state machine, `Replica.step(input) -> Ready`.

Castro & Liskov, "Practical Byzantine Fault Tolerance" (OSDI'99, TOCS'02), with
signatures instead of MACs. The core orders opaque block payloads; the application (the
ledger) validates and executes them. No I/O, no clock, no randomness.

Interface the node daemon drives::

    replica = Replica(Config(chain_id, signer, validators, ...), hard_state_bytes_or_None)
    ready = replica.step(Receive(sender_key, data) | Tick() | Propose(payload)
                         | ProposalVerdict(view, seq, digest, valid)
                         | Executed(seq, state_digest, new_validators_or_None)
                         | ServeBlocks(requester, blocks))

Apply each `Ready` strictly in field order:

1. `hard_state`: bytes or None; persist with fsync BEFORE sending anything (a restarted
   replica built from them never signs two digests for one (view, seq)).
2. `outbound`: `Outbound(destination_key_or_None_for_broadcast, data)`.
3. `to_validate`: `ToValidate(view, seq, digest, payload)`; answer `ProposalVerdict`.
4. `committed`: `Committed(seq, payload, CommitCertificate)` in seq order; execute and
   answer `Executed(seq, state_digest[, validators])`. `payload == b""` is a null request
   (§4.4) to execute as a no-op. Ignore (but re-answer `Executed` for) seqs already executed.
5. `misbehaviour`: `Misbehaviour(peer, code, detail)` for logs and peer scores.
6. `to_serve`: `ServeRequest(requester, from_seq, to_seq)`: a peer catching up asks for
   committed blocks; answer `ServeBlocks(requester, (FetchedBlock(seq, payload, cert), ...))`
   with the blocks the store holds.

After a restart, feed `Executed` for every block the store holds above
`replica.executed_seq`. Read-only helpers: `replica.validators` (whom to broadcast to),
`replica.is_primary`, `replica.can_propose` (propose only then), `replica.view`.
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
