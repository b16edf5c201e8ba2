"""PBFT consensus core: a pure state machine, `Replica.step(input) -> Ready`."""
