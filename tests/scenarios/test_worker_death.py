"""A job whose worker process dies is run again elsewhere, a limited number of times.

Guards against jobs that are lost, retried forever, or run twice when their worker process
dies. With ``--job-retries=3`` a killed worker's job runs to one result elsewhere, and a job
that kills every worker fails after three attempts. A handler's ``sys.exit(3)`` ends the worker
with status 3 without sending a result for any running job, so gearmand requeues them.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import gevent
import pytest
from helpers import (
    TERMINAL_PACKETS,
    WORK_COMPLETE,
    WORK_FAIL,
    RawClient,
    WorkerProcess,
    show_jobs,
    wait_for_idle,
    wait_for_workers,
    wait_until,
    write_script,
)
from relay import TO_SERVER, Relay

from geargevent import GearmanClient
from geargevent.testing import GearmandFactory, GearmandProcess

FUNCTION = "death.job"

WORKER_SCRIPT = """
    import logging
    import os
    import sys
    import time

    import gevent

    from geargevent import GearmanWorker

    address, events_dir, on_sysexit = sys.argv[1:4]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    pid = os.getpid()
    events = open(os.path.join(events_dir, f"events-{pid}.log"), "a", buffering=1)


    def record(*fields):
        events.write(" ".join([f"{time.monotonic():.6f}", str(pid), *fields]) + "\\n")
        events.flush()


    def run(worker, job):
        record("start", job.handle, job.unique, job.data.decode())
        if job.data == b"poison":
            os._exit(1)
        if job.data == b"slow":
            gevent.sleep(3)
            result = b"ok:%d" % pid
        elif job.data == b"sysexit":
            gevent.sleep(0.5)
            if on_sysexit == "exit":
                record("exit", job.handle)
                sys.exit(3)
            result = b"survived:%d" % pid
        else:
            result = b"quick:%d" % pid
        record("end", job.handle)
        return result


    worker = GearmanWorker([address], max_jobs=2)
    worker.register_task("death.job", run)
    worker.work(poll_timeout=5)
