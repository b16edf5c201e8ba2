"""§4.2 normal case, §4.3 checkpoints and the Ready contract, table-driven."""

from __future__ import annotations

import pytest

from consensus import Config, Executed, Propose, Receive, Replica, Tick, UsageError
from consensus.messages import (
    COMMIT,
    PRE_PREPARE,
    PREPARE,
    Checkpoint,
    Commit,
    Prepare,
    PrePrepare,
)
from consensus.types import HardState
from node.ledger import crypto
from node.ledger.certificate import CommitCertificate
from tests.consensus.harness import CHAIN, Net, decode


def test_s4_2_normal_case_commits_with_a_certificate_third_parties_accept() -> None:
    net = Net()
    first = net.step(0, Propose(b"block-1"))
    assert [decode(o.data)[0].kind for o in first.outbound] == [PRE_PREPARE]
    assert first.hard_state is not None, "the pre-prepare vote is persisted before sending"
    net.run()
    for i in range(4):
        assert [c.seq for c in net.committed[i]] == [1]
        cert = net.committed[i][0].certificate
        cert.verify(CHAIN, net.vset, crypto.sha256(b"block-1"))  # CommitCertificate contract
        assert CommitCertificate.decode(cert.encode()) == cert


def test_s4_2_ready_persists_before_every_signed_vote() -> None:
    net = Net()
    net.step(0, Propose(b"block-1"))
    net.run()
    for readys in net.readys:
        for ready in readys:
            kinds = {decode(o.data)[0].kind for o in ready.outbound}
            if kinds & {PRE_PREPARE, PREPARE, COMMIT}:
                assert ready.hard_state is not None


def test_s4_2_backup_asks_the_application_and_does_not_prepare_invalid_blocks() -> None:
    net = Net()
    net.valid = False
    net.step(0, Propose(b"bad-block"))
    net.run()
    assert all(not c for c in net.committed)
    codes = {m.code for i in range(1, 4) for r in net.readys[i] for m in r.misbehaviour}
    assert "invalid_proposal" in codes
    sent = {decode(o.data)[0].kind for i in range(1, 4) for r in net.readys[i] for o in r.outbound}
    assert PREPARE not in sent and "view-change" in sent  # counts against the primary


def test_s4_2_blocks_commit_in_sequence_order() -> None:
    net = Net()
    for height in range(1, 7):
        net.step(0, Propose(f"block-{height}".encode()))
        net.run()
    for i in range(4):
        assert [c.seq for c in net.committed[i]] == list(range(1, 7))
        assert [c.payload for c in net.committed[i]] == [f"block-{h}".encode() for h in range(1, 7)]


def test_s4_3_checkpoint_becomes_stable_and_log_is_garbage_collected() -> None:
    net = Net(k=4, window=8)
    for height in range(1, 6):
        net.step(0, Propose(f"b{height}".encode()))
        net.run()
    for replica in net.replicas:
        assert replica.stable_seq == 4
        assert all(seq > 4 for seq in replica.slots)
        assert replica.high_watermark == 12
        assert len(replica.hard_state().stable_proof) >= net.vset.quorum
        assert len(replica.stable_proof) >= net.vset.quorum


def _pp(net: Net, view: int, seq: int, payload: bytes, signer: int = 0) -> bytes:
    return net.forge(signer, PrePrepare(view, seq, crypto.sha256(payload)), payload)


BAD_INPUTS = [
    # (name, sender index, bytes builder, expected misbehaviour code)
    ("garbage bytes", 0, lambda net: b"\xc1\x00garbage", "malformed"),
    ("truncated", 0, lambda net: _pp(net, 0, 1, b"x")[:-3], "malformed"),
    ("unknown kind", 0, lambda net: b"\x85\xa4body\xc4\x00\xa4kind\xa3bad", "malformed"),
    ("pre-prepare from a backup", 2, lambda net: _pp(net, 0, 1, b"x", signer=2), "not_primary"),
    (
        "payload not matching digest",
        0,
        lambda net: net.forge(0, PrePrepare(0, 1, crypto.sha256(b"a")), b"b"),
        "bad_payload",
    ),
    (
        "prepare from the primary",
        0,
        lambda net: net.forge(0, Prepare(0, 1, crypto.sha256(b"a"))),
        "primary_prepared",
    ),
    (
        "far outside the watermarks",
        2,
        lambda net: net.forge(2, Prepare(0, 10_000, crypto.sha256(b"a"))),
        "out_of_watermark",
    ),
    ("checkpoint flood is harmless", 2, lambda net: net.forge(2, Checkpoint(4, b"s")), None),
]


