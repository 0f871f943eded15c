"""Tests of server addresses, reconnect backoff, connecting and the connection writer.

Connecting is tested against a real gearmand on 127.0.0.1. The writer is tested over a
gevent socket pair, so the peer end can read slowly, stop reading or close.
"""

from __future__ import annotations

import itertools
import socket as stdlib_socket
import time
from collections.abc import Iterator
from typing import Any

import gevent
import pytest
from gevent import socket

from geargevent._framing import PacketParser, encode_packet
from geargevent._packets import REQ, PacketType
from geargevent.connection import (
    DEFAULT_PORT,
    Backoff,
    ServerAddress,
    Writer,
    open_connection,
    parse_address,
    parse_host_list,
)
from geargevent.testing import GearmandProcess

LOCALHOST = "127.0.0.1"


def free_port() -> int:
    """Return a port on 127.0.0.1 with nothing listening on it a moment ago."""
    with stdlib_socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_STREAM) as probe:
        probe.bind((LOCALHOST, 0))
        port: int = probe.getsockname()[1]
        return port


# ---------------------------------------------------------------------------------------------
# parse_address


@pytest.mark.parametrize(
    ("entry", "host", "port"),
    [
        ("gearman-host", "gearman-host", DEFAULT_PORT),
        ("gearman-host:4731", "gearman-host", 4731),
        ("127.0.0.1", "127.0.0.1", DEFAULT_PORT),
        ("127.0.0.1:1", "127.0.0.1", 1),
        ("127.0.0.1:65535", "127.0.0.1", 65535),
        ("  gearman-host:4731\n", "gearman-host", 4731),
        ("[::1]:4730", "::1", 4730),
        ("[::1]:4999", "::1", 4999),
        ("[::1]", "::1", DEFAULT_PORT),
        ("::1", "::1", DEFAULT_PORT),
        ("fe80::1:2", "fe80::1:2", DEFAULT_PORT),
        (b"gearman-host:4732", "gearman-host", 4732),
        (b"[::1]:4733", "::1", 4733),
        (("gearman-host", 4734), "gearman-host", 4734),
        (("gearman-host", "4735"), "gearman-host", 4735),
        (("::1", 4736), "::1", 4736),
        ({"host": "gearman-host", "port": 4737}, "gearman-host", 4737),
        ({"host": "gearman-host"}, "gearman-host", DEFAULT_PORT),
        (ServerAddress("gearman-host", 4738), "gearman-host", 4738),
    ],
    ids=repr,
)
def test_parse_address_accepted(entry: object, host: str, port: int) -> None:
    assert parse_address(entry) == ServerAddress(host, port)


@pytest.mark.parametrize(
    "entry",
    [
        "h:",
        "h:x",
        "h:0",
        "h:70000",
        "h:-1",
        ":4730",
        "my host:4730",
        "[::1]:",
        "[::1]:x",
        "[::1]:0",
        ("h",),
        ("h", 1, 2),
        ("", 4730),
        ("h", "x"),
        ("h", 0),
        ("h", None),
        42,
        None,
        ["h", 4730],
        {"port": 1},
        {"host": "h", "port": "x"},
        {"host": "h", "port": 70000},
    ],
    ids=repr,
)
def test_parse_address_rejected(entry: object) -> None:
    with pytest.raises(ValueError) as caught:
        parse_address(entry)

    assert repr(entry) in str(caught.value)


@pytest.mark.parametrize("entry", ["", "   ", b""])
def test_parse_address_empty_rejected(entry: object) -> None:
    with pytest.raises(ValueError, match="empty server entry"):
        parse_address(entry)


def test_server_address_str() -> None:
    assert str(ServerAddress("gearman-host", 4731)) == "gearman-host:4731"
    assert str(ServerAddress("::1", 4730)) == "[::1]:4730"
    assert str(ServerAddress("127.0.0.1")) == "127.0.0.1:4730"


def test_server_address_str_parses_back() -> None:
    for address in (ServerAddress("gearman-host", 4731), ServerAddress("::1", 4999)):
        assert parse_address(str(address)) == address


# ---------------------------------------------------------------------------------------------
# parse_host_list


def test_host_list_none_is_localhost() -> None:
    assert parse_host_list(None) == [ServerAddress("127.0.0.1", DEFAULT_PORT)]


@pytest.mark.parametrize(
    "entry",
    ["gearman-host:4731", b"gearman-host:4731", ("gearman-host", 4731)],
    ids=repr,
)
def test_host_list_single_entry(entry: Any) -> None:
    assert parse_host_list(entry) == [ServerAddress("gearman-host", 4731)]


def test_host_list_single_dict() -> None:
    assert parse_host_list({"host": "gearman-host", "port": 4731}) == [
        ServerAddress("gearman-host", 4731)
    ]


