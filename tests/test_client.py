"""Tests of GearmanClient against a real gearmand.

Jobs are served by a GearmanWorker running in a greenlet of the test, or by the ``gearman``
command-line worker from gearman-tools. The ``gearman`` command-line client is also pointed at
a GearmanWorker, so both directions are checked against libgearman.
"""

from __future__ import annotations

import contextlib
import shutil
import socket as stdlib_socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import gevent.event
import gevent.subprocess
import pytest
from relay import TO_SERVER, Relay

from geargevent import (
    JOB_COMPLETE,
    JOB_CREATED,
    JOB_FAILED,
    PRIORITY_HIGH,
    PRIORITY_LOW,
    PRIORITY_NONE,
    ConnectionLostError,
    EncodingError,
    GearmanClient,
    GearmanJob,
    GearmanTimeoutError,
    GearmanWorker,
    ServerError,
    ServerUnavailableError,
)
from geargevent._packets import PacketType
from geargevent.testing import GearmandProcess, GearmanTools

Handler = Callable[[GearmanWorker, GearmanJob], Any]


class FastReconnectWorker(GearmanWorker):
    """Reconnects within half a second, so tests that restart gearmand stay short."""

    reconnect_delay_min = 0.05
    reconnect_delay_max = 0.5


def wait_until(condition: Callable[[], bool], timeout: float = 5.0, description: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {description or condition}"
        gevent.sleep(0.02)


def has_workers(server: GearmandProcess, names: list[str]) -> bool:
    status = server.status()
    return all(name in status and status[name][2] >= 1 for name in names)


@contextlib.contextmanager
def serving(
    server: GearmandProcess,
    handlers: dict[str, Handler],
    *,
    max_jobs: int = 10,
    worker_class: type[GearmanWorker] = GearmanWorker,
    **options: Any,
) -> Iterator[GearmanWorker]:
    """Run a worker for ``handlers`` in a greenlet until the block ends."""
    worker = worker_class([server.address], max_jobs=max_jobs, **options)
    for name, handler in handlers.items():
        worker.register_task(name, handler)
    greenlet = gevent.spawn(worker.work, 0.5)
    try:
        wait_until(lambda: has_workers(server, list(handlers)), description="worker registration")
        yield worker
    finally:
        worker.shutdown(graceful=False)
        greenlet.join(5)
    assert greenlet.dead, "worker did not stop"


@pytest.fixture
def client(gearmand: GearmandProcess) -> Iterator[GearmanClient]:
    gearman_client = GearmanClient([gearmand.address])
    yield gearman_client
    gearman_client.close()


def reverse(worker: GearmanWorker, job: GearmanJob) -> bytes:
    data: bytes = job.data
    return data[::-1]


def free_port() -> int:
    with stdlib_socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# ---------------------------------------------------------------------------------------------
# Foreground and background submissions


def test_foreground_returns_result(gearmand: GearmandProcess, client: GearmanClient) -> None:
    with serving(gearmand, {"reverse": reverse}):
        request = client.submit_job("reverse", b"hello", poll_timeout=10)

    assert request.state == JOB_COMPLETE
    assert request.complete
    assert request.result == b"olleh"
    assert request.timed_out is False
    assert request.exception is None
    assert request.error is None
    assert request.job.handle is not None
    assert request.job.handle.startswith("H:")


def test_foreground_str_data_sent_as_utf8(gearmand: GearmandProcess, client: GearmanClient) -> None:
    received: list[bytes] = []

    def record(worker: GearmanWorker, job: GearmanJob) -> bytes:
        received.append(job.data)
        return b"ok"

    with serving(gearmand, {"record": record}):
        request = client.submit_job("record", "grüße", poll_timeout=10)

    assert request.result == b"ok"
    assert received == ["grüße".encode()]


@pytest.mark.parametrize(
    ("data", "expected"),
    [(b"", b""), (None, b""), (b"\0nul\0inside\0", b"\0edisni\0lun\0")],
    ids=["empty", "none", "nul"],
)
def test_foreground_edge_data(
    gearmand: GearmandProcess, client: GearmanClient, data: Any, expected: bytes
) -> None:
    with serving(gearmand, {"reverse": reverse}):
        request = client.submit_job("reverse", data, poll_timeout=10)

    assert request.state == JOB_COMPLETE
    assert request.result == expected


def test_foreground_large_payload(gearmand: GearmandProcess, client: GearmanClient) -> None:
    payload = bytes(range(256)) * (16 * 1024)  # 4 MiB

    with serving(gearmand, {"reverse": reverse}):
        request = client.submit_job("reverse", payload, poll_timeout=20)

    assert request.state == JOB_COMPLETE
    assert request.result == payload[::-1]


def test_background_returns_handle(gearmand: GearmandProcess, client: GearmanClient) -> None:
    request = client.submit_job("bg.queued", b"data", background=True, poll_timeout=5)

    assert request.state == JOB_CREATED
    assert request.finished
    assert request.timed_out is False
    assert request.result is None
    assert request.job.handle is not None
    assert request.job.handle.startswith("H:")
    assert gearmand.status()["bg.queued"] == (1, 0, 0)


def test_background_job_runs(gearmand: GearmandProcess, client: GearmanClient) -> None:
    ran = gevent.event.Event()

    def mark(worker: GearmanWorker, job: GearmanJob) -> None:
        ran.set()

    with serving(gearmand, {"bg.mark": mark}):
        request = client.submit_job("bg.mark", b"", background=True, poll_timeout=5)
        assert ran.wait(5)

    assert request.state == JOB_CREATED


def test_updates_reach_request(gearmand: GearmandProcess, client: GearmanClient) -> None:
    def chatty(worker: GearmanWorker, job: GearmanJob) -> bytes:
        worker.send_job_status(job, 1, 2)
        worker.send_job_data(job, b"part-1")
        worker.send_job_warning(job, b"careful")
        worker.send_job_data(job, b"part-2")
        return b"final"

    with serving(gearmand, {"chatty": chatty}):
        request = client.submit_job("chatty", b"", poll_timeout=10)

    assert request.result == b"final"
    assert list(request.data_updates) == [b"part-1", b"part-2"]
    assert list(request.warning_updates) == [b"careful"]
    assert request.status["numerator"] == 1
    assert request.status["denominator"] == 2


# ---------------------------------------------------------------------------------------------
# Priorities


def test_priorities_served_high_first(gearmand: GearmandProcess, client: GearmanClient) -> None:
    submissions = [
        (PRIORITY_LOW, "low-0"),
        (PRIORITY_NONE, "normal-0"),
        (PRIORITY_HIGH, "high-0"),
        (PRIORITY_LOW, "low-1"),
        (PRIORITY_NONE, "normal-1"),
        (PRIORITY_HIGH, "high-1"),
    ]
    # Queued with no worker connected, so the server orders them before any is handed out.
    requests = [
        client.submit_job("prio", label, priority=priority, wait_until_complete=False)
        for priority, label in submissions
    ]
    wait_until(
        lambda: all(request.state == JOB_CREATED for request in requests), description="JOB_CREATED"
    )
    assert gearmand.status()["prio"] == (6, 0, 0)
    order: list[bytes] = []

    def record(worker: GearmanWorker, job: GearmanJob) -> bytes:
        order.append(job.data)
        return job.data

    with serving(gearmand, {"prio": record}, max_jobs=1):
        client.wait_until_jobs_completed(requests, poll_timeout=10)

    assert order == [b"high-0", b"high-1", b"normal-0", b"normal-1", b"low-0", b"low-1"]
    for request, (_priority, label) in zip(requests, submissions, strict=True):
        assert request.state == JOB_COMPLETE
        assert request.result == label.encode()


def test_background_priorities_queued(gearmand: GearmandProcess, client: GearmanClient) -> None:
    for priority in (PRIORITY_HIGH, PRIORITY_HIGH, PRIORITY_NONE, PRIORITY_LOW):
        request = client.submit_job(
            "prio.bg", b"x", priority=priority, background=True, poll_timeout=5
        )
        assert request.state == JOB_CREATED
        assert request.priority == priority

    lines = gearmand.admin("prioritystatus").splitlines()

    # Columns: function, high, normal, low, workers.
    assert "prio.bg\t2\t1\t1\t0" in lines


@pytest.mark.parametrize("priority", ["high", "URGENT", 1])
def test_invalid_priority_rejected(priority: Any) -> None:
    client = GearmanClient([f"127.0.0.1:{free_port()}"])

    with pytest.raises(ValueError, match="invalid priority"):
        client.submit_job("fn", b"x", priority=priority)


# ---------------------------------------------------------------------------------------------
# Uniques and coalescing


def test_same_unique_coalesces(gearmand: GearmandProcess, client: GearmanClient) -> None:
    calls: list[str] = []
    started = gevent.event.Event()
    release = gevent.event.Event()

    def slow(worker: GearmanWorker, job: GearmanJob) -> bytes:
        calls.append(job.unique)
        started.set()
        release.wait(10)
        return b"shared:" + job.data

    with serving(gearmand, {"coalesce": slow}):
        first = client.submit_job("coalesce", b"one", unique="same-key", wait_until_complete=False)
        assert started.wait(5)
        second = client.submit_job("coalesce", b"two", unique="same-key", wait_until_complete=False)
        wait_until(lambda: second.state == JOB_CREATED, description="second JOB_CREATED")
        release.set()
        client.wait_until_jobs_completed([first, second], poll_timeout=10)

    assert calls == ["same-key"]
    assert first.job.handle == second.job.handle
    # The server keeps the first payload and sends its result to both submitters.
    assert first.result == b"shared:one"
    assert second.result == b"shared:one"
    assert first.state == JOB_COMPLETE
    assert second.state == JOB_COMPLETE
    assert first.job.unique == "same-key"


def test_coalesced_requests_get_updates_once(
    gearmand: GearmandProcess, client: GearmanClient
) -> None:
    attached = gevent.event.Event()
    started = gevent.event.Event()

    def streaming(worker: GearmanWorker, job: GearmanJob) -> bytes:
        started.set()
        attached.wait(10)
        worker.send_job_data(job, b"chunk-1")
        worker.send_job_warning(job, b"warn-1")
        worker.send_job_data(job, b"chunk-2")
        return b"end"

    with serving(gearmand, {"coalesce.stream": streaming}):
        first = client.submit_job(
            "coalesce.stream", b"", unique="stream-key", wait_until_complete=False
        )
        assert started.wait(5)
        second = client.submit_job(
            "coalesce.stream", b"", unique="stream-key", wait_until_complete=False
        )
        wait_until(lambda: second.state == JOB_CREATED, description="second JOB_CREATED")
        attached.set()
        client.wait_until_jobs_completed([first, second], poll_timeout=10)

    # gearmand sends every update once per submission, here twice on one connection; each
    # request should still see each update once.
    for request in (first, second):
        assert request.result == b"end"
        assert list(request.data_updates) == [b"chunk-1", b"chunk-2"]
        assert list(request.warning_updates) == [b"warn-1"]


def test_default_unique_never_coalesces(gearmand: GearmandProcess, client: GearmanClient) -> None:
    uniques: list[str] = []
    both_started = gevent.event.Event()
    release = gevent.event.Event()

    def slow(worker: GearmanWorker, job: GearmanJob) -> bytes:
        uniques.append(job.unique)
        if len(uniques) == 2:
            both_started.set()
        release.wait(10)
        return b"done"

    with serving(gearmand, {"no.coalesce": slow}):
        requests = [
            client.submit_job("no.coalesce", b"same data", wait_until_complete=False)
            for _ in range(2)
        ]
        assert both_started.wait(5)
        release.set()
        client.wait_until_jobs_completed(requests, poll_timeout=10)

    assert len(set(uniques)) == 2
    assert all(len(unique) == 32 for unique in uniques)
    assert requests[0].job.handle != requests[1].job.handle
    assert [request.result for request in requests] == [b"done", b"done"]


def test_unique_63_bytes_reaches_worker(gearmand: GearmandProcess, client: GearmanClient) -> None:
    seen: list[tuple[str, bytes]] = []

    def record(worker: GearmanWorker, job: GearmanJob) -> bytes:
        seen.append((job.unique, job.data))
        return b"ok"

    unique = "u" * 63
    with serving(gearmand, {"long.unique": record}):
        request = client.submit_job("long.unique", b"payload", unique=unique, poll_timeout=10)

    assert request.result == b"ok"
    assert seen == [(unique, b"payload")]


@pytest.mark.parametrize(
    ("unique", "match"),
    [("u" * 64, "64 bytes"), ("é" * 32, "64 bytes"), ("a\0b", "NUL"), (b"\0", "NUL")],
    ids=["64-ascii", "64-utf8", "nul-str", "nul-bytes"],
)
def test_bad_unique_rejected_before_sending(unique: str | bytes, match: str) -> None:
    # Nothing listens on this port, so a submission that got as far as connecting would
    # raise ServerUnavailableError instead.
    client = GearmanClient([f"127.0.0.1:{free_port()}"])

    with pytest.raises(ValueError, match=match):
        client.submit_job("fn", b"x", unique=unique)


@pytest.mark.parametrize("task", ["", b"", "a\0b", "two words", "tab\tname", "line\n"], ids=repr)
def test_bad_task_rejected_before_sending(task: str | bytes) -> None:
    client = GearmanClient([f"127.0.0.1:{free_port()}"])

    with pytest.raises(ValueError, match="function name"):
        client.submit_job(task, b"x")


@pytest.mark.parametrize(
    ("encoder", "data", "type_name"),
    [("raw", 5, "int"), ("raw", {"a": 1}, "dict"), ("json", {"when": object()}, "TypeError")],
    ids=["raw-int", "raw-dict", "json-object"],
)
def test_unencodable_data_rejected_before_sending(encoder: str, data: Any, type_name: str) -> None:
    client = GearmanClient([f"127.0.0.1:{free_port()}"], data_encoder=encoder)

    with pytest.raises(EncodingError) as caught:
        client.submit_job("encode.me", data)

    assert caught.value.direction == "encode"
    assert caught.value.function == "encode.me"
    assert type_name in str(caught.value)
    assert isinstance(caught.value, ValueError)


# ---------------------------------------------------------------------------------------------
# Failures, exceptions and timeouts


def test_work_exception_reaches_request(gearmand: GearmandProcess, client: GearmanClient) -> None:
    def explode(worker: GearmanWorker, job: GearmanJob) -> bytes:
        raise ValueError("boom")

    with serving(gearmand, {"explode": explode}):
        request = client.submit_job("explode", b"", poll_timeout=10)

    assert request.state == JOB_FAILED
    assert request.exception == b"ValueError: boom"
    assert request.result is None
    assert request.error is None


def test_work_exception_decoded_by_encoder(gearmand: GearmandProcess) -> None:
    def explode(worker: GearmanWorker, job: GearmanJob) -> None:
        worker.send_job_exception(job, {"error": "bad input", "value": job.data["n"]})

    client = GearmanClient([gearmand.address], data_encoder="json")
    try:
        with serving(gearmand, {"explode.json": explode}, data_encoder="json"):
            request = client.submit_job("explode.json", {"n": 7}, poll_timeout=10)
    finally:
        client.close()

    assert request.state == JOB_FAILED
    assert request.exception == {"error": "bad input", "value": 7}


def test_work_fail_sets_failed(gearmand: GearmandProcess, client: GearmanClient) -> None:
    def fail(worker: GearmanWorker, job: GearmanJob) -> None:
        worker.send_job_failure(job)

    with serving(gearmand, {"fail": fail}):
        request = client.submit_job("fail", b"", poll_timeout=10)

    assert request.state == JOB_FAILED
    assert request.finished
    assert not request.complete
    assert request.exception is None
    assert request.result is None
    assert request.error is None


def test_poll_timeout_sets_timed_out(gearmand: GearmandProcess, client: GearmanClient) -> None:
    started = time.monotonic()
    request = client.submit_job("nobody.serves", b"data", poll_timeout=0.3)
    elapsed = time.monotonic() - started

    assert request.timed_out is True
    assert request.state == JOB_CREATED
    assert not request.finished
    assert elapsed < 3.0

    with serving(gearmand, {"nobody.serves": reverse}):
        client.wait_until_jobs_completed([request], poll_timeout=10)

    assert request.timed_out is False
    assert request.result == b"atad"


def test_queue_limit_returns_server_error(gearmand: GearmandProcess, client: GearmanClient) -> None:
    first = client.submit_job("limited", b"1", background=True, poll_timeout=5)
    assert first.state == JOB_CREATED
    assert gearmand.admin("maxqueue limited 1").startswith("OK")

    second = client.submit_job("limited", b"2", background=True, poll_timeout=5)

    assert second.state == JOB_FAILED
    assert isinstance(second.error, ServerError)
    assert second.error.code == "QUEUE_ERROR"
    assert second.job.handle is None

    # The connection is still usable after the ERROR.
    third = client.submit_job("other", b"3", background=True, poll_timeout=5)
    assert third.state == JOB_CREATED


# ---------------------------------------------------------------------------------------------
# Job status


def test_get_job_status(gearmand: GearmandProcess, client: GearmanClient) -> None:
    started = gevent.event.Event()
    release = gevent.event.Event()

    def progress(worker: GearmanWorker, job: GearmanJob) -> bytes:
        worker.send_job_status(job, 3, 7)
        started.set()
        release.wait(10)
        return b"done"

    with serving(gearmand, {"progress": progress}):
        request = client.submit_job("progress", b"", background=True, poll_timeout=5)
        assert started.wait(5)

        # The worker's WORK_STATUS travels on another connection; wait until it arrived.
        wait_until(
            lambda: client.get_job_status(request, poll_timeout=2)["numerator"] == 3,
            description="WORK_STATUS at the server",
        )
        status = dict(request.status)

        release.set()
        wait_until(
            lambda: not client.get_job_status(request, poll_timeout=2)["known"],
            description="job to finish",
        )
        finished = dict(request.status)

    assert status["known"] is True
    assert status["running"] is True
    assert status["numerator"] == 3
    assert status["denominator"] == 7
    assert finished["known"] is False
    assert finished["running"] is False


def test_get_job_status_queued(gearmand: GearmandProcess, client: GearmanClient) -> None:
    request = client.submit_job("queued.status", b"", background=True, poll_timeout=5)

    status = client.get_job_status(request, poll_timeout=5)

    assert status["known"] is True
    assert status["running"] is False
    assert status["numerator"] == 0
    assert status["denominator"] == 0


def test_get_job_status_timeout(gearmand: GearmandProcess) -> None:
    with Relay(gearmand.host, gearmand.port) as relay:
        client = GearmanClient([relay.address])
        try:
            request = client.submit_job("status.lost", b"", background=True, poll_timeout=5)
            relay.drop(TO_SERVER, PacketType.GET_STATUS)

            started = time.monotonic()
            # Every error the library raises derives from GearmanError, and a time limit
            # that ran out is a GearmanTimeoutError.
            with pytest.raises(GearmanTimeoutError):
                client.get_job_status(request, poll_timeout=0.3)
            elapsed = time.monotonic() - started
        finally:
            client.close()

    assert elapsed < 3.0


def test_get_job_status_needs_handle(gearmand: GearmandProcess, client: GearmanClient) -> None:
    request = client.submit_job("no.handle.yet", b"", background=True, wait_until_complete=False)

    # No greenlet switch happened since the submission, so JOB_CREATED was not read yet.
    with pytest.raises(ValueError, match="no job handle"):
        client.get_job_status(request)


# ---------------------------------------------------------------------------------------------
# Job server down or lost


def test_submit_while_server_down(gearmand: GearmandProcess) -> None:
    gearmand.stop()
    client = GearmanClient([gearmand.address], connect_timeout=1.0)

    started = time.monotonic()
    with pytest.raises(ServerUnavailableError) as caught:
        client.submit_job("fn", b"x", poll_timeout=5)
    elapsed = time.monotonic() - started

    assert elapsed < 2.0
    assert str(gearmand.port) in str(caught.value)


def test_submit_after_server_stopped(gearmand: GearmandProcess, client: GearmanClient) -> None:
    first = client.submit_job("bg.before", b"", background=True, poll_timeout=5)
    assert first.state == JOB_CREATED

    gearmand.stop()
    started = time.monotonic()
    with pytest.raises(ServerUnavailableError):
        client.submit_job("bg.after", b"", background=True, poll_timeout=5)

    assert time.monotonic() - started < 2.0


def test_unreachable_server_skipped(gearmand: GearmandProcess) -> None:
    down = f"127.0.0.1:{free_port()}"
    client = GearmanClient([down, gearmand.address], connect_timeout=1.0)
    try:
        with serving(gearmand, {"reverse": reverse}):
            requests = [
                client.submit_job("reverse", b"abc%d" % i, poll_timeout=10) for i in range(4)
            ]
    finally:
        client.close()

    assert [request.result for request in requests] == [b"%dcba" % i for i in range(4)]


def test_close_fails_waiting_requests(gearmand: GearmandProcess) -> None:
    client = GearmanClient([gearmand.address])
    request = client.submit_job("never.served", b"", wait_until_complete=False)
    wait_until(lambda: request.state == JOB_CREATED, description="JOB_CREATED")

    client.close()

    assert request.finished
    assert request.state == JOB_FAILED
    assert isinstance(request.error, ConnectionLostError)


def test_server_killed_fails_job(gearmand: GearmandProcess, client: GearmanClient) -> None:
    started = gevent.event.Event()

    def hang(worker: GearmanWorker, job: GearmanJob) -> bytes:
        started.set()
        gevent.sleep(60)
        return b"never"

    with serving(gearmand, {"hang": hang, "reverse": reverse}, worker_class=FastReconnectWorker):
        request = client.submit_job("hang", b"", wait_until_complete=False)
        assert started.wait(5)

        killed_at = time.monotonic()
        gearmand.kill()
        assert request.wait(2.0), "request did not end after the server was killed"
        elapsed = time.monotonic() - killed_at

        assert request.state == JOB_FAILED
        assert isinstance(request.error, ConnectionLostError)
        assert elapsed < 2.0

        # The same client object submits again once gearmand is back.
        gearmand.start()
        wait_until(lambda: has_workers(gearmand, ["reverse"]), description="worker to reconnect")
        again = client.submit_job("reverse", b"again", poll_timeout=10)

    assert again.state == JOB_COMPLETE
    assert again.result == b"niaga"


# ---------------------------------------------------------------------------------------------
# Interoperability with libgearman's command-line tool


def test_client_to_gearman_cli_worker(
    gearmand: GearmandProcess, gearman_tools: GearmanTools, client: GearmanClient
) -> None:
    if shutil.which("rev") is None:
        pytest.skip("rev (util-linux) is not installed")
    command = [
        gearman_tools.gearman,
        "-w",
        "-h",
        gearmand.host,
        "-p",
        str(gearmand.port),
        "-f",
        "interop.rev",
        "--",
        "rev",
    ]
    process = gevent.subprocess.Popen(
        command, stdout=gevent.subprocess.DEVNULL, stderr=gevent.subprocess.DEVNULL
    )
    try:
        wait_until(lambda: has_workers(gearmand, ["interop.rev"]), description="gearman -w worker")

        lines = client.submit_job("interop.rev", "hello\nworld\n", poll_timeout=10)
        single = client.submit_job("interop.rev", b"abc", poll_timeout=10)
    finally:
        process.kill()
        process.wait(timeout=5)

    # rev reverses each line and keeps the line order.
    assert lines.state == JOB_COMPLETE
    assert lines.result == b"olleh\ndlrow\n"
    assert single.result == b"cba"


def test_gearman_cli_client_to_worker(
    gearmand: GearmandProcess, gearman_tools: GearmanTools
) -> None:
    base = [gearman_tools.gearman, "-h", gearmand.host, "-p", str(gearmand.port), "-f", "reverse"]

    with serving(gearmand, {"reverse": reverse}):
        from_argument = gevent.subprocess.run(
            [*base, "hello"], capture_output=True, timeout=10, check=False
        )
        from_stdin = gevent.subprocess.run(
            base, input=b"hello\nworld", capture_output=True, timeout=10, check=False
        )

    assert from_argument.returncode == 0, from_argument.stderr
    assert from_argument.stdout == b"olleh"
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert from_stdin.stdout == b"dlrow\nolleh"


# ---------------------------------------------------------------------------------------------
# Many greenlets, one client


def test_many_greenlets_share_client(gearmand: GearmandProcess, client: GearmanClient) -> None:
    def transform(worker: GearmanWorker, job: GearmanJob) -> bytes:
        data: bytes = job.data
        return b"r:" + data[::-1]

    greenlet_count, jobs_each = 50, 10
    results: dict[bytes, Any] = {}

    def submit_many(number: int) -> None:
        for sequence in range(jobs_each):
            data = b"g%02d-j%02d" % (number, sequence)
            request = client.submit_job("transform", data, poll_timeout=20)
            assert request.state == JOB_COMPLETE, request
            results[data] = request.result

    with serving(gearmand, {"transform": transform}, max_jobs=50):
        greenlets = [gevent.spawn(submit_many, number) for number in range(greenlet_count)]
        gevent.joinall(greenlets, timeout=40, raise_error=True)

    assert all(greenlet.successful() for greenlet in greenlets)
    assert len(results) == greenlet_count * jobs_each
    for data, result in results.items():
        assert result == b"r:" + data[::-1]
