"""Tests of the data encoders and of how an encoder is chosen."""

from __future__ import annotations

import json
from typing import Any

import pytest

from geargevent import GearmanClient, GearmanWorker
from geargevent.encoders import (
    ENCODERS,
    DataEncoder,
    Encoder,
    JSONDataEncoder,
    MsgpackDataEncoder,
    RawDataEncoder,
    encode_with,
    resolve_encoder,
)

# Nothing listens here: creating a client or worker opens no connection.
UNUSED_SERVER = "127.0.0.1:9"


# ---------------------------------------------------------------------------------------------
# Raw


def test_raw_bytes_pass_through() -> None:
    value = b"\0\xff binary"

    assert DataEncoder.encode(value) is value


def test_raw_str_as_utf8() -> None:
    assert DataEncoder.encode("grüße 🙂") == "grüße 🙂".encode()


def test_raw_bytes_like_copied() -> None:
    encoded = DataEncoder.encode(bytearray(b"abc"))

    assert encoded == b"abc"
    assert type(encoded) is bytes
    assert DataEncoder.encode(memoryview(b"xyz")) == b"xyz"


def test_raw_none_is_empty() -> None:
    assert DataEncoder.encode(None) == b""


@pytest.mark.parametrize(
    ("value", "type_name"),
    [(42, "int"), (1.5, "float"), ({"a": 1}, "dict"), ([b"a"], "list"), (True, "bool")],
)
def test_raw_rejects_other_types(value: object, type_name: str) -> None:
    with pytest.raises(TypeError) as caught:
        DataEncoder.encode(value)

    assert f"got {type_name}" in str(caught.value)


def test_raw_decode_returns_bytes() -> None:
    data = b"\0\xffraw"

    assert DataEncoder.decode(data) is data


def test_raw_alias() -> None:
    assert RawDataEncoder is DataEncoder


# ---------------------------------------------------------------------------------------------
# JSON


@pytest.mark.parametrize(
    "value",
    [
        {"name": "x", "values": [1, 2.5, None, True]},
        [],
        "text",
        0,
        None,
        {"nested": {"deep": [{"a": "b"}]}},
    ],
    ids=repr,
)
def test_json_round_trip(value: object) -> None:
    encoded = JSONDataEncoder.encode(value)

    assert isinstance(encoded, bytes)
    assert JSONDataEncoder.decode(encoded) == value


def test_json_non_ascii_not_escaped() -> None:
    value = {"stadt": "Zürich", "emoji": "🙂", "cjk": "東京"}

    encoded = JSONDataEncoder.encode(value)

    assert encoded == '{"stadt":"Zürich","emoji":"🙂","cjk":"東京"}'.encode()
    assert b"\\u" not in encoded
    assert JSONDataEncoder.decode(encoded) == value


def test_json_compact() -> None:
    assert JSONDataEncoder.encode({"a": [1, 2]}) == b'{"a":[1,2]}'


def test_json_decode_invalid_raises() -> None:
    with pytest.raises(ValueError):
        JSONDataEncoder.decode(b"{not json")


def test_json_encode_unserializable_raises() -> None:
    with pytest.raises(TypeError):
        JSONDataEncoder.encode({"when": object()})


# ---------------------------------------------------------------------------------------------
# msgpack


def test_msgpack_keeps_bytes_and_str_apart() -> None:
    value = {"text": "grüße", "blob": b"\0\xff\x80", "list": ["a", b"b"]}

    decoded = MsgpackDataEncoder.decode(MsgpackDataEncoder.encode(value))

    assert decoded == value
    assert type(decoded["text"]) is str
    assert type(decoded["blob"]) is bytes
    assert type(decoded["list"][0]) is str
    assert type(decoded["list"][1]) is bytes


@pytest.mark.parametrize("value", [0, -1, 2**40, 1.25, None, True, [], {}, "", b""], ids=repr)
def test_msgpack_round_trip(value: object) -> None:
    assert MsgpackDataEncoder.decode(MsgpackDataEncoder.encode(value)) == value


def test_msgpack_encode_returns_bytes() -> None:
    assert isinstance(MsgpackDataEncoder.encode({"a": 1}), bytes)


# ---------------------------------------------------------------------------------------------
# resolve_encoder


@pytest.mark.parametrize(
    ("name", "encoder"),
    [("raw", DataEncoder), ("json", JSONDataEncoder), ("msgpack", MsgpackDataEncoder)],
)
def test_resolve_by_name(name: str, encoder: Any) -> None:
    assert resolve_encoder(name) is encoder
    assert ENCODERS[name] is encoder


def test_resolve_by_class() -> None:
    assert resolve_encoder(JSONDataEncoder) is JSONDataEncoder


