"""Tests of the packet table against the numbers and argument layouts gearmand 1.1.20 uses."""

from __future__ import annotations

import pytest

from geargevent._packets import (
    HEADER,
    HEADER_SIZE,
    PACKET_ARGUMENTS,
    REQ,
    RES,
    Packet,
    PacketType,
)

# Written out independently of the module under test: packet number, name and argument
# count. The counts follow what gearmand 1.1.20 parses, so SUBMIT_REDUCE_JOB and its
# background variant carry five arguments (with the aggregate field), not the four that the
# PROTOCOL file lists.
EXPECTED_TYPES = [
    (1, "CAN_DO", 1),
    (2, "CANT_DO", 1),
    (3, "RESET_ABILITIES", 0),
    (4, "PRE_SLEEP", 0),
    (6, "NOOP", 0),
    (7, "SUBMIT_JOB", 3),
    (8, "JOB_CREATED", 1),
    (9, "GRAB_JOB", 0),
    (10, "NO_JOB", 0),
    (11, "JOB_ASSIGN", 3),
    (12, "WORK_STATUS", 3),
    (13, "WORK_COMPLETE", 2),
    (14, "WORK_FAIL", 1),
    (15, "GET_STATUS", 1),
    (16, "ECHO_REQ", 1),
    (17, "ECHO_RES", 1),
    (18, "SUBMIT_JOB_BG", 3),
    (19, "ERROR", 2),
    (20, "STATUS_RES", 5),
    (21, "SUBMIT_JOB_HIGH", 3),
    (22, "SET_CLIENT_ID", 1),
    (23, "CAN_DO_TIMEOUT", 2),
    (24, "ALL_YOURS", 0),
    (25, "WORK_EXCEPTION", 2),
    (26, "OPTION_REQ", 1),
    (27, "OPTION_RES", 1),
    (28, "WORK_DATA", 2),
    (29, "WORK_WARNING", 2),
    (30, "GRAB_JOB_UNIQ", 0),
    (31, "JOB_ASSIGN_UNIQ", 4),
    (32, "SUBMIT_JOB_HIGH_BG", 3),
    (33, "SUBMIT_JOB_LOW", 3),
    (34, "SUBMIT_JOB_LOW_BG", 3),
    (35, "SUBMIT_JOB_SCHED", 8),
    (36, "SUBMIT_JOB_EPOCH", 4),
    (37, "SUBMIT_REDUCE_JOB", 5),
    (38, "SUBMIT_REDUCE_JOB_BACKGROUND", 5),
    (39, "GRAB_JOB_ALL", 0),
    (40, "JOB_ASSIGN_ALL", 5),
    (41, "GET_STATUS_UNIQUE", 1),
    (42, "STATUS_RES_UNIQUE", 6),
]


@pytest.mark.parametrize(("number", "name", "count"), EXPECTED_TYPES)
def test_packet_type_number_and_argument_count(number: int, name: str, count: int) -> None:
    packet_type = PacketType[name]

    assert int(packet_type) == number
    assert len(PACKET_ARGUMENTS[packet_type]) == count


def test_packet_types_are_exactly_the_protocol_set() -> None:
    assert {member.name for member in PacketType} == {name for _, name, _ in EXPECTED_TYPES}
    assert set(PACKET_ARGUMENTS) == set(PacketType)


@pytest.mark.parametrize("number", [0, 5, 43, 99])
def test_unused_numbers_are_not_packet_types(number: int) -> None:
    with pytest.raises(ValueError):
        PacketType(number)


def test_argument_names_are_unique_within_each_packet() -> None:
    for packet_type, names in PACKET_ARGUMENTS.items():
        assert len(set(names)) == len(names), packet_type.name


@pytest.mark.parametrize(
    ("packet_type", "names"),
    [
        (PacketType.JOB_ASSIGN, ("handle", "function", "data")),
        (PacketType.JOB_ASSIGN_UNIQ, ("handle", "function", "unique", "data")),
        (PacketType.JOB_ASSIGN_ALL, ("handle", "function", "unique", "reducer", "data")),
        (PacketType.ERROR, ("code", "text")),
        (PacketType.SUBMIT_REDUCE_JOB, ("function", "unique", "reducer", "aggregate", "data")),
        # gearmand repeats the unique in the first field, although PROTOCOL calls it a handle.
        (
            PacketType.STATUS_RES_UNIQUE,
            ("unique", "known", "running", "numerator", "denominator", "waiting"),
        ),
    ],
)
def test_argument_names_in_wire_order(packet_type: PacketType, names: tuple[str, ...]) -> None:
    assert PACKET_ARGUMENTS[packet_type] == names


def test_header_layout() -> None:
    assert REQ == b"\0REQ"
    assert RES == b"\0RES"
    assert HEADER_SIZE == 12
    assert HEADER.pack(REQ, 1, 7) == b"\0REQ\0\0\0\x01\0\0\0\x07"
    assert HEADER.unpack(b"\0RES\0\0\0\x2a\x01\x02\x03\x04") == (RES, 42, 0x01020304)


def test_packet_fields_maps_names_to_values() -> None:
    packet = Packet(PacketType.JOB_ASSIGN_UNIQ, (b"H:vm:1", b"fn", b"u-1", b"a\0b"))

    assert packet.fields() == {
        "handle": b"H:vm:1",
        "function": b"fn",
        "unique": b"u-1",
        "data": b"a\0b",
    }


def test_packet_fields_of_argumentless_packet() -> None:
    assert Packet(PacketType.NOOP, ()).fields() == {}


def test_packet_magic_defaults_to_response() -> None:
    assert Packet(PacketType.NO_JOB, ()).magic == RES
