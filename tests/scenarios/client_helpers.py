"""Tools for the client scenario tests: a worker greenlet, bounded waits and Python scripts.

Everything waits with gevent, so worker greenlets in the test process keep running while a test
waits, and everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import gevent
import gevent.subprocess

from geargevent import GearmanJob, GearmanWorker
from geargevent.testing import GearmandProcess

T = TypeVar("T")

Handler = Callable[[GearmanWorker, GearmanJob], Any]


def wait_until(predicate: Callable[[], T], timeout: float, message: str) -> T:
    """Poll ``predicate`` every 20 ms and return its first true value.

    Raises:
        AssertionError: with ``message``, if it stayed false for ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} (waited {timeout} s)")
        gevent.sleep(0.02)


def sleep_until(deadline: float) -> None:
    """Sleep until ``time.monotonic()`` reaches ``deadline`` (at once if it already has)."""
    gevent.sleep(max(0.0, deadline - time.monotonic()))


def has_worker(server: GearmandProcess, function: str) -> bool:
    row = server.status().get(function)
    return row is not None and row[2] >= 1


@contextlib.contextmanager
def serving(
    server: GearmandProcess,
    handlers: dict[str, Handler],
    *,
    max_jobs: int = 4,
    poll_timeout: float = 1.0,
    worker_class: type[GearmanWorker] = GearmanWorker,
) -> Iterator[GearmanWorker]:
    """Run a worker for ``handlers`` in a greenlet until the block ends.

    The block starts once the server lists the worker for every function.
    """
    worker = worker_class([server.address], max_jobs=max_jobs)
    for name, handler in handlers.items():
        worker.register_task(name, handler)
    greenlet = gevent.spawn(worker.work, poll_timeout)
    try:
        wait_until(
            lambda: all(has_worker(server, name) for name in handlers),
            10.0,
            f"worker for {sorted(handlers)} not registered on {server.address}",
        )
        yield worker
    finally:
        worker.shutdown(graceful=False)
        greenlet.join(5)
    assert greenlet.dead, "the worker greenlet did not stop within 5 s"


def write_script(directory: Path, name: str, source: str) -> Path:
    """Write a Python script (dedented) into ``directory`` and return its path."""
    path = directory / name
    path.write_text(textwrap.dedent(source).lstrip())
    return path


def start_python(script: Path, *args: str, output: Path) -> Any:
    """Start ``script`` with this interpreter; standard output and error go to ``output``.

    Returns the ``gevent.subprocess.Popen`` object, so waiting for it does not block the hub.
    """
    environment = dict(os.environ, PYTHONUNBUFFERED="1")
    with output.open("ab") as stream:
        return gevent.subprocess.Popen(
            [sys.executable, str(script), *args],
            stdin=gevent.subprocess.DEVNULL,
            stdout=stream,
            stderr=gevent.subprocess.STDOUT,
            cwd=script.parent,
            env=environment,
        )


def stop_process(process: Any, timeout: float = 5.0) -> None:
    """Stop a process started by :func:`start_python`, by its PID: SIGTERM, then SIGKILL."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except gevent.subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


def read_output(path: Path) -> str:
    try:
        return path.read_text("utf-8", "replace")
    except OSError:
        return ""
