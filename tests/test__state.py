"""Tests of the sans-IO worker connection state machine.

Every packet the state machine receives here is encoded with ``encode_packet(..., magic=RES)``
and decoded again by :class:`PacketParser`, so the bytes a job server would send are
exercised along with the state transitions.
"""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from geargevent._framing import PacketParser, encode_packet
from geargevent._packets import REQ, RES, Packet, PacketType
from geargevent._state import (
    ConnectionState,
    EchoReceived,
    JobAssigned,
    NoJob,
    ServerErrorReceived,
    ServerKind,
    ServerKindDetected,
    WakeUp,
    WorkerConnectionState,
)
from geargevent.errors import RemoteProtocolError

T = PacketType

GRAB_JOB_UNIQ = encode_packet(T.GRAB_JOB_UNIQ)
GRAB_JOB = encode_packet(T.GRAB_JOB)
PRE_SLEEP = encode_packet(T.PRE_SLEEP)


def server_packet(packet_type: PacketType, *arguments: bytes) -> Packet:
    """Encode one packet as a job server sends it and parse it back."""
    packets = PacketParser(magic=RES).feed(encode_packet(packet_type, *arguments, magic=RES))
    assert len(packets) == 1
    return packets[0]


def receive(state: WorkerConnectionState, packet_type: PacketType, *arguments: bytes) -> object:
    return state.receive(server_packet(packet_type, *arguments))


def decode_request(data: bytes) -> list[PacketType]:
    """Return the packet types in bytes the state machine asked to send."""
    return [packet.type for packet in PacketParser(magic=REQ).feed(data)]


def gearmand_state() -> WorkerConnectionState:
    """Return a state whose probe was answered by gearmand (NO_JOB)."""
    state = WorkerConnectionState()
    state.start()
    receive(state, T.NO_JOB)
    return state


def perl_state() -> WorkerConnectionState:
    """Return a state whose probe was answered by the Perl job server (ERROR)."""
    state = WorkerConnectionState()
    state.start()
    receive(state, T.ERROR, b"server_error", b"")
    return state


def drained_state() -> WorkerConnectionState:
    """Return a gearmand state whose only GRAB was answered by NO_JOB."""
    state = gearmand_state()
    state.grab()
    receive(state, T.NO_JOB)
    return state


# ---------------------------------------------------------------------------------------------
# Probe


def test_new_state_is_probing() -> None:
    state = WorkerConnectionState()

    assert state.our_state is ConnectionState.PROBING
    assert state.server_kind is ServerKind.UNKNOWN
    assert state.grabs_outstanding == 0
    assert not state.wants_jobs


def test_probe_is_grab_job_uniq() -> None:
    state = WorkerConnectionState()

    assert decode_request(state.start()) == [T.GRAB_JOB_UNIQ]
    assert state.our_state is ConnectionState.PROBING
    assert state.grabs_outstanding == 0


def test_probe_answered_by_no_job_is_gearmand() -> None:
    state = WorkerConnectionState()
    state.start()

    event = receive(state, T.NO_JOB)

    assert event == ServerKindDetected(ServerKind.GEARMAND)
    assert state.server_kind is ServerKind.GEARMAND
    assert state.our_state is ConnectionState.AWAKE
    assert state.wants_jobs
    assert state.grabs_outstanding == 0


def test_gearmand_grab_is_grab_job_uniq() -> None:
    state = gearmand_state()

    assert state.grab() == GRAB_JOB_UNIQ
    assert state.grabs_outstanding == 1


def test_probe_answered_by_error_is_perl() -> None:
    state = WorkerConnectionState()
    state.start()

    event = receive(state, T.ERROR, b"server_error", b"")

    assert event == ServerKindDetected(ServerKind.PERL)
    assert state.server_kind is ServerKind.PERL
    assert state.our_state is ConnectionState.AWAKE
    assert state.grabs_outstanding == 0


