"""Per-connection protocol state of a worker, with no I/O.

Rules and theory of operation
-----------------------------
A worker connection asks for jobs with GRAB_JOB_UNIQ (GRAB_JOB on the Perl job
server). The server answers every GRAB, in the order the GRABs were sent, with
JOB_ASSIGN_UNIQ (JOB_ASSIGN) or NO_JOB, so several GRABs may be outstanding and
replies are matched from a FIFO. Nothing else answers a GRAB: ERROR names no job
and is a reply to something else (a late WORK_COMPLETE, an unsupported packet).

When a GRAB gets NO_JOB the connection is *drained*: it asks for nothing more
until it is woken. Once no GRAB is outstanding it sends PRE_SLEEP and is
*sleeping*; gearmand then sends one NOOP when work arrives, or at once if work
is already queued. A NOOP may arrive at any moment, even between a GRAB and its
reply, and at most one comes per PRE_SLEEP, so the caller also wakes a sleeping
connection on a timer.

The first thing sent on a new connection is a probe: GRAB_JOB_UNIQ with no
function registered yet. gearmand answers NO_JOB; the Perl job server, which
lacks GRAB_JOB_UNIQ, answers ERROR. That tells the two apart before any job can
be assigned, so the ERROR is never confused with a job reply.

States, as (our_state, event) -> next:

    PROBING  --NO_JOB-->  AWAKE (gearmand)      PROBING --ERROR--> AWAKE (Perl)
    AWAKE    --grab()-->  AWAKE, one more GRAB outstanding
    AWAKE    --NO_JOB-->  DRAINED
    DRAINED  --pre_sleep()-->  SLEEPING          (only with no GRAB outstanding)
    DRAINED, SLEEPING  --NOOP or wake()-->  AWAKE
    any      --bad packet-->  ERROR (the connection must be dropped)
"""

from __future__ import annotations

import collections
import enum
from typing import NamedTuple

from geargevent._framing import encode_packet
from geargevent._packets import Packet, PacketType
from geargevent.errors import RemoteProtocolError

__all__ = [
    "ConnectionState",
    "EchoReceived",
    "JobAssigned",
    "NoJob",
    "ServerErrorReceived",
    "ServerKind",
    "ServerKindDetected",
    "WakeUp",
    "WorkerConnectionState",
]


class ServerKind(enum.Enum):
    """The job server implementation at the other end of a connection."""

    UNKNOWN = "unknown"
    GEARMAND = "gearmand"
    PERL = "perl"


class ConnectionState(enum.Enum):
    PROBING = "probing"
    AWAKE = "awake"
    DRAINED = "drained"
    SLEEPING = "sleeping"
    ERROR = "error"


class JobAssigned(NamedTuple):
    handle: bytes
    function: bytes
    unique: bytes
    data: bytes


class NoJob(NamedTuple):
    pass


class WakeUp(NamedTuple):
    pass


class ServerErrorReceived(NamedTuple):
    code: bytes
    text: bytes


class EchoReceived(NamedTuple):
    data: bytes


class ServerKindDetected(NamedTuple):
    kind: ServerKind


Event = JobAssigned | NoJob | WakeUp | ServerErrorReceived | EchoReceived | ServerKindDetected

_PROBE = 0
_GRAB = 1

_NO_JOB = NoJob()
_WAKE_UP = WakeUp()

_GRAB_JOB_UNIQ = encode_packet(PacketType.GRAB_JOB_UNIQ)
_GRAB_JOB = encode_packet(PacketType.GRAB_JOB)
_PRE_SLEEP = encode_packet(PacketType.PRE_SLEEP)


