"""An idle worker costs almost no CPU, even with one of its job servers down.

Guards against idle workers that spin a CPU, play a NOOP / GRAB / NO_JOB ping-pong, or open
socket after socket while a server is down. The worker must stay cheap and quiet, retry the dead
server with growing delays up to a cap, and still run jobs and register once the server is up.
"""

from __future__ import annotations

import itertools
import math
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import gevent
import pytest
from helpers import (
    GRAB_JOB,
    GRAB_JOB_UNIQ,
    PRE_SLEEP,
    WorkerProcess,
    cpu_seconds,
    open_fd_count,
    wait_for_workers,
    wait_until,
    write_script,
)
from relay import TO_SERVER, Relay

from geargevent import GearmanClient, GearmanWorker
from geargevent.testing import GearmandFactory, GearmandProcess

FUNCTION = "idle.x"
POLL_TIMEOUT = 5.0
JOB_COUNT = 20

# Limits for a 30 s idle period, scaled in proportion to the idle period a test uses. Per
# 30 s idle the worker may use 0.3 s of CPU. Per idle period it may send (idle / poll timeout)
# + 4 GRABs. Per 30 s of the whole run it may try the dead server 15 times.
CPU_SECONDS_PER_IDLE_SECOND = 0.3 / 30
EXTRA_GRABS = 4
ATTEMPTS_PER_SECOND = 15 / 30
FD_TOLERANCE = 2

WORKER_SCRIPT = """
    import logging
    import sys
    import time

    from geargevent import GearmanWorker

    live, dead, finished_path = sys.argv[1:4]
    logging.basicConfig(
        level=logging.DEBUG, format="%(monotonic).3f %(levelname)s %(name)s %(message)s"
    )


    def add_monotonic_time(record):
        record.monotonic = time.monotonic()
        return True


    logging.getLogger().handlers[0].addFilter(add_monotonic_time)
    finished = open(finished_path, "a", buffering=1)


    def run(worker, job):
        finished.write(f"{time.monotonic():.6f}\\n")
        return job.data


    worker = GearmanWorker([live, dead], max_jobs=4)
    worker.register_task("idle.x", run)
    worker.work(poll_timeout=5)
"""


@dataclass
class IdleMeasurement:
    cpu_seconds: float
    grabs: int
    pre_sleeps: int
    fd_counts: list[int]


@pytest.fixture
def worker_processes() -> Iterator[list[WorkerProcess]]:
    processes: list[WorkerProcess] = []
    try:
        yield processes
    finally:
        for process in processes:
            process.stop()


