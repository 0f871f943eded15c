"""Host names are resolved without hanging an import and without blocking other greenlets.

Guards against a worker that hangs when it connects by host name during a module import, and
against a slow name lookup that blocks the gevent hub and every job with it. Jobs must flow
while one server's name takes 5 s to fail, and that lookup is retried with backoff.

No real DNS query is made for a made-up name: the slow name goes through a stub resolver, and
``localhost`` is the only name passed to the system resolver.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gevent
import pytest
from helpers import WorkerProcess, running_worker, wait_for_workers, wait_until, write_script

from geargevent import GearmanClient, GearmanWorker
from geargevent.testing import GearmandProcess

FUNCTION = "resolve.echo"
SLOW_NAME = "slowname.test"
SLOW_SECONDS = 5.0

# A module that starts a worker while it is being imported, and waits (still inside the
# import) until the worker has connected, so the name lookup runs under the import lock.
IMPORT_TIME_MODULE = """
    import logging
    import time

    import gevent

    from geargevent import GearmanWorker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    worker = GearmanWorker(["localhost:{port}"], max_jobs=2)
    worker.register_task("resolve.echo", lambda worker, job: job.data)
    work = gevent.spawn(worker.work, 5)

    deadline = time.monotonic() + 3
    while not any(c.connected for c in worker.connections) and time.monotonic() < deadline:
        gevent.sleep(0.05)
    print("connected during import:", any(c.connected for c in worker.connections), flush=True)
"""

# The command line of the recipe, ``python -c "..."``, kept in a file.
IMPORT_RUNNER = """
    import gevent.monkey

    gevent.monkey.patch_all()

    import time

    started = time.monotonic()
    import import_time_worker

    print(f"import took {time.monotonic() - started:.3f} s", flush=True)

    import gevent

    gevent.sleep(2)
"""


@pytest.fixture
def worker_processes() -> Iterator[list[WorkerProcess]]:
    processes: list[WorkerProcess] = []
    try:
        yield processes
    finally:
        for process in processes:
            process.stop()


def test_worker_started_at_import_time(
    tmp_path: Path, gearmand: GearmandProcess, worker_processes: list[WorkerProcess]
) -> None:
    write_script(tmp_path, "import_time_worker.py", IMPORT_TIME_MODULE.format(port=gearmand.port))
    runner = write_script(tmp_path, "run_import.py", IMPORT_RUNNER)
    process = WorkerProcess(runner, output=tmp_path / "import.log").start()
    worker_processes.append(process)

    wait_for_workers(gearmand, FUNCTION, timeout=5.0)
    client = GearmanClient([gearmand.address])
    request = client.submit_job(FUNCTION, b"hi", poll_timeout=2.0)
    client.close()
    assert request.complete, f"job ended as {request.state}:\n{process.output()}"
    assert request.result == b"hi"

    status = process.wait(timeout=10.0)
    output = process.output()
    assert status == 0, output
    assert "connected during import: True" in output
    import_seconds = float(output.split("import took ", 1)[1].split(" ", 1)[0])
    assert import_seconds < 2.0, output
    assert "Traceback" not in output, output
    # If localhost resolved to ::1 first, the worker falls back to 127.0.0.1 and logs that once.
    assert output.count("after failing on") <= 1, output


class StubResolver:
    """A resolver that takes 5 s to fail for the slow name, in a native thread.

    Every other host must be a numeric address and is converted without any lookup.
    """

    def __init__(self) -> None:
        self.started: list[float] = []
        self.ended: list[float] = []
        self.release = threading.Event()

    def _fail_slowly(self, host: str) -> None:
        # Runs in a thread of gevent's pool, so waiting here does not block the hub.
        self.release.wait(SLOW_SECONDS)
        raise socket.gaierror(socket.EAI_NONAME, f"{host}: name not known (stub resolver)")

    def __call__(self, host: str, port: int) -> list[tuple[int, Any]]:
        if host == SLOW_NAME:
            self.started.append(time.monotonic())
            try:
                gevent.get_hub().threadpool.apply(self._fail_slowly, (host,))
            finally:
                self.ended.append(time.monotonic())
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
        return [(family, sockaddr) for family, _, _, _, sockaddr in infos]


@pytest.fixture
def stub_resolver() -> Iterator[StubResolver]:
    resolver = StubResolver()
    try:
        yield resolver
    finally:
        resolver.release.set()


def submit_ten(client: GearmanClient) -> list[float]:
    """Submit ten foreground jobs at once and return how long each took."""

    def submit(number: int) -> float:
        started = time.monotonic()
        request = client.submit_job(FUNCTION, b"job-%d" % number, poll_timeout=5.0)
        assert request.result == b"job-%d" % number, f"job {number} ended as {request.state}"
        return time.monotonic() - started

    greenlets = [gevent.spawn(submit, number) for number in range(10)]
    gevent.joinall(greenlets, timeout=10, raise_error=True)
    return [greenlet.value for greenlet in greenlets]


def test_slow_lookup_does_not_block_jobs(
    gearmand: GearmandProcess, stub_resolver: StubResolver
) -> None:
    worker = GearmanWorker(
        [gearmand.address, f"{SLOW_NAME}:{gearmand.port}"], max_jobs=4, resolver=stub_resolver
    )
    worker.register_task(FUNCTION, lambda worker, job: job.data)
    client = GearmanClient([gearmand.address])
    with running_worker(worker, poll_timeout=5.0):
        wait_for_workers(gearmand, FUNCTION)
        wait_until(lambda: stub_resolver.started, 5.0, "the slow name was never looked up")

        # Ten jobs while the first lookup hangs.
        durations = submit_ten(client)
        assert max(durations) < 1.0, f"jobs took up to {max(durations):.2f} s"
        assert stub_resolver.ended == [], "the first lookup ended before the jobs were checked"

        # The failed lookup is retried after a delay, and jobs still flow during the retry.
        wait_until(
            lambda: len(stub_resolver.started) >= 2,
            SLOW_SECONDS + GearmanWorker.reconnect_delay_max + 1.0,
            "the slow name was not looked up again",
        )
        backoff = stub_resolver.started[1] - stub_resolver.ended[0]
        assert backoff >= GearmanWorker.reconnect_delay_min / 2 - 0.02, (
            f"retried {backoff:.3f} s after the failure, without backoff"
        )
        durations = submit_ten(client)
        assert max(durations) < 1.0, f"jobs took up to {max(durations):.2f} s during the retry"
    client.close()