class WorkerConnectionState:
    """The requests one worker connection has sent, and the meaning of its replies.

    Feed every packet from the server to :meth:`receive`; it returns an event or
    raises :class:`RemoteProtocolError`. Methods that send return the bytes to
    write; the caller writes them in the order they were returned.
    """

    def __init__(self) -> None:
        self.our_state = ConnectionState.PROBING
        self.server_kind = ServerKind.UNKNOWN
        # Requests whose reply is matched by order: the probe, then GRABs.
        self._pending: collections.deque[int] = collections.deque()
        self._grabs = 0

    @property
    def grabs_outstanding(self) -> int:
        """Number of GRABs sent and not yet answered (the probe is not counted)."""
        return self._grabs

    @property
    def wants_jobs(self) -> bool:
        """True while the connection is awake, so a free slot should become a GRAB."""
        return self.our_state is ConnectionState.AWAKE

    def start(self) -> bytes:
        """Return the probe that tells gearmand from the Perl job server."""
        self._pending.append(_PROBE)
        return _GRAB_JOB_UNIQ

    def grab(self) -> bytes:
        """Return a GRAB packet for this server and count it as outstanding."""
        if self.our_state is not ConnectionState.AWAKE:
            raise RuntimeError(f"cannot GRAB while {self.our_state.value}")
        self._pending.append(_GRAB)
        self._grabs += 1
        return _GRAB_JOB if self.server_kind is ServerKind.PERL else _GRAB_JOB_UNIQ

    def pre_sleep(self) -> bytes | None:
        """Return PRE_SLEEP if the connection is drained with no GRAB outstanding."""
        if self.our_state is ConnectionState.DRAINED and not self._pending:
            self.our_state = ConnectionState.SLEEPING
            return _PRE_SLEEP
        return None

    def wake(self) -> None:
        """Treat the connection as woken without a NOOP (the re-grab timer fired)."""
        if self.our_state in (ConnectionState.DRAINED, ConnectionState.SLEEPING):
            self.our_state = ConnectionState.AWAKE

    def receive(self, packet: Packet) -> Event:
        """Interpret one packet from the server."""
        kind = packet.type
        if kind is PacketType.JOB_ASSIGN_UNIQ:
            self._pop_grab(packet)
            handle, function, unique, data = packet.arguments
            return JobAssigned(handle, function, unique, data)
        if kind is PacketType.NO_JOB:
            if self._pending and self._pending[0] == _PROBE:
                self._pending.popleft()
                return self._detected(ServerKind.GEARMAND)
            self._pop_grab(packet)
            if self.our_state is ConnectionState.AWAKE:
                self.our_state = ConnectionState.DRAINED
            return _NO_JOB
        if kind is PacketType.NOOP:
            if self.our_state in (ConnectionState.DRAINED, ConnectionState.SLEEPING):
                self.our_state = ConnectionState.AWAKE
            return _WAKE_UP
        if kind is PacketType.JOB_ASSIGN:
            self._pop_grab(packet)
            handle, function, data = packet.arguments
            return JobAssigned(handle, function, b"", data)
        if kind is PacketType.JOB_ASSIGN_ALL:
            self._pop_grab(packet)
            handle, function, unique, _reducer, data = packet.arguments
            return JobAssigned(handle, function, unique, data)
        if kind is PacketType.ERROR:
            code, text = packet.arguments
            if self._pending and self._pending[0] == _PROBE:
                self._pending.popleft()
                return self._detected(ServerKind.PERL)
            return ServerErrorReceived(code, text)
        if kind is PacketType.ECHO_RES:
            return EchoReceived(packet.arguments[0])
        state = self.our_state.value
        self.our_state = ConnectionState.ERROR
        raise RemoteProtocolError(
            f"unexpected {kind.name} packet on a worker connection (state {state})"
        )

    def _detected(self, kind: ServerKind) -> ServerKindDetected:
        self.server_kind = kind
        self.our_state = ConnectionState.AWAKE
        return ServerKindDetected(kind)

    def _pop_grab(self, packet: Packet) -> None:
        if not self._pending or self._pending[0] != _GRAB:
            state = self.our_state.value
            self.our_state = ConnectionState.ERROR
            raise RemoteProtocolError(
                f"{packet.type.name} arrived with no GRAB outstanding (state {state})"
            )
        self._pending.popleft()
        self._grabs -= 1