def unused_port() -> int:
    """Return a port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def grabs_sent(relay: Relay) -> int:
    return relay.count(TO_SERVER, GRAB_JOB_UNIQ) + relay.count(TO_SERVER, GRAB_JOB)


def measure_idle(process: WorkerProcess, relay: Relay, seconds: float) -> IdleMeasurement:
    """Leave the worker idle for ``seconds`` and measure what it did meanwhile."""
    cpu_before = cpu_seconds(process.pid)
    grabs_before = grabs_sent(relay)
    pre_sleeps_before = relay.count(TO_SERVER, PRE_SLEEP)
    fd_counts = [open_fd_count(process.pid)]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        gevent.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        fd_counts.append(open_fd_count(process.pid))
    return IdleMeasurement(
        cpu_seconds(process.pid) - cpu_before,
        grabs_sent(relay) - grabs_before,
        relay.count(TO_SERVER, PRE_SLEEP) - pre_sleeps_before,
        fd_counts,
    )


def connect_attempt_times(output: str, address: str) -> list[float]:
    """Return when the worker logged a failed connection attempt to ``address``."""
    pattern = re.compile(
        rf"^(\d+\.\d+) .*(cannot connect to job server {re.escape(address)}[ :;]|"
        rf"connect\.failed server={re.escape(address)} )"
    )
    times = []
    for line in output.splitlines():
        match = pattern.match(line)
        if match:
            times.append(float(match.group(1)))
    return times


def check_idle_cost(
    tmp_path: Path,
    gearmand: GearmandProcess,
    gearmand_factory: GearmandFactory,
    worker_processes: list[WorkerProcess],
    idle_seconds: float,
) -> None:
    dead_port = unused_port()
    dead_address = f"127.0.0.1:{dead_port}"
    finished_path = tmp_path / "finished.txt"
    finished_path.touch()
    script = write_script(tmp_path, "idle_worker.py", WORKER_SCRIPT)

    with Relay(gearmand.host, gearmand.port) as relay:
        process = WorkerProcess(
            script, relay.address, dead_address, str(finished_path), output=tmp_path / "worker.log"
        )
        worker_processes.append(process.start())
        wait_for_workers(gearmand, FUNCTION)
        run_started = time.monotonic()

        # Step 1: idle, then a burst of jobs, then idle again.
        first = measure_idle(process, relay, idle_seconds)
        fds_at_start = first.fd_counts[0]

        client = GearmanClient([gearmand.address])
        submitted = time.monotonic()
        for number in range(JOB_COUNT):
            client.submit_job(FUNCTION, b"job-%d" % number, background=True, poll_timeout=5)
        wait_until(
            lambda: len(finished_path.read_text().splitlines()) == JOB_COUNT,
            5.0,
            "the jobs did not all run",
        )
        client.close()
        last_finished = max(float(line) for line in finished_path.read_text().splitlines())
        jobs_seconds = last_finished - submitted

        second = measure_idle(process, relay, idle_seconds)
        run_seconds = time.monotonic() - run_started

    # Step 2: idle cost, per idle period.
    cpu_limit = CPU_SECONDS_PER_IDLE_SECOND * idle_seconds
    grab_limit = idle_seconds / POLL_TIMEOUT + EXTRA_GRABS
    for label, measured in (("first", first), ("second", second)):
        assert measured.cpu_seconds < cpu_limit, (
            f"{label} idle period of {idle_seconds} s used {measured.cpu_seconds:.2f} s CPU"
        )
        assert measured.grabs <= grab_limit, f"{label} idle period: {measured.grabs} GRABs"
        assert measured.pre_sleeps <= grab_limit, (
            f"{label} idle period: {measured.pre_sleeps} PRE_SLEEPs"
        )
        for count in measured.fd_counts:
            assert abs(count - fds_at_start) <= FD_TOLERANCE, (
                f"{label} idle period: {count} open fds, {fds_at_start} at the start"
            )
    assert jobs_seconds < 1.0, f"{JOB_COUNT} jobs took {jobs_seconds:.2f} s with a server down"

    # Step 3: attempts to the dead server, backed off with growing delays up to a cap.
    attempts = [
        moment
        for moment in connect_attempt_times(process.output(), dead_address)
        if moment <= run_started + run_seconds
    ]
    attempt_limit = math.ceil(ATTEMPTS_PER_SECOND * run_seconds)
    assert 2 <= len(attempts) <= attempt_limit, (
        f"{len(attempts)} attempts to the dead server in {run_seconds:.0f} s"
    )
    intervals = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    cap = GearmanWorker.reconnect_delay_max
    # 50 ms of slack for the time between a delay ending and the log line.
    for earlier, later in itertools.pairwise(intervals[:4]):
        assert later >= earlier - 0.05, f"reconnect delays did not grow: {intervals}"
    assert all(interval <= cap + 0.5 for interval in intervals), f"delays over the cap: {intervals}"
    assert all(interval >= 1.0 for interval in intervals[4:]), f"delays stayed short: {intervals}"

    # Step 4: the dead server comes up; the worker must register there within the cap.
    came_up = time.monotonic()
    revived = gearmand_factory(port=dead_port)
    wait_for_workers(revived, FUNCTION, timeout=cap + 1.0)
    assert time.monotonic() - came_up <= cap + 1.0
    assert process.is_running(), process.output()


def test_idle_worker_cost_short(
    tmp_path: Path,
    gearmand: GearmandProcess,
    gearmand_factory: GearmandFactory,
    worker_processes: list[WorkerProcess],
) -> None:
    # 10 s idle periods: under 0.1 s CPU and at most 6 GRABs each.
    check_idle_cost(tmp_path, gearmand, gearmand_factory, worker_processes, idle_seconds=10.0)


@pytest.mark.soak
def test_idle_worker_cost_full(
    tmp_path: Path,
    gearmand: GearmandProcess,
    gearmand_factory: GearmandFactory,
    worker_processes: list[WorkerProcess],
) -> None:
    # 30 s idle periods: under 0.3 s CPU and at most 10 GRABs each.
    check_idle_cost(tmp_path, gearmand, gearmand_factory, worker_processes, idle_seconds=30.0)
