"""Sockets to job servers: addresses, connecting, reconnect backoff and the writer.

This is the I/O shell around the protocol modules. It uses gevent's cooperative
sockets directly, so it does not depend on monkey-patching, and resolves host
names through gevent's resolver (a thread pool by default), so a slow lookup
never blocks the hub.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import random
import re
import socket as _stdlib_socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import gevent
import gevent.event
from gevent import socket

__all__ = [
    "DEFAULT_PORT",
    "Backoff",
    "ServerAddress",
    "Writer",
    "open_connection",
    "parse_address",
    "parse_host_list",
]

log = logging.getLogger("geargevent.connection")

DEFAULT_PORT = 4730

Resolver = Callable[[str, int], Sequence[tuple[int, tuple[Any, ...]]]]


@dataclass(frozen=True, slots=True)
class ServerAddress:
    """A job server's host and TCP port."""

    host: str
    port: int = DEFAULT_PORT

    def __str__(self) -> str:
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


_BRACKETED = re.compile(r"^\[(?P<host>[^\]]+)\](?::(?P<port>\d+))?$")


def _check_port(port: Any, entry: object) -> int:
    try:
        number = int(port)
    except (TypeError, ValueError):
        raise ValueError(f"invalid port {port!r} in server entry {entry!r}") from None
    if not 0 < number < 65536:
        raise ValueError(f"port {number} in server entry {entry!r} is outside 1-65535")
    return number


def parse_address(entry: object) -> ServerAddress:
    """Parse one server entry.

    Accepts ``"host"``, ``"host:port"``, ``"[::1]:4730"``, a bare IPv6 address,
    ``(host, port)`` and ``{"host": ..., "port": ...}``; the port defaults to 4730.

    Raises:
        ValueError: an entry that is none of these, naming the entry.
    """
    if isinstance(entry, ServerAddress):
        return entry
    if isinstance(entry, bytes):
        entry = entry.decode("utf-8")
    if isinstance(entry, str):
        text = entry.strip()
        if not text:
            raise ValueError("empty server entry; give 'host' or 'host:port'")
        if text.startswith("["):
            match = _BRACKETED.match(text)
            if match is None:
                raise ValueError(f"invalid server entry {entry!r}; expected '[address]:port'")
            port = match.group("port")
            host = match.group("host")
            return ServerAddress(host, _check_port(port, entry) if port else DEFAULT_PORT)
        if text.count(":") > 1:
            # Without brackets, several colons can only be a bare IPv6 address.
            try:
                ipaddress.IPv6Address(text)
            except ValueError:
                raise ValueError(
                    f"invalid server entry {entry!r}; write an IPv6 address with a port "
                    "as '[address]:port'"
                ) from None
            return ServerAddress(text)
        host, colon, port = text.partition(":")
        if not host or any(c.isspace() for c in host):
            raise ValueError(f"invalid host in server entry {entry!r}; expected 'host:port'")
        if colon and not port:
            raise ValueError(f"missing port after ':' in server entry {entry!r}")
        return ServerAddress(host, _check_port(port, entry) if port else DEFAULT_PORT)
    if isinstance(entry, dict):
        host = entry.get("host")
        if not isinstance(host, str) or not host:
            raise ValueError(f"server entry {entry!r} needs a non-empty 'host' string")
        return ServerAddress(host, _check_port(entry.get("port", DEFAULT_PORT), entry))
    if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str):
        if not entry[0]:
            raise ValueError(f"empty host in server entry {entry!r}")
        return ServerAddress(entry[0], _check_port(entry[1], entry))
    raise ValueError(
        f"invalid server entry {entry!r}; use 'host', 'host:port', '[::1]:4730', "
        "(host, port) or {'host': ..., 'port': ...}"
    )


def parse_host_list(host_list: Iterable[object] | str | None) -> list[ServerAddress]:
    """Parse a list of server entries; a single string is taken as one entry."""
    if host_list is None:
        return [ServerAddress("127.0.0.1")]
    if isinstance(host_list, (str, bytes, tuple, dict, ServerAddress)):
        host_list = [host_list]
    elif not isinstance(host_list, Iterable):
        raise ValueError(f"invalid server list {host_list!r}; pass a list of 'host:port' entries")
    addresses = [parse_address(entry) for entry in host_list]
    if not addresses:
        raise ValueError("the server list is empty; give at least one 'host:port'")
    return addresses