def test_perl_grab_is_grab_job() -> None:
    state = perl_state()

    assert state.grab() == GRAB_JOB
    assert decode_request(state.grab()) == [T.GRAB_JOB]
    assert state.grabs_outstanding == 2


def test_perl_job_assign_matches_grab() -> None:
    state = perl_state()
    state.grab()

    event = receive(state, T.JOB_ASSIGN, b"H:perl:1", b"reverse", b"data")

    assert event == JobAssigned(b"H:perl:1", b"reverse", b"", b"data")
    assert state.grabs_outstanding == 0


def test_grab_while_probing_raises() -> None:
    state = WorkerConnectionState()
    state.start()

    with pytest.raises(RuntimeError, match="probing"):
        state.grab()


# ---------------------------------------------------------------------------------------------
# GRAB replies


def test_outstanding_grabs_matched_fifo() -> None:
    state = gearmand_state()
    for _ in range(3):
        state.grab()
    assert state.grabs_outstanding == 3

    first = receive(state, T.JOB_ASSIGN_UNIQ, b"H:vm:1", b"fn", b"u-1", b"one")
    assert first == JobAssigned(b"H:vm:1", b"fn", b"u-1", b"one")
    assert state.grabs_outstanding == 2
    assert state.our_state is ConnectionState.AWAKE

    second = receive(state, T.JOB_ASSIGN_UNIQ, b"H:vm:2", b"fn", b"", b"two")
    assert second == JobAssigned(b"H:vm:2", b"fn", b"", b"two")
    assert state.grabs_outstanding == 1

    third = receive(state, T.NO_JOB)
    assert third == NoJob()
    assert state.grabs_outstanding == 0
    assert state.our_state is ConnectionState.DRAINED
    assert not state.wants_jobs


def test_packets_in_one_read_match_fifo() -> None:
    state = gearmand_state()
    for _ in range(3):
        state.grab()
    data = b"".join(
        [
            encode_packet(T.JOB_ASSIGN_UNIQ, b"H:vm:1", b"fn", b"u-1", b"a\0b", magic=RES),
            encode_packet(T.NOOP, magic=RES),
            encode_packet(T.JOB_ASSIGN_UNIQ, b"H:vm:2", b"fn", b"u-2", b"c", magic=RES),
            encode_packet(T.NO_JOB, magic=RES),
        ]
    )
    parser = PacketParser(magic=RES)

    # Fed one byte at a time, as a slow socket might deliver them.
    events = []
    for index in range(len(data)):
        for packet in parser.feed(data[index : index + 1]):
            events.append(state.receive(packet))

    assert events == [
        JobAssigned(b"H:vm:1", b"fn", b"u-1", b"a\0b"),
        WakeUp(),
        JobAssigned(b"H:vm:2", b"fn", b"u-2", b"c"),
        NoJob(),
    ]
    assert state.grabs_outstanding == 0
    assert state.our_state is ConnectionState.DRAINED


def test_no_job_before_later_assignments() -> None:
    state = gearmand_state()
    state.grab()
    state.grab()

    assert receive(state, T.NO_JOB) == NoJob()
    assert state.our_state is ConnectionState.DRAINED
    assert state.grabs_outstanding == 1

    event = receive(state, T.JOB_ASSIGN_UNIQ, b"H:vm:1", b"fn", b"", b"x")
    assert event == JobAssigned(b"H:vm:1", b"fn", b"", b"x")
    assert state.grabs_outstanding == 0
    assert state.our_state is ConnectionState.DRAINED


