"""A long-running client and worker do not grow with the number of jobs they have handled.

Clients have kept a record of every request they ever submitted. The record of a background
job is the usual leak, because no result ever comes to clear it. Daemons that submit jobs in a
loop then grew to gigabytes. A worker can leak the same way through job objects or finished
greenlets. Here a client process with tracemalloc submits background jobs one by one, then
foreground jobs from 16 greenlets, against a worker process with 8 slots:

- The client's traced memory may grow by at most 5 MiB per 45,000 background jobs and per
  18,000 foreground jobs after a warm-up of the first tenth of each phase. That is about
  115 bytes per background job and 290 per foreground job, while a leaked request record
  takes a few kilobytes. The default run uses a tenth of the jobs of the long run, and so a
  tenth of the limit (0.5 MiB).
- When nothing is pending, no connection of the client has a request in flight.
- After the last job the worker has no job object left and no more greenlets than its slots
  plus a few for its connection. Its resident memory grows by less than 20 MiB after the
  warm-up, in the default run as in the long one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from client_helpers import read_output, start_python, stop_process, wait_until, write_script

from geargevent import GearmanClient
from geargevent.testing import GearmandProcess

NOOP = "memory.noop"
STATS = "memory.stats"
WORKER_SLOTS = 8
FOREGROUND_GREENLETS = 16

# Greenlets a worker may have beyond one per slot: the connection's reader and writer, and
# the greenlet of the job that reports these numbers.
EXTRA_WORKER_GREENLETS = 4

MIB = 1024 * 1024

# The limits of the long run. The default run scales the client limits with the job count.
FULL_BACKGROUND_JOBS = 50_000
FULL_FOREGROUND_JOBS = 20_000
FULL_CLIENT_GROWTH_BYTES = 5 * MIB
WORKER_RSS_GROWTH_BYTES = 20 * MIB

WORKER_SCRIPT = """
    import gc
    import json
    import sys

    import gevent

    from geargevent import GearmanJob, GearmanWorker

    address, slots, warm_up_jobs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    counts = {"jobs": 0, "warm_rss": None}


    def resident_bytes():
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("VmRSS missing from /proc/self/status")


    def noop(worker, job):
        counts["jobs"] += 1
        if counts["jobs"] == warm_up_jobs:
            gc.collect()
            counts["warm_rss"] = resident_bytes()
        return b""


    def stats(worker, job):
        gc.collect()
        objects = gc.get_objects()
        return json.dumps(
            {
                "jobs": counts["jobs"],
                "warm_rss": counts["warm_rss"],
                "rss": resident_bytes(),
                "other_job_objects": sum(
                    isinstance(item, GearmanJob) and item is not job for item in objects
                ),
                "greenlets": sum(isinstance(item, gevent.Greenlet) for item in objects),
            }
        ).encode()


    worker = GearmanWorker([address], max_jobs=slots)
    worker.register_task("memory.noop", noop)
    worker.register_task("memory.stats", stats)
    worker.work(poll_timeout=5)
"""

CLIENT_SCRIPT = """
    import gc
    import json
    import os
    import sys
    import tracemalloc

    import gevent

    from geargevent import JOB_COMPLETE, JOB_CREATED, GearmanClient

    address, background_jobs, foreground_jobs, greenlet_count, output = sys.argv[1:6]
    background_jobs = int(background_jobs)
    foreground_jobs = int(foreground_jobs)
    greenlet_count = int(greenlet_count)


    def traced_bytes():
        gc.collect()
        return tracemalloc.get_traced_memory()[0]


    def held_requests(client):
        return sum(connection.requests_in_flight for connection in client.connections)


    def submit_foreground(client, count):
        remaining = iter(range(count))
        failures = []

        def loop():
            for _ in remaining:
                request = client.submit_job("memory.noop", os.urandom(100), poll_timeout=60)
                if request.state != JOB_COMPLETE:
                    failures.append(repr(request))

        gevent.joinall([gevent.spawn(loop) for _ in range(greenlet_count)], raise_error=True)
        if failures:
            raise SystemExit(f"{len(failures)} foreground jobs failed, first {failures[0]}")


    tracemalloc.start()
    client = GearmanClient([address])
    report = {}

    warm_up = background_jobs // 10
    for number in range(background_jobs):
        request = client.submit_job(
            "memory.noop", os.urandom(100), background=True, poll_timeout=60
        )
        if request.state != JOB_CREATED:
            raise SystemExit(f"background job {number} was not accepted: {request!r}")
        del request
        if number + 1 == warm_up:
            report["background_warm"] = traced_bytes()
    report["background_end"] = traced_bytes()
    report["held_after_background"] = held_requests(client)

    warm_up = foreground_jobs // 10
    submit_foreground(client, warm_up)
    report["foreground_warm"] = traced_bytes()
    submit_foreground(client, foreground_jobs - warm_up)
    report["foreground_end"] = traced_bytes()
    report["held_after_foreground"] = held_requests(client)

    client.close()
    with open(output, "w") as stream:
        json.dump(report, stream)
