"""A worker survives a gearmand restart and registers again with its functions and client id.

Guards against workers that exit, keep a dead socket, or reconnect without CAN_DO and
SET_CLIENT_ID when gearmand restarts. The worker must stay up, retry with backoff, and within
5 s of the restart be listed again with its id and both functions and run jobs.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import (
    WorkerEntry,
    WorkerProcess,
    cpu_seconds,
    wait_until,
    worker_entries,
    write_script,
)

from geargevent import GearmanClient
from geargevent.testing import GearmandFactory, GearmandProcess

CLIENT_ID = "restart-w"
FUNCTIONS = frozenset({"restart.a", "restart.b"})
DOWN_SECONDS = 3.0

# Limits for the time the server is down: CPU the worker may use and connection attempts it
# may make per server.
MAX_DOWNTIME_CPU_SECONDS = 0.3
MAX_DOWNTIME_ATTEMPTS = 10

WORKER_SCRIPT = """
    import logging
    import sys

    from geargevent import GearmanWorker

    logging.basicConfig(
        level=logging.DEBUG, format="%(created).3f %(levelname)s %(name)s %(message)s"
    )
    worker = GearmanWorker(sys.argv[1:], max_jobs=2, client_id="restart-w")
    worker.register_task("restart.a", lambda worker, job: b"ok-a")
    worker.register_task("restart.b", lambda worker, job: b"ok-b")
    worker.work(poll_timeout=5)
"""


def start_worker(tmp_path: Path, servers: list[GearmandProcess]) -> WorkerProcess:
    script = write_script(tmp_path, "restart_worker.py", WORKER_SCRIPT)
    addresses = [server.address for server in servers]
    return WorkerProcess(script, *addresses, output=tmp_path / "worker.log").start()


@pytest.fixture
def worker_processes() -> Iterator[list[WorkerProcess]]:
    processes: list[WorkerProcess] = []
    try:
        yield processes
    finally:
        for process in processes:
            process.stop()


def our_entries(server: GearmandProcess) -> list[WorkerEntry]:
    return [entry for entry in worker_entries(server) if entry.client_id == CLIENT_ID]


def wait_registered(server: GearmandProcess, timeout: float) -> None:
    """Wait until the server lists one connection with our client id and both functions."""

    def registered() -> bool:
        entries = our_entries(server)
        return len(entries) == 1 and entries[0].functions == FUNCTIONS

    wait_until(registered, timeout, f"worker not registered on {server.address}", step=0.1)


def failed_connects(process: WorkerProcess, server: GearmandProcess) -> int:
    """Count the failed connection attempts to ``server`` that the worker has logged."""
    # The first failure of an outage is logged as a warning, later ones at DEBUG.
    markers = (
        f"cannot connect to job server {server.address}:",
        f"connect.failed server={server.address} ",
    )
    return sum(
        1 for line in process.output().splitlines() if any(marker in line for marker in markers)
    )


def restart_and_check(
    process: WorkerProcess, server: GearmandProcess, sig: int, others: list[GearmandProcess]
) -> None:
    """Restart ``server`` with ``sig`` after 3 s down and check that the worker comes back."""
    cpu_before = cpu_seconds(process.pid)
    failures_before = failed_connects(process, server)

    server.restart(down_seconds=DOWN_SECONDS, sig=sig)
    restarted_at = time.monotonic()

    cpu_used = cpu_seconds(process.pid) - cpu_before
    assert cpu_used < MAX_DOWNTIME_CPU_SECONDS, f"worker used {cpu_used:.2f} s CPU while down"

    wait_registered(server, timeout=5.0)
    client = GearmanClient([server.address])
    request = client.submit_job("restart.b", b"x", poll_timeout=5.0)
    client.close()
    assert request.complete, f"job ended as {request.state}:\n{process.output()}"
    assert request.result == b"ok-b"
    assert time.monotonic() - restarted_at < 5.0, "the worker took over 5 s to serve again"

    # The successful connection is one attempt more than the failures.
    attempts = failed_connects(process, server) - failures_before + 1
    assert attempts <= MAX_DOWNTIME_ATTEMPTS, f"{attempts} connection attempts while down"
    for other in others:
        assert len(our_entries(other)) == 1, f"worker lost its connection to {other.address}"
    assert process.is_running(), f"the worker exited:\n{process.output()}"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_worker_returns_after_restart(
    tmp_path: Path,
    gearmand_factory: GearmandFactory,
    worker_processes: list[WorkerProcess],
    sig: int,
) -> None:
    server = gearmand_factory()
    process = start_worker(tmp_path, [server])
    worker_processes.append(process)
    wait_registered(server, timeout=10.0)

    restart_and_check(process, server, sig, others=[])


def test_each_of_two_servers_restarts(
    tmp_path: Path, gearmand_factory: GearmandFactory, worker_processes: list[WorkerProcess]
) -> None:
    first = gearmand_factory()
    second = gearmand_factory()
    process = start_worker(tmp_path, [first, second])
    worker_processes.append(process)
    wait_registered(first, timeout=10.0)
    wait_registered(second, timeout=10.0)

    restart_and_check(process, first, signal.SIGTERM, others=[second])
    restart_and_check(process, second, signal.SIGTERM, others=[first])