@pytest.mark.parametrize(
    ("packet_type", "arguments", "expected"),
    [
        (
            T.JOB_ASSIGN,
            (b"H:vm:7", b"reverse", b"\0data\0with\0nul\0"),
            JobAssigned(b"H:vm:7", b"reverse", b"", b"\0data\0with\0nul\0"),
        ),
        (
            T.JOB_ASSIGN_UNIQ,
            (b"H:vm:7", b"reverse", b"u-7", b"\0data\0with\0nul\0"),
            JobAssigned(b"H:vm:7", b"reverse", b"u-7", b"\0data\0with\0nul\0"),
        ),
        (
            T.JOB_ASSIGN_ALL,
            (b"H:vm:7", b"reverse", b"u-7", b"reducer", b"\0data\0with\0nul\0"),
            JobAssigned(b"H:vm:7", b"reverse", b"u-7", b"\0data\0with\0nul\0"),
        ),
        (
            T.JOB_ASSIGN_UNIQ,
            (b"H:vm:8", b"fn", b"", b""),
            JobAssigned(b"H:vm:8", b"fn", b"", b""),
        ),
    ],
    ids=["job_assign", "job_assign_uniq", "job_assign_all", "empty_unique_and_data"],
)
def test_assignment_becomes_job_assigned(
    packet_type: PacketType, arguments: tuple[bytes, ...], expected: JobAssigned
) -> None:
    state = gearmand_state()
    state.grab()

    event = receive(state, packet_type, *arguments)

    assert event == expected
    assert state.grabs_outstanding == 0
    assert state.our_state is ConnectionState.AWAKE


@pytest.mark.parametrize("packet_type", [T.JOB_ASSIGN, T.JOB_ASSIGN_UNIQ, T.JOB_ASSIGN_ALL])
def test_assignment_without_grab_raises(packet_type: PacketType) -> None:
    state = gearmand_state()
    arguments = {
        T.JOB_ASSIGN: (b"H:vm:1", b"fn", b"x"),
        T.JOB_ASSIGN_UNIQ: (b"H:vm:1", b"fn", b"u", b"x"),
        T.JOB_ASSIGN_ALL: (b"H:vm:1", b"fn", b"u", b"r", b"x"),
    }[packet_type]

    with pytest.raises(RemoteProtocolError, match=packet_type.name) as caught:
        receive(state, packet_type, *arguments)

    assert "no GRAB outstanding" in str(caught.value)
    assert caught.value.drop_connection
    assert state.our_state is ConnectionState.ERROR


def test_assignment_while_probing_raises() -> None:
    state = WorkerConnectionState()
    state.start()

    with pytest.raises(RemoteProtocolError, match="JOB_ASSIGN_UNIQ"):
        receive(state, T.JOB_ASSIGN_UNIQ, b"H:vm:1", b"fn", b"u", b"x")

    assert state.our_state is ConnectionState.ERROR


@pytest.mark.parametrize(
    ("packet_type", "arguments"),
    [
        (T.JOB_ASSIGN_UNIQ, (b"H:vm:1", b"fn", b"u", b"x")),
        (T.JOB_CREATED, (b"H:vm:1",)),
    ],
    ids=["JOB_ASSIGN_UNIQ", "JOB_CREATED"],
)
def test_bad_reply_to_probe_counts_no_grab(
    packet_type: PacketType, arguments: tuple[bytes, ...]
) -> None:
    state = WorkerConnectionState()
    state.start()

    with pytest.raises(RemoteProtocolError):
        receive(state, packet_type, *arguments)

    # The probe took no worker slot, so a connection dropped here must hand none back.
    assert state.grabs_outstanding == 0


def test_no_job_without_grab_raises() -> None:
    state = gearmand_state()

    with pytest.raises(RemoteProtocolError, match="NO_JOB"):
        receive(state, T.NO_JOB)

    assert state.our_state is ConnectionState.ERROR


# ---------------------------------------------------------------------------------------------
# NOOP, PRE_SLEEP and wake()


def test_noop_between_grab_and_reply() -> None:
    state = gearmand_state()
    state.grab()

    assert receive(state, T.NOOP) == WakeUp()
    assert state.our_state is ConnectionState.AWAKE
    assert state.grabs_outstanding == 1

    event = receive(state, T.JOB_ASSIGN_UNIQ, b"H:vm:1", b"fn", b"u", b"x")
    assert event == JobAssigned(b"H:vm:1", b"fn", b"u", b"x")
    assert state.grabs_outstanding == 0


