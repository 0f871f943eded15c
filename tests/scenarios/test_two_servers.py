"""Workers connected to two job servers keep taking jobs from both.

Guards against workers that, after many jobs, quietly stop taking jobs from one of two servers.
Every job must run exactly once, and every worker must stay registered on both servers and keep
running jobs from both while either has jobs queued.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import gevent
import pytest
from helpers import WorkerProcess, wait_until, worker_entries, write_script

from geargevent import GearmanClient
from geargevent.testing import GearmandFactory, GearmandProcess

FUNCTION = "servers.tag"
WORKER_COUNT = 4
MAX_IDLE_SECONDS = 1.0

# Both queues must drain within 30 s per 2,000 jobs.
DRAIN_SECONDS_PER_JOB = 30.0 / 2000

WORKER_SCRIPT = """
    import logging
    import os
    import sys
    import time

    import gevent

    from geargevent import GearmanWorker

    first, second, max_jobs, index, records = sys.argv[1:6]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    pid = os.getpid()
    output = open(records, "a", buffering=1)


    def tag(worker, job):
        started = time.monotonic()
        gevent.sleep(0.005)
        output.write(f"{started:.6f} {time.monotonic():.6f} {pid} {job.data.decode()}\\n")
        return job.data + b"|%d" % pid


    worker = GearmanWorker([first, second], max_jobs=int(max_jobs), client_id=f"tag-{index}")
    worker.register_task("servers.tag", tag)
    worker.work(poll_timeout=5)
"""


@dataclass(frozen=True)
class Run:
    started: float
    finished: float
    pid: int
    payload: str

    @property
    def server(self) -> str:
        return self.payload.split("-", 1)[0]


@pytest.fixture
def worker_processes() -> Iterator[list[WorkerProcess]]:
    processes: list[WorkerProcess] = []
    try:
        yield processes
    finally:
        for process in processes:
            process.stop()


def read_runs(paths: list[Path]) -> list[Run]:
    runs = []
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            started, finished, pid, payload = line.split(" ")
            runs.append(Run(float(started), float(finished), int(pid), payload))
    return runs


def registered_ids(server: GearmandProcess) -> set[str]:
    return {entry.client_id for entry in worker_entries(server) if FUNCTION in entry.functions}


def check_two_servers(
    tmp_path: Path,
    gearmand_factory: GearmandFactory,
    worker_processes: list[WorkerProcess],
    jobs_per_server: int,
    max_jobs: int,
    threads: int | None,
) -> None:
    servers = {"p1": gearmand_factory(threads=threads), "p2": gearmand_factory(threads=threads)}
    script = write_script(tmp_path, "tag_worker.py", WORKER_SCRIPT)
    record_paths = [tmp_path / f"runs-{index}.txt" for index in range(WORKER_COUNT)]
    for index in range(WORKER_COUNT):
        process = WorkerProcess(
            script,
            servers["p1"].address,
            servers["p2"].address,
            str(max_jobs),
            str(index),
            str(record_paths[index]),
            output=tmp_path / f"worker-{index}.log",
        )
        worker_processes.append(process.start())
    expected_ids = {f"tag-{index}" for index in range(WORKER_COUNT)}
    for server in servers.values():
        wait_until(
            lambda server=server: registered_ids(server) == expected_ids,
            10.0,
            f"not all workers registered on {server.address}",
            step=0.1,
        )

    # Sample the worker listings every 0.5 s while the jobs run.
    missing: list[str] = []

    def sample() -> None:
        while True:
            for name, server in servers.items():
                listed = registered_ids(server)
                if listed != expected_ids:
                    missing.append(f"{name}: {sorted(expected_ids - listed)}")
            gevent.sleep(0.5)

    sampler = gevent.spawn(sample)
    try:
        clients = {name: GearmanClient([server.address]) for name, server in servers.items()}
        requests = []
        for i in range(jobs_per_server):
            for name, client in clients.items():
                requests.append(
                    client.submit_job(
                        FUNCTION, f"{name}-{i}".encode(), background=True, wait_until_complete=False
                    )
                )
        clients["p1"].wait_until_jobs_completed(requests, poll_timeout=20.0)
        assert all(request.job.handle for request in requests), "a submission got no handle"

        total = 2 * jobs_per_server
        wait_until(
            lambda: len(read_runs(record_paths)) >= total,
            max(30.0, total * DRAIN_SECONDS_PER_JOB),
            "not all jobs ran",
            step=0.1,
        )
        for server in servers.values():
            wait_until(
                lambda server=server: server.status()[FUNCTION][0] == 0,
                5.0,
                f"jobs left on {server.address}",
            )
        for client in clients.values():
            client.close()
    finally:
        sampler.kill()

    runs = read_runs(record_paths)
    pids = {process.pid for process in worker_processes}

    # Every job ran exactly once.
    counts = Counter(run.payload for run in runs)
    expected = {f"{name}-{i}" for name in servers for i in range(jobs_per_server)}
    assert set(counts) == expected
    assert [payload for payload, count in counts.items() if count > 1] == []

    # Every worker stayed listed on both servers.
    assert missing == [], f"workers missing from listings: {missing[:5]}"

    # In the last quarter of the run, every worker took jobs from both servers.
    last = sorted(runs, key=lambda run: run.finished)[-(total // 4) :]
    served = {(run.pid, run.server) for run in last}
    for pid in pids:
        for name in servers:
            assert (pid, name) in served, f"worker {pid} ran no {name} job in the last quarter"

    # While a server had jobs, no worker went more than 1 s without taking one of them.
    by_worker: dict[tuple[int, str], list[float]] = defaultdict(list)
    for run in runs:
        by_worker[run.pid, run.server].append(run.started)
    for name in servers:
        starts = sorted(run.started for run in runs if run.server == name)
        window = (starts[0], starts[-1])
        for pid in pids:
            moments = sorted([window[0], *by_worker[pid, name], window[1]])
            longest = max(later - earlier for earlier, later in itertools.pairwise(moments))
            assert longest <= MAX_IDLE_SECONDS, (
                f"worker {pid} took no {name} job for {longest:.2f} s while {name} had jobs"
            )


# gearmand runs with its default of 4 I/O threads, and single-threaded (--threads=0).
@pytest.mark.parametrize("threads", [None, 0], ids=["threads-default", "threads-0"])
@pytest.mark.parametrize("max_jobs", [1, 4])
def test_workers_serve_both_servers(
    tmp_path: Path,
    gearmand_factory: GearmandFactory,
    worker_processes: list[WorkerProcess],
    max_jobs: int,
    threads: int | None,
) -> None:
    check_two_servers(tmp_path, gearmand_factory, worker_processes, 1000, max_jobs, threads)


@pytest.mark.soak
@pytest.mark.parametrize("max_jobs", [1, 4])
def test_workers_serve_both_servers_at_scale(
    tmp_path: Path,
    gearmand_factory: GearmandFactory,
    worker_processes: list[WorkerProcess],
    max_jobs: int,
) -> None:
    check_two_servers(tmp_path, gearmand_factory, worker_processes, 10_000, max_jobs, None)
