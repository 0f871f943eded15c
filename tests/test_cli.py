"""The geargevent command, run as ``python -m geargevent`` against a real gearmand.

The worker runs in a greenlet of this process, and the command runs through
gevent.subprocess, so the worker keeps serving while the test waits for the command.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import socket as stdlib_socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gevent
import gevent.subprocess
import pytest
from rich.console import Console

from geargevent import GearmanClient, GearmanWorker
from geargevent._admin import FunctionStatus
from geargevent.admin import GearmanAdminClient
from geargevent.cli import (
    TopSample,
    build_parser,
    compute_top_rows,
    render_top,
    render_top_text,
)
from geargevent.testing import GearmandFactory, GearmandProcess

HOST = "127.0.0.1"
REPOSITORY = Path(__file__).resolve().parent.parent
WORKER_ID = "cli-worker"
SUMMARY = re.compile(
    r"^(?P<done>\d+) jobs for '(?P<task>[^']+)' in (?P<seconds>[0-9.]+) s "
    r"\((?P<rate>[0-9.]+) jobs/s\): (?P<ok>\d+) (?P<word>complete|accepted), "
    r"(?P<failed>\d+) failed, (?P<timed_out>\d+) timed out$"
)


# Helpers ------------------------------------------------------------------------------


def wait_until(predicate: Callable[[], object], timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        gevent.sleep(0.02)


def unused_port() -> int:
    with stdlib_socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def cli_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "GEARGEVENT_SERVERS"}
    env.update(extra)
    return env


def run_cli(
    *args: str,
    stdin: bytes = b"",
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> gevent.subprocess.CompletedProcess:
    """Run ``python -m geargevent ARGS`` and return the completed process (bytes output)."""
    return gevent.subprocess.run(
        [sys.executable, "-m", "geargevent", *args],
        input=stdin,
        stdout=gevent.subprocess.PIPE,
        stderr=gevent.subprocess.PIPE,
        cwd=REPOSITORY,
        env=env if env is not None else cli_env(),
        timeout=timeout,
        check=False,
    )


def stderr_text(completed: gevent.subprocess.CompletedProcess) -> str:
    text: str = completed.stderr.decode("utf-8", "replace")
    return text


def table_rows(output: str, columns: int) -> list[list[str]]:
    """Return the data rows of a printed table: lines of ``columns`` whitespace-split fields.

    The header row and rule lines are left out.
    """
    rows = []
    for line in output.splitlines():
        fields = line.split()
        if len(fields) == columns and fields[1].isdigit():
            rows.append(fields)
    return rows


def reverse(worker: GearmanWorker, job: Any) -> bytes:
    data: bytes = job.data
    return data[::-1]


def fail_plainly(worker: GearmanWorker, job: Any) -> None:
    worker.send_job_failure(job)


def raise_error(worker: GearmanWorker, job: Any) -> None:
    raise RuntimeError("boom")


def sum_numbers(worker: GearmanWorker, job: Any) -> dict[str, int]:
    return {"sum": sum(job.data), "items": len(job.data)}


def describe_msgpack(worker: GearmanWorker, job: Any) -> dict[str, Any]:
    return {"echo": job.data, "raw": b"\xff"}


@pytest.fixture
def server(gearmand: GearmandProcess) -> Iterator[GearmandProcess]:
    """A gearmand with a worker for reverse, fail, raise, sum (JSON) and describe (msgpack)."""
    worker = GearmanWorker([gearmand.address], client_id=WORKER_ID, max_jobs=50)
    worker.register_task("reverse", reverse)
    worker.register_task("fail", fail_plainly)
    worker.register_task("raise", raise_error)
    worker.register_task("sum", sum_numbers, data_encoder="json")
    worker.register_task("describe", describe_msgpack, data_encoder="msgpack")
    greenlet = gevent.spawn(worker.work, 1.0)
    try:
        wait_until(lambda: "describe" in gearmand.status(), what="the test worker's registrations")
        yield gearmand
    finally:
        worker.shutdown(graceful=False)
        greenlet.join(5)


def submit_background(server: GearmandProcess, task: str, count: int) -> None:
    client = GearmanClient([server.address])
    try:
        for index in range(count):
            request = client.submit_job(task, f"job-{index}", background=True, poll_timeout=5)
            assert request.job.handle, f"background job {index} for {task!r} got no handle"
    finally:
        client.close()


# submit ---------------------------------------------------------------------------------


def test_submit_foreground_prints_raw_result(server: GearmandProcess) -> None:
    completed = run_cli("--server", server.address, "submit", "reverse", "hello")

    assert completed.returncode == 0, stderr_text(completed)
    # Not a terminal, so the result is written exactly, with no newline added.
    assert completed.stdout == b"olleh"
    assert completed.stderr == b""


@pytest.mark.parametrize("data_argument", [[], ["-"]], ids=["absent", "dash"])
def test_submit_reads_data_from_stdin(server: GearmandProcess, data_argument: list[str]) -> None:
    payload = b"\x00binary\xff data\n"
    completed = run_cli(
        "--server", server.address, "submit", "reverse", *data_argument, stdin=payload
    )

    assert completed.returncode == 0, stderr_text(completed)
    assert completed.stdout == payload[::-1]


def test_submit_options_after_command(server: GearmandProcess) -> None:
    completed = run_cli("submit", "reverse", "abc", "--server", server.address, "--timeout", "5")

    assert completed.returncode == 0, stderr_text(completed)
    assert completed.stdout == b"cba"


def test_submit_background_prints_handle(server: GearmandProcess) -> None:
    completed = run_cli("--server", server.address, "submit", "--background", "nobody", "x")

    assert completed.returncode == 0, stderr_text(completed)
    handle = completed.stdout.decode()
    assert re.fullmatch(r"H:\S+:\d+\n", handle)
    with GearmanAdminClient([server.address]) as admin:
        jobs = {job.handle for job in admin.show_jobs()}
    assert handle.strip() in jobs


def test_submit_json_parses_data_and_prints_json(server: GearmandProcess) -> None:
    completed = run_cli("--server", server.address, "submit", "--encoder", "json", "sum", "[1,2,3]")

    assert completed.returncode == 0, stderr_text(completed)
    assert completed.stdout.endswith(b"\n")
    assert json.loads(completed.stdout) == {"sum": 6, "items": 3}


def test_submit_json_from_stdin(server: GearmandProcess) -> None:
    completed = run_cli(
        "--server", server.address, "submit", "--encoder", "json", "sum", stdin=b"[4, 5]"
    )

    assert completed.returncode == 0, stderr_text(completed)
    assert json.loads(completed.stdout) == {"sum": 9, "items": 2}


def test_submit_msgpack_prints_json(server: GearmandProcess) -> None:
    completed = run_cli(
        "--server", server.address, "submit", "--encoder", "msgpack", "describe", '[1, "a"]'
    )

    assert completed.returncode == 0, stderr_text(completed)
    # Bytes in the result are printed as text, undecodable bytes as backslash escapes.
    assert json.loads(completed.stdout) == {"echo": [1, "a"], "raw": "\\xff"}


def test_submit_priority_and_unique(server: GearmandProcess) -> None:
    common = ["--server", server.address, "submit", "--background", "--unique", "same-1"]
    first = run_cli(*common, "--priority", "high", "queued_high", "x")
    second = run_cli(*common, "--priority", "high", "queued_high", "y")

    assert first.returncode == 0, stderr_text(first)
    assert second.returncode == 0, stderr_text(second)
    # The same unique coalesces both submissions into one job.
    assert first.stdout == second.stdout
    with GearmanAdminClient([server.address]) as admin:
        (row,) = [row for row in admin.get_priority_status() if row.function == "queued_high"]
    assert (row.high, row.normal, row.low) == (1, 0, 0)


def test_submit_count_foreground_prints_summary(server: GearmandProcess) -> None:
    completed = run_cli(
        "--server",
        server.address,
        "submit",
        "--count",
        "200",
        "--concurrency",
        "20",
        "reverse",
        "abc",
    )

    assert completed.returncode == 0, stderr_text(completed)
    assert completed.stdout.splitlines() == [b"cba"] * 200
    lines = stderr_text(completed).strip().splitlines()
    assert len(lines) == 1, lines
    match = SUMMARY.match(lines[0])
    assert match is not None, lines[0]
    assert match["done"] == "200"
    assert match["ok"] == "200"
    assert match["word"] == "complete"
    assert match["failed"] == "0"
    assert match["timed_out"] == "0"
    assert float(match["rate"]) > 0


def test_submit_count_background_prints_handles(server: GearmandProcess) -> None:
    completed = run_cli(
        "--server", server.address, "submit", "--background", "--count", "30", "bulk", "x"
    )

    assert completed.returncode == 0, stderr_text(completed)
    handles = completed.stdout.decode().split()
    assert len(set(handles)) == 30
    match = SUMMARY.match(stderr_text(completed).strip())
    assert match is not None, stderr_text(completed)
    assert match["word"] == "accepted"
    assert server.status()["bulk"] == (30, 0, 0)


def test_submit_count_quiet_prints_only_summary(server: GearmandProcess) -> None:
    completed = run_cli("--server", server.address, "submit", "-q", "--count", "20", "reverse", "x")

    assert completed.returncode == 0, stderr_text(completed)
    assert completed.stdout == b""
    assert SUMMARY.match(stderr_text(completed).strip())


def test_submit_count_with_failures_exits_1(server: GearmandProcess) -> None:
    completed = run_cli("--server", server.address, "submit", "-q", "--count", "5", "fail", "x")

    assert completed.returncode == 1
    lines = stderr_text(completed).strip().splitlines()
    match = SUMMARY.match(lines[0])
    assert match is not None, lines
    assert match["failed"] == "5"
    assert lines[1].startswith("error: first failure: ")


# Exit codes -----------------------------------------------------------------------------


def test_work_fail_exits_1(server: GearmandProcess) -> None:
    completed = run_cli("--server", server.address, "submit", "fail", "x")

    assert completed.returncode == 1
    assert completed.stdout == b""
    message = stderr_text(completed)
    assert message.count("\n") == 1
    assert re.fullmatch(r"error: job H:\S+ of function 'fail' failed \(WORK_FAIL\)\n", message)


def test_work_exception_exits_1(server: GearmandProcess) -> None:
    completed = run_cli("--server", server.address, "submit", "raise", "x")

    assert completed.returncode == 1
    message = stderr_text(completed)
    assert message.count("\n") == 1
    assert "raised an exception: RuntimeError: boom" in message


def test_job_timeout_exits_1(server: GearmandProcess) -> None:
    completed = run_cli("--server", server.address, "--timeout", "0.5", "submit", "nobody", "x")

    assert completed.returncode == 1
    message = stderr_text(completed)
    assert message.count("\n") == 1
    assert "timed out after 0.5 s waiting for its result" in message


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["submit"],
        ["frobnicate"],
        ["submit", "--priority", "urgent", "reverse", "x"],
        ["submit", "--count", "0", "reverse", "x"],
        ["submit", "--encoder", "json", "sum", "[1,"],
        ["submit", "two words", "x"],
        ["--timeout", "-1", "status"],
        ["--server", "host:notaport", "status"],
        ["top", "--interval", "0"],
    ],
    ids=[
        "no-command",
        "no-task",
        "unknown-command",
        "bad-priority",
        "zero-count",
        "invalid-json",
        "space-in-task",
        "negative-timeout",
        "bad-server",
        "zero-interval",
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    # The configured server is an unused port, and each of these fails before connecting.
    completed = run_cli(*args, env=cli_env(GEARGEVENT_SERVERS=f"{HOST}:{unused_port()}"))

    assert completed.returncode == 2, stderr_text(completed)
    assert completed.stdout == b""
    assert "error:" in stderr_text(completed)


@pytest.mark.parametrize(
    "args",
    [
        ["submit", "reverse", "x"],
        ["submit", "--background", "--count", "3", "reverse", "x"],
        ["status"],
        ["workers"],
        ["top", "--once"],
    ],
    ids=["submit", "submit-count", "status", "workers", "top"],
)
def test_unreachable_server_exits_3(args: list[str]) -> None:
    address = f"{HOST}:{unused_port()}"
    completed = run_cli("--server", address, *args)

    assert completed.returncode == 3
    assert completed.stdout == b""
    assert stderr_text(completed) == (
        f"error: cannot connect to job server {address} (Connection refused); is gearmand "
        "running? start it or pass --server HOST:PORT\n"
    )


def test_unreachable_servers_are_all_named() -> None:
    first, second = f"{HOST}:{unused_port()}", f"{HOST}:{unused_port()}"
    completed = run_cli(
        "submit", "reverse", "x", env=cli_env(GEARGEVENT_SERVERS=f"{first},{second}")
    )

    assert completed.returncode == 3
    message = stderr_text(completed)
    assert first in message
    assert second in message
    assert message.count("\n") == 1


def test_interrupted_submit_exits_130_quietly(server: GearmandProcess) -> None:
    process = gevent.subprocess.Popen(
        [sys.executable, "-m", "geargevent", "--server", server.address, "submit", "idle", "x"],
        stdin=gevent.subprocess.DEVNULL,
        stdout=gevent.subprocess.PIPE,
        stderr=gevent.subprocess.PIPE,
        cwd=REPOSITORY,
        env=cli_env(),
    )
    try:
        # The job is queued once the command waits for its result.
        wait_until(lambda: server.status().get("idle") == (1, 0, 0), what="the job to be queued")
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)

    assert process.returncode == 130
    assert stdout == b""
    assert stderr == b"error: interrupted\n"


# status and workers -----------------------------------------------------------------------


def test_status_table_matches_admin_figures(server: GearmandProcess) -> None:
    submit_background(server, "cli_queued", 3)
    completed = run_cli("--server", server.address, "status")

    assert completed.returncode == 0, stderr_text(completed)
    output = completed.stdout.decode()
    assert f"status of {server.address}" in output
    printed = {
        row[0]: (int(row[1]), int(row[2]), int(row[3]), int(row[4]))
        for row in table_rows(output, 5)
    }
    with GearmanAdminClient([server.address]) as admin:
        expected = {
            s.function: (s.total, s.queued, s.running, s.workers) for s in admin.get_status()
        }
    assert printed == expected
    assert printed["cli_queued"] == (3, 3, 0, 0)
    assert printed["reverse"] == (0, 0, 0, 1)
    # The rows are sorted by function name.
    assert list(printed) == sorted(printed)


def test_status_reads_servers_from_environment(server: GearmandProcess) -> None:
    completed = run_cli("status", env=cli_env(GEARGEVENT_SERVERS=server.address))

    assert completed.returncode == 0, stderr_text(completed)
    assert f"status of {server.address}" in completed.stdout.decode()


def test_status_json(server: GearmandProcess) -> None:
    submit_background(server, "cli_json", 2)
    completed = run_cli("--server", server.address, "status", "--json")

    assert completed.returncode == 0, stderr_text(completed)
    report = json.loads(completed.stdout)
    rows = {row["function"]: row for row in report[server.address]}
    assert rows["cli_json"] == {
        "function": "cli_json",
        "total": 2,
        "queued": 2,
        "running": 0,
        "workers": 0,
    }
    assert rows["reverse"]["workers"] == 1


def test_status_of_several_servers(gearmand_factory: GearmandFactory) -> None:
    first, second = gearmand_factory(), gearmand_factory()
    submit_background(first, "on_first", 1)
    submit_background(second, "on_second", 2)
    completed = run_cli("--server", first.address, "--server", second.address, "status")

    assert completed.returncode == 0, stderr_text(completed)
    output = completed.stdout.decode()
    first_part, second_part = output.split(f"status of {second.address}")
    assert f"status of {first.address}" in first_part
    assert table_rows(first_part, 5) == [["on_first", "1", "1", "0", "0"]]
    assert table_rows(second_part, 5) == [["on_second", "2", "2", "0", "0"]]


def test_workers_table_lists_worker(server: GearmandProcess) -> None:
    completed = run_cli("--server", server.address, "workers")

    assert completed.returncode == 0, stderr_text(completed)
    output = completed.stdout.decode()
    assert f"workers of {server.address}" in output
    (line,) = [line for line in output.splitlines() if WORKER_ID in line]
    fields = line.split()
    assert fields[1] == HOST
    assert fields[2] == WORKER_ID
    assert set(fields[3:]) == {"reverse", "fail", "raise", "sum", "describe"}
    with GearmanAdminClient([server.address]) as admin:
        (info,) = [info for info in admin.get_workers() if info.client_id == WORKER_ID]
    assert fields[0] == str(info.fd)


def test_workers_json(server: GearmandProcess) -> None:
    completed = run_cli("--server", server.address, "workers", "--json")

    assert completed.returncode == 0, stderr_text(completed)
    report = json.loads(completed.stdout)
    (entry,) = [entry for entry in report[server.address] if entry["client_id"] == WORKER_ID]
    assert set(entry["functions"]) == {"reverse", "fail", "raise", "sum", "describe"}
    assert entry["ip"] == HOST


# top ------------------------------------------------------------------------------------


def test_top_once_renders_frame(server: GearmandProcess) -> None:
    submit_background(server, "cli_top", 4)
    completed = run_cli("--server", server.address, "top", "--once", "--interval", "0.2")

    assert completed.returncode == 0, stderr_text(completed)
    output = completed.stdout.decode()
    assert server.address in output
    assert "rates over 0.2 s" in output
    assert "finished/s (min)" in output
    rows = {row[0]: row for row in table_rows(output, 8) if row[0] == "cli_top"}
    assert rows["cli_top"][1:5] == ["4", "4", "0", "0"]
    assert rows["cli_top"][5:] == ["+0.0", "+0.0", "0.0"]


def status_of(function: str, total: int, running: int, workers: int) -> FunctionStatus:
    return FunctionStatus(function, total, running, workers)


def test_top_rows_from_two_samples() -> None:
    previous = TopSample.from_status(
        [status_of("a", 10, 2, 3), status_of("b", 5, 0, 1)], monotonic=100.0, wall=0.0
    )
    current = TopSample.from_status(
        [status_of("b", 9, 1, 1), status_of("a", 6, 3, 3), status_of("c", 1, 0, 0)],
        monotonic=102.0,
        wall=2.0,
    )

    rows = {row.function: row for row in compute_top_rows(previous, current)}

    assert list(rows) == ["a", "b", "c"]
    # a: queued 8 -> 3, running 2 -> 3, total 10 -> 6 over 2 s.
    assert (rows["a"].queued, rows["a"].running, rows["a"].workers) == (3, 3, 3)
    assert rows["a"].queued_rate == -2.5
    assert rows["a"].running_rate == 0.5
    assert rows["a"].finished_rate == 2.0
    # b grew, so the lower bound on finished jobs is 0.
    assert rows["b"].queued_rate == 1.5
    assert rows["b"].finished_rate == 0.0
    # c is new: no rates yet.
    assert rows["c"].queued_rate is None
    assert rows["c"].finished_rate is None


def test_top_sample_sums_rows_with_same_name() -> None:
    sample = TopSample.from_status(
        [status_of("dup", 2, 1, 1), status_of("dup", 3, 0, 2)], monotonic=0.0, wall=0.0
    )

    assert sample.functions["dup"] == status_of("dup", 5, 1, 3)


def test_top_rendering_of_two_samples() -> None:
    previous = TopSample.from_status([status_of("resize", 10, 2, 3)], monotonic=50.0, wall=0.0)
    current = TopSample.from_status(
        [status_of("resize", 6, 3, 3), status_of("новая", 1, 0, 0)], monotonic=52.0, wall=0.0
    )

    text = render_top_text(previous, current, server="127.0.0.1:4730")
    rows = {row[0]: row[1:] for row in table_rows(text, 8)}
    first_frame = render_top_text(None, current, server="127.0.0.1:4730")

    assert "127.0.0.1:4730" in text
    assert "rates over 2.0 s" in text
    assert rows["resize"] == ["6", "3", "3", "3", "-2.5", "+0.5", "2.0"]
    assert "новая" in text
    assert "rates after the next sample" in first_frame
    assert "+0.5" not in first_frame
    assert render_top(previous, current, server="x") is not None


def test_top_rendering_with_error() -> None:
    sample = TopSample.from_status([status_of("resize", 2, 0, 1)], monotonic=1.0, wall=0.0)

    text = render_text(render_top(None, sample, server="127.0.0.1:4730", error="server gone"))

    assert "last successful sample" in text
    assert "error: server gone" in text
    assert table_rows(text, 8) == [["resize", "2", "2", "0", "1", "–", "–", "–"]]


def render_text(renderable: Any) -> str:
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(renderable)
    text: str = console.file.getvalue()  # type: ignore[attr-defined]
    return text


def test_top_rendering_with_no_functions() -> None:
    empty = TopSample.from_status([], monotonic=1.0, wall=0.0)

    text = render_top_text(empty, empty, server="127.0.0.1:4730")

    assert "(no functions)" in text


def tmux(socket_name: str, *args: str) -> str:
    completed = gevent.subprocess.run(
        ["tmux", "-L", socket_name, *args],
        stdout=gevent.subprocess.PIPE,
        stderr=gevent.subprocess.PIPE,
        timeout=10,
        check=True,
    )
    output: bytes = completed.stdout
    return output.decode("utf-8", "replace")


def test_top_live_in_tmux(server: GearmandProcess) -> None:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed; install Debian package tmux to run the live view test")
    socket_name = f"geargevent-test-{os.getpid()}"
    command = (
        f"{sys.executable} -m geargevent --server {server.address} "
        "top --interval 0.3; "
        "echo TOP-EXIT=$?; sleep 30"
    )
    tmux(
        socket_name,
        "new-session",
        "-d",
        "-s",
        "top",
        "-x",
        "130",
        "-y",
        "40",
        "-c",
        str(REPOSITORY),
        command,
    )
    try:

        def screen() -> str:
            return tmux(socket_name, "capture-pane", "-p", "-t", "top")

        def queued_on_screen(count: int) -> bool:
            return any(
                row[0] == "cli_live" and row[1] == str(count) for row in table_rows(screen(), 8)
            )

        submit_background(server, "cli_live", 1)
        wait_until(lambda: queued_on_screen(1), timeout=10, what="the first frame in tmux")
        assert "press q or Ctrl-C to quit" in screen()

        # A later refresh shows jobs submitted after the view started.
        submit_background(server, "cli_live", 3)
        wait_until(lambda: queued_on_screen(4), timeout=10, what="a refreshed frame in tmux")

        tmux(socket_name, "send-keys", "-t", "top", "q")
        wait_until(lambda: "TOP-EXIT=0" in screen(), timeout=10, what="top to exit on q")
    finally:
        tmux(socket_name, "kill-server")


def test_top_stops_on_ctrl_c_in_tmux(server: GearmandProcess) -> None:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed; install Debian package tmux to run the live view test")
    socket_name = f"geargevent-test-int-{os.getpid()}"
    command = (
        f"{sys.executable} -m geargevent --server {server.address} "
        "top --interval 0.3; "
        "echo TOP-EXIT=$?; sleep 30"
    )
    tmux(
        socket_name,
        "new-session",
        "-d",
        "-s",
        "top",
        "-x",
        "130",
        "-y",
        "40",
        "-c",
        str(REPOSITORY),
        command,
    )
    try:

        def screen() -> str:
            return tmux(socket_name, "capture-pane", "-p", "-t", "top")

        wait_until(lambda: "finished/s (min)" in screen(), timeout=10, what="the first frame")
        tmux(socket_name, "send-keys", "-t", "top", "C-c")
        wait_until(lambda: "TOP-EXIT=0" in screen(), timeout=10, what="top to exit on Ctrl-C")
        assert "Traceback" not in screen()
        assert "KeyboardInterrupt" not in screen()
    finally:
        tmux(socket_name, "kill-server")


# rich is optional -------------------------------------------------------------------------


def run_python(code: str, timeout: float = 30.0) -> gevent.subprocess.CompletedProcess:
    return gevent.subprocess.run(
        [sys.executable, "-c", code],
        stdout=gevent.subprocess.PIPE,
        stderr=gevent.subprocess.PIPE,
        cwd=REPOSITORY,
        env=cli_env(),
        timeout=timeout,
        check=False,
    )


def test_library_imports_do_not_import_rich() -> None:
    completed = run_python(
        "import sys\n"
        "import geargevent, geargevent.worker, geargevent.client, geargevent.admin\n"
        "import geargevent.cli, geargevent.__main__\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'rich'))\n"
    )

    assert completed.returncode == 0, stderr_text(completed)
    assert completed.stdout.decode().strip() == "[]"


def test_missing_rich_exits_2_with_install_hint(server: GearmandProcess) -> None:
    # sys.modules["rich"] = None makes every "import rich" raise ImportError.
    code = (
        "import sys\n"
        "sys.modules['rich'] = None\n"
        "from geargevent.cli import main\n"
        f"sys.exit(main(['--server', {server.address!r}, 'status']))\n"
    )
    completed = run_python(code)

    assert completed.returncode == 2
    assert completed.stdout == b""
    assert stderr_text(completed) == (
        "error: 'status' needs the rich package; install it with: pip install 'geargevent[cli]'\n"
    )


def test_plain_submit_works_without_rich(server: GearmandProcess) -> None:
    code = (
        "import sys\n"
        "sys.modules['rich'] = None\n"
        "from geargevent.cli import main\n"
        f"sys.exit(main(['--server', {server.address!r}, 'submit', 'reverse', 'abc']))\n"
    )
    completed = run_python(code)

    assert completed.returncode == 0, stderr_text(completed)
    assert completed.stdout == b"cba"


def test_parser_help_mentions_exit_codes() -> None:
    help_text = " ".join(build_parser().format_help().split())

    assert "3 job server unreachable" in help_text
    assert "--server HOST:PORT" in help_text