@pytest.mark.parametrize("name,sender,build,code", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_remote_bad_input_is_reported_never_raised(name, sender, build, code) -> None:  # type: ignore[no-untyped-def]
    net = Net()
    ready = net.replicas[1].step(Receive(net.keys[sender].public_key, build(net)))
    codes = [m.code for m in ready.misbehaviour]
    assert codes == ([code] if code else []), name
    assert not ready.outbound or code is None


def test_signature_by_someone_else_and_unknown_sender_are_reported() -> None:
    net = Net()
    data = _pp(net, 0, 1, b"x")
    # transport says node 2 sent what node 0 signed
    ready = net.replicas[1].step(Receive(net.keys[2].public_key, data))
    assert [m.code for m in ready.misbehaviour] == ["sender_mismatch"]
    outsider = Net(n=5).keys[4]
    env_bytes = Net(n=5).forge(4, Prepare(0, 1, crypto.sha256(b"x")))
    ready = net.replicas[1].step(Receive(outsider.public_key, env_bytes))
    assert [m.code for m in ready.misbehaviour] == ["unknown_sender"]


def test_bad_signature_is_reported() -> None:
    net = Net()
    data = bytearray(net.forge(2, Prepare(0, 1, crypto.sha256(b"x"))))
    data[-70] ^= 1  # inside the signature bytes
    ready = net.replicas[1].step(Receive(net.keys[2].public_key, bytes(data)))
    assert [m.code for m in ready.misbehaviour] in (["bad_signature"], ["malformed"])


def test_s4_2_equivocating_pre_prepare_and_double_vote_are_reported() -> None:
    net = Net()
    r = net.replicas[1]
    r.step(Receive(net.keys[0].public_key, _pp(net, 0, 1, b"a")))
    ready = r.step(Receive(net.keys[0].public_key, _pp(net, 0, 1, b"b")))
    assert [m.code for m in ready.misbehaviour] == ["equivocation"]
    r.step(Receive(net.keys[2].public_key, net.forge(2, Commit(0, 1, crypto.sha256(b"a")))))
    ready = r.step(Receive(net.keys[2].public_key, net.forge(2, Commit(0, 1, crypto.sha256(b"b")))))
    assert [m.code for m in ready.misbehaviour] == ["double_vote"]


def test_exact_duplicates_are_dropped_silently() -> None:
    net = Net()
    data = net.forge(2, Prepare(0, 1, crypto.sha256(b"a")))
    net.replicas[1].step(Receive(net.keys[2].public_key, data))
    ready = net.replicas[1].step(Receive(net.keys[2].public_key, data))
    assert ready.misbehaviour == () and ready.outbound == ()


def test_hard_state_round_trips_through_the_codec() -> None:
    net = Net()
    net.step(0, Propose(b"b1"))
    net.run()
    raw = net.replicas[2].hard_state_bytes()
    assert HardState.decode(raw).encode() == raw
    restored = Replica(net.config(2), raw)
    assert restored.hard_state_bytes() == raw


def test_shell_misuse_raises_usage_error() -> None:
    net = Net()
    with pytest.raises(UsageError):
        net.replicas[0].step(Executed(5, b"s"))
    with pytest.raises(UsageError):
        Config(CHAIN, net.keys[0], net.vset, checkpoint_interval=4, watermark_window=6)


def test_idle_cluster_never_changes_view() -> None:
    net = Net()
    net.tick(100)
    assert all(r.view == 0 and r.view_active for r in net.replicas)
    assert all(not rd.misbehaviour for readys in net.readys for rd in readys)
    assert Tick() == Tick()


def test_oversized_proposal_is_a_shell_error_not_a_codec_crash() -> None:
    net = Net()
    with pytest.raises(UsageError):
        net.replicas[0].step(Propose(b"x" * (1024 * 1024 + 1)))
