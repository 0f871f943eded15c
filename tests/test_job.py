"""Tests of the job object handed to worker handlers."""

from __future__ import annotations

from typing import Any

import pytest

from geargevent.job import GearmanJob


class FakeConnection:
    """Stands in for the WorkerConnection; GearmanJob only stores it."""


def make_job(
    handle: bytes = b"H:vm:42",
    function: bytes = b"reverse",
    unique: bytes = b"u-1",
    raw_data: bytes = b"payload",
    generation: int = 3,
) -> GearmanJob:
    connection: Any = FakeConnection()
    return GearmanJob(connection, generation, handle, function, unique, raw_data)


def test_job_attributes() -> None:
    job = make_job()

    assert job.handle == "H:vm:42"
    assert job.handle_bytes == b"H:vm:42"
    assert job.task == "reverse"
    assert job.function == b"reverse"
    assert job.unique == "u-1"
    assert job.raw_data == b"payload"
    assert job.data == b"payload"
    assert job.generation == 3
    assert isinstance(job.connection, FakeConnection)
    assert job.connection_lost is False
    assert job.answered is False
    assert job.greenlet is None


def test_job_keeps_raw_bytes() -> None:
    raw = b"\0\xff\x00binary\0"
    job = make_job(raw_data=raw)

    assert job.raw_data is raw
    assert job.data is raw


def test_job_data_replaceable() -> None:
    job = make_job(raw_data=b'{"a": 1}')

    job.data = {"a": 1}

    assert job.data == {"a": 1}
    assert job.raw_data == b'{"a": 1}'


def test_job_empty_unique_and_data() -> None:
    job = make_job(unique=b"", raw_data=b"")

    assert job.unique == ""
    assert job.raw_data == b""


def test_job_utf8_names_decoded() -> None:
    job = make_job(function="größe".encode(), unique="clé".encode())

    assert job.task == "größe"
    assert job.function == "größe".encode()
    assert job.unique == "clé"


@pytest.mark.parametrize(
    "handle",
    [b"H:\xff\xfe:1", b"H:caf\xe9:7", b"\x80"],
    ids=["ff-fe", "latin-1", "lone-continuation"],
)
def test_job_invalid_utf8_handle(handle: bytes) -> None:
    job = make_job(handle=handle)

    assert isinstance(job.handle, str)
    assert job.handle.encode("utf-8", "surrogateescape") == handle
    assert job.handle_bytes == handle


def test_job_invalid_utf8_function_and_unique() -> None:
    job = make_job(function=b"fn\xff", unique=b"u\xfe")

    assert job.task.encode("utf-8", "surrogateescape") == b"fn\xff"
    assert job.unique.encode("utf-8", "surrogateescape") == b"u\xfe"
    assert job.function == b"fn\xff"


def test_job_repr() -> None:
    text = repr(make_job())

    assert "H:vm:42" in text
    assert "'reverse'" in text
    assert "'u-1'" in text


def test_job_flags_settable() -> None:
    job = make_job()

    job.connection_lost = True
    job.answered = True

    assert job.connection_lost
    assert job.answered
