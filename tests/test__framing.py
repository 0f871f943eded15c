"""Tests of packet encoding and incremental parsing.

Every packet type has one (packet, exact bytes) pair, checked in both directions. The bytes
are written out by hand, so the encoder is compared with the wire format rather than with
itself, and each decode feeds them whole, byte by byte, in random chunks and followed by a
partial packet.
"""

from __future__ import annotations

import itertools
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geargevent._framing import DEFAULT_MAX_PACKET_SIZE, PacketParser, encode_packet
from geargevent._packets import PACKET_ARGUMENTS, REQ, RES, Packet, PacketType
from geargevent.errors import LocalProtocolError, RemoteProtocolError

T = PacketType

# (packet, bytes on the wire). The header is magic, type and payload length, each 4 bytes.
WIRE_TABLE: list[tuple[Packet, bytes]] = [
    (Packet(T.CAN_DO, (b"reverse",), REQ), b"\0REQ\0\0\0\x01\0\0\0\x07reverse"),
    (Packet(T.CANT_DO, (b"reverse",), REQ), b"\0REQ\0\0\0\x02\0\0\0\x07reverse"),
    (Packet(T.RESET_ABILITIES, (), REQ), b"\0REQ\0\0\0\x03\0\0\0\0"),
    (Packet(T.PRE_SLEEP, (), REQ), b"\0REQ\0\0\0\x04\0\0\0\0"),
    (Packet(T.NOOP, (), RES), b"\0RES\0\0\0\x06\0\0\0\0"),
    (
        Packet(T.SUBMIT_JOB, (b"reverse", b"u-1", b"hello\0world"), REQ),
        b"\0REQ\0\0\0\x07\0\0\0\x17reverse\0u-1\0hello\0world",
    ),
    (Packet(T.JOB_CREATED, (b"H:vm:1",), RES), b"\0RES\0\0\0\x08\0\0\0\x06H:vm:1"),
    (Packet(T.GRAB_JOB, (), REQ), b"\0REQ\0\0\0\x09\0\0\0\0"),
    (Packet(T.NO_JOB, (), RES), b"\0RES\0\0\0\x0a\0\0\0\0"),
    (
        Packet(T.JOB_ASSIGN, (b"H:vm:1", b"reverse", b""), RES),
        b"\0RES\0\0\0\x0b\0\0\0\x0fH:vm:1\0reverse\0",
    ),
    (
        Packet(T.WORK_STATUS, (b"H:vm:1", b"1", b"4"), REQ),
        b"\0REQ\0\0\0\x0c\0\0\0\x0aH:vm:1\x001\x004",
    ),
    (
        Packet(T.WORK_COMPLETE, (b"H:vm:1", b"dlrow\0olleh"), REQ),
        b"\0REQ\0\0\0\x0d\0\0\0\x12H:vm:1\0dlrow\0olleh",
    ),
    (Packet(T.WORK_FAIL, (b"H:vm:1",), REQ), b"\0REQ\0\0\0\x0e\0\0\0\x06H:vm:1"),
    (Packet(T.GET_STATUS, (b"H:vm:1",), REQ), b"\0REQ\0\0\0\x0f\0\0\0\x06H:vm:1"),
    (Packet(T.ECHO_REQ, (b"ping\0\0",), REQ), b"\0REQ\0\0\0\x10\0\0\0\x06ping\0\0"),
    (Packet(T.ECHO_RES, (b"ping\0\0",), RES), b"\0RES\0\0\0\x11\0\0\0\x06ping\0\0"),
    (
        Packet(T.SUBMIT_JOB_BG, (b"adm.a", b"", b"data"), REQ),
        b"\0REQ\0\0\0\x12\0\0\0\x0badm.a\0\0data",
    ),
    (
        Packet(T.ERROR, (b"JOB_NOT_FOUND", b"Job given in work result not found"), RES),
        b"\0RES\0\0\0\x13\0\0\0\x30JOB_NOT_FOUND\0Job given in work result not found",
    ),
    (
        Packet(T.STATUS_RES, (b"H:vm:1", b"1", b"1", b"50", b"100"), RES),
        b"\0RES\0\0\0\x14\0\0\0\x11H:vm:1\x001\x001\x0050\x00100",
    ),
    (
        Packet(T.SUBMIT_JOB_HIGH, (b"reverse", b"u-2", b"x"), REQ),
        b"\0REQ\0\0\0\x15\0\0\0\x0dreverse\0u-2\0x",
    ),
    (Packet(T.SET_CLIENT_ID, (b"worker-42",), REQ), b"\0REQ\0\0\0\x16\0\0\0\x09worker-42"),
    (
        Packet(T.CAN_DO_TIMEOUT, (b"reverse", b"1500"), REQ),
        b"\0REQ\0\0\0\x17\0\0\0\x0creverse\x001500",
    ),
    (Packet(T.ALL_YOURS, (), REQ), b"\0REQ\0\0\0\x18\0\0\0\0"),
    (
        Packet(T.WORK_EXCEPTION, (b"H:vm:1", b"ValueError: bad input"), REQ),
        b"\0REQ\0\0\0\x19\0\0\0\x1cH:vm:1\0ValueError: bad input",
    ),
    (Packet(T.OPTION_REQ, (b"exceptions",), REQ), b"\0REQ\0\0\0\x1a\0\0\0\x0aexceptions"),
    (Packet(T.OPTION_RES, (b"exceptions",), RES), b"\0RES\0\0\0\x1b\0\0\0\x0aexceptions"),
    (
        Packet(T.WORK_DATA, (b"H:vm:1", b"partial"), REQ),
        b"\0REQ\0\0\0\x1c\0\0\0\x0eH:vm:1\0partial",
    ),
    (
        Packet(T.WORK_WARNING, (b"H:vm:1", b"low disk"), REQ),
        b"\0REQ\0\0\0\x1d\0\0\0\x0fH:vm:1\0low disk",
    ),
    (Packet(T.GRAB_JOB_UNIQ, (), REQ), b"\0REQ\0\0\0\x1e\0\0\0\0"),
    (
        Packet(T.JOB_ASSIGN_UNIQ, (b"H:vm:1", b"fn", b"u-1", b"payload\0with-nul"), RES),
        b"\0RES\0\0\0\x1f\0\0\0\x1eH:vm:1\0fn\0u-1\0payload\0with-nul",
    ),
    (
        Packet(T.SUBMIT_JOB_HIGH_BG, (b"fn", b"", b"d"), REQ),
        b"\0REQ\0\0\0\x20\0\0\0\x05fn\0\0d",
    ),
    (
        Packet(T.SUBMIT_JOB_LOW, (b"fn", b"u-3", b"d"), REQ),
        b"\0REQ\0\0\0\x21\0\0\0\x08fn\0u-3\0d",
    ),
    (
        Packet(T.SUBMIT_JOB_LOW_BG, (b"fn", b"u-4", b""), REQ),
        b"\0REQ\0\0\0\x22\0\0\0\x07fn\0u-4\0",
    ),
    (
        Packet(T.SUBMIT_JOB_SCHED, (b"fn", b"u-5", b"30", b"4", b"1", b"12", b"0", b"d"), REQ),
        b"\0REQ\0\0\0\x23\0\0\0\x14fn\0u-5\x0030\x004\x001\x0012\x000\0d",
    ),
    (
        Packet(T.SUBMIT_JOB_EPOCH, (b"fn", b"u-6", b"1700000000", b"d"), REQ),
        b"\0REQ\0\0\0\x24\0\0\0\x13fn\0u-6\x001700000000\0d",
    ),
    (
        Packet(T.SUBMIT_REDUCE_JOB, (b"fn", b"u-7", b"red", b"", b"d4"), REQ),
        b"\0REQ\0\0\0\x25\0\0\0\x0efn\0u-7\0red\0\0d4",
    ),
    (
        Packet(T.SUBMIT_REDUCE_JOB_BACKGROUND, (b"fn", b"u-4", b"red", b"", b"d4"), REQ),
        b"\0REQ\0\0\0\x26\0\0\0\x0efn\0u-4\0red\0\0d4",
    ),
    (Packet(T.GRAB_JOB_ALL, (), REQ), b"\0REQ\0\0\0\x27\0\0\0\0"),
    (
        Packet(T.JOB_ASSIGN_ALL, (b"H:vm:4", b"fn", b"u-4", b"red", b"d4"), RES),
        b"\0RES\0\0\0\x28\0\0\0\x14H:vm:4\0fn\0u-4\0red\0d4",
    ),
    (Packet(T.GET_STATUS_UNIQUE, (b"u-1",), REQ), b"\0REQ\0\0\0\x29\0\0\0\x03u-1"),
    (
        Packet(T.STATUS_RES_UNIQUE, (b"u-1", b"1", b"0", b"0", b"0", b"2"), RES),
        b"\0RES\0\0\0\x2a\0\0\0\x0du-1\x001\x000\x000\x000\x002",
    ),
]

