"""Measure what starting one greenlet per job costs, against reusing greenlets.

geargevent runs each job in a new greenlet (``gevent.spawn``). This script runs
a trivial handler for ``--jobs`` jobs, 32 per event-loop iteration (the worker's
GRAB pipeline depth), in three ways and prints JSON with microseconds per job:

- ``spawn``: ``gevent.spawn(handler, job)`` for every job.
- ``raw_greenlet``: a new ``greenlet.greenlet`` for every job, started from the hub.
- ``reused_greenlet``: finished greenlets wait in a free list and are switched
  to again for the next job, so no greenlet is created in the steady state.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import gevent
import greenlet

BATCH = 32


def handler(job: int) -> int:
    return job


def run_spawn(jobs: int) -> None:
    for _ in range(jobs // BATCH):
        for job in range(BATCH):
            gevent.spawn(handler, job)
        gevent.sleep(0)


def run_raw_greenlet(jobs: int) -> None:
    hub = gevent.get_hub()
    for _ in range(jobs // BATCH):
        for job in range(BATCH):
            runner = greenlet.greenlet(handler, parent=hub)
            hub.loop.run_callback(runner.switch, job)
        gevent.sleep(0)


def run_reused_greenlet(jobs: int) -> None:
    hub = gevent.get_hub()
    free: list[greenlet.greenlet] = []

    def serve(job: int) -> None:
        while True:
            handler(job)
            free.append(greenlet.getcurrent())
            job = hub.switch()

    for _ in range(jobs // BATCH):
        for job in range(BATCH):
            runner = free.pop() if free else greenlet.greenlet(serve, parent=hub)
            hub.loop.run_callback(runner.switch, job)
        gevent.sleep(0)


def time_per_job(run: Callable[[int], None], jobs: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run(jobs)
        best = min(best, time.perf_counter() - started)
    return best / jobs * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed repeats; the fastest one is reported"
    )
    args = parser.parse_args()
    results = {
        name: round(time_per_job(run, args.jobs, args.repeats), 2)
        for name, run in (
            ("spawn", run_spawn),
            ("raw_greenlet", run_raw_greenlet),
            ("reused_greenlet", run_reused_greenlet),
        )
    }
    print(json.dumps({"jobs": args.jobs, "us_per_job": results}))


if __name__ == "__main__":
    main()
