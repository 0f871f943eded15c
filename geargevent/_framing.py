"""Encode packets to bytes and parse bytes back into packets, with no I/O.

:class:`PacketParser` accepts bytes in any chunking (whole packets, single bytes,
several packets at once) and returns every packet that is complete. Anything
that is not a valid packet raises :class:`RemoteProtocolError` naming what was
wrong, and the parser then refuses further input: after a framing error the
stream cannot be trusted, so the caller must drop the connection.
"""

from __future__ import annotations

import struct

from geargevent._packets import HEADER, HEADER_SIZE, PACKET_ARGUMENTS, REQ, RES, Packet, PacketType
from geargevent.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "DEFAULT_MAX_PACKET_SIZE",
    "PacketParser",
    "encode_packet",
]

# Large enough for a 64 MiB payload plus its handle, function name and unique.
DEFAULT_MAX_PACKET_SIZE = 64 * 1024 * 1024 + 64 * 1024

_TYPE_SIZE = struct.Struct(">II")

# Packet number -> (type, argument count), built once from the packet table so the
# parser does one dict lookup per packet.
_ARGUMENT_COUNTS: dict[int, tuple[PacketType, int]] = {
    int(packet_type): (packet_type, len(names)) for packet_type, names in PACKET_ARGUMENTS.items()
}


def encode_packet(packet_type: PacketType, *arguments: bytes, magic: bytes = REQ) -> bytes:
    """Encode one packet, checking its arguments against the packet table.

    Raises:
        LocalProtocolError: the argument count does not match the table, or an
            argument other than the last contains a NUL byte (it would shift
            every following argument on the wire).
    """
    names = PACKET_ARGUMENTS[packet_type]
    if len(arguments) != len(names):
        raise LocalProtocolError(
            f"{packet_type.name} takes {len(names)} argument(s) {names}, got {len(arguments)}"
        )
    for name, value in zip(names[:-1], arguments[:-1], strict=True):
        if b"\0" in value:
            raise LocalProtocolError(
                f"{packet_type.name} argument {name!r} contains a NUL byte: {value!r}; "
                "only the last argument of a packet may contain NUL"
            )
    payload = b"\0".join(arguments)
    return magic + _TYPE_SIZE.pack(packet_type, len(payload)) + payload


class PacketParser:
    """Incremental parser for one direction of a Gearman byte stream.

    Args:
        magic: the magic every incoming packet must carry, ``RES`` for what a job
            server sends and ``REQ`` for what it receives.
        max_packet_size: the largest payload accepted, in bytes. A header
            announcing more raises at once instead of buffering without bound.
    """

    def __init__(
        self, *, magic: bytes = RES, max_packet_size: int = DEFAULT_MAX_PACKET_SIZE
    ) -> None:
        if magic not in (REQ, RES):
            raise ValueError(f"magic must be {REQ!r} or {RES!r}, got {magic!r}")
        if max_packet_size < 0:
            raise ValueError(f"max_packet_size must be >= 0, got {max_packet_size!r}")
        self.magic = magic
        self.max_packet_size = max_packet_size
        self._buffer = bytearray()
        self._error: RemoteProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Number of bytes received but not yet part of a complete packet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Packet]:
        """Add received bytes and return every packet they complete, in order.

        Raises:
            RemoteProtocolError: bad magic, unknown packet type, a payload over
                ``max_packet_size``, or the wrong number of arguments. The same
                error is raised again on every later call.
        """
        if self._error is not None:
            raise self._error
        buffer = self._buffer
        buffer += data
        packets: list[Packet] = []
        offset = 0
        end = len(buffer)

        # Step 1: cut complete packets off the front of the buffer. Offsets
        # advance without copying; the consumed prefix is deleted once at the end.
        try:
            while end - offset >= HEADER_SIZE:
                magic, number, size = HEADER.unpack_from(buffer, offset)
                if magic != self.magic:
                    raise self._fail(
                        f"bad magic {bytes(buffer[offset : offset + 4])!r} at stream offset "
                        f"{offset}, expected {self.magic!r}"
                    )
                spec = _ARGUMENT_COUNTS.get(number)
                if spec is None:
                    raise self._fail(f"unknown packet type {number} (payload {size} bytes)")
                if size > self.max_packet_size:
                    raise self._fail(
                        f"{spec[0].name} announces a {size}-byte payload, over the limit of "
                        f"{self.max_packet_size} bytes; raise max_packet_size if that is expected"
                    )
                start = offset + HEADER_SIZE
                if end - start < size:
                    break
                payload = bytes(buffer[start : start + size])
                offset = start + size
                packets.append(self._split(spec[0], spec[1], payload))
        finally:
            # Step 2: keep only the incomplete tail for the next call.
            if offset:
                del buffer[:offset]
        return packets

    def _split(self, packet_type: PacketType, count: int, payload: bytes) -> Packet:
        # A bounded split keeps NUL bytes inside the last argument intact.
        if count == 0:
            if payload:
                raise self._fail(
                    f"{packet_type.name} takes no arguments but carries a "
                    f"{len(payload)}-byte payload"
                )
            return Packet(packet_type, (), self.magic)
        arguments = tuple(payload.split(b"\0", count - 1))
        if len(arguments) != count:
            raise self._fail(
                f"{packet_type.name} needs {count} NUL-separated arguments "
                f"{PACKET_ARGUMENTS[packet_type]}, got {len(arguments)}: {payload[:64]!r}"
            )
        return Packet(packet_type, arguments, self.magic)

    def _fail(self, message: str) -> RemoteProtocolError:
        self._error = RemoteProtocolError(message)
        return self._error
