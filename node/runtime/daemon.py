"""The node process: config in, a running validator out, until SIGINT/SIGTERM.

Rules kept here: everything the node opens it closes on the way out (the HTTP servers,
the libp2p host, LevelDB); a signal cancels the tasks, and a block being committed in a
worker thread finishes first (trio waits for the thread), so a clean stop never leaves
half a block, and a kill -9 cannot either (one fsynced batch per block). Start-up checks
the genesis file against the hash in config.toml and the store against the genesis.
"""

from __future__ import annotations

import errno
import gc
import logging
import signal
from typing import Any

import trio

from node.config import NodeConfig
from node.genesis_file import genesis_hash, load_genesis
from node.keys import load_signer
from node.p2p.host import ListenError
from node.runtime import byzantine
from node.runtime.driver import Node, Settings
from node.runtime.logs import setup_logging
from node.runtime.profiling import profiled
from node.store.chain import ChainStore
from node.store.kv import LevelDBKV

log = logging.getLogger("alps.node")
# The cyclic GC's generation thresholds (CPython: 700, 10, 10). A node keeps hundreds of
# thousands of objects alive in bounded caches (state, records, signatures, mempool), and
# with the defaults full collections over them cost ~30-40 us of CPU per committed usage
# report (alps_gc_seconds_total, 4 nodes at 1,400 tx/s); with these, ~3-17. Garbage
# cycles are still collected, only in larger batches.
GC_THRESHOLDS = (20_000, 20, 50)


def settings_from(config: NodeConfig) -> Settings:
    return Settings(
        tick_ms=config.consensus.tick_ms,
        view_change_timeout_ticks=config.consensus.view_change_timeout_ticks,
        mempool_max=config.mempool.size_max,
        forward_batch_max=config.mempool.forward_batch_max,
        block_max_txs=config.block.max_txs,
        block_interval_ms=config.block.interval_ms,
        blocks_in_flight=config.block.in_flight_max,
    )


async def run_node(config: NodeConfig, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    from node.api.serve import serve_api
    from node.p2p.host import open_libp2p_network

    signer = load_signer(config.key_path)
    genesis = load_genesis(config)
    config.data_path.mkdir(parents=True, exist_ok=True)
    kv = LevelDBKV(config.data_path / "chain", compression=config.store.compression)
    try:
        store = ChainStore(kv)
        peers = {k: v for k, v in config.p2p.peers.items() if k != signer.public_key}
        async with open_libp2p_network(signer.seed, config.p2p.listen, peers) as net:
            node = Node(
                settings=settings_from(config),
                signer=signer,
                genesis=genesis,
                store=store,
                kv=kv,
                net=byzantine.wrap(net, signer, genesis.chain_id),  # test-only hook
                inbound=net.inbound,
                genesis_hash=genesis_hash(genesis),
            )
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_stop_on_signal, nursery.cancel_scope)
                await nursery.start(node.run)
                await nursery.start(
                    lambda task_status: serve_api(
                        node,
                        config.api.listen,
                        admin_listen=config.api.admin_listen,
                        body_bytes_max=config.api.body_bytes_max,
                        task_status=task_status,
                    )
                )
                gc.freeze()  # what start-up built lives for good: full collections skip it
                log.info(
                    "node ready",
                    extra={
                        "moniker": config.node.moniker,
                        "p2p": config.p2p.listen,
                        "api": config.api.listen,
                        "height": node.shell.height,
                    },
                )
                task_status.started(node)
    finally:
        kv.close()
        log.info("node stopped")


async def _stop_on_signal(scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("stopping", extra={"signal": signal.Signals(signum).name})
            scope.cancel()
            return


class StartError(Exception):
    """The node cannot run with this configuration here (a port taken, ...): one line."""


def _cannot_listen(exc: BaseException) -> OSError | None:
    """The listen failure inside `exc` (trio nests it in exception groups), if any."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _cannot_listen(inner)
            if found is not None:
                return found
        return None
    if isinstance(exc, ListenError) or (
        isinstance(exc, OSError) and exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL)
    ):
        return exc
    return None


def run(config: NodeConfig) -> int:
    setup_logging(config.log.format, config.log.level)
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        with profiled():  # only when ALPS_PROFILE is set (benchmarks)
            trio.run(run_node, config)
    except (OSError, BaseExceptionGroup) as exc:
        failure = _cannot_listen(exc)
        if failure is None:
            raise
        where = f"p2p {config.p2p.listen}, api {config.api.listen}, admin {config.api.admin_listen}"
        reason = failure.strerror or str(failure)
        log.error("cannot listen", extra={"listen": where, "reason": reason})
        raise StartError(
            f"cannot listen on one of its addresses ({where}): {reason}; is another node "
            "running with this config, or another program on one of these ports?"
        ) from None
    return 0
