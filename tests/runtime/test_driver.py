"""The driver with real replicas, ledgers and LevelDB, over an in-memory network."""

from __future__ import annotations

import dataclasses
import pathlib
import time

import pytest
import trio

from node.ledger import codec
from node.ledger.tx import Transaction, make_tx
from node.runtime.driver import MSG_TXS
from node.runtime.interface import MempoolFull
from tests.runtime.cluster import CHAIN, Cluster, deposit


@pytest.mark.trio
async def test_four_nodes_commit_submitted_transactions_with_equal_state(
    tmp_path: pathlib.Path,
) -> None:
    cluster = Cluster(tmp_path)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for i in range(4):
                await cluster.start(nursery, i)
            txs = [deposit(cluster.user, n) for n in range(1, 41)]
            results = await cluster.nodes[1].submit(txs)
            assert [r.status for r in results] == ["pending"] * 40
            heights = [await cluster.nodes[1].wait_committed(tx.tx_id, 20) for tx in txs]
            assert all(h is not None for h in heights)
            top = max(h for h in heights if h is not None)
            await cluster.wait_height(top)
            assert len(cluster.digests_at(top)) == 1
            for node in cluster.nodes.values():  # every deposit executed exactly once
                for tx in txs:
                    found = node.shell.receipt(tx.tx_id)
                    assert found is not None and found[2].accepted
            again = await cluster.nodes[2].submit(txs[:3])
            assert [r.status for r in again] == ["committed"] * 3
            node = cluster.nodes[3]
            assert await node.wait_height(top, 0)  # already stored: no wait
            assert not await node.wait_height(top + 1000, 0.05)
            async with trio.open_nursery() as waiting:
                reached: list[bool] = []

                async def wait_next() -> None:
                    reached.append(await node.wait_height(node.shell.height + 1, 20))

                waiting.start_soon(wait_next)
                await trio.sleep(0.01)
                await cluster.nodes[0].submit([deposit(cluster.user, 41)])
            assert reached == [True]
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_bad_signature_and_wrong_chain_are_rejected_and_change_nothing(
    tmp_path: pathlib.Path,
) -> None:
    cluster = Cluster(tmp_path, n=1)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            node = await cluster.start(nursery, 0)
            good = deposit(cluster.user, 1)
            forged = type(good)(
                good.chain_id, good.tx_type, good.body, good.signer, 2, good.signature
            )
            other = make_tx(cluster.user, "other-chain", "account.deposit", good.body, 1)
            results = await node.submit([forged, other])
            assert [(r.status, r.code) for r in results] == [
                ("rejected", "bad_signature"),
                ("rejected", "wrong_chain"),
            ]
            assert len(node.mempool) == 0
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_full_mempool_refuses_the_whole_batch(tmp_path: pathlib.Path) -> None:
    from node.runtime.driver import Settings

    cluster = Cluster(
        tmp_path,
        n=1,
        settings=Settings(mempool_max=5, heartbeat_ms=60_000, block_interval_ms=60_000),
    )
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            node = await cluster.start(nursery, 0)
            txs = [deposit(cluster.user, n) for n in range(1, 8)]
            with pytest.raises(MempoolFull):
                await node.submit(txs)
            assert len(node.mempool) == 0
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_restarted_node_catches_up_and_votes_again(tmp_path: pathlib.Path) -> None:
    cluster = Cluster(tmp_path)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for i in range(4):
                await cluster.start(nursery, i)
            await cluster.stop(3)
            nonce = 0
            for _ in range(5):
                batch = [deposit(cluster.user, nonce + k) for k in range(1, 11)]
                nonce += 10
                await cluster.nodes[0].submit(batch)
                assert await cluster.nodes[0].wait_committed(batch[-1].tx_id, 20) is not None
            top = cluster.nodes[0].shell.height
            assert top >= 5
            await cluster.start(nursery, 3)
            await cluster.wait_height(top, [3])
            # it votes again: with node 0 down, 3 must take part for any quorum
            await cluster.stop(0)
            batch = [deposit(cluster.user, nonce + k) for k in range(1, 6)]
            await cluster.nodes[1].submit(batch)
            height = await cluster.nodes[1].wait_committed(batch[-1].tx_id, 30)
            assert height is not None
            await cluster.wait_height(height, [1, 2, 3])
            assert len(cluster.digests_at(height)) == 1
            nursery.cancel_scope.cancel()


def _slow_judges(cluster: Cluster, seconds: float) -> None:
    """Backups take `seconds` longer to judge (in the worker thread), so a proposal stays
    in flight long enough for the primary to build the next block on top of it."""
    for i, node in cluster.nodes.items():
        if i == 0:
            continue
        real = node.shell.judge

        def slow(*args, real=real):  # type: ignore[no-untyped-def]
            time.sleep(seconds)
            return real(*args)

        node.shell.judge = slow  # type: ignore[method-assign]