def _default_resolver(host: str, port: int) -> list[tuple[int, tuple[Any, ...]]]:
    infos = socket.getaddrinfo(host, port, 0, _stdlib_socket.SOCK_STREAM)
    return [(family, sockaddr) for family, _type, _proto, _name, sockaddr in infos]


def open_connection(
    address: ServerAddress,
    *,
    timeout: float,
    resolver: Resolver | None = None,
    keepalive: bool = True,
) -> socket.socket:
    """Connect to a job server, trying each resolved address in order.

    Each address gets ``timeout`` seconds. The socket comes back with
    TCP_NODELAY (a Gearman packet must not wait for a delayed ACK) and, if asked,
    TCP keepalive, and with no timeout set.

    Raises:
        OSError: name resolution failed or no address accepted a connection; the
            message names the server and every address tried.
    """
    resolve = resolver or _default_resolver
    with gevent.Timeout(timeout * 2 + 1, OSError(f"resolving {address.host!r} timed out")):
        candidates = list(resolve(address.host, address.port))
    if not candidates:
        raise OSError(f"{address.host!r} resolved to no address")
    errors = []
    last_error: OSError | None = None
    for family, sockaddr in candidates:
        sock = socket.socket(family, _stdlib_socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            errors.append(f"{sockaddr[0]}: {exc}")
            last_error = exc
            continue
        sock.setsockopt(_stdlib_socket.IPPROTO_TCP, _stdlib_socket.TCP_NODELAY, 1)
        if keepalive:
            _enable_keepalive(sock)
        sock.settimeout(None)
        if errors:
            log.info("connected to %s at %s after failing on %s", address, sockaddr[0], errors)
        return sock
    # The errno of the last attempt is kept, so callers can tell a refused
    # connection from a timeout without parsing the message.
    assert last_error is not None
    tried = str(address) if len(errors) == 1 else f"{address} ({'; '.join(errors)})"
    raise OSError(last_error.errno, last_error.strerror or str(last_error), tried)


def _enable_keepalive(sock: socket.socket) -> None:
    sock.setsockopt(_stdlib_socket.SOL_SOCKET, _stdlib_socket.SO_KEEPALIVE, 1)
    # Linux defaults wait two hours before the first probe; a dead job server
    # should be noticed within about a minute.
    for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
        option = getattr(_stdlib_socket, name, None)
        if option is not None:
            sock.setsockopt(_stdlib_socket.IPPROTO_TCP, option, value)


class Backoff:
    """Reconnect delays: exponential growth with jitter and a cap.

    The n-th delay is drawn uniformly from the upper half of
    ``min(maximum, minimum * factor ** n)``, so delays grow but never line up
    across many workers restarting together.
    """

    def __init__(self, minimum: float = 0.25, maximum: float = 5.0, factor: float = 2.0) -> None:
        if not 0 < minimum <= maximum:
            raise ValueError(f"need 0 < minimum <= maximum, got {minimum!r} and {maximum!r}")
        self.minimum = minimum
        self.maximum = maximum
        self.factor = factor
        self.attempts = 0

    def next_delay(self) -> float:
        # Capping the exponent keeps factor ** n finite however long an outage lasts.
        exponent = min(self.attempts, 64)
        ceiling = min(self.maximum, self.minimum * self.factor**exponent)
        self.attempts += 1
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self.attempts = 0


class Writer:
    """The one writer of a connection: queued packets leave in order, batched.

    Any greenlet may call :meth:`write`. The bytes are appended to a buffer, and a
    hub callback at the end of the current loop iteration sends everything
    buffered with one non-blocking write, so packets never interleave and a
    result and the next GRAB share one segment. Whatever the kernel does not
    take at once is sent by a writer greenlet, which waits for the socket.

    Packets about jobs (results and in-flight updates) are queued with
    ``urgent=True`` and leave ahead of the other packets queued in the same loop
    iteration, such as GRABs asked for when the job was assigned, so the server
    forwards a result before it answers those GRABs. Order within each of the
    two queues is kept.
    Callers that may wait (job greenlets) use :meth:`write_or_wait`, which blocks
    while more than ``high_water`` bytes are queued.
    """

    def __init__(self, sock: socket.socket, name: str, high_water: int = 4 * 1024 * 1024) -> None:
        self._sock = sock
        self._fd = sock.fileno()
        self._name = name
        self._loop = gevent.get_hub().loop
        self._buffer: list[bytes] = []
        self._urgent: list[bytes] = []
        self._buffered = 0
        self.high_water = high_water
        self._flush_scheduled = False
        # Bytes the kernel did not take yet; while set, the writer greenlet owns
        # sending, and it also sends what is buffered meanwhile.
        self._backlog: memoryview | None = None
        self._ready = gevent.event.Event()
        self._drained = gevent.event.Event()
        self._drained.set()
        self._idle = gevent.event.Event()
        self._idle.set()
        self.closed = False
        self.error: BaseException | None = None
        self._greenlet: gevent.Greenlet | None = None

    def write(self, data: bytes, urgent: bool = False) -> None:
        """Queue bytes without waiting; dropped silently once the writer is closed."""
        if self.closed:
            return
        if urgent:
            self._urgent.append(data)
        else:
            self._buffer.append(data)
        self._buffered += len(data)
        self._idle.clear()
        if self._buffered > self.high_water:
            self._drained.clear()
        if not self._flush_scheduled and self._backlog is None:
            self._flush_scheduled = True
            self._loop.run_callback(self._flush)

    def write_or_wait(self, data: bytes, urgent: bool = False) -> bool:
        """Queue bytes, first waiting while the buffer is over its high-water mark.

        Returns False if the connection closed before the bytes could be queued.
        """
        while self._buffered > self.high_water and not self.closed:
            self._drained.wait()
        if self.closed:
            return False
        self.write(data, urgent)
        return True

    def flush_and_close(self, timeout: float) -> None:
        """Send what is queued, waiting up to ``timeout`` seconds, then stop."""
        if not self.closed:
            self._idle.wait(timeout)
        self.close()

    def close(self) -> None:
        self._discard()
        self._ready.set()
        if self._greenlet is not None and self._greenlet is not gevent.getcurrent():
            self._greenlet.kill(block=False)

    def _flush(self) -> None:
        # Runs in the hub, so it must neither block nor raise.
        self._flush_scheduled = False
        if self.closed or self._backlog is not None:
            return
        data = self._take()
        if not data:
            self._idle.set()
            return
        try:
            sent = os.write(self._fd, data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._failed(exc)
            return
        if sent < len(data):
            self._backlog = memoryview(data)[sent:]
            if self._greenlet is None:
                self._greenlet = gevent.spawn(self._send_backlog)
                self._greenlet.name = f"geargevent writer {self._name}"
            self._ready.set()
            return
        self._drained.set()
        self._idle.set()

    def _send_backlog(self) -> None:
        sock = self._sock
        while True:
            self._ready.wait()
            self._ready.clear()
            while not self.closed and self._backlog is not None:
                try:
                    sock.sendall(self._backlog)
                except OSError as exc:
                    self._failed(exc)
                    return
                data = self._take()
                self._backlog = memoryview(data) if data else None
            if self.closed:
                return
            self._drained.set()
            self._idle.set()

    def _discard(self) -> None:
        """Mark the writer closed, drop what is queued and release every waiter."""
        self.closed = True
        self._buffer.clear()
        self._urgent.clear()
        self._buffered = 0
        self._backlog = None
        self._drained.set()
        self._idle.set()

    def _take(self) -> bytes:
        """Remove and return everything queued, urgent packets first."""
        if self._urgent:
            self._urgent.extend(self._buffer)
            parts = self._urgent
            self._urgent = []
            self._buffer.clear()
        else:
            parts = self._buffer
            self._buffer = []
        self._buffered = 0
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)

    def _failed(self, exc: OSError) -> None:
        log.debug("write.failed server=%s error=%r", self._name, exc)
        self.error = exc
        self._discard()
        # Closing the read side too makes the reader see the loss at once.
        with contextlib.suppress(OSError):
            self._sock.shutdown(_stdlib_socket.SHUT_RDWR)
