"""Function names, host names and data given as str or bytes follow one rule.

Guards against a function name that matches only in one of str and bytes, and against
non-ASCII names or text host names that fail deep in the protocol layer. Names go on the wire
as UTF-8, the raw encoder sends str data as UTF-8, and JSON keeps non-ASCII text intact.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers import running_worker, wait_for_workers

from geargevent import GearmanClient, GearmanJob, GearmanWorker
from geargevent.testing import GearmandProcess

REVERSE = "text.rev"
BYTES_NAMED = b"text.bytes"
NON_ASCII = "text.naïve-✓"
JSON_ECHO = "text.json"


def reverse(worker: GearmanWorker, job: GearmanJob) -> bytes:
    data: bytes = job.data
    return data[::-1]


class Recorder:
    """Handlers that record the function name and data each job arrived with."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, object]] = []

    def echo(self, worker: GearmanWorker, job: GearmanJob) -> object:
        self.seen.append((job.task, job.data))
        return job.data


@pytest.fixture(params=["127.0.0.1", "localhost"])
def host(request: pytest.FixtureRequest) -> str:
    """The server's host as the worker and client are given it: an address or a str name.

    ``localhost`` is resolved by the system resolver (the hosts file on a usual setup); gearmand
    listens on 127.0.0.1 only.
    """
    name: str = request.param
    return name


@pytest.fixture
def recorder(gearmand: GearmandProcess, host: str) -> Iterator[Recorder]:
    recorder = Recorder()
    address = f"{host}:{gearmand.port}"

    text_worker = GearmanWorker([address], max_jobs=2)
    text_worker.register_task(REVERSE, reverse)
    text_worker.register_task(NON_ASCII, recorder.echo)
    text_worker.register_task(JSON_ECHO, recorder.echo, data_encoder="json")

    bytes_worker = GearmanWorker([address], max_jobs=2)
    bytes_worker.register_task(BYTES_NAMED, recorder.echo)

    with (
        running_worker(text_worker, poll_timeout=5.0),
        running_worker(bytes_worker, poll_timeout=5.0),
    ):
        for function in (REVERSE, NON_ASCII, JSON_ECHO, BYTES_NAMED.decode()):
            wait_for_workers(gearmand, function)
        yield recorder


def test_bytes_name_reaches_str_registration(
    gearmand: GearmandProcess, host: str, recorder: Recorder
) -> None:
    client = GearmanClient([f"{host}:{gearmand.port}"])
    request = client.submit_job(REVERSE.encode(), b"abc", poll_timeout=5)
    client.close()
    assert request.complete, f"job ended as {request.state}"
    assert request.result == b"cba"


def test_str_name_reaches_bytes_registration(
    gearmand: GearmandProcess, host: str, recorder: Recorder
) -> None:
    client = GearmanClient([f"{host}:{gearmand.port}"])
    request = client.submit_job(BYTES_NAMED.decode(), b"xyz", poll_timeout=5)
    client.close()
    assert request.complete, f"job ended as {request.state}"
    assert request.result == b"xyz"
    assert recorder.seen == [("text.bytes", b"xyz")]


def test_non_ascii_name_and_str_data(
    gearmand: GearmandProcess, host: str, recorder: Recorder
) -> None:
    client = GearmanClient([f"{host}:{gearmand.port}"])
    request = client.submit_job(NON_ASCII, "héllo", poll_timeout=5)
    client.close()

    # The raw encoder's documented rule: str is sent as its UTF-8 bytes.
    assert request.complete, f"job ended as {request.state}"
    assert request.result == "héllo".encode()
    assert recorder.seen == [(NON_ASCII, "héllo".encode())]

    # The admin listing shows the name as its UTF-8 bytes, decoded back here.
    assert NON_ASCII in gearmand.status()
    assert NON_ASCII.encode() in gearmand.admin("status").encode("utf-8", "surrogateescape")


def test_json_keeps_non_ascii(gearmand: GearmandProcess, host: str, recorder: Recorder) -> None:
    value = {"k": "ü✓", "n": [1, 2]}
    client = GearmanClient([f"{host}:{gearmand.port}"], data_encoder="json")
    request = client.submit_job(JSON_ECHO, value, poll_timeout=5)
    client.close()
    assert request.complete, f"job ended as {request.state}"
    assert request.result == value
    assert recorder.seen == [(JSON_ECHO, value)]
