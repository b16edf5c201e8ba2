"""Seeded packet network: delay, loss, duplication, reordering and partitions.

Model: tigerbeetle's packet simulator and etcd raft's test network verbs (drop, cut,
isolate, heal). Every random choice comes from the one `random.Random` the cluster owns,
and packets with equal delivery time leave in send order, so a seed fixes the run.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field


@dataclass
class NetworkFaults:
    loss: float = 0.0
    duplicate: float = 0.0
    delay_min: int = 1
    delay_max: int = 5


@dataclass(order=True)
class Packet:
    due: int
    order: int
    source: int = field(compare=False)
    destination: int = field(compare=False)
    data: bytes = field(compare=False)


class Network:
    def __init__(self, rng: random.Random, faults: NetworkFaults) -> None:
        self.rng = rng
        self.faults = faults
        self.queue: list[Packet] = []
        self.cut: set[tuple[int, int]] = set()  # directed links that drop everything
        self.order = 0
        self.sent = 0
        self.delivered = 0

    def send(self, now: int, source: int, destination: int, data: bytes) -> None:
        self.sent += 1
        if (source, destination) in self.cut or self.rng.random() < self.faults.loss:
            return
        copies = 2 if self.rng.random() < self.faults.duplicate else 1
        for _ in range(copies):
            delay = self.rng.randint(self.faults.delay_min, self.faults.delay_max)
            self.order += 1
            heapq.heappush(self.queue, Packet(now + delay, self.order, source, destination, data))

    def due(self, now: int) -> list[Packet]:
        out = []
        while self.queue and self.queue[0].due <= now:
            packet = heapq.heappop(self.queue)
            if (packet.source, packet.destination) not in self.cut:
                out.append(packet)
        self.delivered += len(out)
        return out

    def partition(self, groups: list[list[int]], n: int) -> None:
        """Symmetric partition: links between different groups are cut."""
        where = {node: i for i, group in enumerate(groups) for node in group}
        self.cut = {
            (a, b) for a in range(n) for b in range(n) if a != b and where.get(a) != where.get(b)
        }

    def cut_one_way(self, source: int, destination: int) -> None:
        """Asymmetric partition: `source` can no longer reach `destination`."""
        self.cut.add((source, destination))

    def isolate(self, node: int, n: int) -> None:
        self.partition([[node], [i for i in range(n) if i != node]], n)

    def heal(self) -> None:
        self.cut = set()
