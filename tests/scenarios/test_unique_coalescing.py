"""gearmand merges jobs exactly when their uniques match, and never by accident.

gearmand attaches a submission to a job that is still queued or running with the same function
and unique: only one run happens, and every foreground submitter gets its result. Clients have
got this wrong both ways. Uniques made from a counter or from the data merged unrelated jobs,
so work silently disappeared. Clients that sent no unique, or dropped the caller's, left no way
to ask for merging. Checked here:

- Without a unique, identical submissions from two processes all run (500 runs for 500 jobs).
- Equal uniques in flight share one run and one result. Once that job has finished, the
  unique starts a new run.
- The unique ``-`` makes gearmand use the data as the unique.
- Equal uniques on queued background jobs give one job and one handle.
- An empty unique merges nothing.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import gevent
import gevent.event
from client_helpers import (
    read_output,
    serving,
    start_python,
    stop_process,
    wait_until,
    write_script,
)

from geargevent import JOB_COMPLETE, JOB_CREATED, GearmanClient, GearmanJob, GearmanWorker
from geargevent.testing import GearmandProcess

COUNT = "unique.count"
COUNT_FAST = "unique.count.fast"
RUN_SECONDS = 1.0

SUBMITTER_SCRIPT = """
    import sys

    from geargevent import JOB_CREATED, GearmanClient

    address, function, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    client = GearmanClient([address])
    requests = [
        client.submit_job(function, b"same", background=True, wait_until_complete=False)
        for _ in range(count)
    ]
    client.wait_until_jobs_accepted(requests, poll_timeout=30)
    accepted = sum(request.state == JOB_CREATED for request in requests)
    print(f"{accepted} of {count} accepted")
    client.close()
    sys.exit(0 if accepted == count else 1)
"""


class RunCounter:
    """A handler that numbers its runs: it returns ``run-<n>`` after ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.runs = 0
        self.uniques: list[str] = []
        self.data: list[bytes] = []

    def __call__(self, worker: GearmanWorker, job: GearmanJob) -> bytes:
        self.runs += 1
        run = self.runs
        self.uniques.append(job.unique)
        self.data.append(job.data)
        if self.seconds:
            gevent.sleep(self.seconds)
        return b"run-%d" % run


def test_no_unique_never_merges_across_processes(gearmand: GearmandProcess, tmp_path: Path) -> None:
    # The handler does not sleep here: 500 runs of 1 s on 4 slots would take two minutes, and
    # merging happens at submission, before any job runs.
    counter = RunCounter(0.0)
    script = write_script(tmp_path, "submit_same.py", SUBMITTER_SCRIPT)
    outputs = [tmp_path / f"submitter-{index}.log" for index in range(2)]
    processes = [
        start_python(script, gearmand.address, COUNT_FAST, "250", output=output)
        for output in outputs
    ]
    try:
        returncodes = [process.wait(timeout=60) for process in processes]
    finally:
        for process in processes:
            stop_process(process)
    assert returncodes == [0, 0], [read_output(output) for output in outputs]

    # Nothing ran yet, so every job still counted by the server was submitted separately.
    queued = gearmand.status()[COUNT_FAST]

    with serving(gearmand, {COUNT_FAST: counter}, max_jobs=4):
        wait_until(lambda: counter.runs >= 500, 60.0, f"only {counter.runs} of 500 jobs ran")
        gevent.sleep(0.2)

    assert queued == (500, 0, 0)
    assert counter.runs == 500
    assert set(counter.data) == {b"same"}
    assert len(set(counter.uniques)) == 500


def test_equal_unique_shares_one_run(gearmand: GearmandProcess) -> None:
    counter = RunCounter(RUN_SECONDS)
    first = GearmanClient([gearmand.address])
    second = GearmanClient([gearmand.address])
    try:
        with serving(gearmand, {COUNT: counter}, max_jobs=4):
            a = first.submit_job(COUNT, b"x", unique="coalesce-key", wait_until_complete=False)
            wait_until(lambda: counter.runs == 1, 2.0, "the first job did not start")
            gevent.sleep(0.2)
            b = second.submit_job(COUNT, b"x", unique="coalesce-key", wait_until_complete=False)
            first.wait_until_jobs_completed([a], poll_timeout=10)
            second.wait_until_jobs_completed([b], poll_timeout=10)
            runs_for_both = counter.runs

            # The job has finished, so the same unique starts a new run.
            third = first.submit_job(COUNT, b"x", unique="coalesce-key", poll_timeout=10)
    finally:
        first.close()
        second.close()

    assert runs_for_both == 1
    assert a.state == JOB_COMPLETE
    assert b.state == JOB_COMPLETE
    assert a.result == b"run-1"
    assert b.result == b"run-1"
    assert a.job.handle == b.job.handle
    assert third.result == b"run-2"
    assert counter.runs == 2


def test_dash_unique_keys_on_data(gearmand: GearmandProcess) -> None:
    counter = RunCounter(RUN_SECONDS)
    client = GearmanClient([gearmand.address])
    try:
        with serving(gearmand, {COUNT: counter}, max_jobs=4):
            same = [
                client.submit_job(COUNT, b"same data", unique="-", wait_until_complete=False)
                for _ in range(2)
            ]
            client.wait_until_jobs_completed(same, poll_timeout=10)
            runs_for_same = counter.runs

            different = [
                client.submit_job(COUNT, data, unique="-", wait_until_complete=False)
                for data in (b"data one", b"data two")
            ]
            client.wait_until_jobs_completed(different, poll_timeout=10)
    finally:
        client.close()

    assert runs_for_same == 1
    assert [request.result for request in same] == [b"run-1", b"run-1"]
    assert same[0].job.handle == same[1].job.handle
    assert counter.runs == 3
    assert {request.result for request in different} == {b"run-2", b"run-3"}
    assert different[0].job.handle != different[1].job.handle


def test_equal_unique_background_one_job(gearmand: GearmandProcess) -> None:
    client = GearmanClient([gearmand.address])
    try:
        # No worker serves this function, so both submissions find the first job queued.
        requests = [
            client.submit_job("unique.queued", b"x", unique="bg-key", background=True)
            for _ in range(2)
        ]
    finally:
        client.close()

    assert [request.state for request in requests] == [JOB_CREATED, JOB_CREATED]
    assert requests[0].job.handle == requests[1].job.handle
    assert gearmand.status()["unique.queued"] == (1, 0, 0)


def test_empty_unique_never_merges(gearmand: GearmandProcess) -> None:
    counter = RunCounter(RUN_SECONDS)
    client = GearmanClient([gearmand.address])
    try:
        with serving(gearmand, {COUNT: counter}, max_jobs=4):
            requests = [
                client.submit_job(COUNT, b"same data", unique="", wait_until_complete=False)
                for _ in range(2)
            ]
            client.wait_until_jobs_completed(requests, poll_timeout=10)
    finally:
        client.close()

    assert counter.runs == 2
    assert Counter(request.result for request in requests) == {
        b"run-1": 1,
        b"run-2": 1,
    }
    assert requests[0].job.handle != requests[1].job.handle
