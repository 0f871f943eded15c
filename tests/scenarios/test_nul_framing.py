"""Job data with NUL bytes arrives byte for byte, and handles never carry a stray NUL.

Guards against libraries that split the whole payload at NUL or append a terminator, which
adds or loses bytes and mangles handles. Payloads must round-trip exactly, handles and uniques
must match the server's, and names or uniques with NUL are rejected before anything is sent.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers import WORK_COMPLETE, RawClient, running_worker, wait_for_workers, wait_until
from relay import Relay

from geargevent import GearmanClient, GearmanJob, GearmanWorker
from geargevent.testing import GearmandProcess

FUNCTION = "framing.echo"
PAYLOADS = [b"\x00", b"a\x00b", b"abc\x00", b"\x00\x00", b"\x00RES\x00"]


class EchoWorker:
    """A worker that returns the data unchanged and records what each job looked like."""

    def __init__(self, address: str) -> None:
        self.seen: dict[str, tuple[str, bytes]] = {}
        self.worker = GearmanWorker([address], max_jobs=2)
        self.worker.register_task(FUNCTION, self.echo)

    def echo(self, worker: GearmanWorker, job: GearmanJob) -> bytes:
        self.seen[job.unique] = (job.handle, job.data)
        data: bytes = job.data
        return data


@pytest.fixture
def echo(gearmand: GearmandProcess) -> Iterator[EchoWorker]:
    echo = EchoWorker(gearmand.address)
    with running_worker(echo.worker, poll_timeout=5.0):
        wait_for_workers(gearmand, FUNCTION)
        yield echo


@pytest.mark.parametrize("number", range(len(PAYLOADS)))
def test_foreground_payload_round_trips(
    gearmand: GearmandProcess, echo: EchoWorker, number: int
) -> None:
    payload = PAYLOADS[number]
    unique = f"nul-{number}"
    client = GearmanClient([gearmand.address])
    request = client.submit_job(FUNCTION, payload, unique=unique, poll_timeout=5)
    client.close()

    assert request.complete, f"job ended as {request.state}"
    assert request.result == payload
    handle = request.job.handle
    assert handle and "\0" not in handle
    assert echo.seen[unique] == (handle, payload)


@pytest.mark.parametrize("number", range(len(PAYLOADS)))
def test_raw_client_sees_exact_bytes(
    gearmand: GearmandProcess, echo: EchoWorker, number: int
) -> None:
    # An independent client, so that a fault shared by geargevent's client and worker cannot
    # cancel itself out.
    payload = PAYLOADS[number]
    unique = f"raw-{number}"
    with RawClient(gearmand.address) as client:
        handle = client.submit(FUNCTION.encode(), payload, unique.encode())
        packets = client.collect(timeout=5.0)

    assert b"\0" not in handle
    assert [packet.type for packet in packets] == [WORK_COMPLETE]
    assert packets[0].payload == handle + b"\0" + payload
    assert echo.seen[unique] == (handle.decode(), payload)


@pytest.mark.parametrize("number", range(len(PAYLOADS)))
def test_background_payload_arrives_intact(
    gearmand: GearmandProcess, echo: EchoWorker, number: int
) -> None:
    payload = PAYLOADS[number]
    unique = f"bg-{number}"
    client = GearmanClient([gearmand.address])
    request = client.submit_job(FUNCTION, payload, unique=unique, background=True, poll_timeout=5)
    client.close()

    handle = request.job.handle
    assert handle and "\0" not in handle
    wait_until(lambda: unique in echo.seen, 5.0, "background job never ran")
    assert echo.seen[unique] == (handle, payload)


def test_nul_in_function_name_rejected(gearmand: GearmandProcess) -> None:
    worker = GearmanWorker([gearmand.address], max_jobs=2)
    with pytest.raises(ValueError, match=r"NUL|contains"):
        worker.register_task(b"bad\x00name", lambda worker, job: job.data)
    assert worker.registered_tasks == []

    client = GearmanClient([gearmand.address])
    with pytest.raises(ValueError, match=r"NUL|contains"):
        client.submit_job(b"bad\x00name", b"x", background=True)
    client.close()


def test_nul_in_unique_rejected_before_sending(gearmand: GearmandProcess) -> None:
    with Relay(gearmand.host, gearmand.port) as relay:
        client = GearmanClient([relay.address])
        with pytest.raises(ValueError, match="NUL"):
            client.submit_job(FUNCTION, b"x", unique=b"u\x00v", background=True)
        with pytest.raises(ValueError, match="NUL"):
            client.submit_job(FUNCTION, b"x", unique="u\x00v", background=True)
        client.close()
        # Nothing was sent: the client did not even connect.
        assert relay.accepted == 0
        assert relay.log == []
