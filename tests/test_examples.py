"""Tests of the runnable examples in examples/, each run as its own process against gearmand.

Every worker example runs as a subprocess of this interpreter, and the test submits jobs
with GearmanClient. The test then stops the worker by PID with SIGTERM (or SIGINT), and the
worker must exit with status 0 within a few seconds. demo.py, which `make demo` runs, is run
as a subprocess too.

Processes are started with gevent.subprocess. Once any test has used it, gevent's SIGCHLD
handler reaps every child process, and the standard library's Popen then reports exit status
0 for children that failed, so exit statuses are only trustworthy through gevent.subprocess.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gevent
import gevent.subprocess
import pytest

from geargevent import JOB_COMPLETE, JOB_FAILED, GearmanClient
from geargevent.testing import GearmandProcess

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# Generous limits: a worker stops in well under a second on an idle machine.
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
JOB_TIMEOUT = 20.0


class ExampleProcess:
    """An example script run with this interpreter, its output recorded to a file."""

    def __init__(self, script: str, args: list[str], output_path: Path) -> None:
        self.script = script
        self.output_path = output_path
        with output_path.open("wb") as output:
            self.process = gevent.subprocess.Popen(
                [sys.executable, str(EXAMPLES / script), *args],
                stdin=gevent.subprocess.DEVNULL,
                stdout=output,
                stderr=gevent.subprocess.STDOUT,
                cwd=ROOT,
                env=dict(os.environ, PYTHONUNBUFFERED="1"),
            )

    @property
    def pid(self) -> int:
        pid: int = self.process.pid
        return pid

    def is_running(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        try:
            return self.output_path.read_text("utf-8", "replace")
        except OSError:
            return ""

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit and return its status, failing the test on timeout."""
        try:
            returncode: int = self.process.wait(timeout=timeout)
        except gevent.subprocess.TimeoutExpired:
            pytest.fail(
                f"{self.script} (pid {self.pid}) still runs after {timeout} s; output:\n"
                f"{self.output()}"
            )
        return returncode

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Send ``sig`` by PID and return the exit status, failing the test if it does not exit."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)
        return self.wait(timeout)

    def kill(self) -> None:
        if self.is_running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.process.wait(timeout=STOP_TIMEOUT)


StartExample = Callable[..., ExampleProcess]


@pytest.fixture
def start_example(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StartExample]:
    """Return ``start(script, *args)``, and kill the processes still running at teardown."""
    started: list[ExampleProcess] = []

    def start(script: str, *args: str) -> ExampleProcess:
        output_path = tmp_path / f"{len(started) + 1}-{Path(script).stem}.log"
        process = ExampleProcess(script, list(args), output_path)
        started.append(process)
        return process

    yield start

    for process in started:
        process.kill()
        request.node.add_report_section(
            "teardown", f"{process.script} pid {process.pid}", process.output()
        )


def wait_for_worker(
    server: GearmandProcess, function: str, process: ExampleProcess, timeout: float = START_TIMEOUT
) -> None:
    """Wait until gearmand lists a worker for ``function``, failing if the process exits first."""
    deadline = time.monotonic() + timeout
    while True:
        if not process.is_running():
            pytest.fail(
                f"{process.script} exited with status {process.process.returncode} before "
                f"registering {function!r}; output:\n{process.output()}"
            )
        if server.status().get(function, (0, 0, 0))[2] > 0:
            return
        if time.monotonic() > deadline:
            pytest.fail(
                f"{process.script} did not register {function!r} within {timeout} s; "
                f"output:\n{process.output()}"
            )
        gevent.sleep(0.05)


def wait_for_output(process: ExampleProcess, pattern: str, timeout: float) -> re.Match[str]:
    """Wait until the process output matches ``pattern``, failing on exit or timeout."""
    deadline = time.monotonic() + timeout
    while True:
        match = re.search(pattern, process.output(), re.MULTILINE)
        if match:
            return match
        if not process.is_running():
            pytest.fail(
                f"{process.script} exited before printing {pattern!r}; output:\n{process.output()}"
            )
        if time.monotonic() > deadline:
            pytest.fail(f"{process.script} did not print {pattern!r} within {timeout} s")
        gevent.sleep(0.05)