WIRE_IDS = [packet.type.name for packet, _ in WIRE_TABLE]


def parse_all(magic: bytes, chunks: list[bytes]) -> tuple[list[Packet], PacketParser]:
    parser = PacketParser(magic=magic)
    packets: list[Packet] = []
    for chunk in chunks:
        packets.extend(parser.feed(chunk))
    return packets, parser


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    """Split ``data`` at the given offsets (any order, any range)."""
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    edges = [0, *points, len(data)]
    return [data[start:end] for start, end in itertools.pairwise(edges)]


def header(magic: bytes, number: int, size: int) -> bytes:
    return magic + struct.pack(">II", number, size)


# Both directions of the wire table ---------------------------------------------------------


def test_wire_table_covers_every_packet_type() -> None:
    assert sorted(packet.type for packet, _ in WIRE_TABLE) == sorted(PacketType)


@pytest.mark.parametrize(("packet", "wire"), WIRE_TABLE, ids=WIRE_IDS)
def test_encode_matches_wire_bytes(packet: Packet, wire: bytes) -> None:
    assert encode_packet(packet.type, *packet.arguments, magic=packet.magic) == wire


@pytest.mark.parametrize(("packet", "wire"), WIRE_TABLE, ids=WIRE_IDS)
def test_parse_whole(packet: Packet, wire: bytes) -> None:
    packets, parser = parse_all(packet.magic, [wire])

    assert packets == [packet]
    assert parser.buffered == 0


