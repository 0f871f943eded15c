"""GearmanClient: submit jobs and wait for their results, from any number of greenlets.

The API follows python-gearman 2.x: :meth:`GearmanClient.submit_job` returns a
:class:`GearmanJobRequest` whose ``state``, ``result`` and ``exception`` say how
the job ended. One client may be shared by many greenlets; each request gets its
own result even with thousands in flight over one connection.

Each job server gets one connection, opened on first use and reopened after a
loss. On connect the client sends OPTION_REQ "exceptions", so a handler's
exception reaches the caller as WORK_EXCEPTION data decoded by the encoder.
Replies that carry no handle (JOB_CREATED, ERROR, OPTION_RES, STATUS_RES,
ECHO_RES) answer the requests of that connection in the order they were sent.
"""

from __future__ import annotations

import collections
import datetime
import itertools
import logging
import math
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import gevent
import gevent.event
import gevent.lock
import gevent.queue
from gevent import socket

from geargevent._framing import DEFAULT_MAX_PACKET_SIZE, PacketParser, encode_packet
from geargevent._names import validate_function_name, validate_unique
from geargevent._packets import Packet, PacketType
from geargevent.connection import ServerAddress, Writer, open_connection, parse_host_list
from geargevent.encoders import DataEncoder, Encoder, encode_with, resolve_encoder
from geargevent.errors import (
    ConnectionLostError,
    EncodingError,
    GearmanError,
    GearmanTimeoutError,
    ProtocolError,
    RemoteProtocolError,
    ServerError,
    ServerUnavailableError,
)

__all__ = [
    "JOB_COMPLETE",
    "JOB_CREATED",
    "JOB_FAILED",
    "JOB_PENDING",
    "JOB_UNKNOWN",
    "PRIORITY_HIGH",
    "PRIORITY_LOW",
    "PRIORITY_NONE",
    "ClientConnection",
    "GearmanClient",
    "GearmanJobRequest",
    "RequestJob",
]

log = logging.getLogger("geargevent.client")

PRIORITY_NONE = None
PRIORITY_LOW = "LOW"
PRIORITY_HIGH = "HIGH"

JOB_UNKNOWN = "UNKNOWN"
JOB_PENDING = "PENDING"
JOB_CREATED = "CREATED"
JOB_FAILED = "FAILED"
JOB_COMPLETE = "COMPLETE"

_SUBMIT_TYPES = {
    (PRIORITY_NONE, False): PacketType.SUBMIT_JOB,
    (PRIORITY_NONE, True): PacketType.SUBMIT_JOB_BG,
    (PRIORITY_HIGH, False): PacketType.SUBMIT_JOB_HIGH,
    (PRIORITY_HIGH, True): PacketType.SUBMIT_JOB_HIGH_BG,
    (PRIORITY_LOW, False): PacketType.SUBMIT_JOB_LOW,
    (PRIORITY_LOW, True): PacketType.SUBMIT_JOB_LOW_BG,
}

_END_OF_UPDATES = object()

_OPTION_EXCEPTIONS = encode_packet(PacketType.OPTION_REQ, b"exceptions")


class RequestJob:
    """The job part of a request: what was submitted and the handle it got."""

    __slots__ = ("connection", "data", "handle", "task", "unique")

    def __init__(self, task: str, unique: str, data: Any) -> None:
        self.task = task
        self.unique = unique
        self.data = data
        self.handle: str | None = None
        self.connection: ClientConnection | None = None

    def __repr__(self) -> str:
        return f"<RequestJob {self.handle} task={self.task!r} unique={self.unique!r}>"


