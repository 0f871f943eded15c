"""GearmanWorker: python-gearman 2.x's worker API, running many jobs at once on gevent.

Theory of operation
-------------------
Each job server connection runs in its own greenlet (:class:`WorkerConnection`)
and each running job in its own greenlet, taken from a set of parked greenlets
that are reused from job to job. The worker owns one count of free
*slots*, ``max_jobs`` in all, shared by every connection:

- A connection takes a slot before it sends a GRAB. NO_JOB gives the slot back;
  a job assignment keeps it until the job's greenlet has sent its result. So the
  worker never holds a job it cannot start.
- Replies to GRABs come back in order, so a connection keeps several GRABs
  outstanding (up to :data:`MAX_OUTSTANDING_GRABS`) and needs no round trip per
  job. Each assignment asks for up to two more jobs while slots are free, which
  ramps the pipeline up quickly after a wake-up and stops at the first NO_JOB.
- A slot freed by a finished job goes first to a connection that was woken while
  no slot was free (oldest first, so no server is starved), otherwise back to
  the job's own connection, whose result and next GRAB then leave in one write.
- A connection that got NO_JOB sends PRE_SLEEP once its GRABs are answered, and
  grabs again on NOOP. Because gearmand sends at most one NOOP per PRE_SLEEP, a
  sleeping connection also grabs again on a timer while slots are free.

When a connection drops, every job it handed out is abandoned: the job server
has already requeued it, and handles restart at 1 after a server restart, so a
late result could complete somebody else's job. :class:`~geargevent.errors.JobAbandoned`
is raised in the handler where it waits, and nothing more is sent for the job.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import gevent
import gevent.event
import gevent.monkey
import greenlet
from gevent import socket

from geargevent._framing import DEFAULT_MAX_PACKET_SIZE, PacketParser, encode_packet
from geargevent._names import validate_client_id, validate_function_name
from geargevent._packets import Packet, PacketType
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
from geargevent.connection import Backoff, ServerAddress, Writer, open_connection, parse_host_list
from geargevent.encoders import DataEncoder, Encoder, encode_with, resolve_encoder
from geargevent.errors import (
    ConnectionLostError,
    EncodingError,
    JobAbandoned,
    LocalProtocolError,
    ProtocolError,
)
from geargevent.job import GearmanJob

__all__ = [
    "DEFAULT_MAX_JOBS",
    "DEFAULT_REGRAB_INTERVAL",
    "MAX_OUTSTANDING_GRABS",
    "GearmanWorker",
    "WorkerConnection",
]

log = logging.getLogger("geargevent.worker")
connection_log = logging.getLogger("geargevent.connection")

# Jobs one worker process runs at once by default. Handlers are meant
# to be I/O-bound; CPU-bound handlers should use max_jobs=1 per process.
DEFAULT_MAX_JOBS = 100

# A sleeping connection with free slots sends a GRAB at least this often (or at
# work()'s poll_timeout if that is shorter), in case a NOOP was lost.
DEFAULT_REGRAB_INTERVAL = 10.0

# GRABs one connection keeps outstanding at most; more gains nothing once the
# round trip is covered, and each unanswered GRAB reserves a slot.
MAX_OUTSTANDING_GRABS = 32

_RECV_SIZE = 256 * 1024

# Seconds between two log records for ERROR packets with the same code.
ERROR_LOG_INTERVAL = 10.0

# Parked job greenlets kept for reuse at most; more are left to end.
MAX_IDLE_RUNNERS = 1024

Handler = Callable[["GearmanWorker", GearmanJob], Any]
F = TypeVar("F", bound=Handler)

_monkey_warning_logged = False

# The real thread id even after monkey-patching, which makes threading report
# greenlet ids instead.
_get_thread_ident = gevent.monkey.get_original("_thread", "get_ident")


@dataclass(slots=True)
class _Function:
    name: bytes
    callback: Handler
    timeout: float | None
    server_timeout: float | None
    encoder: Encoder | None


class WorkerConnection:
    """One job server connection of a worker, served by its own greenlet.

    Attributes:
        address: the job server.
        generation: incremented on every new TCP connection; a job remembers the
            generation that assigned it, and results of older generations are
            never sent.
        server_kind: gearmand or the Perl job server, once detected.
        connected: True while a TCP connection is open.
    """

    def __init__(self, worker: GearmanWorker, address: ServerAddress) -> None:
        self.worker = worker
        self.address = address
        self.generation = 0
        self.connected = False
        self.ready = False
        self.server_kind = ServerKind.UNKNOWN
        self.jobs: dict[bytes, GearmanJob] = {}
        self.functions: dict[bytes, _Function] = {}
        self.state = WorkerConnectionState()
        self.writer: Writer | None = None
        self.waiting_for_slot = False
        self.backoff = Backoff(
            worker.reconnect_delay_min, worker.reconnect_delay_max, worker.reconnect_delay_factor
        )
        self._sock: socket.socket | None = None
        self._running: collections.Counter[bytes] = collections.Counter()
        self._cant_do_pending: set[bytes] = set()
        self._unsupported_logged: set[str] = set()
        self._outage_started: float | None = None
        self._error_log: dict[str, tuple[float, int]] = {}
        self.greenlet: gevent.Greenlet | None = None

    def __repr__(self) -> str:
        return f"<WorkerConnection {self.address} generation={self.generation}>"

    # The connection greenlet: connect, serve, and reconnect with backoff until
    # the worker stops.

    def run(self) -> None:
        worker = self.worker
        while not worker._stopping:
            try:
                sock = open_connection(
                    self.address, timeout=worker.connect_timeout, resolver=worker.resolver
                )
            except (Exception, gevent.Timeout) as exc:
                # OSError for refused or unresolvable servers; anything else comes
                # from a user-supplied resolver and is retried the same way.
                self._connect_failed(exc)
                gevent.sleep(self.backoff.next_delay())
                continue
            # The worker may have begun to stop while this greenlet waited.
            if worker.is_stopping():
                sock.close()
                return
            self._connected(sock)
            reason = self._serve(sock)
            self._close_session(reason)
            if worker.is_stopping():
                return
            gevent.sleep(self.backoff.next_delay())

    def _connect_failed(self, exc: BaseException) -> None:
        if self._outage_started is None:
            self._outage_started = time.monotonic()
            connection_log.warning(
                "cannot connect to job server %s: %s; retrying with backoff (up to %.1f s apart)",
                self.address,
                exc,
                self.worker.reconnect_delay_max,
            )
        else:
            connection_log.debug("connect.failed server=%s error=%s", self.address, exc)

    def _connected(self, sock: socket.socket) -> None:
        self.generation += 1
        self._sock = sock
        self.connected = True
        self.ready = False
        self.state = WorkerConnectionState()
        self.writer = Writer(sock, str(self.address))
        self.functions = {}
        self._running.clear()
        self._cant_do_pending.clear()
        if self._outage_started is not None:
            connection_log.info(
                "reconnected to job server %s after %.1f s and %d attempts",
                self.address,
                time.monotonic() - self._outage_started,
                self.backoff.attempts,
            )
            self._outage_started = None
        else:
            connection_log.info("connected to job server %s", self.address)
        self.backoff.reset()
        self.writer.write(self.state.start())

    def _serve(self, sock: socket.socket) -> BaseException:
        """Read and dispatch packets until the connection fails; return why it ended."""
        parser = PacketParser(max_packet_size=self.worker.max_packet_size)
        handle = self._handle_packet
        sleeping_timeout: float | None = None
        state = self.state
        try:
            while True:
                timeout = (
                    self.worker._regrab_interval
                    if state.our_state is ConnectionState.SLEEPING
                    else None
                )
                if timeout != sleeping_timeout:
                    sock.settimeout(timeout)
                    sleeping_timeout = timeout
                try:
                    data = sock.recv(_RECV_SIZE)
                except TimeoutError:
                    self._regrab_timer_fired()
                    continue
                if not data:
                    return ConnectionLostError(f"job server {self.address} closed the connection")
                for packet in parser.feed(data):
                    handle(packet)
        except ProtocolError as exc:
            connection_log.error(
                "invalid data from job server %s, reconnecting: %s", self.address, exc
            )
            return exc
        except OSError as exc:
            return exc
        except Exception as exc:
            # A bug here must not kill the connection greenlet silently.
            connection_log.exception(
                "internal error while serving job server %s; reconnecting", self.address
            )
            return exc

    def _close_session(self, reason: BaseException) -> None:
        worker = self.worker
        self.connected = False
        self.ready = False
        writer, self.writer = self.writer, None
        if writer is not None:
            writer.close()
        if self._sock is not None:
            self._sock.close()
            self._sock = None

        # Abandon every job this connection handed out and return their slots
        # and the slots reserved by unanswered GRABs.
        abandoned = list(self.jobs.values())
        self.jobs.clear()
        worker._free_slots += self.state.grabs_outstanding
        if self.waiting_for_slot:
            self.waiting_for_slot = False
            with contextlib.suppress(ValueError):
                worker._waiting.remove(self)
        for job in abandoned:
            job.connection_lost = True
            if job.greenlet is not None and job.greenlet is not gevent.getcurrent():
                worker._hub.loop.run_callback(worker._throw_abandoned, job, job.greenlet)
        worker._changed.set()
        worker._activity.set()

        if worker._stopping:
            connection_log.debug("close.complete server=%s", self.address)
        elif self._outage_started is None:
            self._outage_started = time.monotonic()
            connection_log.warning(
                "lost connection to job server %s (%s); %d running job(s) abandoned to the "
                "server's requeue; reconnecting",
                self.address,
                reason,
                len(abandoned),
            )
        worker._distribute_free_slots()

    def close(self) -> None:
        """Close the socket now; the connection greenlet then ends its session."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)

    # Packets from the server.

    def _handle_packet(self, packet: Packet) -> None:
        event = self.state.receive(packet)
        if type(event) is JobAssigned:
            self._job_assigned(event)
        elif type(event) is NoJob:
            self.worker._free_slots += 1
            self._maybe_sleep()
            self.worker._changed.set()
            self.worker._distribute_free_slots()
        elif type(event) is WakeUp:
            self.top_up(1)
        elif type(event) is ServerKindDetected:
            self._server_detected(event.kind)
        elif type(event) is ServerErrorReceived:
            self._server_error(event)
        elif type(event) is EchoReceived:
            connection_log.debug("echo.complete server=%s", self.address)

    def _server_detected(self, kind: ServerKind) -> None:
        self.server_kind = kind
        self.ready = True
        connection_log.debug("probe.complete server=%s kind=%s", self.address, kind.value)
        packets = []
        if self.worker._client_id is not None:
            packets.append(encode_packet(PacketType.SET_CLIENT_ID, self.worker._client_id))
        for function in self.worker._functions.values():
            packets.append(self._can_do(function))
            self.functions[function.name] = function
        if packets:
            self._write(b"".join(packets))
        self.top_up(1)

    def _server_error(self, event: ServerErrorReceived) -> None:
        code = event.code.decode("utf-8", "replace")
        text = event.text.decode("utf-8", "replace")
        # ERROR names no job. JOB_NOT_FOUND (gearmand) and not_worker (Perl)
        # mean the server no longer counts a result's job as ours. Repeats are
        # counted and logged at most once per ERROR_LOG_INTERVAL per code.
        now = time.monotonic()
        last_logged, suppressed = self._error_log.get(code, (float("-inf"), 0))
        if now - last_logged < ERROR_LOG_INTERVAL:
            self._error_log[code] = (last_logged, suppressed + 1)
            return
        self._error_log[code] = (now, 0)
        repeats = f" ({suppressed} more since the last report)" if suppressed else ""
        connection_log.warning(
            "job server %s returned ERROR %s: %s%s", self.address, code, text, repeats
        )

    def _can_do(self, function: _Function) -> bytes:
        if function.server_timeout is None:
            return encode_packet(PacketType.CAN_DO, function.name)
        # gearmand reads CAN_DO_TIMEOUT in milliseconds, the Perl server in seconds.
        if self.server_kind is ServerKind.PERL:
            value = max(1, round(function.server_timeout))
        else:
            value = max(1, round(function.server_timeout * 1000))
        return encode_packet(PacketType.CAN_DO_TIMEOUT, function.name, str(value).encode())

    def _job_assigned(self, event: JobAssigned) -> None:
        worker = self.worker
        job = GearmanJob(
            self, self.generation, event.handle, event.function, event.unique, event.data
        )
        function = self.functions.get(event.function)
        if function is None:
            # Only possible if the server assigns a function this connection
            # never registered; answering keeps the job from hanging.
            log.error(
                "job %s is for function %r, which is not registered on %s; failing it",
                job.handle,
                job.task,
                self.address,
            )
            job.answered = True
            self._write(encode_packet(PacketType.WORK_FAIL, event.handle))
            worker._free_slots += 1
            worker._distribute_free_slots()
            self._maybe_sleep()
            return
        job._function_spec = function
        self.jobs[event.handle] = job
        self._running[event.function] += 1
        worker._start_job(job, function)
        worker._activity.set()
        self.top_up(2)
        # A GRAB answered by NO_JOB before this one drained the connection;
        # with this reply the last GRAB is in, so it may now sleep.
        self._maybe_sleep()

    def _maybe_sleep(self) -> None:
        packet = self.state.pre_sleep()
        if packet is not None:
            self._write(packet)

    def _regrab_timer_fired(self) -> None:
        if self.worker._free_slots > 0 and not self.worker._stopping:
            connection_log.debug("regrab.started server=%s", self.address)
            self.state.wake()
            self.top_up(1)

    # Slots and GRABs.

    def top_up(self, extra: int) -> None:
        """Send up to ``extra`` GRABs while slots are free and the connection is awake."""
        worker = self.worker
        state = self.state
        if not self.ready or worker._stopping or not state.wants_jobs:
            return
        packets = []
        while (
            extra > 0 and worker._free_slots > 0 and state.grabs_outstanding < MAX_OUTSTANDING_GRABS
        ):
            worker._free_slots -= 1
            packets.append(state.grab())
            extra -= 1
        if packets:
            self._write(packets[0] if len(packets) == 1 else b"".join(packets))
        elif state.grabs_outstanding == 0 and not self.waiting_for_slot:
            # Awake with nothing outstanding and no slot free: first in line
            # for the next slot that frees up.
            self.waiting_for_slot = True
            worker._waiting.append(self)

    def _write(self, data: bytes) -> None:
        if self.writer is not None:
            self.writer.write(data)

    def job_finished(self, job: GearmanJob) -> None:
        """Forget a finished job and send a deferred CANT_DO once its function is idle."""
        if job.generation != self.generation or self.jobs.pop(job.handle_bytes, None) is None:
            return
        function = job.function
        self._running[function] -= 1
        if self._running[function] <= 0:
            del self._running[function]
            if function in self._cant_do_pending:
                self._cant_do_pending.discard(function)
                self.functions.pop(function, None)
                self._write(encode_packet(PacketType.CANT_DO, function))

    # Registration changes while connected.

    def register(self, function: _Function) -> None:
        if not self.ready:
            return
        self._cant_do_pending.discard(function.name)
        previous = self.functions.get(function.name)
        self.functions[function.name] = function
        if previous is None or previous.server_timeout != function.server_timeout:
            self._write(self._can_do(function))

    def unregister(self, name: bytes) -> None:
        if not self.ready or name not in self.functions:
            return
        # CANT_DO makes gearmand requeue every job of that function this
        # connection holds, so it waits until they are finished.
        if self._running.get(name):
            self._cant_do_pending.add(name)
        else:
            del self.functions[name]
            self._write(encode_packet(PacketType.CANT_DO, name))

    def set_client_id(self, client_id: bytes) -> None:
        if self.ready:
            self._write(encode_packet(PacketType.SET_CLIENT_ID, client_id))

    def send_job_packet(self, job: GearmanJob, data: bytes, *, terminal: bool) -> bool:
        """Queue a packet for ``job``; False if its connection generation has ended."""
        if job.connection_lost or job.generation != self.generation or self.writer is None:
            connection_log.debug(
                "send.skipped server=%s handle=%s reason=connection-lost", self.address, job.handle
            )
            return False
        if terminal:
            self.writer.write(data, urgent=True)
            return True
        return self.writer.write_or_wait(data, urgent=True)

    def supports(self, feature: str) -> bool:
        """Tell whether the server takes WORK_DATA and WORK_WARNING (Perl does not)."""
        if self.server_kind is not ServerKind.PERL:
            return True
        if feature not in self._unsupported_logged:
            self._unsupported_logged.add(feature)
            log.warning(
                "the Perl job server at %s does not support %s; such updates are dropped",
                self.address,
                feature,
            )
        return False


