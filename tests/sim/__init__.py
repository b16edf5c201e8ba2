"""Deterministic fault simulator for the PBFT core (shared/design/architecture.md).

One integer seed reproduces a whole run: the real `consensus.Replica` code for n
replicas, a seeded in-memory network (delay, loss, duplication, reordering, partitions),
crash/restart from durable hard state, up to f Byzantine replicas, and checkers after
every event. Run `python -m tests.sim --seeds N`; replay one with `--seed S`.
"""