def test_noop_while_drained_with_grab_outstanding() -> None:
    state = gearmand_state()
    state.grab()
    state.grab()
    receive(state, T.NO_JOB)
    assert state.our_state is ConnectionState.DRAINED

    assert receive(state, T.NOOP) == WakeUp()
    assert state.our_state is ConnectionState.AWAKE
    assert state.grabs_outstanding == 1

    assert receive(state, T.NO_JOB) == NoJob()
    assert state.grabs_outstanding == 0
    assert state.our_state is ConnectionState.DRAINED


def test_noop_while_awake_keeps_awake() -> None:
    state = gearmand_state()

    assert receive(state, T.NOOP) == WakeUp()
    assert state.our_state is ConnectionState.AWAKE
    assert state.grabs_outstanding == 0


def test_noop_wakes_sleeping_connection() -> None:
    state = drained_state()
    assert state.pre_sleep() == PRE_SLEEP
    assert state.our_state is ConnectionState.SLEEPING

    assert receive(state, T.NOOP) == WakeUp()

    assert state.our_state is ConnectionState.AWAKE
    assert state.wants_jobs
    assert state.grab() == GRAB_JOB_UNIQ


def test_repeated_noop_is_harmless() -> None:
    state = drained_state()
    state.pre_sleep()

    for _ in range(3):
        assert receive(state, T.NOOP) == WakeUp()
        assert state.our_state is ConnectionState.AWAKE
        assert state.grabs_outstanding == 0

    state.grab()
    for _ in range(3):
        assert receive(state, T.NOOP) == WakeUp()
    assert state.grabs_outstanding == 1
    assert receive(state, T.NO_JOB) == NoJob()
    assert state.our_state is ConnectionState.DRAINED


def test_noop_while_probing_keeps_probe() -> None:
    state = WorkerConnectionState()
    state.start()

    assert receive(state, T.NOOP) == WakeUp()
    assert state.our_state is ConnectionState.PROBING

    assert receive(state, T.NO_JOB) == ServerKindDetected(ServerKind.GEARMAND)


def test_pre_sleep_only_when_drained() -> None:
    probing = WorkerConnectionState()
    probing.start()
    assert probing.pre_sleep() is None
    assert probing.our_state is ConnectionState.PROBING

    awake = gearmand_state()
    assert awake.pre_sleep() is None
    assert awake.our_state is ConnectionState.AWAKE

    awake.grab()
    assert awake.pre_sleep() is None
    assert awake.our_state is ConnectionState.AWAKE


def test_pre_sleep_waits_for_outstanding_grabs() -> None:
    state = gearmand_state()
    state.grab()
    state.grab()
    receive(state, T.NO_JOB)

    assert state.our_state is ConnectionState.DRAINED
    assert state.pre_sleep() is None
    assert state.our_state is ConnectionState.DRAINED

    receive(state, T.NO_JOB)

    assert state.pre_sleep() == PRE_SLEEP
    assert state.our_state is ConnectionState.SLEEPING
    assert decode_request(PRE_SLEEP) == [T.PRE_SLEEP]


def test_pre_sleep_sent_once() -> None:
    state = drained_state()

    assert state.pre_sleep() == PRE_SLEEP
    assert state.pre_sleep() is None
    assert state.our_state is ConnectionState.SLEEPING


def test_grab_while_drained_or_sleeping_raises() -> None:
    state = drained_state()
    with pytest.raises(RuntimeError, match="drained"):
        state.grab()

    state.pre_sleep()
    with pytest.raises(RuntimeError, match="sleeping"):
        state.grab()
    assert state.grabs_outstanding == 0


def test_wake_from_drained_and_sleeping() -> None:
    state = drained_state()
    state.wake()
    assert state.our_state is ConnectionState.AWAKE

    state.grab()
    receive(state, T.NO_JOB)
    state.pre_sleep()
    assert state.our_state is ConnectionState.SLEEPING

    state.wake()
    assert state.our_state is ConnectionState.AWAKE
    assert state.grab() == GRAB_JOB_UNIQ
    assert state.grabs_outstanding == 1