@pytest.mark.parametrize(("packet", "wire"), WIRE_TABLE, ids=WIRE_IDS)
def test_parse_byte_by_byte(packet: Packet, wire: bytes) -> None:
    parser = PacketParser(magic=packet.magic)
    for index in range(len(wire) - 1):
        assert parser.feed(wire[index : index + 1]) == []
        assert parser.buffered == index + 1

    assert parser.feed(wire[-1:]) == [packet]
    assert parser.buffered == 0


@pytest.mark.parametrize(("packet", "wire"), WIRE_TABLE, ids=WIRE_IDS)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=8))
def test_parse_random_chunks(packet: Packet, wire: bytes, cuts: list[int]) -> None:
    packets, parser = parse_all(packet.magic, split_at(wire, cuts))

    assert packets == [packet]
    assert parser.buffered == 0


@pytest.mark.parametrize(("packet", "wire"), WIRE_TABLE, ids=WIRE_IDS)
@pytest.mark.parametrize("trailing_size", [1, 11, 12, 15])
def test_parse_leaves_trailing_partial_packet(
    packet: Packet, wire: bytes, trailing_size: int
) -> None:
    # The next packet is a WORK_COMPLETE-sized frame, cut inside its header or payload.
    follower = encode_packet(T.WORK_COMPLETE, b"H:vm:9", b"result", magic=packet.magic)
    trailing = follower[:trailing_size]

    packets, parser = parse_all(packet.magic, [wire + trailing])

    assert packets == [packet]
    assert parser.buffered == trailing_size
    assert parser.feed(follower[trailing_size:]) == [
        Packet(T.WORK_COMPLETE, (b"H:vm:9", b"result"), packet.magic)
    ]
    assert parser.buffered == 0


def test_parse_whole_table_in_one_feed() -> None:
    requests = [(packet, wire) for packet, wire in WIRE_TABLE if packet.magic == REQ]
    responses = [(packet, wire) for packet, wire in WIRE_TABLE if packet.magic == RES]
    for magic, rows in ((REQ, requests), (RES, responses)):
        packets, parser = parse_all(magic, [b"".join(wire for _, wire in rows)])

        assert packets == [packet for packet, _ in rows]
        assert parser.buffered == 0


def test_parse_keeps_nul_bytes_in_last_argument() -> None:
    wire = encode_packet(T.JOB_ASSIGN, b"H:vm:1", b"fn", b"\0a\0\0b\0", magic=RES)

    packets, _ = parse_all(RES, [wire])

    assert packets[0].fields()["data"] == b"\0a\0\0b\0"