class GearmanJobRequest:
    """One submitted job, updated as the server reports on it.

    Attributes:
        job: the submitted job; ``job.handle`` is set once the server accepted it.
        state: ``JOB_PENDING``, ``JOB_CREATED``, ``JOB_COMPLETE`` or ``JOB_FAILED``.
        result: the decoded WORK_COMPLETE data.
        exception: the decoded WORK_EXCEPTION data, if the job raised.
        error: the local reason a request failed without a server answer
            (connection lost, server error, undecodable result), else None.
        timed_out: True if the last wait for it ran out of time.
        data_updates, warning_updates: decoded WORK_DATA and WORK_WARNING
            payloads, in arrival order.
        status: the last WORK_STATUS as a dict with ``numerator``,
            ``denominator`` and ``time_received``.
    """

    def __init__(
        self, job: RequestJob, *, background: bool, priority: str | None, max_retries: int = 0
    ) -> None:
        self.job = job
        self.background = background
        self.priority = priority
        self.max_retries = max_retries
        self.connection_attempts = 0
        self.state = JOB_UNKNOWN
        self.result: Any = None
        self.exception: Any = None
        self.error: BaseException | None = None
        self.timed_out = False
        self.data_updates: collections.deque[Any] = collections.deque()
        self.warning_updates: collections.deque[Any] = collections.deque()
        self.status: dict[str, Any] = {}
        self._accepted = gevent.event.Event()
        self._finished = gevent.event.Event()
        self._packet: tuple[PacketType, bytes] | None = None
        self._server_hint: int | None = None
        self._fields: tuple[PacketType, bytes, tuple[bytes, ...], bytes] | None = None
        self.on_update: Callable[[GearmanJobRequest, str, Any], object] | None = None
        self._update_queue: gevent.queue.Queue | None = None

    @property
    def complete(self) -> bool:
        """True once the job finished with a result (WORK_COMPLETE)."""
        return self.state == JOB_COMPLETE

    @property
    def finished(self) -> bool:
        """True once nothing more will happen to this request, success or not."""
        return bool(self._finished.is_set())

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the request finishes; return False if ``timeout`` ran out first."""
        return bool(self._finished.wait(timeout))

    def updates(self, timeout: float | None = None) -> Iterator[tuple[str, Any]]:
        """Yield in-flight updates as they arrive, until the job finishes.

        Each item is ``("data", value)``, ``("warning", value)`` or
        ``("status", (numerator, denominator))``. Only updates that arrive after
        the first call are yielded, so call it right after submitting with
        ``wait_until_complete=False`` (nothing arrives before this greenlet
        yields). Updates received earlier are in ``data_updates``,
        ``warning_updates`` and ``status``.

        Raises:
            GearmanTimeoutError: no update and no ending within ``timeout`` seconds.
        """
        if self._update_queue is None:
            self._update_queue = gevent.queue.Queue()
        while True:
            if self.finished and self._update_queue.empty():
                return
            try:
                item = self._update_queue.get(timeout=timeout)
            except gevent.queue.Empty:
                raise GearmanTimeoutError(f"no update for {self!r} within {timeout} s") from None
            if item is _END_OF_UPDATES:
                return
            yield item

    def __repr__(self) -> str:
        return f"<GearmanJobRequest {self.job.task!r} handle={self.job.handle} state={self.state}>"

    # Called by the connection that carries the request.

    def _accept(self, handle: str) -> None:
        self.job.handle = handle
        self.state = JOB_CREATED
        self._accepted.set()
        if self.background:
            self._finished.set()

    def _complete(self, result: Any) -> None:
        self.result = result
        self.state = JOB_COMPLETE
        self._end()

    def _fail(self, error: BaseException | None = None) -> None:
        if error is not None:
            self.error = error
        self.state = JOB_FAILED
        self._end()

    def _end(self) -> None:
        self._accepted.set()
        self._finished.set()
        if self._update_queue is not None:
            self._update_queue.put(_END_OF_UPDATES)

    def _notify(self, kind: str, value: Any) -> None:
        if self._update_queue is not None:
            self._update_queue.put((kind, value))
        if self.on_update is not None:
            try:
                self.on_update(self, kind, value)
            except Exception:
                log.exception("on_update callback of %r failed", self)


class ClientConnection:
    """The client's connection to one job server, with its own reader greenlet."""

    def __init__(self, client: GearmanClient, address: ServerAddress) -> None:
        self.client = client
        self.address = address
        self.connected = False
        self._sock: socket.socket | None = None
        self._writer: Writer | None = None
        self._reader: gevent.Greenlet | None = None
        self._lock = gevent.lock.Semaphore()
        # Requests whose reply carries no handle, oldest first: (packet type sent, object).
        self._pending: collections.deque[tuple[PacketType, Any]] = collections.deque()
        self._by_handle: dict[bytes, list[GearmanJobRequest]] = {}
        self._update_cursors: dict[bytes, int] = {}

    def __repr__(self) -> str:
        return f"<ClientConnection {self.address} connected={self.connected}>"

    @property
    def requests_in_flight(self) -> int:
        """Requests waiting for a reply or a result on this connection."""
        return len(self._pending) + sum(len(v) for v in self._by_handle.values())

    def is_connected(self) -> bool:
        """True while the TCP connection is open."""
        return self.connected

    def connect(self) -> None:
        """Open the connection if it is closed.

        Raises:
            OSError: the server could not be reached.
        """
        if self.connected:
            return
        with self._lock:
            # Another greenlet may have connected while this one waited for the lock.
            if self.is_connected():
                return
            sock = open_connection(
                self.address, timeout=self.client.connect_timeout, resolver=self.client.resolver
            )
            self._sock = sock
            self._writer = Writer(sock, str(self.address))
            self.connected = True
            self._pending.append((PacketType.OPTION_REQ, None))
            self._writer.write(_OPTION_EXCEPTIONS)
            self._reader = gevent.spawn(self._read, sock)
            self._reader.name = f"geargevent client reader {self.address}"
            log.debug("connect.complete server=%s", self.address)

    def send(self, packet_type: PacketType, packet: bytes, obj: Any) -> None:
        """Queue a packet whose reply is matched by order, with what the reply is for."""
        if not self.connected or self._writer is None:
            raise ConnectionLostError(f"not connected to job server {self.address}")
        self._pending.append((packet_type, obj))
        self._writer.write(packet)

    def close(self) -> None:
        """Close the connection; requests still waiting on it fail."""
        self._lost(
            ConnectionLostError(f"connection to job server {self.address} closed by the client"),
            deliberate=True,
        )

    def _read(self, sock: socket.socket) -> None:
        parser = PacketParser(max_packet_size=self.client.max_packet_size)
        try:
            while True:
                data = sock.recv(256 * 1024)
                if not data:
                    raise ConnectionLostError(f"job server {self.address} closed the connection")
                for packet in parser.feed(data):
                    self._dispatch(packet)
        except (OSError, GearmanError) as exc:
            if isinstance(exc, ProtocolError):
                log.error("invalid data from job server %s: %s", self.address, exc)
            reason = (
                exc
                if isinstance(exc, GearmanError)
                else ConnectionLostError(f"connection to job server {self.address} failed: {exc}")
            )
            self._lost(reason, from_reader=True)

    def _lost(
        self, reason: GearmanError, from_reader: bool = False, deliberate: bool = False
    ) -> None:
        if not self.connected:
            return
        self.connected = False
        if self._writer is not None:
            self._writer.close()
        if self._sock is not None:
            self._sock.close()
        if not from_reader and self._reader is not None:
            self._reader.kill(block=False)
        pending = [obj for _kind, obj in self._pending]
        waiting = [request for requests in self._by_handle.values() for request in requests]
        self._pending.clear()
        self._by_handle.clear()
        self._update_cursors.clear()
        failed = 0
        for obj in pending + waiting:
            if isinstance(obj, (GearmanJobRequest, _Query)) and not obj.finished:
                obj._fail(reason)
                failed += 1
        if failed and not deliberate:
            log.warning(
                "lost connection to job server %s (%s); %d request(s) failed",
                self.address,
                reason,
                failed,
            )
        else:
            log.debug("close.complete server=%s reason=%s", self.address, reason)

    def _dispatch(self, packet: Packet) -> None:
        kind = packet.type
        arguments = packet.arguments
        if kind in _HANDLE_PACKETS:
            # A WORK_FAIL converted from WORK_EXCEPTION arrives as "handle\0".
            handle = arguments[0].split(b"\0", 1)[0]
            requests = self._by_handle.get(handle)
            if not requests:
                log.debug(
                    "packet.ignored server=%s type=%s handle=%r", self.address, kind.name, handle
                )
                return
            if kind in _UPDATE_PACKETS and len(requests) > 1:
                # Coalesced submissions on one connection each get their own
                # copy of every update, back to back; hand the copies out in turn.
                cursor = self._update_cursors.get(handle, 0)
                self._update_cursors[handle] = cursor + 1
                requests = [requests[cursor % len(requests)]]
            if self.client._update(requests, kind, arguments):
                del self._by_handle[handle]
                self._update_cursors.pop(handle, None)
            return
        if not self._pending:
            raise RemoteProtocolError(
                f"unexpected {kind.name} from {self.address}: nothing was asked"
            )
        sent, obj = self._pending[0]
        if kind is PacketType.JOB_CREATED and sent in _SUBMIT_PACKETS:
            self._pending.popleft()
            handle = arguments[0]
            obj._accept(handle.decode("utf-8", "surrogateescape"))
            if not obj.background:
                self._by_handle.setdefault(handle, []).append(obj)
        elif kind is PacketType.ERROR:
            self._pending.popleft()
            error = ServerError(
                arguments[0].decode("utf-8", "replace"),
                arguments[1].decode("utf-8", "replace"),
                str(self.address),
            )
            if obj is None:
                log.warning("job server %s rejected %s: %s", self.address, sent.name, error)
            else:
                obj._fail(error)
        elif kind is PacketType.OPTION_RES and sent is PacketType.OPTION_REQ:
            self._pending.popleft()
        elif kind in (
            PacketType.STATUS_RES,
            PacketType.STATUS_RES_UNIQUE,
            PacketType.ECHO_RES,
        ) and (sent is _REPLY_TO.get(kind)):
            self._pending.popleft()
            obj._answer(packet)
        else:
            raise RemoteProtocolError(
                f"unexpected {kind.name} from {self.address} while waiting for the reply to "
                f"{sent.name}"
            )


