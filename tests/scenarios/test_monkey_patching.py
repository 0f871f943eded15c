"""Monkey-patching stays the application's choice, and an unpatched worker logs a warning.

Guards against blocking handlers that run one at a time because the standard library was
patched late or not at all, and against warnings or tracebacks at start and exit. Importing
geargevent neither patches nor warns, and an unpatched worker logs one warning at startup.
"""

from __future__ import annotations

import signal
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import gevent
import pytest
from helpers import WorkerProcess, wait_for_workers, write_script

from geargevent import GearmanClient
from geargevent.testing import GearmandProcess

FUNCTION = "patch.sleep"
WARNING_TEXT = "not monkey-patched"

# The part every script shares, after its imports: ten slots, a handler that blocks with
# time.sleep and a plain socket connection, and a clean stop on SIGTERM.
WORKER_BODY = """
    import logging
    import signal
    import socket
    import sys
    import time

    import gevent

    from geargevent import GearmanWorker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    port = int(sys.argv[1])


    def blocking(worker, job):
        time.sleep(1)
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        return job.data


    worker = GearmanWorker([f"127.0.0.1:{port}"], max_jobs=10)
    worker.register_task("patch.sleep", blocking)
    gevent.signal_handler(signal.SIGTERM, worker.shutdown)
    worker.work(poll_timeout=5)
    print("worker stopped", flush=True)
"""

# Every script starts by turning gevent's MonkeyPatchWarning into an error, so a warning
# ends the script with a traceback. The command-line form of this filter, ``-W
# error::gevent.monkey.MonkeyPatchWarning``, does not work: Python 3.11 parses -W before
# site-packages is on sys.path, cannot import gevent.monkey then, and ignores the option.
WARNING_FILTER = """
    import warnings

    from gevent.monkey import MonkeyPatchWarning

    warnings.simplefilter("error", MonkeyPatchWarning)
"""

SCRIPTS = {
    "patched-first": """
        from gevent import monkey

        monkey.patch_all()

        import geargevent
    """,
    "patched-after-import": """
        import geargevent
        import gevent.monkey

        print("socket patched after import:", gevent.monkey.is_module_patched("socket"))
        print("modules patched after import:", sorted(gevent.monkey.saved))
        gevent.monkey.patch_all()
    """,
    "never-patched": """
        import geargevent
        import gevent.monkey

        print("socket patched after import:", gevent.monkey.is_module_patched("socket"))
        print("modules patched after import:", sorted(gevent.monkey.saved))
    """,
    # A control that must trip the filter: gevent warns when a module took a reference to
    # ssl.SSLContext before patching.
    "ssl-before-patch": """
        from ssl import SSLContext

        from gevent import monkey

        monkey.patch_all()
    """,
}


@pytest.fixture
def worker_processes() -> Iterator[list[WorkerProcess]]:
    processes: list[WorkerProcess] = []
    try:
        yield processes
    finally:
        for process in processes:
            process.stop()


def start_script(tmp_path: Path, name: str, port: int) -> WorkerProcess:
    # The parts are indented differently, so each is dedented on its own.
    parts = [WARNING_FILTER, SCRIPTS[name], WORKER_BODY]
    source = "\n".join(textwrap.dedent(part).strip("\n") + "\n" for part in parts)
    script = write_script(tmp_path, f"{name.replace('-', '_')}.py", source)
    return WorkerProcess(script, str(port), output=tmp_path / f"{name}.log").start()


def run_batch(gearmand: GearmandProcess, timeout: float) -> float:
    """Submit ten foreground jobs at once and return the seconds until all finished."""
    client = GearmanClient([gearmand.address])
    started = time.monotonic()
    greenlets = [
        gevent.spawn(client.submit_job, FUNCTION, b"job-%d" % i, poll_timeout=timeout)
        for i in range(10)
    ]
    gevent.joinall(greenlets, timeout=timeout + 1, raise_error=True)
    elapsed = time.monotonic() - started
    client.close()
    results = sorted(greenlet.value.result for greenlet in greenlets)
    assert results == sorted(b"job-%d" % i for i in range(10))
    return elapsed


def stop_and_check_output(process: WorkerProcess) -> str:
    process.send_signal(signal.SIGTERM)
    status = process.wait(timeout=5.0)
    output = process.output()
    assert status == 0, f"exit status {status}:\n{output}"
    assert "worker stopped" in output, output
    for text in ("Traceback", "KeyError", "MonkeyPatchWarning", "Exception ignored"):
        assert text not in output, output
    return output


@pytest.mark.parametrize("name", ["patched-first", "patched-after-import"])
def test_patched_worker_runs_jobs_at_once(
    tmp_path: Path,
    gearmand: GearmandProcess,
    worker_processes: list[WorkerProcess],
    name: str,
) -> None:
    process = start_script(tmp_path, name, gearmand.port)
    worker_processes.append(process)
    wait_for_workers(gearmand, FUNCTION)

    elapsed = run_batch(gearmand, timeout=10.0)
    assert elapsed < 2.0, f"ten 1 s jobs took {elapsed:.2f} s with max_jobs=10"

    output = stop_and_check_output(process)
    assert WARNING_TEXT not in output
    if name == "patched-after-import":
        assert "socket patched after import: False" in output
        assert "modules patched after import: []" in output


def test_unpatched_worker_warns_once(
    tmp_path: Path, gearmand: GearmandProcess, worker_processes: list[WorkerProcess]
) -> None:
    process = start_script(tmp_path, "never-patched", gearmand.port)
    worker_processes.append(process)
    wait_for_workers(gearmand, FUNCTION)

    # Unpatched, the blocking handlers run one after another: about 10 s is expected.
    run_batch(gearmand, timeout=20.0)

    output = stop_and_check_output(process)
    assert "socket patched after import: False" in output
    assert "modules patched after import: []" in output
    warnings = [line for line in output.splitlines() if WARNING_TEXT in line]
    assert len(warnings) == 1, output
    assert "WARNING" in warnings[0]


def test_warning_filter_catches_late_patching(
    tmp_path: Path, gearmand: GearmandProcess, worker_processes: list[WorkerProcess]
) -> None:
    process = start_script(tmp_path, "ssl-before-patch", gearmand.port)
    worker_processes.append(process)
    status = process.wait(timeout=10.0)
    output = process.output()
    assert status != 0, output
    assert "MonkeyPatchWarning" in output, output
