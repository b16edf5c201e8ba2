"""The pure ledger core: canonical encoding, transactions, blocks, receipts, Merkle proofs
and the state digest. No I/O, no clock, no randomness (see shared/design/architecture.md)."""