def test_wake_leaves_probing_and_awake_alone() -> None:
    probing = WorkerConnectionState()
    probing.start()
    probing.wake()
    assert probing.our_state is ConnectionState.PROBING

    awake = gearmand_state()
    awake.grab()
    awake.wake()
    assert awake.our_state is ConnectionState.AWAKE
    assert awake.grabs_outstanding == 1


# ---------------------------------------------------------------------------------------------
# ERROR, ECHO_RES and unexpected packets


def test_error_after_probe_is_server_error() -> None:
    state = gearmand_state()

    event = receive(state, T.ERROR, b"JOB_NOT_FOUND", b"Job given in work result not found")

    assert event == ServerErrorReceived(b"JOB_NOT_FOUND", b"Job given in work result not found")
    assert state.our_state is ConnectionState.AWAKE
    assert state.server_kind is ServerKind.GEARMAND


def test_error_is_not_a_grab_reply() -> None:
    state = gearmand_state()
    state.grab()

    event = receive(state, T.ERROR, b"JOB_NOT_FOUND", b"Job given in work result not found")
    assert isinstance(event, ServerErrorReceived)
    assert state.grabs_outstanding == 1
    assert state.our_state is ConnectionState.AWAKE

    assigned = receive(state, T.JOB_ASSIGN_UNIQ, b"H:vm:3", b"fn", b"u-3", b"x")
    assert assigned == JobAssigned(b"H:vm:3", b"fn", b"u-3", b"x")
    assert state.grabs_outstanding == 0


def test_perl_error_after_probe_is_server_error() -> None:
    state = perl_state()
    state.grab()

    event = receive(state, T.ERROR, b"not_worker", b"")

    assert event == ServerErrorReceived(b"not_worker", b"")
    assert state.server_kind is ServerKind.PERL
    assert state.grabs_outstanding == 1


def test_echo_res_keeps_state() -> None:
    state = drained_state()
    state.pre_sleep()

    event = receive(state, T.ECHO_RES, b"ping\0with nul")

    assert event == EchoReceived(b"ping\0with nul")
    assert state.our_state is ConnectionState.SLEEPING


@pytest.mark.parametrize(
    ("packet_type", "arguments"),
    [
        (T.JOB_CREATED, (b"H:vm:1",)),
        (T.STATUS_RES, (b"H:vm:1", b"1", b"1", b"3", b"7")),
        (T.WORK_COMPLETE, (b"H:vm:1", b"result")),
        (T.OPTION_RES, (b"exceptions",)),
        (T.STATUS_RES_UNIQUE, (b"u-1", b"1", b"0", b"0", b"0", b"1")),
    ],
    ids=lambda value: value.name if isinstance(value, PacketType) else "",
)
def test_unexpected_packet_raises(packet_type: PacketType, arguments: tuple[bytes, ...]) -> None:
    state = gearmand_state()
    state.grab()

    with pytest.raises(RemoteProtocolError, match=packet_type.name) as caught:
        receive(state, packet_type, *arguments)

    assert caught.value.drop_connection
    assert state.our_state is ConnectionState.ERROR


def test_unexpected_packet_message_names_prior_state() -> None:
    state = drained_state()

    with pytest.raises(RemoteProtocolError) as caught:
        receive(state, T.JOB_CREATED, b"H:vm:1")

    # The message names the state the connection was in when the packet arrived.
    assert "drained" in str(caught.value)


# ---------------------------------------------------------------------------------------------
# Random sequences


