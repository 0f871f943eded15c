"""A packet-aware TCP relay for tests that put a Gearman peer and gearmand on either end.

The relay listens on 127.0.0.1, opens one upstream connection to the target for every
connection it accepts, and forwards bytes both ways unchanged. On the way it splits each
stream into Gearman packets and admin text lines. A packet is a 12-byte header (the magic
``\\0REQ`` or ``\\0RES``, a big-endian u32 packet type and a big-endian u32 payload length)
followed by the payload. A unit whose first byte is not NUL is an admin text line, which runs
up to and including ``\\n``. A test can then:

* count packets by direction and type, and wait for a count (:meth:`Relay.count`,
  :meth:`Relay.wait_for`);
* read the log of everything seen (:attr:`Relay.log`);
* drop or delay chosen packets (:meth:`Relay.drop`, :meth:`Relay.delay`);
* sever every proxied connection at once to simulate a network failure
  (:meth:`Relay.close_all`).

Directions are named by destination: ``"to_server"`` is what the client or
worker sends to gearmand, ``"to_client"`` is what gearmand sends back.

The relay runs in greenlets of the calling thread and does not monkey-patch anything, so a test
in that thread must talk to it with gevent sockets (or through geargevent). A blocking standard
library socket would block the hub, and the relay with it.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import struct
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import gevent
import gevent.pool
import gevent.server
from gevent import socket

__all__ = ["TO_CLIENT", "TO_SERVER", "Direction", "Record", "Relay"]

log = logging.getLogger("tests.relay")

Direction = Literal["to_server", "to_client"]
TO_SERVER: Direction = "to_server"
TO_CLIENT: Direction = "to_client"
_DIRECTIONS = (TO_SERVER, TO_CLIENT)

HOST = "127.0.0.1"
HEADER = struct.Struct(">4sII")


class Record(NamedTuple):
    """One packet or admin text line that went through the relay."""

    direction: Direction
    #: Gearman packet type, or None for an admin text line.
    packet_type: int | None
    #: Payload (or the text line with its line end), cut to ``Relay.max_logged_payload`` bytes.
    payload: bytes
    #: Full payload length in bytes, as announced by the header.
    size: int
    #: True if a drop rule removed the packet from the stream.
    dropped: bool
    #: Number of the proxied connection, counting from 1 in accept order.
    connection: int


@dataclass
class _Rule:
    direction: Direction
    packet_type: int
    action: Literal["drop", "delay"]
    remaining: int | None  # None: applies until the rules are cleared
    seconds: float = 0.0


@dataclass
class _Connection:
    number: int
    client: socket.socket
    upstream: socket.socket
    pumps: list[gevent.Greenlet] = field(default_factory=list)


class _StreamState:
    """Parser position within one direction of one connection."""

    def __init__(self) -> None:
        self.header = bytearray()
        self.in_text = False
        self.text = bytearray()
        self.text_size = 0
        self.in_payload = False
        self.packet_type = 0
        self.remaining = 0
        self.size = 0
        self.dropped = False
        self.payload = bytearray()


class Relay:
    """A TCP relay from 127.0.0.1 and a free port to ``target_host:target_port``.

    It starts listening in the constructor. Use it as a context manager or call :meth:`stop`.
    A connection accepted while the target refuses connections is closed at once, so the peer
    reads EOF where a direct connect would have been refused.

    Args:
        target_host: address of gearmand. Tests use 127.0.0.1 only.
        target_port: port of gearmand.
        connect_timeout: seconds to wait for each upstream connect.
        max_connections: proxied connections open at once. Further ones wait to be accepted.
        max_logged_payload: bytes of each payload kept in :attr:`log`.
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        connect_timeout: float = 5.0,
        max_connections: int = 256,
        max_logged_payload: int = 1 << 20,
    ) -> None:
        self.target = (target_host, target_port)
        self.connect_timeout = connect_timeout
        self.max_logged_payload = max_logged_payload
        #: Every packet and admin text line seen, in the order they were forwarded or dropped.
        self.log: list[Record] = []
        #: Connections accepted so far, including closed ones.
        self.accepted = 0

        self._counts: Counter[tuple[Direction, int, bool]] = Counter()
        self._rules: list[_Rule] = []
        self._connections: dict[int, _Connection] = {}
        self._numbers = itertools.count(1)
        self._handlers = gevent.pool.Pool(max_connections)
        self._server = gevent.server.StreamServer((HOST, 0), self._handle, spawn=self._handlers)
        self._server.start()
        log.debug("relay.started listen=%s target=%s:%d", self.address, *self.target)

    # Addresses

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        port: int = self._server.server_port
        return port

    @property
    def address(self) -> str:
        """Listening address as ``"127.0.0.1:PORT"``, to hand to a worker or client."""
        return f"{HOST}:{self.port}"

    @property
    def open_connections(self) -> int:
        """Number of proxied connections that are currently open."""
        return len(self._connections)

    # Counting and waiting

    def count(self, direction: Direction, packet_type: int, *, dropped: bool | None = None) -> int:
        """Return how many packets of this type went in this direction.

        ``dropped=None`` counts every packet seen, ``False`` only forwarded ones and ``True``
        only dropped ones. A packet is counted once all of its bytes were forwarded or dropped.
        """
        _check_direction(direction)
        if dropped is None:
            return (
                self._counts[direction, packet_type, False]
                + self._counts[direction, packet_type, True]
            )
        return self._counts[direction, packet_type, dropped]

    def wait_for(
        self,
        direction: Direction,
        packet_type: int,
        count: int = 1,
        *,
        timeout: float = 5.0,
        dropped: bool | None = None,
    ) -> int:
        """Wait until :meth:`count` reaches ``count`` and return the count.

        Raises:
            TimeoutError: the count stayed below ``count`` for ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            seen = self.count(direction, packet_type, dropped=dropped)
            if seen >= count:
                return seen
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"timed out after {timeout} s waiting for {count} packets of type "
                    f"{packet_type} {direction}; the relay counted {seen}"
                )
            gevent.sleep(0.005)

    def packets(self, direction: Direction, packet_type: int | None = None) -> list[Record]:
        """Return the log entries of one direction, optionally only of one packet type."""
        _check_direction(direction)
        return [
            record
            for record in self.log
            if record.direction == direction
            and (packet_type is None or record.packet_type == packet_type)
        ]

    # Rules

    def drop(self, direction: Direction, packet_type: int, times: int | None = 1) -> None:
        """Drop the next ``times`` packets of this type in this direction (None: all of them).

        The rest of the stream is forwarded as usual, so the peer never learns of the loss.
        """
        self._add_rule(_Rule(direction, packet_type, "drop", times))

    def delay(
        self, direction: Direction, packet_type: int, seconds: float, times: int | None = 1
    ) -> None:
        """Hold the next ``times`` packets of this type for ``seconds`` before forwarding.

        Later bytes in the same direction wait behind the held packet, as they would on a slow
        TCP connection. The other direction keeps flowing.
        """
        if seconds < 0:
            raise ValueError(f"invalid delay {seconds!r}; expected seconds >= 0")
        self._add_rule(_Rule(direction, packet_type, "delay", times, seconds))

    def clear_rules(self) -> None:
        self._rules.clear()

    def _add_rule(self, rule: _Rule) -> None:
        _check_direction(rule.direction)
        if rule.remaining is not None and rule.remaining < 1:
            raise ValueError(f"invalid times {rule.remaining!r}; expected >= 1, or None for all")
        self._rules.append(rule)

    def _take_rule(self, direction: Direction, packet_type: int) -> _Rule | None:
        """Return the first rule for this packet and use up one of its applications."""
        for rule in self._rules:
            if rule.direction == direction and rule.packet_type == packet_type:
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self._rules.remove(rule)
                return rule
        return None

    # Severing and stopping

    def close_all(self, *, reset: bool = False, timeout: float = 5.0) -> int:
        """Close every proxied connection on both sides and return how many there were.

        Both peers see the connection end: with ``reset=False`` by an orderly close (EOF), with
        ``reset=True`` by a TCP reset (ECONNRESET). New connections are still accepted. Waits up
        to ``timeout`` seconds for the relay's greenlets of those connections to finish.
        """
        connections = list(self._connections.values())
        for connection in connections:
            _close_socket(connection.client, reset)
            _close_socket(connection.upstream, reset)
        pumps = [pump for connection in connections for pump in connection.pumps]
        gevent.joinall(pumps, timeout=timeout)
        log.debug("relay.close_all connections=%d reset=%s", len(connections), reset)
        return len(connections)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening, close every proxied connection, and wait for the relay's greenlets."""
        self._server.close()
        self.close_all(timeout=timeout)
        self._handlers.join(timeout=timeout)
        self._handlers.kill(block=True, timeout=1)
        log.debug("relay.stopped listen=%s accepted=%d", self.address, self.accepted)

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # Forwarding

    def _handle(self, client: socket.socket, address: tuple[str, int]) -> None:
        number = next(self._numbers)
        self.accepted += 1
        try:
            upstream = socket.create_connection(self.target, timeout=self.connect_timeout)
        except OSError as error:
            log.debug("relay.connect_failed connection=%d error=%r", number, error)
            client.close()
            return
        upstream.settimeout(None)
        # Packets are forwarded one by one; without TCP_NODELAY each small one can
        # wait for a delayed ACK, which adds tens of milliseconds per hop.
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        connection = _Connection(number, client, upstream)
        self._connections[number] = connection
        log.debug("relay.connected connection=%d peer=%s:%d", number, *address)
        try:
            connection.pumps = [
                gevent.spawn(self._pump, connection, TO_SERVER, client, upstream),
                gevent.spawn(self._pump, connection, TO_CLIENT, upstream, client),
            ]
            gevent.joinall(connection.pumps)
        finally:
            gevent.killall(connection.pumps, block=True, timeout=1)
            client.close()
            upstream.close()
            del self._connections[number]
            log.debug("relay.closed connection=%d", number)

    def _pump(
        self,
        connection: _Connection,
        direction: Direction,
        source: socket.socket,
        destination: socket.socket,
    ) -> None:
        state = _StreamState()
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    # Pass the end of the stream on as a half close, so that a peer that
                    # waits for the rest of a reply after shutting down its side still gets it.
                    with contextlib.suppress(OSError):
                        destination.shutdown(socket.SHUT_WR)
                    return
                self._forward(connection, direction, state, data, destination)
        except OSError as error:
            # One side failed (reset, or closed by close_all), so end both sides.
            log.debug(
                "relay.pump_failed connection=%d direction=%s error=%r",
                connection.number,
                direction,
                error,
            )
            connection.client.close()
            connection.upstream.close()

    def _forward(
        self,
        connection: _Connection,
        direction: Direction,
        state: _StreamState,
        data: bytes,
        destination: socket.socket,
    ) -> None:
        """Forward one chunk of the stream, splitting it into packets and text lines."""
        pending = bytearray()
        position = 0
        while position < len(data):
            if state.in_text:
                # An admin text line runs to the next newline. Its bytes pass straight on.
                newline = data.find(b"\n", position)
                end = len(data) if newline < 0 else newline + 1
                self._keep(state.text, data[position:end])
                state.text_size += end - position
                pending += data[position:end]
                position = end
                if newline >= 0:
                    destination.sendall(pending)
                    pending.clear()
                    self._record(
                        Record(
                            direction,
                            None,
                            bytes(state.text),
                            state.text_size,
                            False,
                            connection.number,
                        )
                    )
                    state.in_text = False
                    state.text.clear()
                    state.text_size = 0

            elif not state.in_payload:
                if not state.header and data[position] != 0:
                    state.in_text = True
                    continue
                take = min(HEADER.size - len(state.header), len(data) - position)
                state.header += data[position : position + take]
                position += take
                if len(state.header) < HEADER.size:
                    continue

                # A whole header arrived: apply the first matching rule, then stream the
                # payload (or discard it, for a dropped packet).
                _magic, packet_type, size = HEADER.unpack(state.header)
                rule = self._take_rule(direction, packet_type)
                if rule is not None and rule.action == "delay":
                    destination.sendall(pending)
                    pending.clear()
                    log.debug(
                        "relay.delay connection=%d direction=%s type=%d seconds=%s",
                        connection.number,
                        direction,
                        packet_type,
                        rule.seconds,
                    )
                    gevent.sleep(rule.seconds)
                state.dropped = rule is not None and rule.action == "drop"
                if not state.dropped:
                    pending += state.header
                state.header.clear()
                state.packet_type = packet_type
                state.size = size
                state.remaining = size
                state.payload.clear()
                state.in_payload = True

            else:
                take = min(state.remaining, len(data) - position)
                chunk = data[position : position + take]
                if not state.dropped:
                    pending += chunk
                self._keep(state.payload, chunk)
                state.remaining -= take
                position += take

            if state.in_payload and state.remaining == 0:
                # Forward the packet's last bytes before counting it. Once a test reads the
                # new count, the peer can already read the packet.
                destination.sendall(pending)
                pending.clear()
                state.in_payload = False
                self._record(
                    Record(
                        direction,
                        state.packet_type,
                        bytes(state.payload),
                        state.size,
                        state.dropped,
                        connection.number,
                    )
                )

        if pending:
            destination.sendall(pending)

    def _keep(self, buffer: bytearray, data: bytes) -> None:
        room = self.max_logged_payload - len(buffer)
        if room > 0:
            buffer += data[:room]

    def _record(self, record: Record) -> None:
        self.log.append(record)
        if record.packet_type is not None:
            self._counts[record.direction, record.packet_type, record.dropped] += 1
            if record.dropped:
                log.debug(
                    "relay.drop connection=%d direction=%s type=%d size=%d",
                    record.connection,
                    record.direction,
                    record.packet_type,
                    record.size,
                )


def _check_direction(direction: str) -> None:
    if direction not in _DIRECTIONS:
        raise ValueError(f"invalid direction {direction!r}; expected 'to_server' or 'to_client'")


def _close_socket(sock: socket.socket, reset: bool) -> None:
    with contextlib.suppress(OSError):
        if reset:
            # A zero linger time makes close() send a TCP reset instead of a FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
