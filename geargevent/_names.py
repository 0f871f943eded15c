"""Checks and conversions for the names and ids that go on the wire.

Function names, uniques and client ids are bytes on the wire; the API accepts
str (sent as UTF-8) or bytes, and this module is the one place that converts
and checks them, before any packet is built.
"""

from __future__ import annotations

import re

__all__ = [
    "MAX_CLIENT_ID_BYTES",
    "MAX_UNIQUE_BYTES",
    "to_bytes",
    "validate_client_id",
    "validate_function_name",
    "validate_unique",
]

# gearmand 1.1.20 accepts a 64-byte unique but hands the worker 63 bytes and a
# stray NUL at the start of the job data; 65 bytes or more get ARGUMENT_TOO_LARGE.
MAX_UNIQUE_BYTES = 63

# gearmand 1.1.20 silently cuts longer client ids to 127 bytes.
MAX_CLIENT_ID_BYTES = 127

# Whitespace and control characters split the columns of the admin `status` and
# `workers` listings, and NUL would end the argument early on the wire.
_FORBIDDEN = re.compile(rb"[\x00-\x20\x7f]")


def to_bytes(value: str | bytes | bytearray, what: str) -> bytes:
    """Convert str (as UTF-8) or bytes-like to bytes; raise TypeError otherwise."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be str or bytes, got {type(value).__name__}: {value!r}")


def validate_function_name(name: str | bytes) -> bytes:
    """Return a function name as bytes, or raise ValueError if the server would mangle it."""
    encoded = to_bytes(name, "function name")
    if not encoded:
        raise ValueError("function name is empty; give the Gearman function a name")
    bad = _FORBIDDEN.search(encoded)
    if bad:
        raise ValueError(
            f"function name {name!r} contains {bad.group()!r}; NUL, whitespace and control "
            "characters are not allowed because they corrupt packets and admin listings"
        )
    return encoded


def validate_client_id(client_id: str | bytes) -> bytes:
    """Return a client id as bytes, or raise ValueError for an id gearmand would mangle."""
    encoded = to_bytes(client_id, "client id")
    if not encoded:
        raise ValueError("client id is empty; pass a short name without whitespace")
    bad = _FORBIDDEN.search(encoded)
    if bad:
        raise ValueError(
            f"client id {client_id!r} contains {bad.group()!r}; whitespace and control "
            "characters break the admin `workers` listing"
        )
    if len(encoded) > MAX_CLIENT_ID_BYTES:
        raise ValueError(
            f"client id {client_id!r} is {len(encoded)} bytes; gearmand cuts ids to "
            f"{MAX_CLIENT_ID_BYTES} bytes, so use a shorter one"
        )
    return encoded


def validate_unique(unique: str | bytes) -> bytes:
    """Return a unique id as bytes, or raise ValueError for one gearmand would corrupt."""
    encoded = to_bytes(unique, "unique")
    if b"\0" in encoded:
        raise ValueError(f"unique {unique!r} contains a NUL byte; uniques must not contain NUL")
    if len(encoded) > MAX_UNIQUE_BYTES:
        raise ValueError(
            f"unique {unique!r} is {len(encoded)} bytes; gearmand corrupts job data for "
            f"uniques over {MAX_UNIQUE_BYTES} bytes, so use a shorter one (a hash, for example)"
        )
    return encoded