class GearmanWorker:
    """A Gearman worker that runs up to ``max_jobs`` jobs at once.

    Compatible with python-gearman 2.x's ``GearmanWorker``: register functions
    with :meth:`register_task`, then call :meth:`work`. Handlers are called as
    ``fn(worker, job)`` in their own greenlet and return the result.

    Args:
        host_list: job servers, each ``'host'``, ``'host:port'``, ``'[::1]:4730'``,
            ``(host, port)`` or ``{'host': ..., 'port': ...}``; the port defaults
            to 4730.
        max_jobs: jobs run at once across all servers (default 100).
        data_encoder: encoder for job data and results, overriding the class
            attribute ``data_encoder``; a class, an instance or ``"raw"``,
            ``"json"``, ``"msgpack"``.
        client_id: sent as SET_CLIENT_ID on every connection.
        connect_timeout: seconds allowed for each TCP connect.
        max_packet_size: the largest packet payload accepted from a server.
        resolver: ``resolver(host, port) -> [(family, sockaddr), ...]``, used in
            place of gevent's resolver (for tests, or custom name services).

    Reconnect delays grow from ``reconnect_delay_min`` (0.25 s) by
    ``reconnect_delay_factor`` (2) up to ``reconnect_delay_max`` (5 s), each drawn
    from the upper half of its range; set them on a subclass or instance.
    """

    data_encoder: Any = DataEncoder
    reconnect_delay_min = 0.25
    reconnect_delay_max = 5.0
    reconnect_delay_factor = 2.0
    regrab_interval = DEFAULT_REGRAB_INTERVAL

    def __init__(
        self,
        host_list: Iterable[Any] | str | None = None,
        *,
        max_jobs: int = DEFAULT_MAX_JOBS,
        data_encoder: Encoder | type | str | None = None,
        client_id: str | bytes | None = None,
        connect_timeout: float = 5.0,
        max_packet_size: int = DEFAULT_MAX_PACKET_SIZE,
        resolver: Any = None,
    ) -> None:
        if not isinstance(max_jobs, int) or max_jobs < 1:
            raise ValueError(f"max_jobs must be an int >= 1, got {max_jobs!r}")
        if connect_timeout <= 0:
            raise ValueError(f"connect_timeout must be > 0 seconds, got {connect_timeout!r}")
        self.addresses = parse_host_list(host_list)
        self.max_jobs = max_jobs
        if data_encoder is not None:
            self.data_encoder = resolve_encoder(data_encoder)
        else:
            self.data_encoder = resolve_encoder(type(self).data_encoder)
        self.connect_timeout = connect_timeout
        self.max_packet_size = max_packet_size
        self.resolver = resolver
        self._client_id: bytes | None = None
        if client_id is not None:
            self.set_client_id(client_id)
        self._functions: dict[bytes, _Function] = {}
        self.connections = [WorkerConnection(self, address) for address in self.addresses]

        self._free_slots = max_jobs
        self._waiting: collections.deque[WorkerConnection] = collections.deque()
        self._working = False
        self._stopping = False
        self._stopped = gevent.event.Event()
        self._changed = gevent.event.Event()
        self._activity = gevent.event.Event()
        self._exit: BaseException | None = None
        self._regrab_interval = self.regrab_interval
        self._shutdown_greenlet: gevent.Greenlet | None = None
        self._hub = gevent.get_hub()
        self._hub_thread = _get_thread_ident()
        self._idle_runners: list[greenlet.greenlet] = []

    # Registration, python-gearman style.

    def set_client_id(self, client_id: str | bytes) -> None:
        """Set the id shown by the admin ``workers`` command, on every connection."""
        self._client_id = validate_client_id(client_id)
        for connection in getattr(self, "connections", ()):
            connection.set_client_id(self._client_id)

    def register_task(
        self,
        task: str | bytes,
        callback_function: Handler | None = None,
        timeout: float | None = None,
        *,
        data_encoder: Encoder | type | str | None = None,
        server_timeout: float | None = None,
    ) -> Any:
        """Register ``callback_function(worker, job)`` for the Gearman function ``task``.

        Works before and during :meth:`work`, and as a decorator when the callback
        is omitted: ``@worker.register_task("reverse")``.

        Args:
            timeout: seconds a job may run. At the deadline gevent.Timeout is
                raised in the handler, and the job is answered with a failure
                saying it timed out.
            data_encoder: an encoder for this function only.
            server_timeout: also send CAN_DO_TIMEOUT with this many seconds. Off
                by default: gearmand 1.1.x keeps one timer per connection, which
                with several jobs per connection requeues the wrong job and can
                take jobs from other workers.

        Raises:
            ValueError: an empty name, or one with NUL, whitespace or control
                characters; a timeout that is not positive.
            TypeError: a callback that is not callable.
        """
        if callback_function is None:

            def decorator(function: F) -> F:
                self.register_task(
                    task,
                    function,
                    timeout,
                    data_encoder=data_encoder,
                    server_timeout=server_timeout,
                )
                return function

            return decorator
        name = validate_function_name(task)
        if not callable(callback_function):
            raise TypeError(
                f"callback for function {task!r} is not callable: {callback_function!r}"
            )
        for label, value in (("timeout", timeout), ("server_timeout", server_timeout)):
            if value is not None and not value > 0:
                raise ValueError(
                    f"{label} for function {task!r} must be > 0 seconds, got {value!r}"
                )
        function = _Function(
            name,
            callback_function,
            timeout,
            server_timeout,
            resolve_encoder(data_encoder) if data_encoder is not None else None,
        )
        self._functions[name] = function
        for connection in self.connections:
            connection.register(function)
        return callback_function

    def unregister_task(self, task: str | bytes) -> None:
        """Stop taking jobs for ``task``; jobs already running finish normally."""
        name = validate_function_name(task)
        if self._functions.pop(name, None) is None:
            return
        for connection in self.connections:
            connection.unregister(name)

    @property
    def registered_tasks(self) -> list[str]:
        """Names of the registered functions, in registration order."""
        return [name.decode("utf-8", "surrogateescape") for name in self._functions]

    # The work loop.

    def work(self, poll_timeout: float | None = 60.0) -> None:
        """Serve jobs until :meth:`shutdown`, or until a hook returns False.

        Calls :meth:`after_poll` after each ``poll_timeout`` seconds without
        activity, and after activity, at most once per wake-up. Activity means
        a job was assigned or a connection closed; the worker's own timed GRABs
        that find nothing do not count. Job servers being
        down never ends it: it keeps reconnecting.

        Raises:
            SystemExit, KeyboardInterrupt: a handler raised one. The worker
                closed its connections at once without answering any running
                job, so the job servers requeue them (the way python-gearman
                users force a retry by exiting).
        """
        if self._working:
            raise RuntimeError("work() is already running on this worker")
        if poll_timeout is not None and poll_timeout <= 0:
            raise ValueError(f"poll_timeout must be > 0 seconds or None, got {poll_timeout!r}")
        self._check_monkey_patching()
        self._hub = gevent.get_hub()
        self._hub_thread = _get_thread_ident()
        self._working = True
        self._stopping = False
        self._exit = None
        self._stopped.clear()
        self._free_slots = self.max_jobs
        self._waiting.clear()
        self._regrab_interval = (
            self.regrab_interval
            if poll_timeout is None
            else min(poll_timeout, self.regrab_interval)
        )
        for connection in self.connections:
            connection.backoff = Backoff(
                self.reconnect_delay_min, self.reconnect_delay_max, self.reconnect_delay_factor
            )
            connection.greenlet = gevent.spawn(connection.run)
            connection.greenlet.name = f"geargevent connection {connection.address}"
        log.info(
            "worker started: %d server(s), functions %s, max_jobs=%d",
            len(self.connections),
            self.registered_tasks,
            self.max_jobs,
        )
        try:
            while not self._stopped.is_set():
                activity = self._activity.wait(poll_timeout)
                self._activity.clear()
                if self._stopped.is_set() or self._exit is not None:
                    break
                if self._stopping:
                    continue
                if not self.after_poll(bool(activity)):
                    log.info("after_poll returned False; shutting down gracefully")
                    self.shutdown()
            if self._shutdown_greenlet is not None and self._exit is None:
                self._shutdown_greenlet.join()
        finally:
            self._finish()
        if self._exit is not None:
            raise self._exit

    def is_stopping(self) -> bool:
        """True from the moment :meth:`shutdown` is called until :meth:`work` starts again."""
        return self._stopping

    def after_poll(self, any_activity: bool) -> bool:
        """Hook called from :meth:`work`; return False to stop gracefully."""
        return True

    def after_job(self) -> bool:
        """Hook called in a job's greenlet after the job is answered; False stops."""
        return True

    def shutdown(self, graceful: bool = True, timeout: float | None = None) -> None:
        """Stop the worker; :meth:`work` returns once it is done.

        Graceful (the default): send no more GRABs, let running jobs finish and
        deliver their results for up to ``timeout`` seconds (no limit if None),
        then close. Jobs still running then are abandoned, and the server
        requeues them. Not graceful: close every connection at once.

        Returns at once; it may be called from a job, another greenlet or a
        signal handler.
        """
        if self._stopping:
            if not graceful:
                self._close_all()
            return
        self._stopping = True
        log.info("worker shutting down (%s)", "graceful" if graceful else "immediate")
        if not self._working:
            self._close_all()
            self._stopped.set()
            return
        if graceful:
            self._shutdown_greenlet = gevent.spawn(self._drain, timeout)
        else:
            self._close_all()
            self._stopped.set()
            self._activity.set()

    def _drain(self, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._busy():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                log.warning(
                    "shutdown timeout of %.1f s reached with %d job(s) running; abandoning them",
                    timeout,
                    sum(len(c.jobs) for c in self.connections),
                )
                break
            self._changed.wait(remaining)
            self._changed.clear()
        for connection in self.connections:
            if connection.writer is not None:
                connection.writer.flush_and_close(5.0)
        self._close_all()
        self._stopped.set()
        self._activity.set()

    def _busy(self) -> bool:
        return any(c.jobs or (c.connected and c.state.grabs_outstanding) for c in self.connections)

    def _close_all(self) -> None:
        for connection in self.connections:
            serving = connection.greenlet
            if serving is not None and serving is not gevent.getcurrent():
                serving.kill(block=False)
            connection.close()
            if connection.connected:
                connection._close_session(ConnectionLostError("worker shut down"))

    def _finish(self) -> None:
        self._stopping = True
        self._close_all()
        for connection in self.connections:
            if connection.greenlet is not None and connection.greenlet is not gevent.getcurrent():
                connection.greenlet.join(timeout=5)
            connection.greenlet = None
        self._working = False
        log.info("worker stopped")

    def _check_monkey_patching(self) -> None:
        global _monkey_warning_logged
        if _monkey_warning_logged or self.max_jobs == 1:
            return
        if not gevent.monkey.is_module_patched("socket"):
            _monkey_warning_logged = True
            log.warning(
                "the standard library is not monkey-patched, so handlers that use blocking "
                "libraries run one at a time; call gevent.monkey.patch_all() before any "
                "other import"
            )

    # Slots.

    def _release_slot(self, job: GearmanJob) -> None:
        # Idempotent: clearing job.greenlet also tells a pending abandonment
        # that the runner has moved on.
        if job.greenlet is None:
            return
        job.greenlet = None
        self._free_slots += 1
        connection = job.connection
        connection.job_finished(job)
        self._changed.set()
        if self._waiting:
            self._distribute_free_slots()
        if self._free_slots and connection.generation == job.generation and connection.connected:
            connection.top_up(1)

    def _distribute_free_slots(self) -> None:
        while self._waiting and self._free_slots > 0 and not self._stopping:
            connection = self._waiting.popleft()
            connection.waiting_for_slot = False
            if connection.connected:
                connection.top_up(1)

    # Running one job.
    #
    # Jobs run in raw greenlets ("runners") that are parked in the hub after a
    # job and reused for the next one: creating a greenlet per job cost about as
    # much as all the rest of a trivial job's work. A runner is resumed by a hub
    # callback, as gevent resumes any waiting greenlet.

    def _start_job(self, job: GearmanJob, function: _Function) -> None:
        if self._idle_runners:
            runner = self._idle_runners.pop()
        else:
            runner = greenlet.greenlet(self._run_jobs, parent=self._hub)
        job.greenlet = runner
        # The job travels in a list that the runner empties: the arguments of a
        # greenlet's first switch stay referenced for its whole life, and a
        # parked runner must not keep its last job (and its data) alive.
        self._hub.loop.run_callback(runner.switch, [job, function])

    def _run_jobs(self, assignment: list[Any]) -> None:
        hub = self._hub
        while True:
            job, function = assignment
            assignment.clear()
            self._run_job(job, function)
            del job, function
            if self._stopping or len(self._idle_runners) >= MAX_IDLE_RUNNERS:
                return
            me = greenlet.getcurrent()
            self._idle_runners.append(me)
            while True:
                try:
                    assignment = hub.switch()
                    break
                except JobAbandoned:
                    # Thrown for a job this runner finished before the throw
                    # arrived; _throw_abandoned checks for that, so this is only
                    # a safety net. The runner stays parked.
                    continue
                except greenlet.GreenletExit:
                    # The worker was garbage-collected with this runner parked.
                    with contextlib.suppress(ValueError):
                        self._idle_runners.remove(me)
                    return

    def _throw_abandoned(self, job: GearmanJob, runner: Any) -> None:
        # Runs in the hub. The runner may have finished this job (and started
        # another) since the connection dropped; then it must not be interrupted.
        still_on_job = job.greenlet is runner
        if still_on_job and not runner.dead:
            runner.throw(JobAbandoned)

    def _run_job(self, job: GearmanJob, function: _Function) -> None:
        try:
            if job.connection_lost:
                # The connection dropped before the runner started the job.
                raise JobAbandoned
            self._execute(job, function)
        except JobAbandoned:
            log.info(
                "job %s (function %s) abandoned: connection to %s lost",
                job.handle,
                job.task,
                job.connection.address,
            )
        except gevent.GreenletExit:
            log.info("job %s (function %s) stopped before it finished", job.handle, job.task)
        except (SystemExit, KeyboardInterrupt) as exc:
            self._exit_requested(job, exc)
        except BaseException:
            # A bug in this module; the job must still be answered.
            log.exception("internal error while running job %s (function %s)", job.handle, job.task)
            self._answer_failure(job, "internal error in geargevent; see the worker's log")
        finally:
            self._release_slot(job)
        if self._stopping or not job.answered:
            return
        try:
            continue_working = self.after_job()
        except Exception:
            log.exception("after_job() raised after job %s; the worker goes on", job.handle)
            return
        if not continue_working:
            log.info("after_job returned False; shutting down gracefully")
            self.shutdown()

    def _execute(self, job: GearmanJob, function: _Function) -> None:
        encoder = function.encoder or self.data_encoder

        # Step 1: decode the data. A payload the encoder cannot read fails this
        # job before the handler runs; it would fail again on every retry.
        try:
            job.data = encoder.decode(job.raw_data)
        except Exception as exc:
            message = (
                f"cannot decode data of job {job.handle} for function {job.task} with "
                f"{_name_of(encoder)}: {type(exc).__name__}: {exc}"
            )
            log.error("%s; failing the job", message)
            self._answer_failure(job, message)
            return

        # Step 2: run the handler through the python-gearman hooks, under the
        # function's time limit if it has one. gevent.Timeout derives from
        # BaseException, so a handler's `except Exception` cannot swallow it.
        if function.timeout is None:
            self.on_job_execute(job)
        else:
            deadline = gevent.Timeout(function.timeout)
            try:
                with deadline:
                    self.on_job_execute(job)
            except gevent.Timeout as exc:
                if exc is not deadline:
                    raise
                message = (
                    f"job {job.handle} for function {job.task} timed out after "
                    f"{function.timeout:g} s"
                )
                log.error("%s; its handler was interrupted", message)
                self._answer_failure(job, message)
                return

        # Step 3: a hook overridden in a subclass may return without answering;
        # the job would then hang until the connection closes.
        if not job.answered:
            log.error(
                "job %s (function %s) was not answered by on_job_execute; failing it",
                job.handle,
                job.task,
            )
            self._answer_failure(job, "the worker did not answer the job")

    # python-gearman's overridable hooks, with the same names and call order.

    def on_job_execute(self, current_job: GearmanJob) -> bool:
        """Run the handler, then call :meth:`on_job_complete` or :meth:`on_job_exception`."""
        function = current_job._function_spec
        try:
            result = function.callback(self, current_job)
        except Exception:
            return self.on_job_exception(current_job, sys.exc_info())
        return self.on_job_complete(current_job, result)

    def on_job_exception(self, current_job: GearmanJob, exc_info: Any) -> bool:
        """Log the handler's exception and answer the job with it; return False.

        The exception reaches clients that asked for exceptions as WORK_EXCEPTION
        data built by :meth:`format_exception`, and every other client as a
        failure.
        """
        exc = exc_info[1]
        log.error(
            "job %s for function %s raised %s",
            current_job.handle,
            current_job.task,
            type(exc).__name__,
            exc_info=exc_info,
        )
        if not current_job.answered:
            self._answer_exception(current_job, exc)
        return False

    def on_job_complete(self, current_job: GearmanJob, job_result: Any) -> bool:
        """Encode the handler's result and send it as WORK_COMPLETE; return True.

        A result that cannot be encoded fails the job with a message naming the
        encoder. If the handler already answered the job, the result is ignored.
        """
        if current_job.answered:
            if job_result is not None:
                log.debug(
                    "result of job %s ignored: the handler already answered it",
                    current_job.handle,
                )
            return True
        function = current_job._function_spec
        encoder = (function.encoder if function is not None else None) or self.data_encoder
        try:
            payload = encode_with(encoder, job_result)
        except Exception as exc:
            message = (
                f"cannot encode result of job {current_job.handle} for function "
                f"{current_job.task} with {_name_of(encoder)}: {type(exc).__name__}: {exc}"
            )
            log.error("%s; failing the job", message)
            self._answer_failure(current_job, message)
            return False
        current_job.answered = True
        current_job.connection.send_job_packet(
            current_job,
            encode_packet(PacketType.WORK_COMPLETE, current_job.handle_bytes, payload),
            terminal=True,
        )
        return True

    def _exit_requested(self, job: GearmanJob, exc: BaseException) -> None:
        if self._exit is not None:
            return
        log.warning(
            "handler of job %s (function %s) raised %s; closing all connections without "
            "answering running jobs, so the job servers requeue them",
            job.handle,
            job.task,
            type(exc).__name__,
        )
        self._exit = exc
        self._stopping = True
        self._close_all()
        self._stopped.set()
        self._activity.set()

    def format_exception(self, job: GearmanJob, exc: BaseException) -> Any:
        """Build the WORK_EXCEPTION data for an exception a handler raised.

        The default is ``"ExceptionType: message"``, which the data encoder then
        encodes. Override it to send, for example, a dict with the traceback.
        """
        return f"{type(exc).__name__}: {exc}"

    def _answer_exception(self, job: GearmanJob, exc: BaseException) -> None:
        try:
            data = self.format_exception(job, exc)
        except Exception:
            log.exception("format_exception failed for job %s", job.handle)
            data = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        self._answer_failure(job, data)

    def _answer_failure(self, job: GearmanJob, data: Any) -> None:
        """Answer a job that failed, with the failure data if it can be encoded.

        Clients that sent OPTION_REQ "exceptions" receive the encoded data in a
        WORK_EXCEPTION and all others a WORK_FAIL.
        """
        if job.answered:
            return
        function = job._function_spec
        encoder = (function.encoder if function is not None else None) or self.data_encoder
        payload: bytes | None
        try:
            payload = encode_with(encoder, data)
        except Exception:
            try:
                payload = str(data).encode("utf-8", "replace")
            except Exception:
                payload = None
        if payload is None:
            packet = encode_packet(PacketType.WORK_FAIL, job.handle_bytes)
        else:
            packet = self._exception_packets(job, payload)
        job.answered = True
        job.connection.send_job_packet(job, packet, terminal=True)

    def _exception_packets(self, job: GearmanJob, payload: bytes) -> bytes:
        # gearmand ends the job on WORK_EXCEPTION and rejects a WORK_FAIL after
        # it; the Perl server keeps the job running until WORK_FAIL arrives.
        packet = encode_packet(PacketType.WORK_EXCEPTION, job.handle_bytes, payload)
        if job.connection.server_kind is ServerKind.PERL:
            packet += encode_packet(PacketType.WORK_FAIL, job.handle_bytes)
        return packet

    # In-flight updates and explicit answers, python-gearman style. The
    # poll_timeout arguments are accepted for compatibility and ignored: sends
    # are queued to the connection's writer and never wait for a reply. Updates
    # wait only while more than the writer's high-water mark (4 MiB) is queued.

    def _encode_for(self, job: GearmanJob, data: Any, what: str) -> bytes:
        function = job._function_spec
        encoder = (function.encoder if function is not None else None) or self.data_encoder
        try:
            return encode_with(encoder, data)
        except Exception as exc:
            raise EncodingError(
                f"cannot encode {what} for job {job.handle} (function {job.task}) with "
                f"{_name_of(encoder)}: {type(exc).__name__}: {exc}",
                function=job.task,
                direction="encode",
            ) from exc

    def _queued_from_thread(self, method: Callable[..., None], *arguments: Any) -> bool:
        """Hand a call made from a native thread over to the hub's thread.

        gevent sockets and events belong to the hub's thread, so a handler that
        reports progress from a thread pool must not touch them directly. The
        call is queued to the hub (calls keep their order) and runs in a new
        greenlet; this returns True at once, and errors are logged there.
        """
        if _get_thread_ident() == self._hub_thread:
            return False
        self._hub.loop.run_callback_threadsafe(gevent.spawn, self._call_logged, method, arguments)
        return True

    def _call_logged(self, method: Callable[..., None], arguments: tuple[Any, ...]) -> None:
        try:
            method(*arguments)
        except Exception:
            log.exception("%s called from a native thread failed", method.__name__)

    def _check_open(self, job: GearmanJob, what: str) -> None:
        if not isinstance(job, GearmanJob):
            raise TypeError(f"expected the GearmanJob passed to the handler, got {job!r}")
        if job.answered:
            raise LocalProtocolError(
                f"cannot send {what} for job {job.handle}: the job was already answered, "
                "and the server would reject it"
            )

    def send_job_data(
        self, current_job: GearmanJob, data: Any, poll_timeout: float | None = None
    ) -> None:
        """Send WORK_DATA: a partial result, delivered to waiting foreground clients."""
        if self._queued_from_thread(self.send_job_data, current_job, data):
            return
        self._check_open(current_job, "WORK_DATA")
        payload = self._encode_for(current_job, data, "WORK_DATA")
        if current_job.connection.supports("WORK_DATA"):
            current_job.connection.send_job_packet(
                current_job,
                encode_packet(PacketType.WORK_DATA, current_job.handle_bytes, payload),
                terminal=False,
            )

    def send_job_warning(
        self, current_job: GearmanJob, data: Any, poll_timeout: float | None = None
    ) -> None:
        """Send WORK_WARNING to waiting foreground clients."""
        if self._queued_from_thread(self.send_job_warning, current_job, data):
            return
        self._check_open(current_job, "WORK_WARNING")
        payload = self._encode_for(current_job, data, "WORK_WARNING")
        if current_job.connection.supports("WORK_WARNING"):
            current_job.connection.send_job_packet(
                current_job,
                encode_packet(PacketType.WORK_WARNING, current_job.handle_bytes, payload),
                terminal=False,
            )

    def send_job_status(
        self,
        current_job: GearmanJob,
        numerator: int,
        denominator: int,
        poll_timeout: float | None = None,
    ) -> None:
        """Send WORK_STATUS: progress as ``numerator`` of ``denominator``.

        Raises:
            ValueError: a value that is not a non-negative integer (gearmand keeps
                only what ``atoi`` makes of it).
        """
        if self._queued_from_thread(self.send_job_status, current_job, numerator, denominator):
            return
        self._check_open(current_job, "WORK_STATUS")
        values = []
        for label, value in (("numerator", numerator), ("denominator", denominator)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
                raise ValueError(
                    f"WORK_STATUS {label} must be an int from 0 to 2**32-1, got {value!r}"
                )
            values.append(str(value).encode())
        current_job.connection.send_job_packet(
            current_job,
            encode_packet(PacketType.WORK_STATUS, current_job.handle_bytes, *values),
            terminal=False,
        )

    def send_job_complete(
        self, current_job: GearmanJob, data: Any, poll_timeout: float | None = None
    ) -> None:
        """Answer the job with WORK_COMPLETE now; the handler's return value is then ignored."""
        if self._queued_from_thread(self.send_job_complete, current_job, data):
            return
        self._check_open(current_job, "WORK_COMPLETE")
        payload = self._encode_for(current_job, data, "the result")
        current_job.answered = True
        current_job.connection.send_job_packet(
            current_job,
            encode_packet(PacketType.WORK_COMPLETE, current_job.handle_bytes, payload),
            terminal=True,
        )

    def send_job_failure(self, current_job: GearmanJob, poll_timeout: float | None = None) -> None:
        """Answer the job with WORK_FAIL now."""
        if self._queued_from_thread(self.send_job_failure, current_job):
            return
        self._check_open(current_job, "WORK_FAIL")
        current_job.answered = True
        current_job.connection.send_job_packet(
            current_job,
            encode_packet(PacketType.WORK_FAIL, current_job.handle_bytes),
            terminal=True,
        )

    def send_job_exception(
        self, current_job: GearmanJob, data: Any, poll_timeout: float | None = None
    ) -> None:
        """Answer the job with WORK_EXCEPTION carrying ``data`` (and WORK_FAIL on Perl)."""
        if self._queued_from_thread(self.send_job_exception, current_job, data):
            return
        self._check_open(current_job, "WORK_EXCEPTION")
        payload = self._encode_for(current_job, data, "the exception data")
        current_job.answered = True
        current_job.connection.send_job_packet(
            current_job, self._exception_packets(current_job, payload), terminal=True
        )


def _name_of(encoder: Any) -> str:
    return getattr(encoder, "__name__", type(encoder).__name__)
