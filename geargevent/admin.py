"""GearmanAdminClient: the admin text protocol of one job server, python-gearman 2.x style.

The client talks to a single job server, the first entry of ``host_list``, as
python-gearman's admin client does. It opens its connection on first use, keeps
it for later commands and opens a new one after a loss. Commands are sent one
at a time (callers in other greenlets wait their turn), and each reply must
arrive within ``poll_timeout`` seconds.

The byte-level work is in :mod:`geargevent._admin`: encoding command lines,
splitting replies and parsing them into typed results. This module adds the
socket, the timeouts and the errors that name the server and the command.

Differences between the servers (gearmand 1.1.20 and the Perl Gearman::Server
1.130.1):

- ``getpid``, ``prioritystatus``, ``show jobs``, ``show unique jobs`` and
  ``cancel job`` exist only on gearmand. The Perl server replies to them with
  ``ERR unknown_command``, which raises :class:`~geargevent.errors.ServerError`.
- ``shutdown`` exists only on the Perl server. gearmand 1.1.20 is stopped with
  signals: SIGTERM, or SIGUSR1 for a graceful stop.
- Neither server has a command that reads a maxqueue limit back, so this client
  offers no ``get_maxqueue``.
"""

from __future__ import annotations

import logging
import os
import re
import socket as _stdlib_socket
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import gevent
import gevent.lock
from gevent import socket

from geargevent._admin import (
    AdminCommand,
    AdminReply,
    AdminReplyReader,
    FunctionStatus,
    JobInfo,
    PriorityStatus,
    WorkerInfo,
    encode_command,
    parse_ok,
    parse_pid,
    parse_priority_status,
    parse_show_jobs,
    parse_show_unique_jobs,
    parse_status,
    parse_verbose,
    parse_version,
    parse_workers,
)
from geargevent._framing import PacketParser, encode_packet
from geargevent._packets import PacketType
from geargevent.connection import ServerAddress, open_connection, parse_host_list
from geargevent.errors import (
    ConnectionLostError,
    GearmanTimeoutError,
    RemoteProtocolError,
    ServerError,
    ServerUnavailableError,
)

__all__ = [
    "DEFAULT_ADMIN_TIMEOUT",
    "FunctionStatus",
    "GearmanAdminClient",
    "JobInfo",
    "PriorityStatus",
    "WorkerInfo",
]

log = logging.getLogger("geargevent.admin")

# python-gearman 2.x waits this many seconds for an admin reply by default.
DEFAULT_ADMIN_TIMEOUT = 10.0

# Commands that change nothing on the server. Only these are sent a second time
# when a reused connection turns out to be closed before any reply byte came.
_READ_ONLY = frozenset(
    {
        AdminCommand.STATUS,
        AdminCommand.PRIORITY_STATUS,
        AdminCommand.WORKERS,
        AdminCommand.SHOW_JOBS,
        AdminCommand.SHOW_UNIQUE_JOBS,
        AdminCommand.VERSION,
        AdminCommand.GETPID,
        AdminCommand.VERBOSE,
    }
)

_RECV_SIZE = 64 * 1024

_Result = TypeVar("_Result")

# An ECHO reply carries back what was sent; the ping payload is small.
_ECHO_MAX_PACKET_SIZE = 64 * 1024


class _LostBeforeReply(Exception):
    """The connection closed or failed before the first byte of the reply."""