def is_process_alive(pid: int) -> bool:
    """Tell whether ``pid`` runs and is not a zombie (Linux /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    # The command name in brackets may contain spaces, so split after its closing bracket.
    state = stat.rsplit(")", 1)[1].split()[0]
    return state != "Z"


def submit_all(client: GearmanClient, function: str, values: list[Any]) -> list[Any]:
    requests = [client.submit_job(function, value, wait_until_complete=False) for value in values]
    client.wait_until_jobs_completed(requests, poll_timeout=JOB_TIMEOUT)
    return requests


# reverse_worker.py


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_reverse_worker_reverses_bytes(
    gearmand: GearmandProcess, start_example: StartExample, sig: int
) -> None:
    worker = start_example(
        "reverse_worker.py", gearmand.address, "--max-jobs", "5", "--client-id", "example-rev"
    )
    wait_for_worker(gearmand, "reverse", worker)

    values = [b"hello", b"\x00\x01\xffnul and high bytes", b"", "caf\u00e9"]
    with GearmanClient([gearmand.address]) as client:
        requests = submit_all(client, "reverse", values)

    for value, request in zip(values, requests, strict=True):
        data = value.encode() if isinstance(value, str) else value
        assert request.state == JOB_COMPLETE, request
        assert request.result == data[::-1]
    assert any(" example-rev " in line for line in gearmand.workers())
    assert worker.stop(sig) == 0
    assert "stopped" in worker.output()


def test_reverse_worker_serves_many_jobs(
    gearmand: GearmandProcess, start_example: StartExample
) -> None:
    worker = start_example("reverse_worker.py", gearmand.address, "--max-jobs", "20")
    wait_for_worker(gearmand, "reverse", worker)

    values = [f"job-{index}" for index in range(500)]
    with GearmanClient([gearmand.address]) as client:
        requests = submit_all(client, "reverse", values)

    results = [request.result for request in requests]
    assert results == [value[::-1].encode() for value in values]
    assert any(" reverse-worker " in line for line in gearmand.workers())
    assert worker.stop() == 0


# inflight_worker.py


def test_inflight_worker_streams_characters(
    gearmand: GearmandProcess, start_example: StartExample
) -> None:
    worker = start_example("inflight_worker.py", gearmand.address, "--delay", "0")
    wait_for_worker(gearmand, "reverse_inflight", worker)

    with GearmanClient([gearmand.address]) as client:
        request = client.submit_job("reverse_inflight", "h\u00e9llo", poll_timeout=JOB_TIMEOUT)

    assert request.state == JOB_COMPLETE
    assert request.result == b""
    assert list(request.data_updates) == [b"o", b"l", b"l", "\u00e9".encode(), b"h"]
    assert request.status["numerator"] == 5
    assert request.status["denominator"] == 5
    assert worker.stop() == 0


def test_inflight_worker_finishes_job_after_sigterm(
    gearmand: GearmandProcess, start_example: StartExample
) -> None:
    # Ten characters at 0.1 s each: the job runs for about a second, and SIGTERM arrives
    # while it runs. A graceful stop lets it finish and deliver its result.
    worker = start_example("inflight_worker.py", gearmand.address, "--delay", "0.1")
    wait_for_worker(gearmand, "reverse_inflight", worker)

    with GearmanClient([gearmand.address]) as client:
        request = client.submit_job("reverse_inflight", "0123456789", wait_until_complete=False)
        deadline = time.monotonic() + JOB_TIMEOUT
        while not request.data_updates and time.monotonic() < deadline:
            gevent.sleep(0.01)
        assert request.data_updates, "the job sent no WORK_DATA"
        os.kill(worker.pid, signal.SIGTERM)
        client.wait_until_jobs_completed([request], poll_timeout=JOB_TIMEOUT)

    assert request.state == JOB_COMPLETE
    assert b"".join(request.data_updates) == b"9876543210"
    assert worker.wait(STOP_TIMEOUT) == 0


# json_worker.py


def test_json_worker_returns_summary(
    gearmand: GearmandProcess, start_example: StartExample
) -> None:
    worker = start_example("json_worker.py", gearmand.address)
    wait_for_worker(gearmand, "summarize", worker)

    with GearmanClient([gearmand.address], data_encoder="json") as client:
        summary, empty, text = submit_all(client, "summarize", [[3, 1, 4, 1, 5], [], "text"])

    assert summary.state == JOB_COMPLETE
    assert summary.result == {"count": 5, "sum": 14, "min": 1, "max": 5, "mean": 2.8}
    assert empty.state == JOB_FAILED
    assert empty.exception.startswith("ValueError: expected a non-empty JSON list")
    assert text.state == JOB_FAILED
    assert text.exception.startswith("ValueError:")
    assert worker.stop() == 0
    assert re.search(r"poll \d+: activity=True", worker.output())


def test_json_worker_stops_after_idle_polls(
    gearmand: GearmandProcess, start_example: StartExample
) -> None:
    worker = start_example(
        "json_worker.py", gearmand.address, "--poll-timeout", "0.2", "--max-idle-polls", "3"
    )

    assert worker.wait(STOP_TIMEOUT) == 0
    output = worker.output()
    assert "idle polls in a row=3" in output
    assert "no activity for 3 polls in a row; stopping" in output


# msgpack_worker.py


def test_msgpack_worker_keeps_bytes_and_str(
    gearmand: GearmandProcess, start_example: StartExample
) -> None:
    worker = start_example("msgpack_worker.py", gearmand.address)
    wait_for_worker(gearmand, "checksum", worker)

    content = b"\x00\xffbinary\x00content"
    with GearmanClient([gearmand.address], data_encoder="msgpack") as client:
        good, wrong_type = submit_all(
            client,
            "checksum",
            [
                {"name": "blob", "content": content, "algorithm": "md5"},
                {"name": "blob", "content": "text, not bytes"},
            ],
        )

    expected = hashlib.md5(content)
    assert good.state == JOB_COMPLETE
    assert good.result == {
        "name": "blob",
        "size": len(content),
        "algorithm": "md5",
        "digest": expected.digest(),
        "hexdigest": expected.hexdigest(),
    }
    assert isinstance(good.result["digest"], bytes)
    assert isinstance(good.result["hexdigest"], str)
    assert wrong_type.state == JOB_FAILED
    assert wrong_type.exception == "TypeError: 'content' must be bytes, got str"
    assert worker.stop() == 0


# http_worker.py

# A threaded HTTP server that responds to every GET after a delay, with the path as the body.
# The listen backlog is raised from 5 so that ten simultaneous connections are not delayed
# by SYN retransmits.
SLOW_HTTP_SERVER = """
import http.server
import sys
import time

