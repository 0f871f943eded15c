"""Tests of the checks on function names, client ids and uniques before they go on the wire."""

from __future__ import annotations

import pytest

from geargevent._names import (
    MAX_CLIENT_ID_BYTES,
    MAX_UNIQUE_BYTES,
    to_bytes,
    validate_client_id,
    validate_function_name,
    validate_unique,
)

# Bytes that split the columns of the admin listings or end an argument early on the wire.
FORBIDDEN_CHARACTERS = ["\0", " ", "\t", "\n", "\r", "\x01", "\x1b", "\x1f", "\x7f"]


# ---------------------------------------------------------------------------------------------
# to_bytes


def test_to_bytes_keeps_bytes() -> None:
    value = b"\xffraw"

    assert to_bytes(value, "name") is value


def test_to_bytes_encodes_str_as_utf8() -> None:
    assert to_bytes("grüße", "name") == "grüße".encode()
    assert to_bytes("", "name") == b""


def test_to_bytes_copies_bytes_like() -> None:
    assert to_bytes(bytearray(b"abc"), "name") == b"abc"
    assert type(to_bytes(bytearray(b"abc"), "name")) is bytes
    assert to_bytes(memoryview(b"abc"), "name") == b"abc"


@pytest.mark.parametrize("value", [42, None, 1.5, ["a"], object()])
def test_to_bytes_rejects_other_types(value: object) -> None:
    with pytest.raises(TypeError, match="function name must be str or bytes") as caught:
        to_bytes(value, "function name")  # type: ignore[arg-type]

    assert type(value).__name__ in str(caught.value)


# ---------------------------------------------------------------------------------------------
# Function names


@pytest.mark.parametrize("name", ["reverse", "a", "image.resize-v2", "ns:func/x", "x" * 4000])
def test_function_name_ascii_accepted(name: str) -> None:
    assert validate_function_name(name) == name.encode()
    assert validate_function_name(name.encode()) == name.encode()


@pytest.mark.parametrize("name", ["größe", "関数", "emoji-🙂", "ñ"])
def test_function_name_non_ascii_accepted(name: str) -> None:
    assert validate_function_name(name) == name.encode("utf-8")
    assert validate_function_name(name.encode("utf-8")) == name.encode("utf-8")


@pytest.mark.parametrize("name", ["", b""])
def test_function_name_empty_rejected(name: str | bytes) -> None:
    with pytest.raises(ValueError, match="function name is empty"):
        validate_function_name(name)


@pytest.mark.parametrize("character", FORBIDDEN_CHARACTERS)
@pytest.mark.parametrize("as_bytes", [False, True], ids=["str", "bytes"])
def test_function_name_forbidden_character_rejected(character: str, as_bytes: bool) -> None:
    name: str | bytes = f"bad{character}name"
    if as_bytes:
        name = name.encode()

    with pytest.raises(ValueError) as caught:
        validate_function_name(name)

    message = str(caught.value)
    assert repr(name) in message
    assert repr(character.encode()) in message


@pytest.mark.parametrize("name", [" leading", "trailing ", "\n"])
def test_function_name_whitespace_at_edges_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="not allowed"):
        validate_function_name(name)


@pytest.mark.parametrize("name", [42, None, 3.0])
def test_function_name_wrong_type(name: object) -> None:
    with pytest.raises(TypeError, match="function name must be str or bytes"):
        validate_function_name(name)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Client ids


def test_client_id_accepted() -> None:
    assert validate_client_id("worker-1") == b"worker-1"
    assert validate_client_id(b"worker-1") == b"worker-1"
    assert validate_client_id("wörker") == "wörker".encode()


def test_client_id_127_bytes_accepted() -> None:
    client_id = "w" * MAX_CLIENT_ID_BYTES

    assert MAX_CLIENT_ID_BYTES == 127
    assert validate_client_id(client_id) == client_id.encode()


def test_client_id_128_bytes_rejected() -> None:
    client_id = "w" * 128

    with pytest.raises(ValueError, match="128 bytes") as caught:
        validate_client_id(client_id)

    assert repr(client_id) in str(caught.value)


def test_client_id_length_counts_bytes() -> None:
    # 64 characters, but each is two bytes in UTF-8.
    client_id = "é" * 64

    with pytest.raises(ValueError, match="128 bytes"):
        validate_client_id(client_id)


def test_client_id_empty_rejected() -> None:
    with pytest.raises(ValueError, match="client id is empty"):
        validate_client_id("")


@pytest.mark.parametrize("character", FORBIDDEN_CHARACTERS)
def test_client_id_forbidden_character_rejected(character: str) -> None:
    client_id = f"my{character}worker"

    with pytest.raises(ValueError) as caught:
        validate_client_id(client_id)

    assert repr(client_id) in str(caught.value)


@pytest.mark.parametrize("client_id", [7, None, ("a",)])
def test_client_id_wrong_type(client_id: object) -> None:
    with pytest.raises(TypeError, match="client id must be str or bytes"):
        validate_client_id(client_id)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Uniques


def test_unique_accepted() -> None:
    assert validate_unique("job-1") == b"job-1"
    assert validate_unique(b"job-1") == b"job-1"
    assert validate_unique("clé") == "clé".encode()


def test_unique_empty_accepted() -> None:
    # An empty unique is what a client sends when it wants no coalescing key.
    assert validate_unique("") == b""


def test_unique_may_contain_spaces() -> None:
    # Uniques never appear in the admin listings that whitespace would break.
    assert validate_unique("a b\tc") == b"a b\tc"


def test_unique_63_bytes_accepted() -> None:
    unique = "u" * MAX_UNIQUE_BYTES

    assert MAX_UNIQUE_BYTES == 63
    assert validate_unique(unique) == unique.encode()


def test_unique_64_bytes_rejected() -> None:
    unique = "u" * 64

    with pytest.raises(ValueError, match="64 bytes") as caught:
        validate_unique(unique)

    assert repr(unique) in str(caught.value)


def test_unique_length_counts_bytes() -> None:
    # 32 characters, 64 bytes in UTF-8.
    with pytest.raises(ValueError, match="64 bytes"):
        validate_unique("é" * 32)


@pytest.mark.parametrize("unique", ["a\0b", b"\0", b"trailing\0"])
def test_unique_nul_rejected(unique: str | bytes) -> None:
    with pytest.raises(ValueError, match="NUL") as caught:
        validate_unique(unique)

    assert repr(unique) in str(caught.value)


@pytest.mark.parametrize("unique", [1, None, 2.5])
def test_unique_wrong_type(unique: object) -> None:
    with pytest.raises(TypeError, match="unique must be str or bytes"):
        validate_unique(unique)  # type: ignore[arg-type]