def test_parse_all_byte_values_in_payload() -> None:
    data = bytes(range(256)) * 4
    wire = encode_packet(T.WORK_COMPLETE, b"H:vm:1", data, magic=RES)

    packets, _ = parse_all(RES, [wire])

    assert packets == [Packet(T.WORK_COMPLETE, (b"H:vm:1", data), RES)]


# Malformed input -------------------------------------------------------------------------


def test_parse_rejects_bad_magic() -> None:
    parser = PacketParser()

    with pytest.raises(RemoteProtocolError, match="bad magic"):
        parser.feed(b"\0BAD\0\0\0\x06\0\0\0\0")


def test_parse_rejects_request_magic_on_response_stream() -> None:
    parser = PacketParser(magic=RES)

    with pytest.raises(RemoteProtocolError, match="REQ"):
        parser.feed(encode_packet(T.NOOP, magic=REQ))


def test_parse_rejects_response_magic_on_request_stream() -> None:
    parser = PacketParser(magic=REQ)

    with pytest.raises(RemoteProtocolError, match="bad magic"):
        parser.feed(encode_packet(T.GRAB_JOB, magic=RES))


@pytest.mark.parametrize("number", [0, 5, 43, 99])
def test_parse_rejects_unknown_type(number: int) -> None:
    parser = PacketParser()

    with pytest.raises(RemoteProtocolError, match=f"unknown packet type {number}"):
        parser.feed(header(RES, number, 0))


def test_parse_rejects_unknown_type_before_payload_arrives() -> None:
    parser = PacketParser()

    with pytest.raises(RemoteProtocolError, match="unknown packet type 99"):
        parser.feed(header(RES, 99, 1000))


def test_parse_rejects_too_few_arguments() -> None:
    parser = PacketParser()
    payload = b"H:vm:1\0fn"

    with pytest.raises(RemoteProtocolError, match="JOB_ASSIGN needs 3"):
        parser.feed(header(RES, T.JOB_ASSIGN, len(payload)) + payload)


def test_parse_rejects_empty_payload_for_argument_packet() -> None:
    parser = PacketParser()

    with pytest.raises(RemoteProtocolError, match="ERROR needs 2"):
        parser.feed(header(RES, T.ERROR, 0))


def test_parse_rejects_payload_on_argumentless_packet() -> None:
    parser = PacketParser()

    with pytest.raises(RemoteProtocolError, match="NOOP takes no arguments"):
        parser.feed(header(RES, T.NOOP, 1) + b"x")


def test_parse_rejects_oversize_length_from_header_alone() -> None:
    parser = PacketParser(max_packet_size=1024)

    with pytest.raises(RemoteProtocolError, match="1025-byte payload"):
        parser.feed(header(RES, T.WORK_COMPLETE, 1025))


def test_parse_rejects_4_gib_length_at_default_limit() -> None:
    parser = PacketParser()

    with pytest.raises(RemoteProtocolError, match="over the limit"):
        parser.feed(header(RES, T.ECHO_RES, 0xFFFFFFFF) + b"abc")


def test_parse_accepts_payload_at_limit() -> None:
    parser = PacketParser(max_packet_size=16)
    wire = encode_packet(T.ECHO_RES, b"x" * 16, magic=RES)

    assert parser.feed(wire) == [Packet(T.ECHO_RES, (b"x" * 16,), RES)]


@pytest.mark.parametrize(
    "bad",
    [
        b"\0BAD\0\0\0\x06\0\0\0\0",
        header(RES, 99, 0),
        header(RES, T.NOOP, 1) + b"x",
        header(RES, T.WORK_COMPLETE, DEFAULT_MAX_PACKET_SIZE + 1),
    ],
    ids=["bad-magic", "unknown-type", "argument-count", "oversize"],
)
def test_parse_error_repeats_on_every_later_feed(bad: bytes) -> None:
    parser = PacketParser()
    with pytest.raises(RemoteProtocolError) as first:
        parser.feed(bad)

    for later in (b"", encode_packet(T.NOOP, magic=RES), b"\0"):
        with pytest.raises(RemoteProtocolError) as again:
            parser.feed(later)
        assert again.value is first.value


def test_parse_error_drops_the_connection() -> None:
    parser = PacketParser()
    with pytest.raises(RemoteProtocolError) as caught:
        parser.feed(b"\0BAD\0\0\0\x06\0\0\0\0")

    assert caught.value.drop_connection is True


