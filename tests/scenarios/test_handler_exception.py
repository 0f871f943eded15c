"""An exception in a handler reaches the client as a failure, never as a success or a hang.

Guards against clients that hang or get an empty success when a handler raises. A client that
asked for exceptions must get WORK_EXCEPTION with the exception text and any other client
WORK_FAIL; the worker sends one terminal packet per job and the job is not retried.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import gevent
import pytest
from helpers import (
    ERROR,
    JOB_ASSIGN_UNIQ,
    TERMINAL_PACKETS,
    WORK_COMPLETE,
    WORK_EXCEPTION,
    WORK_FAIL,
    RawClient,
    running_worker,
    wait_for_idle,
    wait_for_workers,
    wait_until,
)
from relay import TO_CLIENT, TO_SERVER, Relay

from geargevent import JOB_FAILED, GearmanClient, GearmanJob, GearmanWorker
from geargevent.testing import GearmandProcess

RAISING = "exception.boom"
HEALTHY = "exception.ok"
MESSAGE = "boom: ü"


@pytest.fixture
def relay(gearmand: GearmandProcess) -> Iterator[Relay]:
    with Relay(gearmand.host, gearmand.port) as relay:
        yield relay


@pytest.fixture
def calls(relay: Relay, gearmand: GearmandProcess) -> Iterator[Counter[str]]:
    """Run the worker through the relay and count handler calls by function."""
    counts: Counter[str] = Counter()

    def boom(worker: GearmanWorker, job: GearmanJob) -> bytes:
        counts[RAISING] += 1
        raise ValueError(MESSAGE)

    def fine(worker: GearmanWorker, job: GearmanJob) -> bytes:
        counts[HEALTHY] += 1
        return b"fine"

    worker = GearmanWorker([relay.address], max_jobs=2)
    worker.register_task(RAISING, boom)
    worker.register_task(HEALTHY, fine)
    with running_worker(worker, poll_timeout=5.0):
        wait_for_workers(gearmand, RAISING)
        wait_for_workers(gearmand, HEALTHY)
        yield counts


def worker_terminal_packets(relay: Relay) -> Counter[bytes]:
    """Count the terminal packets the worker sent, by job handle."""
    counts: Counter[bytes] = Counter()
    for record in relay.packets(TO_SERVER):
        if record.packet_type in TERMINAL_PACKETS:
            counts[record.payload.split(b"\0", 1)[0]] += 1
    return counts


def test_client_without_option_gets_fail(
    gearmand: GearmandProcess, relay: Relay, calls: Counter[str]
) -> None:
    with RawClient(gearmand.address) as client:
        started = time.monotonic()
        handle = client.submit(RAISING.encode(), b"x")
        packets = client.collect(timeout=2.0, linger=0.3)
        elapsed = time.monotonic() - started

        types = [packet.type for packet in packets]
        assert types == [WORK_FAIL], f"expected one WORK_FAIL, got types {types}"
        assert packets[0].arguments[0] == handle
        assert elapsed < 2.0

        handle = client.submit(HEALTHY.encode(), b"x")
        packets = client.collect(timeout=2.0)
        assert [packet.type for packet in packets] == [WORK_COMPLETE]
        assert packets[0].payload == handle + b"\0fine"
    assert calls[RAISING] == 1


def test_client_with_option_gets_exception_text(
    gearmand: GearmandProcess, relay: Relay, calls: Counter[str]
) -> None:
    with RawClient(gearmand.address, exceptions=True) as client:
        handle = client.submit(RAISING.encode(), b"x")
        packets = client.collect(timeout=2.0, linger=0.3)
        types = [packet.type for packet in packets]
        assert types == [WORK_EXCEPTION], f"expected one WORK_EXCEPTION, got types {types}"
        packet_handle, data = packets[0].arguments
        assert packet_handle == handle
        assert MESSAGE.encode("utf-8") in data
        assert b"ValueError" in data

        handle = client.submit(HEALTHY.encode(), b"x")
        packets = client.collect(timeout=2.0)
        assert [packet.type for packet in packets] == [WORK_COMPLETE]
        assert packets[0].payload == handle + b"\0fine"


def test_library_client_sees_exception(
    gearmand: GearmandProcess, relay: Relay, calls: Counter[str]
) -> None:
    client = GearmanClient([gearmand.address])
    started = time.monotonic()
    request = client.submit_job(RAISING, b"x", poll_timeout=2.0)
    elapsed = time.monotonic() - started
    assert not request.timed_out
    assert request.state == JOB_FAILED
    assert not request.complete
    assert request.result is None
    assert MESSAGE.encode("utf-8") in request.exception
    assert elapsed < 2.0

    request = client.submit_job(HEALTHY, b"x", poll_timeout=2.0)
    assert request.complete
    assert request.result == b"fine"
    client.close()


def test_worker_sends_one_terminal_packet(
    gearmand: GearmandProcess, relay: Relay, calls: Counter[str]
) -> None:
    # Both kinds of client, several times, so the worker sends several results on one connection.
    with (
        RawClient(gearmand.address) as plain,
        RawClient(gearmand.address, exceptions=True) as opted,
    ):
        for _ in range(3):
            for client in (plain, opted):
                client.submit(RAISING.encode(), b"x")
                assert client.collect(timeout=2.0)
                client.submit(HEALTHY.encode(), b"x")
                assert client.collect(timeout=2.0)
    # Give a duplicate or late packet from the worker time to pass the relay.
    gevent.sleep(0.3)

    assigned = [
        record.payload.split(b"\0", 1)[0] for record in relay.packets(TO_CLIENT, JOB_ASSIGN_UNIQ)
    ]
    assert len(assigned) == 12
    terminal = worker_terminal_packets(relay)
    for handle in assigned:
        assert terminal[handle] == 1, (
            f"worker sent {terminal[handle]} terminal packets for {handle!r}"
        )
    for record in relay.packets(TO_SERVER, WORK_FAIL):
        assert record.payload in assigned, (
            f"WORK_FAIL body is not a bare handle: {record.payload!r}"
        )
    assert relay.count(TO_CLIENT, ERROR) == 0, "gearmand rejected a packet from the worker"
    log = gearmand.log_path.read_text("utf-8", "replace")
    assert "JOB_NOT_FOUND" not in log


def test_raising_background_job_not_retried(
    gearmand: GearmandProcess, relay: Relay, calls: Counter[str]
) -> None:
    client = GearmanClient([gearmand.address])
    request = client.submit_job(RAISING, b"x", background=True, poll_timeout=2.0)
    assert request.job.handle
    wait_until(lambda: calls[RAISING] == 1, 2.0, "the background job did not run")
    wait_for_idle(gearmand, RAISING, timeout=2.0)

    # A requeued job would be handed to the same idle worker at once.
    gevent.sleep(1.0)
    assert calls[RAISING] == 1
    assert gearmand.status()[RAISING][:2] == (0, 0)
    assert worker_terminal_packets(relay)[request.job.handle.encode()] == 1
    client.close()