def test_host_list_mixed_entries() -> None:
    entries = ["a", "b:4731", ("c", 4732), {"host": "d"}, "[::1]:4733"]

    assert parse_host_list(entries) == [
        ServerAddress("a", DEFAULT_PORT),
        ServerAddress("b", 4731),
        ServerAddress("c", 4732),
        ServerAddress("d", DEFAULT_PORT),
        ServerAddress("::1", 4733),
    ]


def test_host_list_accepts_iterator() -> None:
    assert parse_host_list(iter(["a:1", "b:2"])) == [ServerAddress("a", 1), ServerAddress("b", 2)]


def test_host_list_empty_rejected() -> None:
    with pytest.raises(ValueError, match="server list is empty"):
        parse_host_list([])


def test_host_list_names_bad_entry() -> None:
    with pytest.raises(ValueError, match="'b:x'"):
        parse_host_list(["a:1", "b:x"])


# ---------------------------------------------------------------------------------------------
# Backoff


def test_backoff_first_delay_within_minimum() -> None:
    for _ in range(200):
        backoff = Backoff(minimum=0.25, maximum=5.0)
        delay = backoff.next_delay()
        assert 0.125 <= delay <= 0.25


def test_backoff_delays_within_ceiling() -> None:
    backoff = Backoff(minimum=0.1, maximum=3.0, factor=2.0)

    for attempt in range(30):
        ceiling = min(3.0, 0.1 * 2.0**attempt)
        delay = backoff.next_delay()
        assert ceiling / 2 <= delay <= ceiling, (attempt, delay)
        assert backoff.attempts == attempt + 1


def test_backoff_grows_until_cap() -> None:
    backoff = Backoff(minimum=0.01, maximum=10.0, factor=2.0)
    delays = [backoff.next_delay() for _ in range(10)]

    # Each delay is at least half its ceiling, which is the previous ceiling, so below the
    # cap no delay is shorter than the one before it.
    for previous, current in itertools.pairwise(delays):
        assert current >= previous
    assert delays[-1] >= 0.01 * 2**9 / 2


def test_backoff_capped_at_maximum() -> None:
    backoff = Backoff(minimum=0.5, maximum=2.0, factor=3.0)

    for _ in range(5):
        backoff.next_delay()
    for _ in range(200):
        delay = backoff.next_delay()
        assert 1.0 <= delay <= 2.0


def test_backoff_never_exceeds_maximum() -> None:
    # A job server may stay down for hours; the delay must stay valid however many
    # attempts failed in a row.
    backoff = Backoff(minimum=0.25, maximum=5.0, factor=2.0)

    for attempt in range(2000):
        delay = backoff.next_delay()
        assert 0 < delay <= 5.0, (attempt, delay)


def test_backoff_reset() -> None:
    backoff = Backoff(minimum=0.2, maximum=5.0)
    for _ in range(8):
        backoff.next_delay()

    backoff.reset()

    assert backoff.attempts == 0
    assert 0.1 <= backoff.next_delay() <= 0.2


@pytest.mark.parametrize(
    ("minimum", "maximum"),
    [(0, 1.0), (-1.0, 1.0), (2.0, 1.0)],
)
def test_backoff_invalid_bounds(minimum: float, maximum: float) -> None:
    with pytest.raises(ValueError, match="minimum <= maximum"):
        Backoff(minimum=minimum, maximum=maximum)


# ---------------------------------------------------------------------------------------------
# open_connection


def address_of(server: GearmandProcess) -> ServerAddress:
    return ServerAddress(server.host, server.port)


def test_open_connection_socket_options(gearmand: GearmandProcess) -> None:
    sock = open_connection(address_of(gearmand), timeout=2.0)
    try:
        assert sock.getpeername() == (LOCALHOST, gearmand.port)
        assert sock.getsockopt(stdlib_socket.IPPROTO_TCP, stdlib_socket.TCP_NODELAY) != 0
        assert sock.getsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_KEEPALIVE) != 0
        assert sock.gettimeout() is None
        if hasattr(stdlib_socket, "TCP_KEEPIDLE"):
            idle = sock.getsockopt(stdlib_socket.IPPROTO_TCP, stdlib_socket.TCP_KEEPIDLE)
            assert 0 < idle <= 60
    finally:
        sock.close()


def test_open_connection_without_keepalive(gearmand: GearmandProcess) -> None:
    sock = open_connection(address_of(gearmand), timeout=2.0, keepalive=False)
    try:
        assert sock.getsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_KEEPALIVE) == 0
        assert sock.getsockopt(stdlib_socket.IPPROTO_TCP, stdlib_socket.TCP_NODELAY) != 0
    finally:
        sock.close()


