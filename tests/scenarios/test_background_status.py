"""Any client can ask about a background job's status, as often as it likes.

A background submission gets a job handle and nothing else, so the status query (GET_STATUS)
is the only way to follow the job. Clients have failed here in two ways. Some could only ask
about request objects they had created themselves, so a handle stored elsewhere was useless.
Others raised when the reply arrived for a job that had changed state meanwhile. Here the
submitting client and a second, new client given only the handle string must both see the job
running at 3/10, then see it unknown once it has finished, on repeated calls that never raise.
A made-up handle must read as unknown. gearmand keeps no record of a finished job, result
included, so "unknown" is the correct answer after the end.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import gevent
import pytest
from client_helpers import serving, sleep_until

from geargevent import JOB_CREATED, GearmanClient, GearmanJob, GearmanWorker
from geargevent.testing import GearmandProcess

PROGRESS = "status.progress"
UNKNOWN_HANDLE = "H:nosuch:999999"


def report_progress(worker: GearmanWorker, job: GearmanJob) -> bytes:
    worker.send_job_status(job, 3, 10)
    gevent.sleep(2.0)
    worker.send_job_status(job, 10, 10)
    return b"finished"


@pytest.fixture
def clients(gearmand: GearmandProcess) -> Iterator[tuple[GearmanClient, GearmanClient]]:
    submitter = GearmanClient([gearmand.address])
    other = GearmanClient([gearmand.address])
    yield submitter, other
    submitter.close()
    other.close()


def fields(status: dict[str, Any]) -> tuple[bool, bool, int, int]:
    return status["known"], status["running"], status["numerator"], status["denominator"]


def test_background_status_from_two_clients(
    gearmand: GearmandProcess, clients: tuple[GearmanClient, GearmanClient]
) -> None:
    submitter, other = clients
    during: list[tuple[float, Any, Any]] = []
    after: list[tuple[Any, Any]] = []

    with serving(gearmand, {PROGRESS: report_progress}, max_jobs=2):
        start = time.monotonic()
        request = submitter.submit_job(PROGRESS, b"x", background=True, poll_timeout=5)
        assert request.state == JOB_CREATED
        assert request.job.handle is not None
        # The second client gets the handle as a plain string, as if read from a database.
        handle = str(request.job.handle)

        for offset in (0.5, 1.0, 1.5):
            sleep_until(start + offset)
            # get_job_status returns request.status, which the next query updates, so copy it.
            own = dict(submitter.get_job_status(request, poll_timeout=2))
            by_handle = other.get_job_status_by_handle(handle, poll_timeout=2)
            during.append((offset, own, by_handle))

        sleep_until(start + 3.0)
        for _ in range(3):
            own = dict(submitter.get_job_status(request, poll_timeout=2))
            by_handle = other.get_job_status_by_handle(handle, poll_timeout=2)
            after.append((own, by_handle))
        made_up = other.get_job_status_by_handle(UNKNOWN_HANDLE, poll_timeout=2)
        made_up_from_submitter = submitter.get_job_status_by_handle(UNKNOWN_HANDLE, poll_timeout=2)

    for offset, own, by_handle in during:
        assert fields(own) == (True, True, 3, 10), f"submitting client at {offset} s"
        assert fields(by_handle) == (True, True, 3, 10), f"second client at {offset} s"
    for own, by_handle in after:
        assert own["known"] is False
        assert own["running"] is False
        assert by_handle["known"] is False
        assert by_handle["running"] is False
    assert made_up["known"] is False
    assert made_up["running"] is False
    assert made_up_from_submitter["known"] is False


def test_queued_background_status(
    gearmand: GearmandProcess, clients: tuple[GearmanClient, GearmanClient]
) -> None:
    submitter, other = clients

    # No worker serves this function, so the jobs stay queued.
    requests = [
        submitter.submit_job("status.queued", b"%d" % number, background=True, poll_timeout=5)
        for number in range(3)
    ]
    submitter.get_job_statuses(requests, poll_timeout=5)
    again = [dict(request.status) for request in submitter.get_job_statuses(requests, 5)]
    by_handle = [
        other.get_job_status_by_handle(str(request.job.handle), poll_timeout=5)
        for request in requests
    ]

    for status in again + by_handle:
        assert fields(status) == (True, False, 0, 0)