_HANDLE_PACKETS = frozenset(
    {
        PacketType.WORK_DATA,
        PacketType.WORK_WARNING,
        PacketType.WORK_STATUS,
        PacketType.WORK_COMPLETE,
        PacketType.WORK_FAIL,
        PacketType.WORK_EXCEPTION,
    }
)
_UPDATE_PACKETS = frozenset({PacketType.WORK_DATA, PacketType.WORK_WARNING, PacketType.WORK_STATUS})
_SUBMIT_PACKETS = frozenset(_SUBMIT_TYPES.values()) | {PacketType.SUBMIT_JOB_EPOCH}
_REPLY_TO = {
    PacketType.STATUS_RES: PacketType.GET_STATUS,
    PacketType.STATUS_RES_UNIQUE: PacketType.GET_STATUS_UNIQUE,
    PacketType.ECHO_RES: PacketType.ECHO_REQ,
}


class _Query:
    """A request answered by one packet (GET_STATUS, ECHO_REQ)."""

    def __init__(self) -> None:
        self.packet: Packet | None = None
        self.error: BaseException | None = None
        self._done = gevent.event.Event()

    @property
    def finished(self) -> bool:
        return bool(self._done.is_set())

    def _answer(self, packet: Packet) -> None:
        self.packet = packet
        self._done.set()

    def _fail(self, error: BaseException) -> None:
        self.error = error
        self._done.set()

    def wait(self, timeout: float | None, what: str) -> Packet:
        if not self._done.wait(timeout):
            raise GearmanTimeoutError(f"no reply to {what} within {timeout} s")
        if self.error is not None:
            raise self.error
        assert self.packet is not None
        return self.packet


