"""A worker whose job limit is reached keeps taking jobs once slots free up.

Guards against a worker with a concurrency limit that runs its first N jobs and then never
sends a GRAB again. Bursts many times the limit must drain in rounds, and with a limit of one
the jobs must run strictly one after another.
"""

from __future__ import annotations

import itertools
import time

import gevent
from helpers import running_worker, wait_for_idle, wait_for_workers, wait_until

from geargevent import GearmanClient, GearmanJob, GearmanWorker
from geargevent.testing import GearmandProcess

FUNCTION = "saturation.work"
JOB_SECONDS = 0.2


class SleepingWorker:
    """A worker whose handler sleeps 0.2 s, returns the data and records when it ran."""

    def __init__(self, server: GearmandProcess, max_jobs: int) -> None:
        self.intervals: list[tuple[float, float]] = []
        self.worker = GearmanWorker([server.address], max_jobs=max_jobs)
        self.worker.register_task(FUNCTION, self.work)

    def work(self, worker: GearmanWorker, job: GearmanJob) -> bytes:
        started = time.monotonic()
        gevent.sleep(JOB_SECONDS)
        self.intervals.append((started, time.monotonic()))
        data: bytes = job.data
        return data


def assert_server_idle(server: GearmandProcess) -> None:
    total, running, workers = server.status()[FUNCTION]
    assert total == 0, f"{total} job(s) still queued or running"
    assert running == 0, f"{running} job(s) still running"
    assert workers == 1


def test_bursts_beyond_the_limit_drain(gearmand: GearmandProcess) -> None:
    sleeping = SleepingWorker(gearmand, max_jobs=10)
    client = GearmanClient([gearmand.address])
    with running_worker(sleeping.worker, poll_timeout=5.0):
        wait_for_workers(gearmand, FUNCTION)

        # Batch 1: 50 background jobs, five rounds of ten.
        started = time.monotonic()
        requests = [
            client.submit_job(
                FUNCTION, f"bg-{i}".encode(), background=True, wait_until_complete=False
            )
            for i in range(50)
        ]
        client.wait_until_jobs_completed(requests, poll_timeout=5)
        assert all(request.job.handle for request in requests), "a submission got no handle"
        wait_until(lambda: len(sleeping.intervals) == 50, 5.0, "batch 1 did not finish")
        batch_1_seconds = time.monotonic() - started
        assert batch_1_seconds < 2.0, f"50 jobs with max_jobs=10 took {batch_1_seconds:.2f} s"
        wait_for_idle(gearmand, FUNCTION, timeout=2.0)
        assert_server_idle(gearmand)

        gevent.sleep(3.0)

        # Batch 2: 50 foreground jobs from 50 greenlets.
        started = time.monotonic()
        greenlets = [
            gevent.spawn(client.submit_job, FUNCTION, f"fg-{i}".encode(), poll_timeout=5)
            for i in range(50)
        ]
        gevent.joinall(greenlets, timeout=10, raise_error=True)
        batch_2_seconds = time.monotonic() - started
        results = [greenlet.value.result for greenlet in greenlets]
        assert results == [f"fg-{i}".encode() for i in range(50)]
        assert batch_2_seconds < 2.0, f"50 jobs with max_jobs=10 took {batch_2_seconds:.2f} s"
        wait_for_idle(gearmand, FUNCTION, timeout=2.0)
        assert_server_idle(gearmand)
    client.close()

    max_at_once = max(
        sum(1 for start, end in sleeping.intervals if start <= moment < end)
        for moment, _ in sleeping.intervals
    )
    assert max_at_once <= 10, f"{max_at_once} jobs ran at once with max_jobs=10"


def test_limit_of_one_runs_serially(gearmand: GearmandProcess) -> None:
    sleeping = SleepingWorker(gearmand, max_jobs=1)
    client = GearmanClient([gearmand.address])
    with running_worker(sleeping.worker, poll_timeout=5.0):
        wait_for_workers(gearmand, FUNCTION)
        started = time.monotonic()
        greenlets = [
            gevent.spawn(client.submit_job, FUNCTION, f"one-{i}".encode(), poll_timeout=10)
            for i in range(10)
        ]
        gevent.joinall(greenlets, timeout=15, raise_error=True)
        elapsed = time.monotonic() - started
        results = sorted(greenlet.value.result for greenlet in greenlets)
        assert results == sorted(f"one-{i}".encode() for i in range(10))
        wait_for_idle(gearmand, FUNCTION, timeout=2.0)
        assert_server_idle(gearmand)
    client.close()

    # Ten jobs of 0.2 s one at a time take at least 2 s; 3 s leaves room for a slow machine.
    assert elapsed >= 10 * JOB_SECONDS
    assert elapsed < 3.0, f"10 jobs of {JOB_SECONDS} s took {elapsed:.2f} s with max_jobs=1"
    intervals = sorted(sleeping.intervals)
    assert len(intervals) == 10
    for (_, previous_end), (next_start, _) in itertools.pairwise(intervals):
        assert next_start >= previous_end, "two jobs overlapped with max_jobs=1"
