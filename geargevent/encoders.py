"""Data encoders: how job data, results and progress payloads become bytes.

An encoder is anything with ``encode(obj) -> bytes`` and ``decode(bytes) -> obj``.
python-gearman's form, a :class:`DataEncoder` subclass with classmethods set as
a worker's ``data_encoder`` class attribute, works unchanged; an instance or a
class can also be passed by keyword, or chosen by name (``"raw"``, ``"json"``,
``"msgpack"``) for command-line tools.

Encoders apply to every data field: job data, results, WORK_DATA, WORK_WARNING
and WORK_EXCEPTION payloads.
"""

from __future__ import annotations

import json
from typing import Any, Protocol, runtime_checkable

import msgpack

__all__ = [
    "ENCODERS",
    "DataEncoder",
    "Encoder",
    "JSONDataEncoder",
    "MsgpackDataEncoder",
    "RawDataEncoder",
    "encode_with",
    "resolve_encoder",
]


@runtime_checkable
class Encoder(Protocol):
    """The interface the worker and client use on a data encoder."""

    def encode(self, encodable_object: Any) -> bytes: ...

    def decode(self, decodable_string: bytes) -> Any: ...


class DataEncoder:
    """The raw encoder, and the base class for encoders in python-gearman style.

    ``encode`` passes bytes through, encodes str as UTF-8, turns None into empty
    data and raises TypeError naming the type for anything else. ``decode``
    returns the bytes unchanged.
    """

    @classmethod
    def encode(cls, encodable_object: Any) -> bytes:
        if isinstance(encodable_object, bytes):
            return encodable_object
        if isinstance(encodable_object, str):
            return encodable_object.encode("utf-8")
        if isinstance(encodable_object, (bytearray, memoryview)):
            return bytes(encodable_object)
        if encodable_object is None:
            return b""
        raise TypeError(
            f"the raw data encoder sends bytes or str, got {type(encodable_object).__name__}; "
            "convert the value first or use JSONDataEncoder or MsgpackDataEncoder"
        )

    @classmethod
    def decode(cls, decodable_string: bytes) -> Any:
        return decodable_string


RawDataEncoder = DataEncoder


class JSONDataEncoder(DataEncoder):
    """JSON as UTF-8 text; non-ASCII characters are sent as themselves, not escaped."""

    @classmethod
    def encode(cls, encodable_object: Any) -> bytes:
        return json.dumps(encodable_object, ensure_ascii=False, separators=(",", ":")).encode(
            "utf-8"
        )

    @classmethod
    def decode(cls, decodable_string: bytes) -> Any:
        return json.loads(decodable_string)


class MsgpackDataEncoder(DataEncoder):
    """MessagePack, keeping bytes and str apart (``use_bin_type``, ``raw=False``)."""

    @classmethod
    def encode(cls, encodable_object: Any) -> bytes:
        data: bytes = msgpack.packb(encodable_object, use_bin_type=True)
        return data

    @classmethod
    def decode(cls, decodable_string: bytes) -> Any:
        return msgpack.unpackb(decodable_string, raw=False)


ENCODERS: dict[str, Encoder] = {
    "raw": DataEncoder,
    "json": JSONDataEncoder,
    "msgpack": MsgpackDataEncoder,
}


def encode_with(encoder: Encoder, value: Any) -> bytes:
    """Encode ``value`` and return bytes, accepting str from the encoder as UTF-8.

    Encoders written for python-gearman often return str (``json.dumps`` does on
    Python 3), so str is sent as UTF-8 rather than rejected.

    Raises:
        TypeError: the encoder returned something other than bytes or str.
        Exception: whatever the encoder itself raised.
    """
    payload: Any = encoder.encode(value)
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8")
    if isinstance(payload, (bytearray, memoryview)):
        return bytes(payload)
    raise TypeError(f"encode() returned {type(payload).__name__}, not bytes or str")


def resolve_encoder(encoder: Encoder | type | str | None, default: Any = DataEncoder) -> Encoder:
    """Return an encoder from an instance, a class, a registered name or None.

    Raises:
        ValueError: an unknown name.
        TypeError: an object without ``encode`` and ``decode``.
    """
    if encoder is None:
        encoder = default
    if isinstance(encoder, str):
        try:
            return ENCODERS[encoder]
        except KeyError:
            raise ValueError(
                f"unknown data encoder {encoder!r}; choose one of {', '.join(sorted(ENCODERS))}"
            ) from None
    if not (
        callable(getattr(encoder, "encode", None)) and callable(getattr(encoder, "decode", None))
    ):
        raise TypeError(
            f"data encoder {encoder!r} must have encode(obj) -> bytes and decode(bytes) -> obj"
        )
    return encoder  # type: ignore[return-value]
