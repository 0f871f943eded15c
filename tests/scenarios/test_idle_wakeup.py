"""A worker that has been idle for a while starts new jobs at once.

Guards against an idle worker that misses the job server's wake-up (NOOP), so a new job waits
in the queue until the worker's own poll timer fires. Every job must start within 0.5 s of its
submission, however long the worker was idle and wherever the submission falls in its sleep.
"""

from __future__ import annotations

import random
import statistics
import time

import gevent
import pytest
from helpers import running_worker, wait_for_workers, wait_until

from geargevent import GearmanClient, GearmanJob, GearmanWorker
from geargevent.testing import GearmandProcess

FUNCTION = "idle.stamp"

# Limits on the delay from submission to the start of the handler, in seconds.
MAX_START_DELAY = 0.5
MAX_RACE_START_DELAY = 1.0
MAX_RACE_P99_START_DELAY = 0.1


class StampingWorker:
    """A worker whose handler records when each job started, by unique id.

    Times are ``time.monotonic()`` readings: the wall clock of a virtual machine may drift or
    step while the test runs.
    """

    def __init__(self, server: GearmandProcess) -> None:
        self.started: dict[str, float] = {}
        self.worker = GearmanWorker([server.address], max_jobs=4)
        self.worker.register_task(FUNCTION, self.stamp)

    def stamp(self, worker: GearmanWorker, job: GearmanJob) -> bytes:
        now = time.monotonic()
        self.started[job.unique] = now
        return f"{now:.6f}".encode()


def check_idle_cycles(
    server: GearmandProcess, poll_timeout: float | None, idle_seconds: float, cycles: int
) -> None:
    """Leave the worker idle, then submit a background and a foreground job; repeat."""
    stamping = StampingWorker(server)
    client = GearmanClient([server.address])
    with running_worker(stamping.worker, poll_timeout):
        wait_for_workers(server, FUNCTION)
        for cycle in range(cycles):
            gevent.sleep(idle_seconds)

            background_unique = f"background-{cycle}"
            background_submitted = time.monotonic()
            client.submit_job(FUNCTION, b"x", unique=background_unique, background=True)
            foreground_submitted = time.monotonic()
            request = client.submit_job(
                FUNCTION, b"x", unique=f"foreground-{cycle}", poll_timeout=5
            )

            assert request.complete, f"cycle {cycle}: foreground job ended as {request.state}"
            foreground_delay = float(request.result) - foreground_submitted
            assert foreground_delay < MAX_START_DELAY, (
                f"cycle {cycle}: foreground job started {foreground_delay:.3f} s after submission"
            )
            wait_until(
                lambda unique=background_unique: unique in stamping.started,
                5.0,
                f"cycle {cycle}: background job never started",
            )
            background_delay = stamping.started[background_unique] - background_submitted
            assert background_delay < MAX_START_DELAY, (
                f"cycle {cycle}: background job started {background_delay:.3f} s after submission"
            )
    client.close()


def check_submission_race(server: GearmandProcess, poll_timeout: float | None) -> None:
    """Submit 200 background jobs with random gaps, so some land as the worker goes to sleep."""
    stamping = StampingWorker(server)
    client = GearmanClient([server.address])
    rng = random.Random(20240601)
    submitted: dict[str, float] = {}
    with running_worker(stamping.worker, poll_timeout):
        wait_for_workers(server, FUNCTION)
        for number in range(200):
            gevent.sleep(rng.uniform(0.0, 0.05))
            unique = f"race-{number}"
            submitted[unique] = time.monotonic()
            client.submit_job(FUNCTION, b"x", unique=unique, background=True)
        wait_until(
            lambda: len(stamping.started) == len(submitted),
            5.0,
            f"only {len(stamping.started)} of {len(submitted)} jobs started",
        )
    client.close()

    delays = [stamping.started[unique] - submitted[unique] for unique in submitted]
    slowest = max(delays)
    p99 = statistics.quantiles(delays, n=100)[98]
    assert slowest < MAX_RACE_START_DELAY, f"a job started {slowest:.3f} s after submission"
    assert p99 < MAX_RACE_P99_START_DELAY, f"99th percentile start delay is {p99:.3f} s"


def test_idle_worker_starts_jobs_at_once(gearmand: GearmandProcess) -> None:
    # A 2 s poll timeout and 5 s idle periods: each idle period spans two poll ticks.
    check_idle_cycles(gearmand, poll_timeout=2.0, idle_seconds=5.0, cycles=5)


def test_submission_race_with_sleep(gearmand: GearmandProcess) -> None:
    check_submission_race(gearmand, poll_timeout=2.0)


@pytest.mark.soak
@pytest.mark.parametrize("cycles", [3, 2])
def test_long_idle_with_default_poll(gearmand: GearmandProcess, cycles: int) -> None:
    # work()'s default poll timeout is 60 s, and 75 s idle periods outlast it. The five cycles
    # are split over two tests so that neither runs into pytest's 300 s faulthandler timeout.
    check_idle_cycles(gearmand, poll_timeout=60.0, idle_seconds=75.0, cycles=cycles)


@pytest.mark.soak
def test_submission_race_default_poll(gearmand: GearmandProcess) -> None:
    check_submission_race(gearmand, poll_timeout=60.0)