class GearmanAdminClient:
    """An admin client for one Gearman job server, compatible with python-gearman 2.x.

    Args:
        host_list: job servers in any form :class:`~geargevent.GearmanClient`
            accepts. Only the first is used. None means ``127.0.0.1:4730``.
        poll_timeout: seconds to wait for each reply, or None to wait without
            limit.
        connect_timeout: seconds allowed for the TCP connect.
        resolver: ``resolver(host, port) -> [(family, sockaddr), ...]`` in place
            of gevent's resolver.

    Every method raises:
        ServerUnavailableError: the server could not be reached.
        ConnectionLostError: the connection closed before the reply was complete.
        GearmanTimeoutError: no complete reply within ``poll_timeout`` seconds.
        RemoteProtocolError: the reply is not in the form the command returns;
            the message quotes the line.
    """

    def __init__(
        self,
        host_list: Iterable[Any] | str | None = None,
        poll_timeout: float | None = DEFAULT_ADMIN_TIMEOUT,
        *,
        connect_timeout: float = 5.0,
        resolver: Any = None,
    ) -> None:
        if poll_timeout is not None and not poll_timeout > 0:
            raise ValueError(f"poll_timeout must be > 0 seconds or None, got {poll_timeout!r}")
        if not connect_timeout > 0:
            raise ValueError(f"connect_timeout must be > 0 seconds, got {connect_timeout!r}")
        addresses = parse_host_list(host_list)
        if len(addresses) > 1:
            log.debug("admin client uses the first of %d servers: %s", len(addresses), addresses[0])
        self.address: ServerAddress = addresses[0]
        self.poll_timeout = poll_timeout
        self.connect_timeout = connect_timeout
        self.resolver = resolver
        self._sock: socket.socket | None = None
        self._reader = AdminReplyReader()
        self._lock = gevent.lock.RLock()
        # The version string of the server on the current connection, once asked.
        self._version: str | None = None

    def __repr__(self) -> str:
        state = "connected" if self._sock is not None else "not connected"
        return f"<GearmanAdminClient {self.address} {state}>"

    def __enter__(self) -> GearmanAdminClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection. The next command opens a new one."""
        with self._lock:
            self._drop_connection()

    # Listings.

    def get_status(self) -> list[FunctionStatus]:
        """Return the ``status`` listing: per function, queued+running, running and workers."""
        return self._parsed(parse_status, AdminCommand.STATUS)

    def get_priority_status(self) -> list[PriorityStatus]:
        """Return gearmand's ``prioritystatus`` listing: queued jobs per priority.

        Raises:
            ServerError: the server has no such command (the Perl server).
        """
        return self._parsed(parse_priority_status, AdminCommand.PRIORITY_STATUS)

    def get_workers(self) -> list[WorkerInfo]:
        """Return the ``workers`` listing, one entry per connection to the server.

        Clients and admin connections are listed too, with no functions; this
        client's own connection is among them.
        """
        return self._parsed(parse_workers, AdminCommand.WORKERS)

    def show_jobs(self) -> list[JobInfo]:
        """Return gearmand's ``show jobs`` listing of the jobs it holds.

        Raises:
            ServerError: the server has no such command (the Perl server).
        """
        return self._parsed(parse_show_jobs, AdminCommand.SHOW_JOBS)

    def show_unique_jobs(self) -> list[str]:
        """Return the uniques of the jobs queued or running on gearmand (``show unique jobs``).

        Raises:
            ServerError: the server has no such command (the Perl server).
        """
        return self._parsed(parse_show_unique_jobs, AdminCommand.SHOW_UNIQUE_JOBS)

    # Single values.

    def get_version(self) -> str:
        """Return the server's version, such as ``"1.1.20+ds"`` or the Perl ``"v1.130.1"``."""
        with self._lock:
            version = self._parsed(parse_version, AdminCommand.VERSION)
            self._version = version
            return version

    def get_pid(self) -> int:
        """Return gearmand's process id (``getpid``).

        Raises:
            ServerError: the server has no such command (the Perl server).
        """
        return self._parsed(parse_pid, AdminCommand.GETPID)

    def get_verbose(self) -> str:
        """Return gearmand's log level name (``verbose``), such as ``"ERROR"``.

        Raises:
            ServerError: the server has no such command (the Perl server).
        """
        return self._parsed(parse_verbose, AdminCommand.VERBOSE)

    def ping_server(self) -> float:
        """Send a binary ECHO_REQ on the admin connection and return the round trip in seconds.

        Raises:
            RemoteProtocolError: the reply is not an ECHO_RES carrying the bytes sent.
        """
        payload = f"geargevent-ping-{os.getpid()}-{time.monotonic_ns()}".encode("ascii")
        packet = encode_packet(PacketType.ECHO_REQ, payload)
        with self._lock:
            for attempt in (1, 2):
                reused = self._sock is not None
                sock = self._connect()
                started = time.perf_counter()
                try:
                    self._exchange_echo(sock, packet, payload)
                except _LostBeforeReply as exc:
                    self._drop_connection()
                    if reused and attempt == 1:
                        log.info(
                            "admin connection to %s was closed (%s); reconnecting",
                            self.address,
                            exc,
                        )
                        continue
                    raise ConnectionLostError(
                        f"job server {self.address} closed the admin connection before "
                        f"answering ECHO_REQ ({exc})"
                    ) from None
                return time.perf_counter() - started
        raise AssertionError("unreachable: the second attempt returns or raises")

    # Changes.

    def set_maxqueue(self, task: str | bytes, *max_sizes: int) -> bool:
        """Limit the jobs the server keeps for ``task`` (queued and running together).

        Call it with one limit for every priority, ``set_maxqueue("resize", 100)``,
        or with one limit per priority, ``set_maxqueue("resize", 10, 100, 1000)``
        for high, normal and low. A limit of N lets N jobs be counted, and 0
        removes the limit. gearmand rejects a submission over the limit with
        ERROR ``QUEUE_ERROR``. The Perl server instead drops its newest queued
        job to make room. No command reads a limit back.

        Returns:
            False when gearmand does not know the function yet, because no worker
            registered it and no job was submitted for it. gearmand 1.1.20 then
            replies ``OK`` but keeps no limit, so set it again once the function
            exists. True otherwise, and always on the Perl server, which keeps
            limits for any name.

        Raises:
            ValueError: ``task`` contains whitespace or control characters, the
                number of limits is not 1 or 3, a limit is not an int >= 0, or
                three limits were given to the Perl server, which reads only the
                first and would apply it to every priority.
        """
        if len(max_sizes) not in (1, 3):
            raise ValueError(
                f"set_maxqueue takes 1 limit or 3 (high, normal, low), got {len(max_sizes)}: "
                f"{max_sizes!r}"
            )
        for size in max_sizes:
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise ValueError(
                    f"maxqueue limit for {task!r} must be an int >= 0 (0 means no limit), "
                    f"got {size!r}"
                )
        arguments = [task, *(str(size) for size in max_sizes)]
        encode_command(AdminCommand.MAXQUEUE, *arguments)  # Validate before any I/O.
        with self._lock:
            perl = self._is_perl_server()
            if len(max_sizes) == 3 and perl:
                raise ValueError(
                    f"the Perl job server at {self.address} reads only the first maxqueue "
                    f"limit and would apply {max_sizes[0]} to every priority of {task!r}; "
                    "call set_maxqueue(task, max_size) with one limit"
                )
            name = task.decode("utf-8", "surrogateescape") if isinstance(task, bytes) else task
            known = perl or any(status.function == name for status in self.get_status())
            self._parsed(parse_ok, AdminCommand.MAXQUEUE, *arguments)
        if not known:
            log.warning(
                "job server %s does not know function %r yet, so it keeps no maxqueue limit "
                "for it; set the limit again after a worker registers the function or a job "
                "is submitted",
                self.address,
                name,
            )
        return known

    def send_maxqueue(self, task: str | bytes, max_size: int) -> bool:
        """Set one limit for every priority; python-gearman's name for :meth:`set_maxqueue`."""
        return self.set_maxqueue(task, max_size)

    def cancel_job(self, handle: str | bytes) -> None:
        """Cancel a job with gearmand's ``cancel job``.

        Foreground clients of the job get WORK_FAIL at once. A queued job is
        dropped when it reaches a worker, and a running job is not stopped: its
        worker's result is still accepted.

        Raises:
            ValueError: the handle is empty or contains whitespace or control characters.
            ServerError: the server does not hold the job (``UNKNOWN_JOB``), or
                has no such command (the Perl server).
        """
        try:
            self._parsed(parse_ok, AdminCommand.CANCEL_JOB, handle)
        except ServerError as exc:
            if exc.code != "UNKNOWN_JOB":
                raise
            raise ServerError(
                exc.code,
                f"the server holds no job with handle {handle!r}; it may have finished already",
                str(self.address),
            ) from None

    def send_shutdown(self, graceful: bool = True) -> None:
        """Ask the server to stop (``shutdown``, or ``shutdown graceful``).

        Only the Perl server has this command. It replies ``OK`` and exits at
        once, or, when graceful, stops accepting connections and exits once no
        jobs are left. This client then closes its connection.

        Raises:
            ServerError: the server rejected the command. gearmand 1.1.x has no
                shutdown command, and the message then tells the caller to send
                SIGTERM (or SIGUSR1 for a graceful stop) to its process instead.
        """
        arguments = ("graceful",) if graceful else ()
        with self._lock:
            try:
                reply = self._request(AdminCommand.SHUTDOWN, arguments, retry=False)
            except ConnectionLostError:
                # The Perl server may exit before its "OK" leaves the socket buffer.
                if not graceful:
                    log.info("job server %s closed the connection after shutdown", self.address)
                    return
                raise
            if reply.is_error and reply.error_code == "UNKNOWN_COMMAND":
                raise ServerError(
                    reply.error_code, self._shutdown_advice(graceful), str(self.address)
                )
            self._raise_for_error(reply)
            self._check(parse_ok, reply)
            log.info("job server %s accepted %r", self.address, reply.command.value)
            self._drop_connection()

    # Internals.

    def _shutdown_advice(self, graceful: bool) -> str:
        signal_name = "SIGUSR1" if graceful else "SIGTERM"
        try:
            pid: int | None = self.get_pid()
        except (ServerError, RemoteProtocolError, ConnectionLostError, GearmanTimeoutError):
            pid = None
        target = f"process {pid}" if pid is not None else "the gearmand process"
        return (
            "gearmand 1.1.x has no shutdown command; to stop it, send SIGTERM to "
            f"{target}, or SIGUSR1 for a graceful stop that finishes running jobs "
            f"(for example: kill -{signal_name.removeprefix('SIG')} {pid or 'PID'}). "
            "The Perl Gearman::Server supports 'shutdown'"
        )

    def _is_perl_server(self) -> bool:
        if self._version is None:
            self.get_version()
        assert self._version is not None
        # gearmand prints "OK 1.1.20+ds", which parses to "1.1.20+ds"; the Perl
        # server prints a bare "v1.130.1".
        return self._version.startswith("v")

    def _parsed(
        self,
        parser: Callable[[AdminReply], _Result],
        command: AdminCommand,
        *arguments: str | bytes,
    ) -> _Result:
        """Send one command and parse its reply, naming the server in a parse error."""
        return self._check(parser, self._command(command, *arguments))

    def _check(self, parser: Callable[[AdminReply], _Result], reply: AdminReply) -> _Result:
        try:
            return parser(reply)
        except RemoteProtocolError as exc:
            raise RemoteProtocolError(
                f"job server {self.address} replied to {reply.command.value!r} with output "
                f"this client does not recognise: {exc}"
            ) from exc

    def _command(self, command: AdminCommand, *arguments: str | bytes) -> AdminReply:
        """Send one command and return its reply, raising ServerError for ``ERR``."""
        with self._lock:
            reply = self._request(command, arguments, retry=command in _READ_ONLY)
        self._raise_for_error(reply)
        return reply

    def _raise_for_error(self, reply: AdminReply) -> None:
        if reply.error_code is not None:
            raise ServerError(reply.error_code, reply.error_text, str(self.address))

    def _request(
        self, command: AdminCommand, arguments: tuple[str | bytes, ...], *, retry: bool
    ) -> AdminReply:
        # encode_command raises ValueError for a bad argument before anything is sent.
        line = encode_command(command, *arguments)
        for attempt in (1, 2):
            reused = self._sock is not None
            sock = self._connect()
            try:
                return self._exchange_text(sock, command, line)
            except _LostBeforeReply as exc:
                self._drop_connection()
                if retry and reused and attempt == 1:
                    log.info(
                        "admin connection to %s was closed (%s); reconnecting for %r",
                        self.address,
                        exc,
                        command.value,
                    )
                    continue
                raise ConnectionLostError(
                    f"job server {self.address} closed the admin connection before replying "
                    f"to {command.value!r} ({exc})"
                ) from None
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _connect(self) -> socket.socket:
        if self._sock is not None and _is_closed_by_peer(self._sock):
            log.info("admin connection to %s was closed by the server; reconnecting", self.address)
            self._drop_connection()
        if self._sock is None:
            try:
                self._sock = open_connection(
                    self.address,
                    timeout=self.connect_timeout,
                    resolver=self.resolver,
                    keepalive=False,
                )
            except OSError as exc:
                raise ServerUnavailableError(
                    f"cannot connect to job server {self.address}: {_reason(exc)}"
                ) from exc
            self._reader = AdminReplyReader()
            log.debug("admin.connect server=%s", self.address)
        return self._sock

    def _drop_connection(self) -> None:
        sock, self._sock = self._sock, None
        self._version = None
        if sock is not None:
            sock.close()
            log.debug("admin.close server=%s", self.address)

    def _exchange_text(self, sock: socket.socket, command: AdminCommand, line: bytes) -> AdminReply:
        reader = self._reader
        reader.expect(command)
        received = 0
        timeout = gevent.Timeout(self.poll_timeout)
        timeout.start()
        try:
            try:
                sock.sendall(line)
            except OSError as exc:
                raise _LostBeforeReply(f"send failed: {exc}") from None
            while True:
                try:
                    data = sock.recv(_RECV_SIZE)
                except OSError as exc:
                    if received:
                        self._drop_connection()
                        raise ConnectionLostError(
                            f"admin connection to job server {self.address} failed while "
                            f"reading the reply to {command.value!r}: {exc}"
                        ) from None
                    raise _LostBeforeReply(f"receive failed: {exc}") from None
                if not data:
                    if received:
                        self._drop_connection()
                        raise ConnectionLostError(
                            f"job server {self.address} closed the admin connection in the "
                            f"middle of the reply to {command.value!r}"
                        )
                    raise _LostBeforeReply("end of stream")
                received += len(data)
                try:
                    replies = reader.feed(data)
                except RemoteProtocolError as exc:
                    self._drop_connection()
                    raise RemoteProtocolError(
                        f"invalid reply from job server {self.address} to {command.value!r}: {exc}"
                    ) from exc
                if replies:
                    if reader.buffered or len(replies) > 1:
                        # One command is outstanding at a time, so extra bytes mean the
                        # stream is out of step; the next command starts on a new connection.
                        log.warning(
                            "job server %s sent %d unexpected byte(s) after the reply to %r; "
                            "reconnecting",
                            self.address,
                            reader.buffered,
                            command.value,
                        )
                        self._drop_connection()
                    return replies[0]
        except gevent.Timeout as exc:
            if exc is not timeout:
                raise
            self._drop_connection()
            raise GearmanTimeoutError(
                f"job server {self.address} sent no complete reply to admin command "
                f"{command.value!r} within {self.poll_timeout} s"
            ) from None
        finally:
            timeout.close()

    def _exchange_echo(self, sock: socket.socket, packet: bytes, payload: bytes) -> None:
        parser = PacketParser(max_packet_size=_ECHO_MAX_PACKET_SIZE)
        received = 0
        timeout = gevent.Timeout(self.poll_timeout)
        timeout.start()
        try:
            try:
                sock.sendall(packet)
            except OSError as exc:
                raise _LostBeforeReply(f"send failed: {exc}") from None
            while True:
                try:
                    data = sock.recv(_RECV_SIZE)
                except OSError as exc:
                    if not received:
                        raise _LostBeforeReply(f"receive failed: {exc}") from None
                    data = b""
                if not data:
                    if not received:
                        raise _LostBeforeReply("end of stream")
                    self._drop_connection()
                    raise ConnectionLostError(
                        f"job server {self.address} closed the admin connection in the middle "
                        "of the ECHO_RES reply"
                    )
                received += len(data)
                try:
                    packets = parser.feed(data)
                except RemoteProtocolError as exc:
                    self._drop_connection()
                    raise RemoteProtocolError(
                        f"invalid reply from job server {self.address} to ECHO_REQ: {exc}"
                    ) from exc
                if not packets:
                    continue
                reply = packets[0]
                if (
                    len(packets) > 1
                    or parser.buffered
                    or reply.type is not PacketType.ECHO_RES
                    or reply.arguments[0] != payload
                ):
                    self._drop_connection()
                    raise RemoteProtocolError(
                        f"job server {self.address} replied to ECHO_REQ with {reply.type.name} "
                        f"{reply.arguments[:2]!r}, expected ECHO_RES carrying {payload!r}"
                    )
                return
        except gevent.Timeout as exc:
            if exc is not timeout:
                raise
            self._drop_connection()
            raise GearmanTimeoutError(
                f"job server {self.address} sent no ECHO_RES within {self.poll_timeout} s"
            ) from None
        finally:
            timeout.close()


def _is_closed_by_peer(sock: socket.socket) -> bool:
    """Check without waiting whether an idle connection has a pending end of stream or error.

    An idle admin connection receives nothing, so readable data also means the
    stream is out of step and the connection must be replaced.
    """
    sock.settimeout(0.0)
    try:
        sock.recv(1, _stdlib_socket.MSG_PEEK)
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.settimeout(None)
    return True


_ERRNO_TEXT = re.compile(r"\[Errno -?\d+\] ([^;]+)")


def _reason(exc: OSError) -> str:
    """Return the short cause of a connect failure, such as ``"Connection refused"``.

    :func:`~geargevent.connection.open_connection` joins the errors of every
    address it tried into one message, so the causes are taken from that text.
    """
    if exc.strerror:
        return exc.strerror
    causes = list(dict.fromkeys(match.strip() for match in _ERRNO_TEXT.findall(str(exc))))
    return "; ".join(causes) if causes else str(exc)