class GrabBookkeeping(RuleBasedStateMachine):
    """Random grab, reply, NOOP, ERROR, PRE_SLEEP and wake sequences against a simple model.

    The model counts outstanding GRABs and tracks AWAKE, DRAINED and SLEEPING. Every packet
    goes through the encoder and the parser, split at a random point.
    """

    def __init__(self) -> None:
        super().__init__()
        self.state = WorkerConnectionState()
        self.parser = PacketParser(magic=RES)
        self.outstanding = 0
        self.model = ConnectionState.PROBING
        self.handles = 0

    def deliver(self, data: bytes, split: int) -> list[object]:
        cut = split % (len(data) + 1)
        events = []
        for chunk in (data[:cut], data[cut:]):
            for packet in self.parser.feed(chunk):
                events.append(self.state.receive(packet))
        return events

    @initialize(perl=st.booleans(), split=st.integers(0, 64))
    def probe(self, perl: bool, split: int) -> None:
        assert self.state.start() == GRAB_JOB_UNIQ
        if perl:
            reply = encode_packet(T.ERROR, b"server_error", b"", magic=RES)
        else:
            reply = encode_packet(T.NO_JOB, magic=RES)

        events = self.deliver(reply, split)

        kind = ServerKind.PERL if perl else ServerKind.GEARMAND
        assert events == [ServerKindDetected(kind)]
        self.model = ConnectionState.AWAKE

    @precondition(lambda self: self.model is ConnectionState.AWAKE)
    @rule(count=st.integers(1, 4))
    def grab(self, count: int) -> None:
        expected = GRAB_JOB if self.state.server_kind is ServerKind.PERL else GRAB_JOB_UNIQ
        for _ in range(count):
            assert self.state.grab() == expected
            self.outstanding += 1

    @precondition(lambda self: self.outstanding > 0)
    @rule(data=st.binary(max_size=16), split=st.integers(0, 64))
    def receive_job(self, data: bytes, split: int) -> None:
        self.handles += 1
        handle = b"H:vm:%d" % self.handles
        if self.state.server_kind is ServerKind.PERL:
            packet = encode_packet(T.JOB_ASSIGN, handle, b"fn", data, magic=RES)
            expected = JobAssigned(handle, b"fn", b"", data)
        else:
            packet = encode_packet(T.JOB_ASSIGN_UNIQ, handle, b"fn", b"u", data, magic=RES)
            expected = JobAssigned(handle, b"fn", b"u", data)

        assert self.deliver(packet, split) == [expected]
        self.outstanding -= 1

    @precondition(lambda self: self.outstanding > 0)
    @rule(split=st.integers(0, 64))
    def receive_no_job(self, split: int) -> None:
        assert self.deliver(encode_packet(T.NO_JOB, magic=RES), split) == [NoJob()]
        self.outstanding -= 1
        if self.model is ConnectionState.AWAKE:
            self.model = ConnectionState.DRAINED

    @rule(split=st.integers(0, 64))
    def receive_noop(self, split: int) -> None:
        assert self.deliver(encode_packet(T.NOOP, magic=RES), split) == [WakeUp()]
        if self.model in (ConnectionState.DRAINED, ConnectionState.SLEEPING):
            self.model = ConnectionState.AWAKE

    @rule(split=st.integers(0, 64))
    def receive_error(self, split: int) -> None:
        packet = encode_packet(T.ERROR, b"JOB_NOT_FOUND", b"not found", magic=RES)
        assert self.deliver(packet, split) == [ServerErrorReceived(b"JOB_NOT_FOUND", b"not found")]

    @rule()
    def pre_sleep(self) -> None:
        packet = self.state.pre_sleep()
        if self.model is ConnectionState.DRAINED and self.outstanding == 0:
            assert packet == PRE_SLEEP
            self.model = ConnectionState.SLEEPING
        else:
            assert packet is None

    @rule()
    def wake(self) -> None:
        self.state.wake()
        if self.model in (ConnectionState.DRAINED, ConnectionState.SLEEPING):
            self.model = ConnectionState.AWAKE

    @invariant()
    def matches_model(self) -> None:
        if self.model is ConnectionState.PROBING:
            return
        assert self.state.grabs_outstanding == self.outstanding
        assert self.state.our_state is self.model
        assert self.state.wants_jobs == (self.model is ConnectionState.AWAKE)
        assert self.parser.buffered == 0


GrabBookkeeping.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None
)
test_grab_bookkeeping = GrabBookkeeping.TestCase
