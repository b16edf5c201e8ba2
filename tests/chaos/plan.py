"""The fault schedule of a chaos run: a pure function of the seed.

Faults are episodes, one after another: each makes exactly one node faulty for a while
(crashed, paused, partitioned, slowed or Byzantine: equivocating while primary, or
sending garbage), then the controller heals it and
waits for it to catch up before the next episode starts. So at most one node (f = 1 for
n = 4) is ever faulty at once, and the same seed always yields the same schedule (what
happens inside the real processes still depends on timing).
"""

from __future__ import annotations

import dataclasses
import random

KINDS = ("kill", "pause", "partition", "slow", "byzantine")
WEIGHTS = (3, 2, 3, 1, 2)
TARGET_PRIMARY = -1  # resolved when the episode starts: the node that is primary then
BYZANTINE_MODES = ("equivocate", "garbage")


@dataclasses.dataclass(frozen=True, slots=True)
class Fault:
    """One episode: `kind` applied to `target` (a node index or TARGET_PRIMARY) for
    `duration_s`, after a quiet `gap_s`. `mode`: the cut mode of a partition, the
    misbehaviour of a Byzantine node, the delay in ms of a slow node; else ""."""

    index: int
    kind: str
    target: int
    duration_s: float
    gap_s: float
    mode: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if self.duration_s <= 0 or self.gap_s < 0:
            raise ValueError("duration must be > 0 and gap >= 0")

    def describe(self, resolved: int | None = None) -> str:
        who = resolved if resolved is not None else self.target
        name = "primary" if self.target == TARGET_PRIMARY else f"node-{who}"
        if self.target == TARGET_PRIMARY and resolved is not None:
            name = f"node-{resolved} (primary)"
        mode = f" [{self.mode}]" if self.mode else ""
        return f"#{self.index} {self.kind}{mode} {name} for {self.duration_s:.1f}s"


def plan(
    seed: int, duration_s: float, n: int = 4, byzantine: bool = True, kinds: tuple[str, ...] = ()
) -> list[Fault]:
    """Episodes whose durations and gaps fit in `duration_s` (at least one)."""
    rng = random.Random(f"alps-chaos/{seed}")
    allowed = [(k, w) for k, w in zip(KINDS, WEIGHTS, strict=True) if not kinds or k in kinds]
    if not byzantine:
        allowed = [(k, w) for k, w in allowed if k != "byzantine"]
    if not allowed:
        raise ValueError("no fault kind left to inject")
    names, weights = [k for k, _ in allowed], [w for _, w in allowed]
    faults: list[Fault] = []
    t = 0.0
    while not faults or t < duration_s:
        kind = rng.choices(names, weights)[0]
        target = TARGET_PRIMARY if rng.random() < 0.4 else rng.randrange(n)
        duration = round(rng.uniform(2.0, 8.0), 1)
        gap = round(rng.uniform(1.0, 4.0), 1)
        mode = ""
        if kind == "partition":
            mode = rng.choice(("reset", "stall"))
        elif kind == "byzantine":
            mode = rng.choice(BYZANTINE_MODES)
            duration = round(rng.uniform(6.0, 15.0), 1)
            if mode == "equivocate":
                target = TARGET_PRIMARY  # only a primary proposes
        elif kind == "slow":
            mode = str(rng.choice((20, 50, 150, 400)))
        faults.append(Fault(len(faults), kind, target, duration, gap, mode))
        t += gap + duration
    return faults
