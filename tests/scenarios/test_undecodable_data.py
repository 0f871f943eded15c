"""Job data that the worker's encoder cannot decode fails that job alone.

Guards against a malformed payload that kills the worker's connection or work loop, and then
the next worker after the requeue. Such a job must fail at once without a handler call, must
not be retried, and the worker must keep its connection and serve good jobs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

import gevent
import msgpack
import pytest
from helpers import (
    WORK_COMPLETE,
    WORK_EXCEPTION,
    WORK_FAIL,
    RawClient,
    WorkerEntry,
    running_worker,
    wait_for_idle,
    wait_for_workers,
    worker_entries,
)

from geargevent import GearmanJob, GearmanWorker
from geargevent.testing import GearmandFactory, GearmandProcess

FUNCTION = "decode.sum"
CLIENT_ID = "decode-worker"


@dataclass(frozen=True)
class EncoderCase:
    name: str
    bad_payloads: tuple[bytes, ...]
    good_payload: bytes
    good_result: bytes


CASES = [
    EncoderCase("json", (b"{not json", b"\xff\xfe\x00"), b"[1, 2, 3]", b"6"),
    # 0xc1 is the one byte MessagePack never uses; the other two decode to a number followed
    # by extra bytes, which msgpack also rejects.
    EncoderCase(
        "msgpack",
        (b"\xc1", b"{not json", b"\xff\xfe\x00"),
        msgpack.packb([1, 2, 3]),
        msgpack.packb(6),
    ),
]


@dataclass
class Setup:
    server: GearmandProcess
    case: EncoderCase
    calls: list[object]


def worker_entry(server: GearmandProcess) -> WorkerEntry:
    entries = [entry for entry in worker_entries(server) if entry.client_id == CLIENT_ID]
    assert len(entries) == 1, f"expected one connection of {CLIENT_ID}, got {entries}"
    return entries[0]


@pytest.fixture(params=CASES, ids=[case.name for case in CASES])
def setup(
    request: pytest.FixtureRequest,
    gearmand_factory: GearmandFactory,
    caplog: pytest.LogCaptureFixture,
) -> Iterator[Setup]:
    """Run the summing worker with one encoder, and check afterwards that it never reconnected."""
    case: EncoderCase = request.param
    server = gearmand_factory("--job-retries=2")
    calls: list[object] = []

    def total(worker: GearmanWorker, job: GearmanJob) -> int:
        calls.append(job.data)
        return sum(job.data)

    worker = GearmanWorker(
        [server.address], max_jobs=2, data_encoder=case.name, client_id=CLIENT_ID
    )
    worker.register_task(FUNCTION, total)
    with running_worker(worker, poll_timeout=5.0):
        wait_for_workers(server, FUNCTION)
        connection_before = worker_entry(server)
        yield Setup(server, case, calls)
        assert worker_entry(server) == connection_before, "the worker reconnected"

    lost = [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("geargevent")
        and record.levelno >= logging.WARNING
        and "connection" in record.getMessage()
    ]
    assert lost == []


def test_bad_foreground_jobs_fail_fast(setup: Setup) -> None:
    with (
        RawClient(setup.server.address) as plain,
        RawClient(setup.server.address, exceptions=True) as opted,
    ):
        for payload in setup.case.bad_payloads:
            started = time.monotonic()
            handle = plain.submit(FUNCTION.encode(), payload)
            packets = plain.collect(timeout=1.0)
            assert time.monotonic() - started < 1.0
            assert [packet.type for packet in packets] == [WORK_FAIL], f"payload {payload!r}"
            assert packets[0].arguments[0] == handle

            handle = opted.submit(FUNCTION.encode(), payload)
            packets = opted.collect(timeout=1.0)
            assert [packet.type for packet in packets] == [WORK_EXCEPTION], f"payload {payload!r}"
            packet_handle, message = packets[0].arguments
            assert packet_handle == handle
            assert b"decode" in message, f"failure data names no decode error: {message!r}"

        handle = plain.submit(FUNCTION.encode(), setup.case.good_payload)
        packets = plain.collect(timeout=1.0)
        assert [packet.type for packet in packets] == [WORK_COMPLETE]
        assert packets[0].payload == handle + b"\0" + setup.case.good_result

    assert setup.calls == [[1, 2, 3]], "the handler ran for undecodable data"


def test_bad_background_jobs_leave_queue(setup: Setup) -> None:
    with RawClient(setup.server.address) as client:
        for payload in setup.case.bad_payloads:
            client.submit(FUNCTION.encode(), payload, background=True)
        wait_for_idle(setup.server, FUNCTION, timeout=1.0)

        # With --job-retries=2 a requeued job would run again on this idle worker at once.
        gevent.sleep(1.0)
        assert setup.server.status()[FUNCTION][:2] == (0, 0)
        assert setup.calls == []

        handle = client.submit(FUNCTION.encode(), setup.case.good_payload)
        packets = client.collect(timeout=1.0)
        assert [packet.type for packet in packets] == [WORK_COMPLETE]
        assert packets[0].payload == handle + b"\0" + setup.case.good_result