async def _start_with_slow_judges(cluster: Cluster, nursery: trio.Nursery) -> None:
    for i in range(4):
        await cluster.start(nursery, i)
    _slow_judges(cluster, 0.05)


def _assert_accepted_everywhere(cluster: Cluster, txs: list[Transaction]) -> None:
    for node in cluster.nodes.values():
        for tx in txs:
            found = node.shell.receipt(tx.tx_id)
            assert found is not None and found[2].accepted, tx.nonce


async def _submit_in_waves(node, user, first: int, waves: int, size: int) -> list:  # type: ignore[no-untyped-def]
    txs = []
    for w in range(waves):
        batch = [deposit(user, first + w * size + k) for k in range(size)]
        assert all(r.status == "pending" for r in await node.submit(batch))
        txs.extend(batch)
        await trio.sleep(0.03)
    return txs


@pytest.mark.trio
async def test_the_primary_pipelines_blocks_and_every_node_ends_equal(
    tmp_path: pathlib.Path,
) -> None:
    """With slow backups, the primary proposes blocks on top of uncommitted ones (each
    member nonce only valid after the previous block's): all commit exactly once, in
    order, with one state on every node."""
    cluster = Cluster(tmp_path)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await _start_with_slow_judges(cluster, nursery)
            txs = await _submit_in_waves(cluster.nodes[0], cluster.user, 1, 12, 5)
            top = max([await cluster.nodes[0].wait_committed(tx.tx_id, 30) or 0 for tx in txs])
            await cluster.wait_height(top)
            assert len(cluster.digests_at(top)) == 1
            metrics = cluster.nodes[0].metrics
            assert metrics.proposals.labels("uncommitted")._value.get() > 0
            _assert_accepted_everywhere(cluster, txs)
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_a_view_change_with_blocks_in_flight_loses_nothing(tmp_path: pathlib.Path) -> None:
    """The primary dies with proposals in flight: the next primary takes over, blocks the
    old one had proposed on uncommitted parents are dropped or carried, and every
    submitted transaction still commits exactly once with equal state."""
    cluster = Cluster(tmp_path)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await _start_with_slow_judges(cluster, nursery)
            txs = await _submit_in_waves(cluster.nodes[1], cluster.user, 1, 6, 5)
            await trio.sleep(0.08)  # proposals in flight
            assert cluster.nodes[0].metrics.proposals.labels("uncommitted")._value.get() > 0
            await cluster.stop(0)
            txs += await _submit_in_waves(cluster.nodes[1], cluster.user, 31, 3, 5)
            heights = [await cluster.nodes[1].wait_committed(tx.tx_id, 40) for tx in txs]
            assert all(h is not None for h in heights)
            top = max(h or 0 for h in heights)
            await cluster.wait_height(top, [1, 2, 3])
            assert len(cluster.digests_at(top)) == 1
            assert cluster.nodes[1].replica.view >= 1
            _assert_accepted_everywhere(cluster, txs)
            nursery.cancel_scope.cancel()


def _too_deep_tx(cluster: Cluster) -> bytes:
    body: dict = {"x": 1}
    for _ in range(30):
        body = {"x": body}
    tx = Transaction(CHAIN, "account.deposit", body, cluster.user.public_key, 1, b"s" * 64)
    return tx.encode()


@pytest.mark.trio
async def test_bad_forwarded_batches_are_misbehaviour_and_change_nothing(
    tmp_path: pathlib.Path,
) -> None:
    """A validator peer forwarding garbage, a transaction too deep for a block (its id
    cannot be computed; found by review: it used to stop the ingest task) or a forged
    signature is reported and ignored; the node keeps committing."""
    cluster = Cluster(tmp_path)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for i in range(4):
                await cluster.start(nursery, i)
            node, peer = cluster.nodes[1], cluster.key(2)
            forged = dataclasses.replace(deposit(cluster.user, 1), signature=bytes(64))
            inbound = cluster.hub.nets[cluster.key(1)].tx
            for items in ([b"\x93garbage"], [_too_deep_tx(cluster)], [forged.encode()]):
                inbound.send_nowait((peer, bytes([MSG_TXS]) + codec.encode(items)))
            inbound.send_nowait((peer, bytes([MSG_TXS]) + b"\xc1"))
            while (
                sum(
                    node.metrics.misbehaviour.labels(c)._value.get()
                    for c in ("bad_tx_batch", "bad_tx_signature")
                )
                < 4
            ):
                await trio.sleep(0.01)
            assert len(node.mempool) == 0
            tx = deposit(cluster.user, 1)
            await node.submit([tx])
            assert await node.wait_committed(tx.tx_id, 20) is not None
            nursery.cancel_scope.cancel()