"""


def run_memory_scenario(
    gearmand: GearmandProcess, tmp_path: Path, background_jobs: int, foreground_jobs: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the worker and client processes; return the client report and the worker stats."""
    worker_script = write_script(tmp_path, "memory_worker.py", WORKER_SCRIPT)
    client_script = write_script(tmp_path, "memory_client.py", CLIENT_SCRIPT)
    worker_log = tmp_path / "worker.log"
    client_log = tmp_path / "client.log"
    report_path = tmp_path / "client-report.json"

    worker = start_python(
        worker_script,
        gearmand.address,
        str(WORKER_SLOTS),
        str(background_jobs // 10),
        output=worker_log,
    )
    try:
        wait_until(
            lambda: gearmand.status().get(NOOP, (0, 0, 0))[2] >= 1,
            10.0,
            f"the worker process did not register; output:\n{read_output(worker_log)}",
        )
        client = start_python(
            client_script,
            gearmand.address,
            str(background_jobs),
            str(foreground_jobs),
            str(FOREGROUND_GREENLETS),
            str(report_path),
            output=client_log,
        )
        try:
            returncode = client.wait(timeout=max(60.0, (background_jobs + foreground_jobs) / 500))
        finally:
            stop_process(client)
        assert returncode == 0, f"client process failed; output:\n{read_output(client_log)}"
        report = json.loads(report_path.read_text())

        wait_until(
            lambda: gearmand.status().get(NOOP, (1, 0, 0))[0] == 0,
            60.0,
            "the worker did not finish the queued jobs",
        )
        observer = GearmanClient([gearmand.address])
        try:
            stats_request = observer.submit_job(STATS, b"", poll_timeout=30)
        finally:
            observer.close()
        assert stats_request.complete, f"stats job failed: {stats_request!r}"
        stats = json.loads(stats_request.result)
    finally:
        stop_process(worker)
    return report, stats


def check_memory(
    report: dict[str, Any],
    stats: dict[str, Any],
    background_jobs: int,
    foreground_jobs: int,
) -> None:
    background_after_warm_up = background_jobs - background_jobs // 10
    foreground_after_warm_up = foreground_jobs - foreground_jobs // 10
    background_limit = FULL_CLIENT_GROWTH_BYTES * background_after_warm_up / 45_000
    foreground_limit = FULL_CLIENT_GROWTH_BYTES * foreground_after_warm_up / 18_000

    background_growth = report["background_end"] - report["background_warm"]
    foreground_growth = report["foreground_end"] - report["foreground_warm"]
    assert background_growth < background_limit, (
        f"client grew by {background_growth} bytes over {background_after_warm_up} "
        f"background jobs (limit {background_limit:.0f})"
    )
    assert foreground_growth < foreground_limit, (
        f"client grew by {foreground_growth} bytes over {foreground_after_warm_up} "
        f"foreground jobs (limit {foreground_limit:.0f})"
    )
    assert report["held_after_background"] == 0
    assert report["held_after_foreground"] == 0

    assert stats["jobs"] == background_jobs + foreground_jobs
    assert stats["other_job_objects"] == 0
    assert stats["greenlets"] <= WORKER_SLOTS + EXTRA_WORKER_GREENLETS
    assert stats["warm_rss"] is not None
    rss_growth = stats["rss"] - stats["warm_rss"]
    assert rss_growth < WORKER_RSS_GROWTH_BYTES, f"worker RSS grew by {rss_growth} bytes"


def test_client_and_worker_memory_flat(gearmand: GearmandProcess, tmp_path: Path) -> None:
    background_jobs = FULL_BACKGROUND_JOBS // 10
    foreground_jobs = FULL_FOREGROUND_JOBS // 10

    report, stats = run_memory_scenario(gearmand, tmp_path, background_jobs, foreground_jobs)

    check_memory(report, stats, background_jobs, foreground_jobs)


@pytest.mark.soak
def test_client_and_worker_memory_flat_long(gearmand: GearmandProcess, tmp_path: Path) -> None:
    report, stats = run_memory_scenario(
        gearmand, tmp_path, FULL_BACKGROUND_JOBS, FULL_FOREGROUND_JOBS
    )

    check_memory(report, stats, FULL_BACKGROUND_JOBS, FULL_FOREGROUND_JOBS)