def test_resolve_by_instance() -> None:
    class Upper:
        def encode(self, value: str) -> bytes:
            return value.upper().encode()

        def decode(self, data: bytes) -> str:
            return data.decode().lower()

    instance = Upper()

    assert resolve_encoder(instance) is instance
    assert isinstance(instance, Encoder)


def test_resolve_none_uses_default() -> None:
    assert resolve_encoder(None) is DataEncoder
    assert resolve_encoder(None, default=MsgpackDataEncoder) is MsgpackDataEncoder


def test_resolve_bad_name_lists_choices() -> None:
    with pytest.raises(ValueError) as caught:
        resolve_encoder("yaml")

    message = str(caught.value)
    assert "'yaml'" in message
    for name in ("json", "msgpack", "raw"):
        assert name in message


@pytest.mark.parametrize("encoder", [object(), 42, json], ids=["object", "int", "module"])
def test_resolve_without_encode_raises(encoder: object) -> None:
    with pytest.raises(TypeError, match="must have encode"):
        resolve_encoder(encoder)  # type: ignore[arg-type]


def test_resolve_encode_without_decode_raises() -> None:
    class EncodeOnly:
        def encode(self, value: object) -> bytes:
            return b""

    with pytest.raises(TypeError, match="decode"):
        resolve_encoder(EncodeOnly())  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# python-gearman style subclasses


class ReversingEncoder(DataEncoder):
    """Subclass in python-gearman style: classmethods, set as a class attribute."""

    @classmethod
    def encode(cls, encodable_object: Any) -> bytes:
        return str(encodable_object)[::-1].encode()

    @classmethod
    def decode(cls, decodable_string: bytes) -> Any:
        return decodable_string.decode()[::-1]


def test_subclass_resolves_to_itself() -> None:
    assert resolve_encoder(ReversingEncoder) is ReversingEncoder
    assert ReversingEncoder.decode(ReversingEncoder.encode("abc")) == "abc"
    assert ReversingEncoder.encode(123) == b"321"


def test_subclass_inherits_raw_rules() -> None:
    class DecodeOnly(DataEncoder):
        @classmethod
        def decode(cls, decodable_string: bytes) -> Any:
            return decodable_string.decode()

    assert DecodeOnly.encode("é") == "é".encode()
    assert DecodeOnly.decode("é".encode()) == "é"
    with pytest.raises(TypeError, match="int"):
        DecodeOnly.encode(5)


def test_worker_class_attribute_encoder() -> None:
    class ReversingWorker(GearmanWorker):
        data_encoder = ReversingEncoder

    worker = ReversingWorker([UNUSED_SERVER])

    assert worker.data_encoder is ReversingEncoder


def test_client_class_attribute_encoder() -> None:
    class ReversingClient(GearmanClient):
        data_encoder = ReversingEncoder

    client = ReversingClient([UNUSED_SERVER])

    assert client.data_encoder is ReversingEncoder


def test_keyword_overrides_class_attribute() -> None:
    class ReversingClient(GearmanClient):
        data_encoder = ReversingEncoder

    client = ReversingClient([UNUSED_SERVER], data_encoder="json")
    worker = GearmanWorker([UNUSED_SERVER], data_encoder=MsgpackDataEncoder)

    assert client.data_encoder is JSONDataEncoder
    assert worker.data_encoder is MsgpackDataEncoder


def test_bad_encoder_keyword_rejected() -> None:
    with pytest.raises(ValueError, match="unknown data encoder"):
        GearmanClient([UNUSED_SERVER], data_encoder="pickle")
    with pytest.raises(TypeError, match="must have encode"):
        GearmanWorker([UNUSED_SERVER], data_encoder=object())  # type: ignore[arg-type]


# encode_with: what the worker and client send for an encoder's output


class TextJSONEncoder(DataEncoder):
    """python-gearman's JSON example, unchanged: encode returns str on Python 3."""

    @classmethod
    def encode(cls, encodable_object: Any) -> Any:
        return json.dumps(encodable_object)

    @classmethod
    def decode(cls, decodable_string: bytes) -> Any:
        return json.loads(decodable_string)


def test_encode_with_accepts_text() -> None:
    assert encode_with(TextJSONEncoder, {"k": "ü"}) == json.dumps({"k": "ü"}).encode("utf-8")


def test_encode_with_bytes_unchanged() -> None:
    assert encode_with(DataEncoder, b"\x00raw") == b"\x00raw"


def test_encode_with_rejects_other_types() -> None:
    class NumberEncoder(DataEncoder):
        @classmethod
        def encode(cls, encodable_object: Any) -> Any:
            return 42

    with pytest.raises(TypeError, match="returned int"):
        encode_with(NumberEncoder, "x")