class GearmanClient:
    """A Gearman client, compatible with python-gearman 2.x's ``GearmanClient``.

    Args:
        host_list: job servers, in the forms :class:`~geargevent.GearmanWorker`
            accepts. Foreground and background submissions rotate over them
            (round robin); a server that cannot be reached is skipped for that
            submission.
        data_encoder: encoder for job data, results and updates.
        connect_timeout: seconds allowed for each TCP connect.
    """

    data_encoder: Any = DataEncoder

    def __init__(
        self,
        host_list: Iterable[Any] | str | None = None,
        *,
        data_encoder: Encoder | type | str | None = None,
        connect_timeout: float = 5.0,
        max_packet_size: int = DEFAULT_MAX_PACKET_SIZE,
        resolver: Any = None,
    ) -> None:
        self.addresses = parse_host_list(host_list)
        if data_encoder is not None:
            self.data_encoder = resolve_encoder(data_encoder)
        else:
            self.data_encoder = resolve_encoder(type(self).data_encoder)
        self.connect_timeout = connect_timeout
        self.max_packet_size = max_packet_size
        self.resolver = resolver
        self.connections = [ClientConnection(self, address) for address in self.addresses]
        self._rotation = itertools.cycle(range(len(self.connections)))

    def close(self) -> None:
        """Close every connection; requests still waiting fail with ConnectionLostError."""
        for connection in self.connections:
            connection.close()

    def __enter__(self) -> GearmanClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Submitting.

    def submit_job(
        self,
        task: str | bytes,
        data: Any,
        unique: str | bytes | None = None,
        priority: str | None = PRIORITY_NONE,
        background: bool = False,
        wait_until_complete: bool = True,
        max_retries: int = 0,
        poll_timeout: float | None = None,
        *,
        when: float | datetime.datetime | None = None,
    ) -> GearmanJobRequest:
        """Submit one job and, by default, wait for it.

        Args:
            task: the Gearman function.
            data: the job data, encoded with the data encoder.
            unique: the unique id, always sent. Jobs of one function with equal
                uniques are coalesced by the server into one run whose result
                every submitter receives; ``"-"`` makes gearmand use the data as
                the unique. None sends a random UUID, so nothing is coalesced by
                accident. An explicit unique also picks the server by its hash,
                so coalescing works across several servers.
            priority: ``PRIORITY_NONE``, ``PRIORITY_LOW`` or ``PRIORITY_HIGH``.
            background: submit with SUBMIT_JOB_BG (and its priority variants): the
                server answers with a handle and sends no result.
            wait_until_complete: wait for the result (foreground) or for the
                handle (background); otherwise return at once.
            max_retries: submit again this many times if the connection is lost
                before the job finished. Off by default, because the job may
                already have run.
            poll_timeout: seconds to wait; the request then has ``timed_out``.
            when: run the job no earlier than this time (a datetime, or seconds
                since the epoch), with SUBMIT_JOB_EPOCH. Such jobs are always
                background jobs with normal priority. gearmand 1.1.x does not
                wake sleeping workers when the time comes, so the job starts at
                the next GRAB after it (a geargevent worker grabs every few
                seconds while idle).

        Raises:
            ValueError: an invalid function name, unique or priority, or ``when``
                with a foreground job or a priority.
            EncodingError: the data encoder cannot encode ``data``.
            ServerUnavailableError: no job server could be reached.
        """
        request = self._build_request(
            task, data, unique, priority, background, max_retries, when=when
        )
        self._send_request(request)
        if wait_until_complete:
            self.wait_until_jobs_completed([request], poll_timeout=poll_timeout)
        return request

    def submit_multiple_jobs(
        self,
        jobs_to_submit: Iterable[dict[str, Any]],
        background: bool = False,
        wait_until_complete: bool = True,
        max_retries: int = 0,
        poll_timeout: float | None = None,
    ) -> list[GearmanJobRequest]:
        """Submit several jobs at once, python-gearman style.

        Each entry is a dict with ``task`` and ``data`` and optionally ``unique``
        and ``priority``. All jobs are checked and encoded before any is sent.
        """
        requests = []
        for entry in jobs_to_submit:
            unknown = set(entry) - {"task", "data", "unique", "priority"}
            if unknown or "task" not in entry or "data" not in entry:
                raise ValueError(
                    f"invalid job {entry!r}; each needs 'task' and 'data' and may have "
                    "'unique' and 'priority'"
                )
            requests.append(
                self._build_request(
                    entry["task"],
                    entry["data"],
                    entry.get("unique"),
                    entry.get("priority", PRIORITY_NONE),
                    background,
                    max_retries,
                )
            )
        return self.submit_multiple_requests(
            requests, wait_until_complete=wait_until_complete, poll_timeout=poll_timeout
        )

    def submit_multiple_requests(
        self,
        job_requests: Sequence[GearmanJobRequest],
        wait_until_complete: bool = True,
        poll_timeout: float | None = None,
    ) -> list[GearmanJobRequest]:
        """Send requests built earlier (or send them again, for example after a failure)."""
        for request in job_requests:
            self._send_request(request)
        if wait_until_complete:
            self.wait_until_jobs_completed(job_requests, poll_timeout=poll_timeout)
        else:
            self.wait_until_jobs_accepted(job_requests, poll_timeout=poll_timeout)
        return list(job_requests)

    def wait_until_jobs_accepted(
        self, job_requests: Sequence[GearmanJobRequest], poll_timeout: float | None = None
    ) -> Sequence[GearmanJobRequest]:
        """Wait until the server gave every request a handle (or it failed), or the timeout."""
        deadline = None if poll_timeout is None else time.monotonic() + poll_timeout
        for request in job_requests:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            request.timed_out = not request._accepted.wait(remaining)
        return job_requests

    def wait_until_jobs_completed(
        self, job_requests: Sequence[GearmanJobRequest], poll_timeout: float | None = None
    ) -> Sequence[GearmanJobRequest]:
        """Wait until every request finished (background: was accepted), or the timeout."""
        deadline = None if poll_timeout is None else time.monotonic() + poll_timeout
        for request in job_requests:
            while True:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                finished = request.wait(remaining)
                request.timed_out = not finished
                if not finished or not self._should_retry(request):
                    break
                if request._server_hint is None:
                    self._renew_unique(request)
                self._send_request(request)
        return job_requests

    # Status queries.

    def get_job_status(
        self, current_request: GearmanJobRequest, poll_timeout: float | None = None
    ) -> dict[str, Any]:
        """Ask the server that accepted ``current_request`` for its status (GET_STATUS).

        Returns:
            a dict with ``known`` and ``running`` (bools), ``numerator`` and
            ``denominator`` (ints) and ``time_received``, also stored in
            ``current_request.status``. gearmand forgets a job once it has
            finished, so a finished job reports ``known`` False.

        Raises:
            ValueError: the request has no handle yet.
            GearmanTimeoutError: no reply within ``poll_timeout`` seconds.
        """
        return dict(self.get_job_statuses([current_request], poll_timeout)[0].status)

    def get_job_statuses(
        self, job_requests: Sequence[GearmanJobRequest], poll_timeout: float | None = None
    ) -> Sequence[GearmanJobRequest]:
        """Ask for the status of several requests at once; see :meth:`get_job_status`."""
        queries = []
        for request in job_requests:
            handle = request.job.handle
            connection = request.job.connection
            if handle is None or connection is None:
                raise ValueError(f"{request!r} has no job handle yet; wait until it is accepted")
            queries.append((request, self._query(connection, PacketType.GET_STATUS, handle)))
        deadline = None if poll_timeout is None else time.monotonic() + poll_timeout
        for request, (query, what) in queries:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            request.status.update(_status_fields(query.wait(remaining, what)))
        return job_requests

    def get_job_status_by_handle(
        self, handle: str | bytes, poll_timeout: float | None = None
    ) -> dict[str, Any]:
        """Ask every server about a job handle, for example one saved from another client.

        Handles are only unique per server, so the first server that knows the
        handle answers; if none does, the result has ``known`` False.
        """
        return self._ask_all_servers(PacketType.GET_STATUS, handle, poll_timeout)

    def get_job_status_by_unique(
        self, unique: str | bytes, poll_timeout: float | None = None
    ) -> dict[str, Any]:
        """Ask every server about a job by its unique id (GET_STATUS_UNIQUE).

        The result also has ``waiting``: how many foreground clients wait for the
        job. gearmand 1.1.x supports this, the Perl job server does not (it
        answers with an error, raised as ServerError).
        """
        return self._ask_all_servers(PacketType.GET_STATUS_UNIQUE, unique, poll_timeout)

    def _ask_all_servers(
        self, packet_type: PacketType, key: str | bytes, poll_timeout: float | None
    ) -> dict[str, Any]:
        value = validate_unique(key) if packet_type is PacketType.GET_STATUS_UNIQUE else key
        queries = []
        errors = []
        for connection in self.connections:
            try:
                connection.connect()
                queries.append(self._query(connection, packet_type, value))
            except (OSError, ConnectionLostError) as exc:
                errors.append(f"{connection.address}: {exc}")
        if not queries:
            raise ServerUnavailableError(
                f"no job server could be asked about {key!r}: {'; '.join(errors)}"
            )
        deadline = None if poll_timeout is None else time.monotonic() + poll_timeout
        answers = []
        for query, what in queries:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            answers.append(_status_fields(query.wait(remaining, what)))
        return next((answer for answer in answers if answer["known"]), answers[0])

    def _query(
        self, connection: ClientConnection, packet_type: PacketType, key: str | bytes
    ) -> tuple[_Query, str]:
        argument = key.encode("utf-8", "surrogateescape") if isinstance(key, str) else key
        query = _Query()
        connection.connect()
        connection.send(packet_type, encode_packet(packet_type, argument), query)
        return query, f"{packet_type.name} {key!r} from {connection.address}"

    # Internals shared with subclasses.

    def _build_request(
        self,
        task: str | bytes,
        data: Any,
        unique: str | bytes | None,
        priority: str | None,
        background: bool,
        max_retries: int,
        *,
        when: float | datetime.datetime | None = None,
    ) -> GearmanJobRequest:
        name = validate_function_name(task)
        if (priority, bool(background)) not in _SUBMIT_TYPES:
            raise ValueError(
                f"invalid priority {priority!r}; use PRIORITY_NONE, PRIORITY_LOW or PRIORITY_HIGH"
            )
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
        unique_bytes = validate_unique(uuid.uuid4().hex if unique is None else unique)
        try:
            payload = encode_with(self.data_encoder, data)
        except Exception as exc:
            raise EncodingError(
                f"cannot encode data for function {name.decode('utf-8', 'replace')} with "
                f"{getattr(self.data_encoder, '__name__', self.data_encoder)!r}: "
                f"{type(exc).__name__}: {exc}",
                function=name.decode("utf-8", "replace"),
                direction="encode",
            ) from exc
        job = RequestJob(
            name.decode("utf-8", "surrogateescape"),
            unique_bytes.decode("utf-8", "surrogateescape"),
            data,
        )
        if when is not None:
            if not background or priority is not PRIORITY_NONE:
                raise ValueError(
                    "a scheduled job (when=...) is always a background job with normal "
                    "priority; pass background=True and no priority"
                )
            # Rounded up: gearmand takes whole seconds, and a job must not run early.
            epoch = math.ceil(
                when.timestamp() if isinstance(when, datetime.datetime) else float(when)
            )
            packet_type = PacketType.SUBMIT_JOB_EPOCH
            extra: tuple[bytes, ...] = (str(epoch).encode(),)
        else:
            packet_type = _SUBMIT_TYPES[(priority, bool(background))]
            extra = ()
        request = GearmanJobRequest(
            job, background=bool(background), priority=priority, max_retries=max_retries
        )
        request._fields = (packet_type, name, extra, payload)
        request._packet = (
            packet_type,
            encode_packet(packet_type, name, unique_bytes, *extra, payload),
        )
        # A unique chosen by the caller picks the server by hash, so equal uniques
        # meet on the same server and coalesce; generated ones rotate. With "-"
        # gearmand uses the data as the unique, so the data is hashed.
        if unique is not None:
            key = payload if unique_bytes == b"-" else unique_bytes
            request._server_hint = zlib.crc32(name + b"\0" + key)
        return request

    def _renew_unique(self, request: GearmanJobRequest) -> None:
        # gearmand 1.1.20 keeps a queued job whose client disconnected, marked to be
        # dropped at the next GRAB; a resubmission with the same unique would attach
        # to it and never complete. A generated unique is therefore replaced.
        assert request._fields is not None, "requests are built by _build_request"
        packet_type, name, extra, payload = request._fields
        unique_bytes = uuid.uuid4().hex.encode()
        request.job.unique = unique_bytes.decode()
        request._packet = (
            packet_type,
            encode_packet(packet_type, name, unique_bytes, *extra, payload),
        )

    def _send_request(self, request: GearmanJobRequest) -> None:
        assert request._packet is not None, "requests are built by _build_request"
        packet_type, packet = request._packet
        count = len(self.connections)
        if request._server_hint is None:
            first = next(self._rotation)
        else:
            first = request._server_hint % count
        errors = []
        last_error: BaseException | None = None
        for offset in range(count):
            connection = self.connections[(first + offset) % count]
            try:
                connection.connect()
                request.connection_attempts += 1
                request.state = JOB_PENDING
                request.error = None
                request.result = None
                request.exception = None
                request._finished.clear()
                request._accepted.clear()
                request.job.connection = connection
                connection.send(packet_type, packet, request)
                return
            except (OSError, ConnectionLostError) as exc:
                errors.append(str(exc))
                last_error = exc
        raise ServerUnavailableError(
            "no job server accepted the submission of "
            f"{request.job.task!r}: {'; '.join(errors)}; check that gearmand is running"
        ) from last_error

    def _should_retry(self, request: GearmanJobRequest) -> bool:
        if request.state != JOB_FAILED or not isinstance(request.error, ConnectionLostError):
            return False
        if request.connection_attempts > request.max_retries:
            return False
        log.info(
            "resubmitting %r after a lost connection (attempt %d of %d)",
            request.job.task,
            request.connection_attempts + 1,
            request.max_retries + 1,
        )
        return True

    def _update(
        self, requests: list[GearmanJobRequest], kind: PacketType, arguments: tuple[bytes, ...]
    ) -> bool:
        """Apply a WORK_* packet to every request with its handle; True if they ended."""
        if kind is PacketType.WORK_STATUS:
            numerator, denominator = _to_int(arguments[1]), _to_int(arguments[2])
            for request in requests:
                request.status.update(
                    numerator=numerator,
                    denominator=denominator,
                    known=True,
                    running=True,
                    time_received=time.time(),
                )
                request._notify("status", (numerator, denominator))
            return False
        if kind is PacketType.WORK_FAIL:
            for request in requests:
                request._fail()
            return True
        decoded, error = self._decode(arguments[1], requests[0])
        if kind is PacketType.WORK_COMPLETE:
            for request in requests:
                if error is None:
                    request._complete(decoded)
                else:
                    request._fail(error)
            return True
        if kind is PacketType.WORK_EXCEPTION:
            for request in requests:
                request.exception = decoded if error is None else arguments[1]
                request._fail()
            return True
        value = decoded if error is None else arguments[1]
        for request in requests:
            if kind is PacketType.WORK_DATA:
                request.data_updates.append(value)
                request._notify("data", value)
            else:
                request.warning_updates.append(value)
                request._notify("warning", value)
        return False

    def _decode(self, data: bytes, request: GearmanJobRequest) -> tuple[Any, BaseException | None]:
        try:
            return self.data_encoder.decode(data), None
        except Exception as exc:
            error = EncodingError(
                f"cannot decode data of job {request.job.handle} ({request.job.task}) with "
                f"{getattr(self.data_encoder, '__name__', self.data_encoder)!r}: "
                f"{type(exc).__name__}: {exc}",
                function=request.job.task,
                direction="decode",
            )
            log.error("%s", error)
            return None, error


def _status_fields(packet: Packet) -> dict[str, Any]:
    # STATUS_RES: handle, known, running, numerator, denominator; STATUS_RES_UNIQUE
    # adds the number of waiting clients. The Perl server leaves the fractions empty.
    fields = packet.arguments
    status: dict[str, Any] = {
        "known": fields[1] == b"1",
        "running": fields[2] == b"1",
        "numerator": _to_int(fields[3]),
        "denominator": _to_int(fields[4]),
        "time_received": time.time(),
    }
    if packet.type is PacketType.STATUS_RES_UNIQUE:
        status["waiting"] = _to_int(fields[5])
    return status


def _to_int(value: bytes) -> int:
    try:
        return int(value)
    except ValueError:
        return 0
