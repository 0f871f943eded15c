"""The Gearman binary packet table.

Every packet starts with a 12-byte header: a 4-byte magic (``\\0REQ`` towards the
job server, ``\\0RES`` from it), a big-endian u32 packet type and a big-endian u32
payload length. The payload holds the packet's arguments joined by single NUL
bytes. The last argument has no terminator and may itself contain NUL bytes, so
it is delimited only by the payload length.

This module declares each packet type once, with its number and argument names
as gearmand 1.1.x implements them. Both the encoder and the decoder in
:mod:`geargevent._framing` read this table, so there is no second place to keep
in sync. It imports no I/O module.
"""

from __future__ import annotations

import enum
import struct
from typing import NamedTuple

__all__ = [
    "HEADER",
    "HEADER_SIZE",
    "PACKET_ARGUMENTS",
    "REQ",
    "RES",
    "Packet",
    "PacketType",
]

REQ = b"\0REQ"
RES = b"\0RES"

HEADER = struct.Struct(">4sII")
HEADER_SIZE = HEADER.size


class PacketType(enum.IntEnum):
    """Packet types by their protocol names and numbers.

    Number 5 is unused by the protocol, and libgearman's 43 only marks the end of
    its own table, so neither is a member.
    """

    CAN_DO = 1
    CANT_DO = 2
    RESET_ABILITIES = 3
    PRE_SLEEP = 4
    NOOP = 6
    SUBMIT_JOB = 7
    JOB_CREATED = 8
    GRAB_JOB = 9
    NO_JOB = 10
    JOB_ASSIGN = 11
    WORK_STATUS = 12
    WORK_COMPLETE = 13
    WORK_FAIL = 14
    GET_STATUS = 15
    ECHO_REQ = 16
    ECHO_RES = 17
    SUBMIT_JOB_BG = 18
    ERROR = 19
    STATUS_RES = 20
    SUBMIT_JOB_HIGH = 21
    SET_CLIENT_ID = 22
    CAN_DO_TIMEOUT = 23
    ALL_YOURS = 24
    WORK_EXCEPTION = 25
    OPTION_REQ = 26
    OPTION_RES = 27
    WORK_DATA = 28
    WORK_WARNING = 29
    GRAB_JOB_UNIQ = 30
    JOB_ASSIGN_UNIQ = 31
    SUBMIT_JOB_HIGH_BG = 32
    SUBMIT_JOB_LOW = 33
    SUBMIT_JOB_LOW_BG = 34
    SUBMIT_JOB_SCHED = 35
    SUBMIT_JOB_EPOCH = 36
    SUBMIT_REDUCE_JOB = 37
    SUBMIT_REDUCE_JOB_BACKGROUND = 38
    GRAB_JOB_ALL = 39
    JOB_ASSIGN_ALL = 40
    GET_STATUS_UNIQUE = 41
    STATUS_RES_UNIQUE = 42


_SUBMIT = ("function", "unique", "data")

# Argument names of every packet type, in wire order. The last argument of a
# packet may contain NUL bytes; all others may not. SUBMIT_REDUCE_JOB carries
# five fields on gearmand 1.1.20 (the "aggregate" field is read even though the
# PROTOCOL file lists four), and STATUS_RES_UNIQUE starts with the unique, not a
# handle.
PACKET_ARGUMENTS: dict[PacketType, tuple[str, ...]] = {
    PacketType.CAN_DO: ("function",),
    PacketType.CANT_DO: ("function",),
    PacketType.RESET_ABILITIES: (),
    PacketType.PRE_SLEEP: (),
    PacketType.NOOP: (),
    PacketType.SUBMIT_JOB: _SUBMIT,
    PacketType.JOB_CREATED: ("handle",),
    PacketType.GRAB_JOB: (),
    PacketType.NO_JOB: (),
    PacketType.JOB_ASSIGN: ("handle", "function", "data"),
    PacketType.WORK_STATUS: ("handle", "numerator", "denominator"),
    PacketType.WORK_COMPLETE: ("handle", "data"),
    PacketType.WORK_FAIL: ("handle",),
    PacketType.GET_STATUS: ("handle",),
    PacketType.ECHO_REQ: ("data",),
    PacketType.ECHO_RES: ("data",),
    PacketType.SUBMIT_JOB_BG: _SUBMIT,
    PacketType.ERROR: ("code", "text"),
    PacketType.STATUS_RES: ("handle", "known", "running", "numerator", "denominator"),
    PacketType.SUBMIT_JOB_HIGH: _SUBMIT,
    PacketType.SET_CLIENT_ID: ("client_id",),
    PacketType.CAN_DO_TIMEOUT: ("function", "timeout"),
    PacketType.ALL_YOURS: (),
    PacketType.WORK_EXCEPTION: ("handle", "data"),
    PacketType.OPTION_REQ: ("option",),
    PacketType.OPTION_RES: ("option",),
    PacketType.WORK_DATA: ("handle", "data"),
    PacketType.WORK_WARNING: ("handle", "data"),
    PacketType.GRAB_JOB_UNIQ: (),
    PacketType.JOB_ASSIGN_UNIQ: ("handle", "function", "unique", "data"),
    PacketType.SUBMIT_JOB_HIGH_BG: _SUBMIT,
    PacketType.SUBMIT_JOB_LOW: _SUBMIT,
    PacketType.SUBMIT_JOB_LOW_BG: _SUBMIT,
    PacketType.SUBMIT_JOB_SCHED: (
        "function",
        "unique",
        "minute",
        "hour",
        "day_of_month",
        "month",
        "day_of_week",
        "data",
    ),
    PacketType.SUBMIT_JOB_EPOCH: ("function", "unique", "epoch", "data"),
    PacketType.SUBMIT_REDUCE_JOB: ("function", "unique", "reducer", "aggregate", "data"),
    PacketType.SUBMIT_REDUCE_JOB_BACKGROUND: (
        "function",
        "unique",
        "reducer",
        "aggregate",
        "data",
    ),
    PacketType.GRAB_JOB_ALL: (),
    PacketType.JOB_ASSIGN_ALL: ("handle", "function", "unique", "reducer", "data"),
    PacketType.GET_STATUS_UNIQUE: ("unique",),
    PacketType.STATUS_RES_UNIQUE: (
        "unique",
        "known",
        "running",
        "numerator",
        "denominator",
        "waiting",
    ),
}


class Packet(NamedTuple):
    """One decoded packet: its type, its arguments as bytes, and its magic."""

    type: PacketType
    arguments: tuple[bytes, ...]
    magic: bytes = RES

    def fields(self) -> dict[str, bytes]:
        """Map the argument names from the packet table to their values."""
        return dict(zip(PACKET_ARGUMENTS[self.type], self.arguments, strict=True))
