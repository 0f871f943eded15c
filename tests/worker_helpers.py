"""Helpers for the worker tests, which run a worker in a greenlet, wait and read server state.

Everything here uses gevent sockets or quick local calls, so the worker greenlets keep running
while a test waits.
"""

from __future__ import annotations

import contextlib
import socket as stdlib_socket
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import gevent.server
from gevent import socket
from relay import TO_SERVER, Relay

from geargevent import GearmanClient, GearmanWorker
from geargevent._packets import PacketType
from geargevent.testing import GearmandProcess

HOST = "127.0.0.1"
HEADER = struct.Struct(">4sII")

# Packets that end a job. A worker must send exactly one of them for each job it ends.
TERMINAL_PACKETS = (PacketType.WORK_COMPLETE, PacketType.WORK_FAIL, PacketType.WORK_EXCEPTION)

# The function that add_ping registers. A ping job flushes the worker's earlier packets (see ping).
PING = "ping"


@contextlib.contextmanager
def running(worker: GearmanWorker, poll_timeout: float | None = 1.0) -> Iterator[gevent.Greenlet]:
    """Run ``worker.work(poll_timeout)`` in a greenlet and stop the worker on exit."""
    greenlet = gevent.spawn(worker.work, poll_timeout)
    try:
        yield greenlet
    finally:
        worker.shutdown(graceful=False)
        greenlet.join(5)


def wait_until(
    predicate: Callable[[], object], timeout: float = 5.0, description: str = ""
) -> None:
    """Poll ``predicate`` every 20 ms until it is true, and fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout} s waiting for {description or predicate}"
            )
        gevent.sleep(0.02)


def registered_functions(server: GearmandProcess, client_id: str | None = None) -> set[str]:
    """Return the functions that the admin ``workers`` listing shows.

    Lines look like ``FD IP CLIENT-ID : FUNCTION ...``. With ``client_id``, only connections
    with that id count.
    """
    functions: set[str] = set()
    for line in server.workers():
        head, _, names = line.partition(" :")
        fields = head.split()
        if client_id is not None and (len(fields) < 3 or fields[2] != client_id):
            continue
        functions.update(names.split())
    return functions


def wait_for_registration(
    server: GearmandProcess, function: str, client_id: str | None = None, timeout: float = 5.0
) -> None:
    wait_until(
        lambda: function in registered_functions(server, client_id),
        timeout,
        f"function {function!r} in the workers listing of {server.address}",
    )


def gearmand_log(server: GearmandProcess) -> str:
    """Return the whole log of a C gearmand (started with --verbose=INFO by the fixtures)."""
    return server.log_path.read_text(errors="replace")


def unused_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with stdlib_socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def handle_of(payload: bytes) -> bytes:
    """Return the job handle at the start of a WORK_* payload."""
    return payload.split(b"\0", 1)[0]


def terminal_packets_by_handle(relay: Relay) -> Counter[bytes]:
    """Count the WORK_COMPLETE, WORK_FAIL and WORK_EXCEPTION packets sent per job handle."""
    counts: Counter[bytes] = Counter()
    for packet_type in TERMINAL_PACKETS:
        for record in relay.packets(TO_SERVER, packet_type):
            counts[handle_of(record.payload)] += 1
    return counts


def answer_ping(worker: GearmanWorker, job: Any) -> bytes:
    return b"pong"


def add_ping(worker: GearmanWorker) -> GearmanWorker:
    """Register the ping function on ``worker`` and return the worker."""
    worker.register_task(PING, answer_ping)
    return worker


def ping(client: GearmanClient, timeout: float = 5.0) -> None:
    """Run one ping job to completion.

    A worker's packets leave through one writer in order, so once the ping result arrived,
    every packet the worker wrote before it has reached the job server (and a relay has
    recorded it).
    """
    request = client.submit_job(PING, b"", poll_timeout=timeout)
    assert request.result == b"pong", f"ping job did not complete: {request!r}"


def log_messages(records: list[Any], level: int, text: str) -> list[str]:
    """Return the messages of log records at ``level`` or above that contain ``text``."""
    return [
        record.getMessage()
        for record in records
        if record.levelno >= level and text in record.getMessage()
    ]


def response_packet(packet_type: int, *arguments: bytes) -> bytes:
    payload = b"\0".join(arguments)
    return HEADER.pack(b"\0RES", packet_type, len(payload)) + payload


class BadMagicJobServer:
    """A fake job server on 127.0.0.1 that corrupts the stream of its first connection.

    Every connection gets NO_JOB for each GRAB_JOB_UNIQ or GRAB_JOB. On the first connection,
    the first NO_JOB is followed by a packet whose magic is ``\\0BAD``. Other packets are
    read and ignored.

    Attributes:
        connections: connections accepted so far.
        closed_by_peer: numbers (from 1) of the connections the worker closed.
    """

    def __init__(self) -> None:
        self.connections = 0
        self.closed_by_peer: list[int] = []
        self._server = gevent.server.StreamServer((HOST, 0), self._serve)
        self._server.start()

    @property
    def address(self) -> str:
        return f"{HOST}:{self._server.server_port}"

    def stop(self) -> None:
        self._server.stop(timeout=2)

    def _serve(self, sock: socket.socket, _peer: tuple[str, int]) -> None:
        self.connections += 1
        number = self.connections
        corrupted = False
        try:
            while True:
                header = _receive_exactly(sock, HEADER.size)
                if header is None:
                    self.closed_by_peer.append(number)
                    return
                _magic, packet_type, size = HEADER.unpack(header)
                if size and _receive_exactly(sock, size) is None:
                    self.closed_by_peer.append(number)
                    return
                if packet_type in (PacketType.GRAB_JOB_UNIQ, PacketType.GRAB_JOB):
                    reply = response_packet(PacketType.NO_JOB)
                    if number == 1 and not corrupted:
                        corrupted = True
                        reply += b"\0BAD" + struct.pack(">II", PacketType.NO_JOB, 0)
                    sock.sendall(reply)
        except OSError:
            self.closed_by_peer.append(number)
        finally:
            sock.close()


def _receive_exactly(sock: socket.socket, size: int) -> bytes | None:
    """Read ``size`` bytes, or return None if the peer closed the connection first."""
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)