DELAY = float(sys.argv[1])


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(DELAY)
        body = self.path.encode()
        self.send_response(404 if self.path == "/missing" else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 64


server = Server(("127.0.0.1", 0), Handler)
print("port", server.server_address[1], flush=True)
server.serve_forever()
"""


@pytest.fixture
def slow_http_port(tmp_path: Path, start_example: StartExample) -> int:
    script = tmp_path / "slow_http_server.py"
    script.write_text(SLOW_HTTP_SERVER)
    # start_example runs scripts from examples/, so give it the absolute path.
    server = start_example(str(script), "0.2")
    return int(wait_for_output(server, r"^port (\d+)$", START_TIMEOUT).group(1))


def test_http_worker_runs_requests_concurrently(
    gearmand: GearmandProcess, start_example: StartExample, slow_http_port: int
) -> None:
    worker = start_example("http_worker.py", gearmand.address, "--max-jobs", "10")
    wait_for_worker(gearmand, "fetch_url", worker)
    base = f"http://127.0.0.1:{slow_http_port}"

    with GearmanClient([gearmand.address], data_encoder="json") as client:
        # One request first, so that nothing in the timed batch pays for a first use.
        (warm_up,) = submit_all(client, "fetch_url", [f"{base}/warm-up"])
        started = time.monotonic()
        requests = submit_all(client, "fetch_url", [f"{base}/item/{i}" for i in range(10)])
        elapsed = time.monotonic() - started

    assert warm_up.state == JOB_COMPLETE
    for index, request in enumerate(requests):
        assert request.state == JOB_COMPLETE, request
        assert request.result["status"] == 200
        assert request.result["length"] == len(f"/item/{index}")
        assert request.result["seconds"] >= 0.2
    # One after the other the ten requests would take at least 2 s; at once, about 0.2 s.
    assert elapsed < 1.0
    assert worker.stop() == 0


def test_http_worker_reports_status_and_errors(
    gearmand: GearmandProcess, start_example: StartExample, slow_http_port: int
) -> None:
    worker = start_example("http_worker.py", gearmand.address)
    wait_for_worker(gearmand, "fetch_url", worker)

    urls = [
        f"http://127.0.0.1:{slow_http_port}/missing",
        "file:///etc/hostname",
        ["not", "a", "url"],
    ]
    with GearmanClient([gearmand.address], data_encoder="json") as client:
        missing, file_url, not_a_string = submit_all(client, "fetch_url", urls)

    assert missing.state == JOB_COMPLETE
    assert missing.result["status"] == 404
    assert file_url.state == JOB_FAILED
    assert file_url.exception.startswith("ValueError: only http and https URLs are fetched")
    assert not_a_string.state == JOB_FAILED
    assert not_a_string.exception.startswith("TypeError:")
    assert worker.stop() == 0


# client.py


def run_client(start_example: StartExample, *args: str) -> tuple[int, str]:
    client = start_example("client.py", *args)
    return client.wait(JOB_TIMEOUT + 10), client.output()


def test_client_prints_foreground_results(
    gearmand: GearmandProcess, start_example: StartExample
) -> None:
    worker = start_example("reverse_worker.py", gearmand.address)
    wait_for_worker(gearmand, "reverse", worker)

    status, output = run_client(start_example, gearmand.address, "reverse", "hello", "world")

    assert status == 0, output
    assert "hello -> olleh" in output
    assert "world -> dlrow" in output
    assert worker.stop() == 0


def test_client_prints_inflight_updates(
    gearmand: GearmandProcess, start_example: StartExample
) -> None:
    worker = start_example("inflight_worker.py", gearmand.address, "--delay", "0")
    wait_for_worker(gearmand, "reverse_inflight", worker)

    status, output = run_client(start_example, gearmand.address, "reverse_inflight", "abc")

    assert status == 0, output
    assert "abc: 3 WORK_DATA updates: c, b, a" in output
    assert "abc: last WORK_STATUS 3/3" in output
    assert worker.stop() == 0


def test_client_queues_background_jobs(
    gearmand: GearmandProcess, start_example: StartExample
) -> None:
    # No worker serves this function, so the jobs stay queued where gearmand counts them.
    status, output = run_client(
        start_example, gearmand.address, "unserved", "one", "two", "--background"
    )

    assert status == 0, output
    assert len(re.findall(r"^(one|two) -> queued as H:\S+$", output, re.MULTILINE)) == 2
    assert gearmand.status()["unserved"] == (2, 0, 0)


def test_client_sends_json_and_reports_exceptions(
    gearmand: GearmandProcess, start_example: StartExample
) -> None:
    worker = start_example("json_worker.py", gearmand.address)
    wait_for_worker(gearmand, "summarize", worker)

    status, output = run_client(
        start_example, gearmand.address, "summarize", "[1, 2, 3]", "[]", "--encoder", "json"
    )

    assert status == 1, output
    assert '[1, 2, 3] -> {"count": 3, "sum": 6, "min": 1, "max": 3, "mean": 2.0}' in output
    assert '[] -> exception: "ValueError: expected a non-empty JSON list' in output
    assert worker.stop() == 0


def test_client_reports_timeout_and_unreachable_server(
    gearmand: GearmandProcess, start_example: StartExample
) -> None:
    status, output = run_client(
        start_example, gearmand.address, "unserved", "data", "--timeout", "0.3"
    )
    assert status == 1, output
    assert "data -> no result within 0.3 s" in output

    stopped_address = gearmand.address
    gearmand.stop()
    status, output = run_client(start_example, stopped_address, "reverse", "data")
    assert status == 1, output
    assert "no job server accepted the submission" in output


# demo.py, which `make demo` runs


def demo_pids(output: str) -> tuple[int, int]:
    gearmand_pid = re.search(r"^gearmand \S+ pid (\d+) listening on", output, re.MULTILINE)
    worker_pid = re.search(r"^reverse worker pid (\d+)", output, re.MULTILINE)
    assert gearmand_pid, output
    assert worker_pid, output
    return int(gearmand_pid.group(1)), int(worker_pid.group(1))


def test_demo_runs_jobs_and_stops_everything(start_example: StartExample) -> None:
    demo = start_example("demo.py", "--jobs", "500", "--foreground-jobs", "300", "--max-jobs", "20")

    assert demo.wait(60) == 0, demo.output()
    output = demo.output()
    assert "'stressed' -> 'desserts'" in output
    assert re.search(r"^300 foreground jobs: [\d.]+ s, [\d,]+ jobs/s", output, re.MULTILINE)
    assert re.search(r"^500 background jobs: [\d.]+ s, [\d,]+ jobs/s", output, re.MULTILINE)
    gearmand_pid, worker_pid = demo_pids(output)
    assert "stopped the reverse worker (exit status 0)" in output
    assert f"stopped gearmand pid {gearmand_pid}" in output
    assert not is_process_alive(gearmand_pid)
    assert not is_process_alive(worker_pid)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_demo_stops_everything_when_interrupted(start_example: StartExample, sig: int) -> None:
    # Far more jobs than finish before the signal arrives.
    demo = start_example("demo.py", "--jobs", "300000", "--foreground-jobs", "0")
    wait_for_output(demo, r"^submitting ", START_TIMEOUT)
    gearmand_pid, worker_pid = demo_pids(demo.output())

    assert demo.stop(sig, timeout=30) == 130
    output = demo.output()
    assert "interrupted; stopping" in output
    assert f"stopped gearmand pid {gearmand_pid}" in output
    assert not is_process_alive(gearmand_pid)
    assert not is_process_alive(worker_pid)


def test_demo_names_package_when_gearmand_missing(
    start_example: StartExample, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEARGEVENT_GEARMAND", str(tmp_path / "no-such-gearmand"))
    demo = start_example("demo.py")

    assert demo.wait(30) == 1
    output = demo.output()
    assert "apt-get install gearman-job-server" in output
    assert "Traceback" not in output