def test_open_connection_speaks_gearman(gearmand: GearmandProcess) -> None:
    sock = open_connection(address_of(gearmand), timeout=2.0)
    try:
        sock.sendall(encode_packet(PacketType.ECHO_REQ, b"ping"))
        parser = PacketParser()
        packets = []
        with gevent.Timeout(5):
            while not packets:
                packets = parser.feed(sock.recv(4096))
        assert packets[0].type is PacketType.ECHO_RES
        assert packets[0].arguments == (b"ping",)
    finally:
        sock.close()


def test_open_connection_skips_refused_address(gearmand: GearmandProcess) -> None:
    refused_port = free_port()
    lookups: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[tuple[int, tuple[Any, ...]]]:
        lookups.append((host, port))
        return [
            (stdlib_socket.AF_INET, (LOCALHOST, refused_port)),
            (stdlib_socket.AF_INET, (LOCALHOST, gearmand.port)),
        ]

    address = ServerAddress("gearman-host", gearmand.port)
    sock = open_connection(address, timeout=2.0, resolver=resolver)
    try:
        assert lookups == [("gearman-host", gearmand.port)]
        assert sock.getpeername() == (LOCALHOST, gearmand.port)
    finally:
        sock.close()


def test_open_connection_all_refused() -> None:
    ports = [free_port(), free_port()]

    def resolver(host: str, port: int) -> list[tuple[int, tuple[Any, ...]]]:
        return [(stdlib_socket.AF_INET, (LOCALHOST, p)) for p in ports]

    with pytest.raises(OSError) as caught:
        open_connection(ServerAddress("gearman-host", 4730), timeout=2.0, resolver=resolver)

    message = str(caught.value)
    assert "gearman-host:4730" in message
    assert message.count(LOCALHOST) == 2


def test_open_connection_refused_port(gearmand: GearmandProcess) -> None:
    port = free_port()
    with pytest.raises(ConnectionRefusedError, match=f"{LOCALHOST}:{port}"):
        open_connection(ServerAddress(LOCALHOST, port), timeout=2.0)


