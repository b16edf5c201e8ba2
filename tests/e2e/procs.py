"""The real-process harness lives in bench/procs.py (shared with the cluster benchmark)."""

from bench.procs import (
    ROOT,
    HttpError,
    NodeProc,
    Testnet,
    free_port_block,
    http,
    wait_for,
)

__all__ = ["ROOT", "HttpError", "NodeProc", "Testnet", "free_port_block", "http", "wait_for"]
