"""Data, status and warning updates of concurrent jobs reach their own client, in order.

Guards against updates from jobs that share one worker connection being dropped, reordered,
sent to another job's client, sent after the result, or taken as the end of the job. Each
client must see its own updates in order, then one result, then nothing more.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import gevent
import pytest
from helpers import (
    WORK_COMPLETE,
    WORK_DATA,
    WORK_STATUS,
    WORK_WARNING,
    RawClient,
    RawPacket,
    running_worker,
    wait_for_workers,
)

from geargevent import GearmanClient, GearmanJob, GearmanWorker
from geargevent.testing import GearmandProcess

FUNCTION = "inflight.stream"
CHUNKS = 20
WARNING_AFTER = 10
NAMES = [b"A", b"B", b"C", b"D"]


class StreamingWorker:
    """A worker that streams 20 data chunks with status and one warning per job."""

    def __init__(self, address: str) -> None:
        self.running = 0
        self.max_running = 0
        self.rng = random.Random(7)
        self.worker = GearmanWorker([address], max_jobs=4)
        self.worker.register_task(FUNCTION, self.stream)

    def stream(self, worker: GearmanWorker, job: GearmanJob) -> bytes:
        name = job.data
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            for n in range(1, CHUNKS + 1):
                worker.send_job_data(job, name + b"-%d" % n)
                worker.send_job_status(job, n, CHUNKS)
                if n == WARNING_AFTER:
                    worker.send_job_warning(job, name + b"-warn")
                gevent.sleep(self.rng.uniform(0.0, 0.02))
        finally:
            self.running -= 1
        return name + b"-end"


@pytest.fixture
def streaming(gearmand: GearmandProcess) -> Iterator[StreamingWorker]:
    streaming = StreamingWorker(gearmand.address)
    with running_worker(streaming.worker, poll_timeout=5.0):
        wait_for_workers(gearmand, FUNCTION)
        yield streaming


def check_packet_sequence(name: bytes, handle: bytes, packets: list[RawPacket]) -> None:
    """Check one client's packets: its own chunks in order, the warning, status, one result."""
    for packet in packets:
        assert packet.arguments[0] == handle, f"job {name!r} got a packet of another job: {packet}"

    data = [packet.arguments[1] for packet in packets if packet.type == WORK_DATA]
    assert data == [name + b"-%d" % n for n in range(1, CHUNKS + 1)]

    kinds = [packet.type for packet in packets]
    assert kinds.count(WORK_WARNING) == 1
    warning_at = kinds.index(WORK_WARNING)
    data_positions = [i for i, kind in enumerate(kinds) if kind == WORK_DATA]
    assert data_positions[WARNING_AFTER - 1] < warning_at < data_positions[WARNING_AFTER]
    assert packets[warning_at].arguments[1] == name + b"-warn"

    statuses = [
        tuple(int(value) for value in packet.arguments[1].split(b"\0"))
        for packet in packets
        if packet.type == WORK_STATUS
    ]
    numerators = [numerator for numerator, _ in statuses]
    assert numerators == sorted(numerators), f"status went backwards: {numerators}"
    assert statuses[-1] == (CHUNKS, CHUNKS)

    # The result comes last and nothing follows it.
    assert kinds.count(WORK_COMPLETE) == 1
    assert kinds[-1] == WORK_COMPLETE, f"packets after the result: {kinds}"
    assert packets[-1].arguments[1] == name + b"-end"


def test_updates_routed_per_connection(
    gearmand: GearmandProcess, streaming: StreamingWorker
) -> None:
    clients = [RawClient(gearmand.address) for _ in NAMES]
    try:
        handles = [
            client.submit(FUNCTION.encode(), name)
            for client, name in zip(clients, NAMES, strict=True)
        ]
        collectors = [gevent.spawn(client.collect, 10.0, 0.3) for client in clients]
        gevent.joinall(collectors, timeout=15, raise_error=True)
    finally:
        for client in clients:
            client.close()

    assert len(set(handles)) == len(NAMES)
    for name, handle, collector in zip(NAMES, handles, collectors, strict=True):
        check_packet_sequence(name, handle, collector.value)
    assert streaming.max_running == len(NAMES), "the four jobs did not run at once"


def test_updates_on_one_shared_client(
    gearmand: GearmandProcess, streaming: StreamingWorker
) -> None:
    client = GearmanClient([gearmand.address])
    requests = [client.submit_job(FUNCTION, name, wait_until_complete=False) for name in NAMES]
    client.wait_until_jobs_completed(requests, poll_timeout=10.0)
    client.close()

    for name, request in zip(NAMES, requests, strict=True):
        assert not request.timed_out, f"job {name!r} reported a timeout"
        assert request.complete, f"job {name!r} ended as {request.state}"
        assert request.result == name + b"-end"
        assert list(request.data_updates) == [name + b"-%d" % n for n in range(1, CHUNKS + 1)]
        assert list(request.warning_updates) == [name + b"-warn"]
        assert request.status["numerator"] == CHUNKS
        assert request.status["denominator"] == CHUNKS
    assert streaming.max_running == len(NAMES), "the four jobs did not run at once"