"""


@dataclass(frozen=True)
class Event:
    """One line a worker process wrote to its events file: when, who, what, for which job."""

    timestamp: float
    pid: int
    kind: str
    handle: str
    unique: str = ""
    data: str = ""


class WorkerPool:
    """Worker processes of the script above, with an optional supervisor that restarts them."""

    def __init__(self, tmp_path: Path, address: str) -> None:
        self.tmp_path = tmp_path
        self.address = address
        self.events_dir = tmp_path / "events"
        self.events_dir.mkdir(exist_ok=True)
        self.script = write_script(tmp_path, "death_worker.py", WORKER_SCRIPT)
        self.started: list[WorkerProcess] = []
        self.supervised: list[WorkerProcess] = []
        self._supervisor: gevent.Greenlet | None = None

    def start(self, address: str | None = None, on_sysexit: str = "exit") -> WorkerProcess:
        number = len(self.started) + 1
        process = WorkerProcess(
            self.script,
            address or self.address,
            str(self.events_dir),
            on_sysexit,
            output=self.tmp_path / f"worker-{number}.log",
        )
        self.started.append(process.start())
        return process

    def supervise(self, count: int) -> None:
        """Keep ``count`` workers running, starting a new one whenever one exits."""
        self.supervised = [self.start(on_sysexit="return") for _ in range(count)]
        self._supervisor = gevent.spawn(self._restart_exited)

    def _restart_exited(self) -> None:
        while True:
            for index, process in enumerate(self.supervised):
                if not process.is_running():
                    self.supervised[index] = self.start(on_sysexit="return")
            gevent.sleep(0.05)

    def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.kill()
        for process in self.started:
            process.stop()

    def events(self) -> list[Event]:
        events = []
        for path in self.events_dir.glob("events-*.log"):
            for line in path.read_text().splitlines():
                fields = line.split(" ")
                events.append(Event(float(fields[0]), int(fields[1]), *fields[2:]))
        return sorted(events, key=lambda event: event.timestamp)

    def events_of(self, handle: bytes, kind: str) -> list[Event]:
        return [
            event
            for event in self.events()
            if event.handle == handle.decode() and event.kind == kind
        ]

    def outputs(self) -> str:
        return "\n".join(
            f"--- {process.output_path.name} (pid {process.pid}) ---\n{process.output()}"
            for process in self.started
        )


@pytest.fixture
def server(gearmand_factory: GearmandFactory) -> GearmandProcess:
    return gearmand_factory("--job-retries=3")


@pytest.fixture
def pool(tmp_path: Path, server: GearmandProcess) -> Iterator[WorkerPool]:
    pool = WorkerPool(tmp_path, server.address)
    try:
        yield pool
    finally:
        pool.stop()


def test_killed_worker_job_runs_elsewhere(server: GearmandProcess, pool: WorkerPool) -> None:
    pool.supervise(2)
    wait_for_workers(server, FUNCTION, count=2)

    with RawClient(server.address) as client:
        handle = client.submit(FUNCTION.encode(), b"slow", b"slow-unique")
        first = wait_until(lambda: pool.events_of(handle, "start"), 5.0, "the job never started")[0]
        gevent.sleep(max(0.0, first.timestamp + 1.0 - time.monotonic()))
        running_job = [process for process in pool.supervised if process.pid == first.pid]
        assert len(running_job) == 1, "the job started in a process the test did not start"
        killed_at = time.monotonic()
        running_job[0].send_signal(signal.SIGKILL)

        starts = wait_until(
            lambda: [e for e in pool.events_of(handle, "start") if e.pid != first.pid],
            5.0,
            "the job was not started again after its worker was killed",
        )
        second = starts[0]
        assert second.timestamp - killed_at < 1.0, (
            f"the job restarted {second.timestamp - killed_at:.2f} s after the kill"
        )
        assert (second.unique, second.data) == (first.unique, first.data) == ("slow-unique", "slow")
        assert show_jobs(server).get(handle.decode()) == 1, "retry count is not 1"

        packets = client.collect(timeout=6.0, linger=0.3)
    assert [packet.type for packet in packets] == [WORK_COMPLETE], pool.outputs()
    assert packets[0].payload == handle + b"\0ok:%d" % second.pid
    ends = pool.events_of(handle, "end")
    assert [event.pid for event in ends] == [second.pid], "the handler body did not finish once"


def test_poison_job_given_up_after_three_attempts(
    server: GearmandProcess, pool: WorkerPool
) -> None:
    pool.supervise(2)
    wait_for_workers(server, FUNCTION, count=2)

    client = GearmanClient([server.address])
    with RawClient(server.address) as raw:
        handle = raw.submit(FUNCTION.encode(), b"poison")
        # Other jobs keep flowing while the poison job kills workers.
        others = [
            client.submit_job(FUNCTION, b"quick", wait_until_complete=False) for _ in range(5)
        ]
        packets = raw.collect(timeout=20.0, linger=0.3)
    client.wait_until_jobs_completed(others, poll_timeout=15.0)
    client.close()

    assert [packet.type for packet in packets] == [WORK_FAIL], pool.outputs()
    attempts = pool.events_of(handle, "start")
    assert len(attempts) == 3, f"the poison job ran {len(attempts)} times"
    for request in others:
        assert request.complete, f"{request!r} ended as {request.state}"
        assert request.result.startswith(b"quick:")
    wait_for_idle(server, FUNCTION, timeout=5.0)


def test_sys_exit_requeues_running_jobs(server: GearmandProcess, pool: WorkerPool) -> None:
    with Relay(server.host, server.port) as relay:
        first_worker = pool.start(address=relay.address, on_sysexit="exit")
        wait_for_workers(server, FUNCTION)

        with RawClient(server.address) as slow_client, RawClient(server.address) as exit_client:
            slow_handle = slow_client.submit(FUNCTION.encode(), b"slow")
            wait_until(lambda: pool.events_of(slow_handle, "start"), 5.0, "slow job never started")
            exit_handle = exit_client.submit(FUNCTION.encode(), b"sysexit")

            status = first_worker.wait(timeout=5.0)
            exited_at = time.monotonic()
            assert status == 3, f"worker exited with {status}:\n{first_worker.output()}"
            exit_event = pool.events_of(exit_handle, "exit")
            assert exit_event, "the handler did not reach sys.exit"
            assert exited_at - exit_event[0].timestamp < 2.0, "the worker did not exit promptly"

            # The worker sent no result for either job, so gearmand put both back in the queue.
            terminal = [r for r in relay.packets(TO_SERVER) if r.packet_type in TERMINAL_PACKETS]
            assert terminal == []
            wait_until(
                lambda: server.status().get(FUNCTION, (0, 0, 0))[:2] == (2, 0),
                2.0,
                "the two jobs were not requeued",
            )
            assert pool.events_of(slow_handle, "end") == []

            second_worker = pool.start(on_sysexit="return")
            slow_packets = slow_client.collect(timeout=8.0, linger=0.3)
            exit_packets = exit_client.collect(timeout=8.0, linger=0.3)

    assert [packet.type for packet in slow_packets] == [WORK_COMPLETE], pool.outputs()
    assert slow_packets[0].payload == slow_handle + b"\0ok:%d" % second_worker.pid
    assert [packet.type for packet in exit_packets] == [WORK_COMPLETE], pool.outputs()
    assert exit_packets[0].payload == exit_handle + b"\0survived:%d" % second_worker.pid

    output = first_worker.output()
    assert "Traceback" not in output, output
    assert "SystemExit" in output, "the worker did not log why it stopped"
