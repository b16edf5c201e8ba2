"""ALPS node: the pure licensing ledger (`node.ledger`) and the shells around it."""
