"""A result the encoder cannot encode fails its job, is logged, and frees its slot.

Guards against errors after the handler returned (here, encoding the result) that end a
library greenlet with only a printed traceback, so the job gets no result and keeps its pool
slot. Each such job must fail at its client, be logged once by the library, and free its slot.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import gevent
import pytest
from helpers import running_worker, wait_for_idle, wait_for_workers

from geargevent import JOB_FAILED, GearmanClient, GearmanJob, GearmanWorker
from geargevent.testing import GearmandProcess

BAD = "encode.bad"
GOOD = "encode.ok"


def bad_result(worker: GearmanWorker, job: GearmanJob) -> Any:
    # JSON has no sets and no bytes.
    if job.data == "set":
        return {1, 2}
    return b"\x00\xff"


def test_unencodable_results_fail_and_free_slots(
    gearmand: GearmandProcess, caplog: pytest.LogCaptureFixture
) -> None:
    worker = GearmanWorker([gearmand.address], max_jobs=2, data_encoder="json")
    worker.register_task(BAD, bad_result)
    worker.register_task(GOOD, lambda worker, job: "fine")
    client = GearmanClient([gearmand.address], data_encoder="json")

    with running_worker(worker, poll_timeout=5.0):
        wait_for_workers(gearmand, BAD)
        wait_for_workers(gearmand, GOOD)

        # Five failing jobs, more than the two slots, then three good ones, all at once from
        # eight greenlets.
        jobs = [(BAD, "set"), (BAD, "bytes"), (BAD, "set"), (BAD, "bytes"), (BAD, "set")]
        jobs += [(GOOD, "x")] * 3

        def submit(function: str, data: str) -> tuple[Any, float]:
            started = time.monotonic()
            request = client.submit_job(function, data, poll_timeout=5.0)
            return request, time.monotonic() - started

        greenlets = [gevent.spawn(submit, function, data) for function, data in jobs]
        gevent.joinall(greenlets, timeout=10, raise_error=True)
        answers = [greenlet.value for greenlet in greenlets]

        for request, elapsed in answers[:5]:
            assert not request.timed_out, f"{request!r} got no answer"
            assert request.state == JOB_FAILED
            assert "cannot encode" in str(request.exception)
            assert elapsed < 1.0, f"{request!r} failed only after {elapsed:.2f} s"
        for request, _ in answers[5:]:
            assert request.complete, f"{request!r} ended as {request.state}"
            assert request.result == "fine"

        wait_for_idle(gearmand, BAD, timeout=2.0)
        wait_for_idle(gearmand, GOOD, timeout=2.0)
        assert gearmand.status()[BAD][1] == 0
    client.close()

    failures = [
        record
        for record in caplog.records
        if record.name.startswith("geargevent.")
        and record.levelno == logging.ERROR
        and "cannot encode" in record.getMessage()
    ]
    assert len(failures) == 5, [record.getMessage() for record in failures]
    # A raw greenlet traceback would have reached the hub; the hub_errors fixture checks that.


def test_pool_runs_two_at_once_after_failures(gearmand: GearmandProcess) -> None:
    # After the failures both slots must be free again: two slow jobs run side by side.
    def slow(worker: GearmanWorker, job: GearmanJob) -> str:
        gevent.sleep(0.5)
        return "slow"

    worker = GearmanWorker([gearmand.address], max_jobs=2, data_encoder="json")
    worker.register_task(BAD, bad_result)
    worker.register_task(GOOD, slow)
    client = GearmanClient([gearmand.address], data_encoder="json")
    with running_worker(worker, poll_timeout=5.0):
        wait_for_workers(gearmand, GOOD)
        for data in ("set", "bytes", "set", "bytes"):
            request = client.submit_job(BAD, data, poll_timeout=2.0)
            assert request.state == JOB_FAILED

        started = time.monotonic()
        greenlets = [gevent.spawn(client.submit_job, GOOD, "x", poll_timeout=5.0) for _ in range(2)]
        gevent.joinall(greenlets, timeout=5, raise_error=True)
        elapsed = time.monotonic() - started
    client.close()
    assert [greenlet.value.result for greenlet in greenlets] == ["slow", "slow"]
    # Two 0.5 s jobs one after the other would take 1 s.
    assert elapsed < 0.9, f"two jobs took {elapsed:.2f} s, so a slot was still taken"


def test_msgpack_keeps_bytes_and_str_apart(gearmand: GearmandProcess) -> None:
    value = {"b": b"\x00\xff", "s": "x"}
    worker = GearmanWorker([gearmand.address], max_jobs=2, data_encoder="msgpack")
    worker.register_task(GOOD, lambda worker, job: value)
    client = GearmanClient([gearmand.address], data_encoder="msgpack")
    with running_worker(worker, poll_timeout=5.0):
        wait_for_workers(gearmand, GOOD)
        request = client.submit_job(GOOD, "x", poll_timeout=5.0)
    client.close()
    assert request.complete, f"job ended as {request.state}"
    assert request.result == value
    assert type(request.result["b"]) is bytes
    assert type(request.result["s"]) is str
