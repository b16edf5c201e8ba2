"""The test-only Byzantine hook (node/runtime/byzantine.py): absent unless asked for; when
asked, its lies are the ones chaos runs rely on (validly signed conflicting proposals and
votes, garbage), and the file-controlled variant switches modes on request."""

from __future__ import annotations

import pathlib
import signal
from collections.abc import Mapping

import pytest

from consensus.messages import (
    PRE_PREPARE,
    PREPARE,
    Envelope,
    Prepare,
    PrePrepare,
    body_of,
    seal,
    signature_ok,
)
from node.ledger import codec, crypto
from node.ledger.block import Block
from node.runtime import byzantine
from node.runtime.ledger_shell import LedgerShell, SignatureCache
from node.store.chain import ChainStore
from node.store.kv import MemoryKV
from tests.runtime.cluster import CHAIN, T0_MS, deposit, make_genesis


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes]] = []

    def send(self, peer: bytes, data: bytes) -> bool:
        self.sent.append((peer, data))
        return True

    def set_peers(self, peers: Mapping[bytes, str]) -> None:
        pass

    def connected(self) -> list[bytes]:
        return []


ODD, EVEN = b"\x01" + bytes(31), b"\x02" + bytes(31)


def wire(env: Envelope) -> bytes:
    return bytes([byzantine.MSG_CONSENSUS]) + codec.encode(env.to_value())


def unwire(data: bytes) -> tuple[Envelope, object]:
    env = Envelope.from_value(codec.decode(data[1:]))
    return env, body_of(env)


def test_absent_unless_the_variable_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(byzantine.ENV_MODE, raising=False)
    inner = Recorder()
    signer = crypto.Signer(bytes(32))
    assert byzantine.wrap(inner, signer, CHAIN) is inner
    monkeypatch.setenv(byzantine.ENV_MODE, "bogus")
    with pytest.raises(ValueError):
        byzantine.wrap(inner, signer, CHAIN)


def test_equivocating_primary_sends_half_the_peers_another_valid_block() -> None:
    genesis, validators, user = make_genesis(4)
    shell = LedgerShell(ChainStore(MemoryKV()), genesis, SignatureCache())
    primary = validators[0]
    built = shell.build([deposit(user, 1)], primary.public_key, T0_MS + 5)
    env = seal(
        CHAIN,
        primary.public_key,
        primary.sign_raw,
        PrePrepare(0, 1, built.block.hash()),
        built.payload,
    )
    inner = Recorder()
    net = byzantine.ByzantineNetwork(inner, "equivocate", primary, CHAIN, seed=1)
    net.send(EVEN, wire(env))
    net.send(ODD, wire(env))
    (_, honest), (_, lie) = inner.sent
    assert honest == wire(env)
    lie_env, lie_pp = unwire(lie)
    assert isinstance(lie_pp, PrePrepare) and lie_env.kind == PRE_PREPARE
    assert signature_ok(CHAIN, lie_env, lie_pp, crypto.verify_raw)
    assert (lie_pp.view, lie_pp.seq) == (0, 1) and lie_pp.digest != built.block.hash()
    other = Block.decode(lie_env.payload)
    assert other.hash() == lie_pp.digest and other.txs == built.block.txs
    judge = shell.judge(1, lie_env.payload, primary.public_key, T0_MS + 5, 10_000)
    assert judge.valid  # a valid conflicting proposal, not garbage

    vote = seal(CHAIN, primary.public_key, primary.sign_raw, Prepare(0, 1, built.block.hash()))
    inner.sent.clear()
    net.send(EVEN, wire(vote))
    votes = [unwire(data) for _, data in inner.sent]
    assert len(votes) == 2 and wire(vote) in [data for _, data in inner.sent]
    digests = set()
    for venv, body in votes:
        assert venv.kind == PREPARE and isinstance(body, Prepare)
        assert signature_ok(CHAIN, venv, body, crypto.verify_raw)
        digests.add(body.digest)
    assert len(digests) == 2  # a double vote


def test_garbage_mode_sends_junk_alongside_most_real_messages() -> None:
    signer = crypto.Signer(bytes(32))
    inner = Recorder()
    net = byzantine.ByzantineNetwork(inner, "garbage", signer, CHAIN, seed=3)
    real = wire(seal(CHAIN, signer.public_key, signer.sign_raw, Prepare(0, 1, bytes(32))))
    for _ in range(200):
        net.send(EVEN, real)
    sent = [data for _, data in inner.sent]
    junk = [d for d in sent if d != real]
    assert 60 < len(junk) < 140 and net.sent_lies == len(junk)
    assert sent.count(real) > 150  # the node still mostly participates
    assert len({d[:1] for d in junk}) > 3  # several kinds of junk


def test_file_control_starts_honest_and_switches_on_request(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    control = tmp_path / "mode"
    control.write_text("")
    monkeypatch.setenv(byzantine.ENV_MODE, f"file:{control}")
    previous = signal.getsignal(signal.SIGUSR1)
    try:
        inner = Recorder()
        net = byzantine.wrap(inner, crypto.Signer(bytes(32)), CHAIN)
        assert isinstance(net, byzantine.ByzantineNetwork) and net.mode == ""
        assert signal.getsignal(signal.SIGUSR1) not in (previous, signal.SIG_DFL)
        for _ in range(50):
            net.send(EVEN, b"\x01real")
        assert inner.sent == [(EVEN, b"\x01real")] * 50
        control.write_text("garbage\n")
        net.request_reload()
        for _ in range(50):
            net.send(EVEN, b"\x01real")
        assert net.mode == "garbage" and len(inner.sent) > 100
        control.write_text("")
        net.request_reload()
        net.send(EVEN, b"\x01real")
        assert net.mode == ""
    finally:
        signal.signal(signal.SIGUSR1, previous)