def test_open_connection_resolver_raises() -> None:
    def resolver(host: str, port: int) -> list[tuple[int, tuple[Any, ...]]]:
        raise stdlib_socket.gaierror(stdlib_socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(OSError, match="not known"):
        open_connection(ServerAddress("gearman-host", 4730), timeout=1.0, resolver=resolver)


def test_open_connection_resolves_nothing() -> None:
    def resolver(host: str, port: int) -> list[tuple[int, tuple[Any, ...]]]:
        return []

    with pytest.raises(OSError, match="resolved to no address"):
        open_connection(ServerAddress("gearman-host", 4730), timeout=1.0, resolver=resolver)


def test_open_connection_slow_resolver_bounded() -> None:
    calls = []

    def resolver(host: str, port: int) -> list[tuple[int, tuple[Any, ...]]]:
        calls.append(host)
        gevent.sleep(10)
        return [(stdlib_socket.AF_INET, (LOCALHOST, 4730))]

    started = time.monotonic()
    with pytest.raises(OSError, match="timed out"):
        open_connection(ServerAddress("gearman-host", 4730), timeout=0.2, resolver=resolver)
    elapsed = time.monotonic() - started

    assert calls == ["gearman-host"]
    assert elapsed < 5.0


# ---------------------------------------------------------------------------------------------
# Writer


@pytest.fixture
def socket_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, peer = socket.socketpair()
    try:
        yield ours, peer
    finally:
        ours.close()
        peer.close()


def read_exactly(sock: socket.socket, size: int, timeout: float = 5.0) -> bytes:
    data = bytearray()
    with gevent.Timeout(timeout, AssertionError(f"got {len(data)} of {size} bytes")):
        while len(data) < size:
            chunk = sock.recv(min(size - len(data), 1 << 20))
            if not chunk:
                break
            data += chunk
    return bytes(data)


def read_until_eof(sock: socket.socket, timeout: float = 5.0) -> bytes:
    data = bytearray()
    with gevent.Timeout(timeout, AssertionError("no EOF")):
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                return bytes(data)
            data += chunk


def wait_until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        gevent.sleep(0.02)


def test_writer_keeps_greenlet_order(socket_pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = socket_pair
    writer = Writer(ours, "pair")
    greenlets, per_greenlet = 10, 40

    def produce(number: int) -> None:
        for sequence in range(per_greenlet):
            # Some payloads are larger than the socket buffer, so sends are partial.
            filler = bytes([number]) * (300_000 if sequence % 13 == 0 else sequence * 7)
            payload = b"%d:%d:" % (number, sequence) + filler
            writer.write(encode_packet(PacketType.ECHO_REQ, payload))
            if sequence % 3 == 0:
                gevent.sleep(0)

    received: dict[int, list[int]] = {number: [] for number in range(greenlets)}
    total = greenlets * per_greenlet

    def consume() -> None:
        parser = PacketParser(magic=REQ)
        count = 0
        while count < total:
            chunk = peer.recv(1 << 16)
            assert chunk, "writer closed early"
            for packet in parser.feed(chunk):
                assert packet.type is PacketType.ECHO_REQ
                number_text, sequence_text, filler = packet.arguments[0].split(b":", 2)
                number, sequence = int(number_text), int(sequence_text)
                assert set(filler) <= {number}
                expected_size = 300_000 if sequence % 13 == 0 else sequence * 7
                assert len(filler) == expected_size
                received[number].append(sequence)
                count += 1
        assert parser.buffered == 0

    try:
        reader = gevent.spawn(consume)
        producers = [gevent.spawn(produce, number) for number in range(greenlets)]
        gevent.joinall(producers, timeout=20, raise_error=True)
        reader.get(timeout=20)
    finally:
        writer.close()

    for number in range(greenlets):
        assert received[number] == list(range(per_greenlet)), number
    assert writer.error is None


def test_writer_batches_queued_packets(socket_pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = socket_pair
    writer = Writer(ours, "pair")
    packets = [encode_packet(PacketType.ECHO_REQ, b"%d" % i) for i in range(100)]

    for packet in packets:
        writer.write(packet)
    expected = b"".join(packets)

    try:
        assert read_exactly(peer, len(expected)) == expected
    finally:
        writer.close()


def test_write_or_wait_below_high_water(socket_pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = socket_pair
    writer = Writer(ours, "pair", high_water=1024)
    try:
        assert writer.write_or_wait(b"small") is True
        assert read_exactly(peer, 5) == b"small"
    finally:
        writer.close()


def test_write_or_wait_blocks_above_high_water(
    socket_pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = socket_pair
    writer = Writer(ours, "pair", high_water=1024)
    # Far more than a socket pair buffers, so the writer greenlet blocks in sendall.
    large = b"L" * (8 * 1024 * 1024)
    queued = b"Q" * 2048
    try:
        writer.write(large)
        gevent.sleep(0.05)
        writer.write(queued)
        waiter = gevent.spawn(writer.write_or_wait, b"tail")

        gevent.sleep(0.2)
        assert not waiter.ready(), "write_or_wait returned while over the high-water mark"

        reader = gevent.spawn(read_exactly, peer, len(large) + len(queued) + 4, 20.0)
        assert waiter.get(timeout=10) is True
        data = reader.get(timeout=20)
    finally:
        writer.close()

    assert data == large + queued + b"tail"


def test_flush_and_close_delivers_queue(socket_pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = socket_pair
    writer = Writer(ours, "pair")
    chunks = [bytes([i % 256]) * 50_000 for i in range(40)]
    expected = b"".join(chunks)
    reader = gevent.spawn(read_exactly, peer, len(expected), 20.0)

    for chunk in chunks:
        writer.write(chunk)
    writer.flush_and_close(10.0)

    assert writer.closed
    assert reader.get(timeout=20) == expected
    assert writer.error is None


def test_writes_after_close_dropped(socket_pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = socket_pair
    writer = Writer(ours, "pair")
    writer.write(b"before")
    writer.flush_and_close(5.0)

    writer.write(b"after")
    assert writer.write_or_wait(b"after-wait") is False
    gevent.sleep(0.05)
    ours.shutdown(stdlib_socket.SHUT_WR)

    assert read_until_eof(peer) == b"before"


def test_close_twice_is_harmless(socket_pair: tuple[socket.socket, socket.socket]) -> None:
    ours, _peer = socket_pair
    writer = Writer(ours, "pair")

    writer.close()
    writer.close()
    writer.flush_and_close(1.0)

    assert writer.closed


def test_writer_records_peer_close(socket_pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = socket_pair
    writer = Writer(ours, "pair", high_water=1024)
    peer.close()

    try:
        for _ in range(3):
            writer.write(b"x" * 4096)
            gevent.sleep(0.02)
        wait_until(lambda: writer.error is not None)

        assert isinstance(writer.error, OSError)
        assert writer.closed
        assert writer.write_or_wait(b"more") is False
    finally:
        writer.close()


def test_peer_close_releases_waiter(socket_pair: tuple[socket.socket, socket.socket]) -> None:
    ours, peer = socket_pair
    writer = Writer(ours, "pair", high_water=1024)
    try:
        writer.write(b"L" * (8 * 1024 * 1024))
        gevent.sleep(0.05)
        writer.write(b"Q" * 2048)
        waiter = gevent.spawn(writer.write_or_wait, b"tail")
        gevent.sleep(0.1)
        assert not waiter.ready()

        peer.close()

        assert waiter.get(timeout=5) is False
        wait_until(lambda: writer.error is not None)
    finally:
        writer.close()