@pytest.mark.parametrize(
    ("magic", "max_packet_size"),
    [(b"\0XYZ", 100), (RES, -1)],
)
def test_parser_rejects_invalid_settings(magic: bytes, max_packet_size: int) -> None:
    with pytest.raises(ValueError):
        PacketParser(magic=magic, max_packet_size=max_packet_size)


# Encoding errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("packet_type", "arguments"),
    [
        (T.SUBMIT_JOB, (b"re\0verse", b"u-1", b"data")),
        (T.SUBMIT_JOB, (b"reverse", b"u\0", b"data")),
        (T.WORK_COMPLETE, (b"H:vm:1\0", b"data")),
        (T.CAN_DO_TIMEOUT, (b"\0", b"10")),
    ],
)
def test_encode_rejects_nul_in_non_last_argument(
    packet_type: PacketType, arguments: tuple[bytes, ...]
) -> None:
    with pytest.raises(LocalProtocolError, match="NUL"):
        encode_packet(packet_type, *arguments)


@pytest.mark.parametrize(
    ("packet_type", "arguments"),
    [
        (T.CAN_DO, ()),
        (T.CAN_DO, (b"a", b"b")),
        (T.GRAB_JOB, (b"",)),
        (T.JOB_ASSIGN, (b"H:vm:1", b"fn")),
        (T.SUBMIT_REDUCE_JOB, (b"fn", b"u", b"red", b"d")),
    ],
)
def test_encode_rejects_wrong_argument_count(
    packet_type: PacketType, arguments: tuple[bytes, ...]
) -> None:
    with pytest.raises(LocalProtocolError, match=f"{packet_type.name} takes"):
        encode_packet(packet_type, *arguments)


def test_encode_error_keeps_the_connection() -> None:
    with pytest.raises(LocalProtocolError) as caught:
        encode_packet(T.CAN_DO)

    assert caught.value.drop_connection is False


# Large payloads ----------------------------------------------------------------------------

MIB = 1024 * 1024


def test_parse_10_mib_payload_whole() -> None:
    data = bytes(range(256)) * (10 * MIB // 256)
    wire = encode_packet(T.WORK_COMPLETE, b"H:vm:1", data, magic=RES)

    packets, parser = parse_all(RES, [wire])

    assert len(packets) == 1
    assert packets[0].arguments[0] == b"H:vm:1"
    assert packets[0].arguments[1] == data
    assert parser.buffered == 0


def test_parse_64_mib_payload_in_1_mib_chunks() -> None:
    size = 64 * MIB
    data = b"\xa5\0" * (size // 2)
    wire = encode_packet(T.JOB_ASSIGN, b"H:vm:1", b"fn", data, magic=RES)
    del data
    parser = PacketParser()
    started = time.monotonic()

    packets: list[Packet] = []
    for offset in range(0, len(wire), MIB):
        packets.extend(parser.feed(wire[offset : offset + MIB]))

    assert time.monotonic() - started < 20
    assert len(packets) == 1
    handle, function, payload = packets[0].arguments
    assert (handle, function) == (b"H:vm:1", b"fn")
    assert len(payload) == size
    assert payload[:4] == b"\xa5\0\xa5\0"
    assert payload[-2:] == b"\xa5\0"
    assert parser.buffered == 0


# Property: any packet sequence survives encoding and chunked parsing ------------------------

_NO_NUL = st.binary(max_size=24).map(lambda value: value.replace(b"\0", b"."))


@st.composite
def packets_for(draw: st.DrawFn, magic: bytes) -> Packet:
    packet_type = draw(st.sampled_from(sorted(PacketType)))
    count = len(PACKET_ARGUMENTS[packet_type])
    arguments = [draw(_NO_NUL) for _ in range(max(count - 1, 0))]
    if count:
        arguments.append(draw(st.binary(max_size=64)))
    return Packet(packet_type, tuple(arguments), magic)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), magic=st.sampled_from([REQ, RES]))
def test_property_any_packets_in_any_chunks(data: st.DataObject, magic: bytes) -> None:
    packets = data.draw(st.lists(packets_for(magic), max_size=12), label="packets")
    wire = b"".join(encode_packet(p.type, *p.arguments, magic=magic) for p in packets)
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(wire)), max_size=20))

    decoded, parser = parse_all(magic, split_at(wire, cuts))

    assert decoded == packets
    assert parser.buffered == 0
