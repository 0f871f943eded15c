"""Tests of GearmanClient against a real gearmand.

Jobs are served by a GearmanWorker running in a greenlet of the test, or by the ``gearman``
command-line worker from gearman-tools. The ``gearman`` command-line client is also pointed at
a GearmanWorker, so both directions are checked against libgearman.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import math
import random
import shutil
import socket as stdlib_socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import gevent.event
import gevent.subprocess
import pytest
from relay import TO_CLIENT, TO_SERVER, Relay

from geargevent import (
    JOB_COMPLETE,
    JOB_CREATED,
    JOB_FAILED,
    JOB_PENDING,
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
from geargevent.testing import GearmandFactory, GearmandProcess, GearmanTools

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
    poll_timeout: float = 0.5,
    **options: Any,
) -> Iterator[GearmanWorker]:
    """Run a worker for ``handlers`` in a greenlet until the block ends."""
    worker = worker_class([server.address], max_jobs=max_jobs, **options)
    for name, handler in handlers.items():
        worker.register_task(name, handler)
    greenlet = gevent.spawn(worker.work, poll_timeout)
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


# ---------------------------------------------------------------------------------------------
# Thousands of requests over one connection


def square(worker: GearmanWorker, job: GearmanJob) -> bytes:
    # A random pause of up to 5 ms lets jobs started later finish earlier.
    gevent.sleep(random.uniform(0, 0.005))
    return b"%d" % (int(job.data) ** 2)


def handle_number(handle: str) -> int:
    """Return the counter at the end of a gearmand job handle such as ``H:host:42``."""
    return int(handle.rsplit(":", 1)[1])


def test_2000_jobs_from_200_greenlets(gearmand: GearmandProcess, client: GearmanClient) -> None:
    greenlet_count, jobs_each = 200, 10
    results: dict[int, bytes] = {}
    finished_handles: list[str] = []

    def submit_range(first: int) -> None:
        for number in range(first, first + jobs_each):
            request = client.submit_job("square", b"%d" % number, poll_timeout=30)
            assert request.state == JOB_COMPLETE, request
            assert request.job.handle is not None
            results[number] = request.result
            finished_handles.append(request.job.handle)

    with serving(gearmand, {"square": square}, max_jobs=100):
        greenlets = [
            gevent.spawn(submit_range, index * jobs_each) for index in range(greenlet_count)
        ]
        gevent.joinall(greenlets, timeout=60, raise_error=True)

    assert all(greenlet.successful() for greenlet in greenlets)
    assert sorted(results) == list(range(greenlet_count * jobs_each))
    for number, result in results.items():
        assert result == b"%d" % (number**2), f"job {number} got another job's result"
    numbers = [handle_number(handle) for handle in finished_handles]
    assert numbers != sorted(numbers), "results came back in submission order"
    assert len(client.connections) == 1
    assert client.connections[0].requests_in_flight == 0


def test_5000_in_flight_finish_out_of_order(
    gearmand: GearmandProcess, client: GearmanClient
) -> None:
    count = 5000
    completion_order: list[int] = []

    def square_recorded(worker: GearmanWorker, job: GearmanJob) -> bytes:
        result = square(worker, job)
        completion_order.append(int(job.data))
        return result

    with serving(gearmand, {"square.many": square_recorded}, max_jobs=100):
        requests = [
            client.submit_job("square.many", b"%d" % number, wait_until_complete=False)
            for number in range(count)
        ]
        # The loop did not yield to the hub after connecting, so no reply was read yet.
        in_flight = client.connections[0].requests_in_flight
        client.wait_until_jobs_completed(requests, poll_timeout=60)

    assert in_flight >= count
    for number, request in enumerate(requests):
        assert request.state == JOB_COMPLETE, request
        assert request.result == b"%d" % (number**2), f"job {number} got another job's result"
        assert request.timed_out is False
    assert len(completion_order) == count
    assert completion_order != sorted(completion_order), "jobs finished in submission order"
    assert client.connections[0].requests_in_flight == 0


# ---------------------------------------------------------------------------------------------
# Submitting and waiting for several requests


def test_submit_multiple_jobs_dict_entries(
    gearmand: GearmandProcess, client: GearmanClient
) -> None:
    entries = [
        {"task": "square", "data": b"3"},
        {"task": "square", "data": b"4", "unique": "multi-4"},
        {"task": "square", "data": b"5", "priority": PRIORITY_HIGH},
        {"task": "square", "data": b"6", "unique": "multi-6", "priority": PRIORITY_LOW},
    ]

    with serving(gearmand, {"square": square}):
        requests = client.submit_multiple_jobs(entries, poll_timeout=10)

    assert [request.state for request in requests] == [JOB_COMPLETE] * 4
    assert [request.result for request in requests] == [b"9", b"16", b"25", b"36"]
    assert requests[1].job.unique == "multi-4"
    assert requests[3].job.unique == "multi-6"
    assert [request.priority for request in requests] == [
        PRIORITY_NONE,
        PRIORITY_NONE,
        PRIORITY_HIGH,
        PRIORITY_LOW,
    ]


@pytest.mark.parametrize(
    "bad_entry",
    [
        {"task": "square"},
        {"data": b"1"},
        {"task": "square", "data": b"1", "background": True},
        {"task": "square", "data": b"1", "priority": "urgent"},
        {"task": "two words", "data": b"1"},
        {"task": "square", "data": b"1", "unique": "u" * 64},
        {"task": "square", "data": 7},
        ("square", b"1"),
    ],
    ids=[
        "no-data",
        "no-task",
        "unknown-key",
        "bad-priority",
        "bad-task",
        "long-unique",
        "unencodable",
        "tuple",
    ],
)
def test_submit_multiple_jobs_invalid_sends_nothing(
    gearmand: GearmandProcess, bad_entry: Any
) -> None:
    with Relay(gearmand.host, gearmand.port) as relay:
        client = GearmanClient([relay.address])
        try:
            with pytest.raises(ValueError):
                client.submit_multiple_jobs(
                    [{"task": "square", "data": b"1"}, bad_entry], poll_timeout=5
                )
            gevent.sleep(0.1)
        finally:
            client.close()

    # The valid first entry was not sent either: no connection was even opened.
    assert relay.accepted == 0
    assert "square" not in gearmand.status()


def test_submit_multiple_requests_resubmits_failed(
    gearmand: GearmandProcess, client: GearmanClient
) -> None:
    attempts: Counter[bytes] = Counter()

    def fail_odd_once(worker: GearmanWorker, job: GearmanJob) -> bytes | None:
        attempts[job.data] += 1
        if attempts[job.data] == 1 and int(job.data) % 2:
            worker.send_job_failure(job)
            return None
        return b"ok:" + job.data

    entries = [{"task": "fail.odd", "data": b"%d" % number} for number in range(6)]
    with serving(gearmand, {"fail.odd": fail_odd_once}):
        requests = client.submit_multiple_jobs(entries, poll_timeout=10)
        failed = [request for request in requests if request.state == JOB_FAILED]
        first_handles = [request.job.handle for request in failed]
        again = client.submit_multiple_requests(failed, poll_timeout=10)

    assert [request.job.data for request in failed] == [b"1", b"3", b"5"]
    assert all(returned is request for returned, request in zip(again, failed, strict=True))
    for request, old_handle in zip(failed, first_handles, strict=True):
        assert request.state == JOB_COMPLETE
        assert request.result == b"ok:" + request.job.data
        assert request.job.handle != old_handle
        assert request.connection_attempts == 2
    assert attempts == Counter({b"0": 1, b"1": 2, b"2": 1, b"3": 2, b"4": 1, b"5": 2})


def test_resubmitted_request_clears_old_exception(
    gearmand: GearmandProcess, client: GearmanClient
) -> None:
    attempts: Counter[bytes] = Counter()

    def raise_once(worker: GearmanWorker, job: GearmanJob) -> bytes:
        attempts[job.data] += 1
        if attempts[job.data] == 1:
            raise ValueError("first attempt")
        return b"second attempt"

    with serving(gearmand, {"raise.once": raise_once}):
        [request] = client.submit_multiple_jobs(
            [{"task": "raise.once", "data": b"x"}], poll_timeout=10
        )
        assert request.exception == b"ValueError: first attempt"
        client.submit_multiple_requests([request], poll_timeout=10)

    assert request.state == JOB_COMPLETE
    assert request.result == b"second attempt"
    # The exception belonged to the first attempt; the request now reports a success.
    assert request.exception is None


def test_wait_until_jobs_accepted_background(
    gearmand: GearmandProcess, client: GearmanClient
) -> None:
    requests = [
        client.submit_job("accept.bg", b"%d" % number, background=True, wait_until_complete=False)
        for number in range(20)
    ]
    assert {request.state for request in requests} == {JOB_PENDING}

    returned = client.wait_until_jobs_accepted(requests, poll_timeout=5)

    assert list(returned) == requests
    for request in requests:
        assert request.state == JOB_CREATED
        assert request.finished
        assert request.timed_out is False
        assert request.job.handle is not None
    assert len({request.job.handle for request in requests}) == 20
    assert gearmand.status()["accept.bg"] == (20, 0, 0)


def test_wait_until_jobs_accepted_timeout(gearmand: GearmandProcess) -> None:
    with Relay(gearmand.host, gearmand.port) as relay:
        relay.delay(TO_CLIENT, PacketType.JOB_CREATED, 1.0)
        client = GearmanClient([relay.address])
        try:
            request = client.submit_job(
                "accept.slow", b"", background=True, wait_until_complete=False
            )
            client.wait_until_jobs_accepted([request], poll_timeout=0.2)
            timed_out, state = request.timed_out, request.state

            client.wait_until_jobs_accepted([request], poll_timeout=5)
        finally:
            client.close()

    assert timed_out is True
    assert state == JOB_PENDING
    assert request.timed_out is False
    assert request.state == JOB_CREATED


def test_submit_multiple_jobs_background_returns_accepted(
    gearmand: GearmandProcess, client: GearmanClient
) -> None:
    entries = [{"task": "multi.bg", "data": b"%d" % number} for number in range(5)]

    requests = client.submit_multiple_jobs(
        entries, background=True, wait_until_complete=False, poll_timeout=5
    )

    assert [request.state for request in requests] == [JOB_CREATED] * 5
    assert gearmand.status()["multi.bg"] == (5, 0, 0)


# ---------------------------------------------------------------------------------------------
# Status queries


def test_get_job_statuses_several(gearmand: GearmandProcess, client: GearmanClient) -> None:
    started = gevent.event.Event()
    release = gevent.event.Event()

    def progress(worker: GearmanWorker, job: GearmanJob) -> None:
        worker.send_job_status(job, 2, 5)
        started.set()
        release.wait(10)

    queued = [
        client.submit_job("statuses.queued", b"%d" % number, background=True, poll_timeout=5)
        for number in range(3)
    ]
    with serving(gearmand, {"statuses.running": progress}):
        running = client.submit_job("statuses.running", b"", background=True, poll_timeout=5)
        assert started.wait(5)
        wait_until(
            lambda: client.get_job_status(running, poll_timeout=2)["numerator"] == 2,
            description="WORK_STATUS at the server",
        )
        returned = client.get_job_statuses([*queued, running], poll_timeout=5)
        release.set()

    assert list(returned) == [*queued, running]
    for request in queued:
        assert request.status["known"] is True
        assert request.status["running"] is False
        assert request.status["numerator"] == 0
        assert request.status["denominator"] == 0
        assert "time_received" in request.status
    assert running.status["known"] is True
    assert running.status["running"] is True
    assert running.status["numerator"] == 2
    assert running.status["denominator"] == 5


def test_status_by_handle_from_new_client(gearmand: GearmandProcess, client: GearmanClient) -> None:
    started = gevent.event.Event()
    release = gevent.event.Event()

    def progress(worker: GearmanWorker, job: GearmanJob) -> None:
        worker.send_job_status(job, 3, 7)
        started.set()
        release.wait(10)

    other = GearmanClient([gearmand.address])
    try:
        with serving(gearmand, {"status.handle": progress}):
            request = client.submit_job("status.handle", b"", background=True, poll_timeout=5)
            assert started.wait(5)
            assert request.job.handle is not None
            handle = str(request.job.handle)
            wait_until(
                lambda: other.get_job_status_by_handle(handle, poll_timeout=2)["numerator"] == 3,
                description="WORK_STATUS at the server",
            )
            by_str = other.get_job_status_by_handle(handle, poll_timeout=2)
            by_bytes = other.get_job_status_by_handle(handle.encode(), poll_timeout=2)
            unknown = other.get_job_status_by_handle("H:nosuch:999999", poll_timeout=2)
            release.set()
    finally:
        other.close()

    for status in (by_str, by_bytes):
        assert status["known"] is True
        assert status["running"] is True
        assert status["numerator"] == 3
        assert status["denominator"] == 7
    assert unknown["known"] is False
    assert unknown["running"] is False


def test_status_by_unique_counts_waiting_clients(gearmand: GearmandProcess) -> None:
    started = gevent.event.Event()
    release = gevent.event.Event()

    def slow(worker: GearmanWorker, job: GearmanJob) -> bytes:
        started.set()
        release.wait(10)
        return b"done"

    first = GearmanClient([gearmand.address])
    second = GearmanClient([gearmand.address])
    observer = GearmanClient([gearmand.address])
    try:
        with serving(gearmand, {"unique.wait": slow}):
            a = first.submit_job("unique.wait", b"", unique="wait-key", wait_until_complete=False)
            assert started.wait(5)
            b = second.submit_job("unique.wait", b"", unique="wait-key", wait_until_complete=False)
            second.wait_until_jobs_accepted([b], poll_timeout=5)
            during = observer.get_job_status_by_unique("wait-key", poll_timeout=5)

            release.set()
            first.wait_until_jobs_completed([a], poll_timeout=10)
            second.wait_until_jobs_completed([b], poll_timeout=10)
            after = observer.get_job_status_by_unique("wait-key", poll_timeout=5)
    finally:
        for gearman_client in (first, second, observer):
            gearman_client.close()

    assert during["known"] is True
    assert during["running"] is True
    assert during["waiting"] == 2
    assert a.job.handle == b.job.handle
    assert a.result == b"done"
    assert b.result == b"done"
    # gearmand keeps no record of a job once it has finished.
    assert after["known"] is False
    assert after["waiting"] == 0


def test_status_by_unique_background_queued(
    gearmand: GearmandProcess, client: GearmanClient
) -> None:
    client.submit_job("unique.bg", b"", unique="bg-status-key", background=True, poll_timeout=5)

    queued = client.get_job_status_by_unique("bg-status-key", poll_timeout=5)
    unknown = client.get_job_status_by_unique("no-such-key", poll_timeout=5)

    assert queued["known"] is True
    assert queued["running"] is False
    assert queued["waiting"] == 0
    assert unknown["known"] is False


# ---------------------------------------------------------------------------------------------
# Scheduled jobs (SUBMIT_JOB_EPOCH)


def test_scheduled_job_runs_after_when(gearmand: GearmandProcess, client: GearmanClient) -> None:
    started_at: dict[bytes, float] = {}

    def record(worker: GearmanWorker, job: GearmanJob) -> None:
        started_at[job.data] = time.time()

    # gearmand 1.1.20 does not wake sleeping workers when an EPOCH job falls due; this
    # worker grabs every second while idle.
    with serving(gearmand, {"scheduled": record}, poll_timeout=1.0):
        # A whole second, so the check does not depend on how fractions are rounded.
        when = math.ceil(time.time()) + 2
        by_epoch = client.submit_job(
            "scheduled", b"epoch", background=True, when=when, poll_timeout=5
        )
        by_datetime = client.submit_job(
            "scheduled",
            b"datetime",
            background=True,
            when=datetime.datetime.fromtimestamp(when, tz=datetime.timezone.utc),
            poll_timeout=5,
        )
        queued = gearmand.status()["scheduled"]
        wait_until(
            lambda: len(started_at) == 2,
            timeout=when - time.time() + 5,
            description="scheduled jobs to run",
        )

    assert by_epoch.state == JOB_CREATED
    assert by_datetime.state == JOB_CREATED
    assert queued[:2] == (2, 0)
    assert started_at[b"epoch"] >= when
    assert started_at[b"datetime"] >= when
    # The worker grabs at least once a second, so the jobs start soon after they fall due.
    assert started_at[b"epoch"] < when + 3
    assert started_at[b"datetime"] < when + 3


def test_scheduled_fraction_not_run_early(gearmand: GearmandProcess, client: GearmanClient) -> None:
    started_at: list[float] = []

    def record(worker: GearmanWorker, job: GearmanJob) -> None:
        started_at.append(time.time())

    with serving(gearmand, {"scheduled.fraction": record}, poll_timeout=0.1):
        # 0.9 s past a whole second: a time rounded down would fall due 0.9 s early, and
        # this worker, which grabs every 0.1 s while idle, would start the job then.
        when = math.ceil(time.time()) + 1.9
        client.submit_job("scheduled.fraction", b"", background=True, when=when, poll_timeout=5)
        wait_until(lambda: bool(started_at), timeout=6, description="scheduled job to run")

    assert started_at[0] >= when, f"job started {when - started_at[0]:.2f} s before it was due"


@pytest.mark.parametrize(
    "options",
    [
        {"background": False},
        {"background": True, "priority": PRIORITY_HIGH},
        {"background": True, "priority": PRIORITY_LOW},
    ],
    ids=["foreground", "high", "low"],
)
def test_when_rejects_foreground_and_priority(options: dict[str, Any]) -> None:
    client = GearmanClient([f"127.0.0.1:{free_port()}"])

    with pytest.raises(ValueError, match="scheduled job"):
        client.submit_job("fn", b"x", when=time.time() + 60, **options)


# ---------------------------------------------------------------------------------------------
# The exceptions option


def test_exceptions_option_sent_per_connection(gearmand: GearmandProcess) -> None:
    with Relay(gearmand.host, gearmand.port) as relay:
        client = GearmanClient([relay.address])
        try:
            client.submit_job("option.a", b"", background=True, poll_timeout=5)
            client.submit_job("option.b", b"", background=True, poll_timeout=5)
            sent_before_loss = relay.count(TO_SERVER, PacketType.OPTION_REQ)

            relay.close_all()
            wait_until(lambda: not client.connections[0].is_connected(), description="loss")
            client.submit_job("option.c", b"", background=True, poll_timeout=5)
        finally:
            client.close()

    first_packets: dict[int, Any] = {}
    for record in relay.packets(TO_SERVER):
        first_packets.setdefault(record.connection, record)
    assert sent_before_loss == 1
    assert relay.count(TO_SERVER, PacketType.OPTION_REQ) == 2
    assert relay.count(TO_CLIENT, PacketType.OPTION_RES) == 2
    assert len(first_packets) == 2
    for record in first_packets.values():
        assert record.packet_type == PacketType.OPTION_REQ
        assert record.payload == b"exceptions"


def test_raised_exception_decoded_by_json(gearmand: GearmandProcess) -> None:
    def explode(worker: GearmanWorker, job: GearmanJob) -> None:
        raise ValueError(f"bad value {job.data['n']}")

    client = GearmanClient([gearmand.address], data_encoder="json")
    try:
        with serving(gearmand, {"explode.text": explode}, data_encoder="json"):
            request = client.submit_job("explode.text", {"n": 3}, poll_timeout=10)
    finally:
        client.close()

    assert request.state == JOB_FAILED
    assert isinstance(request.exception, str)
    assert request.exception == "ValueError: bad value 3"
    assert request.error is None
    assert request.result is None


# ---------------------------------------------------------------------------------------------
# In-flight updates: the updates() iterator and on_update


UPDATE_STEPS: list[tuple[str, Any]] = [
    ("status", (1, 3)),
    ("data", b"d1"),
    ("warning", b"w1"),
    ("status", (2, 3)),
    ("data", b"d2"),
    ("status", (3, 3)),
]


def send_update_steps(worker: GearmanWorker, job: GearmanJob) -> bytes:
    for kind, value in UPDATE_STEPS:
        if kind == "status":
            worker.send_job_status(job, *value)
        elif kind == "data":
            worker.send_job_data(job, value)
        else:
            worker.send_job_warning(job, value)
        gevent.sleep(0.01)
    return b"finished"


def test_updates_iterator_yields_in_order(gearmand: GearmandProcess, client: GearmanClient) -> None:
    with serving(gearmand, {"updates.steps": send_update_steps}):
        request = client.submit_job("updates.steps", b"", wait_until_complete=False)
        received = list(request.updates(timeout=5))

    assert received == UPDATE_STEPS
    # The iterator ends when the job does.
    assert request.complete
    assert request.result == b"finished"


def test_updates_iterator_after_end_stops(gearmand: GearmandProcess, client: GearmanClient) -> None:
    with serving(gearmand, {"updates.steps": send_update_steps}):
        request = client.submit_job("updates.steps", b"", wait_until_complete=False)
        first_pass = list(request.updates(timeout=5))

    assert first_pass == UPDATE_STEPS
    # The job has finished, so a second pass has nothing to wait for.
    assert list(request.updates(timeout=1)) == []


def test_updates_iterator_timeout(gearmand: GearmandProcess, client: GearmanClient) -> None:
    release = gevent.event.Event()

    def quiet_then_data(worker: GearmanWorker, job: GearmanJob) -> bytes:
        release.wait(10)
        worker.send_job_data(job, b"late")
        return b"done"

    with serving(gearmand, {"updates.quiet": quiet_then_data}):
        request = client.submit_job("updates.quiet", b"", wait_until_complete=False)
        started = time.monotonic()
        with pytest.raises(GearmanTimeoutError):
            next(request.updates(timeout=0.2))
        elapsed = time.monotonic() - started

        # Updates that arrive after the timeout reach the next iterator.
        release.set()
        rest = list(request.updates(timeout=5))

    assert elapsed < 2.0
    assert rest == [("data", b"late")]
    assert request.result == b"done"


def test_on_update_callback_in_order(gearmand: GearmandProcess, client: GearmanClient) -> None:
    calls: list[tuple[Any, str, Any]] = []

    with serving(gearmand, {"updates.steps": send_update_steps}):
        request = client.submit_job("updates.steps", b"", wait_until_complete=False)
        request.on_update = lambda source, kind, value: calls.append((source, kind, value))
        client.wait_until_jobs_completed([request], poll_timeout=10)

    assert [(kind, value) for _source, kind, value in calls] == UPDATE_STEPS
    assert all(source is request for source, _kind, _value in calls)
    assert request.result == b"finished"


def test_on_update_callback_error_logged(
    gearmand: GearmandProcess, client: GearmanClient, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(source: Any, kind: str, value: Any) -> None:
        raise RuntimeError("callback broke")

    with serving(gearmand, {"updates.steps": send_update_steps, "reverse": reverse}):
        request = client.submit_job("updates.steps", b"", wait_until_complete=False)
        request.on_update = broken
        client.wait_until_jobs_completed([request], poll_timeout=10)
        after = client.submit_job("reverse", b"abc", poll_timeout=10)

    assert request.state == JOB_COMPLETE
    assert request.result == b"finished"
    assert list(request.data_updates) == [b"d1", b"d2"]
    assert list(request.warning_updates) == [b"w1"]
    assert after.result == b"cba"
    errors = [
        record
        for record in caplog.records
        if record.name == "geargevent.client"
        and record.levelno >= logging.ERROR
        and "on_update" in record.getMessage()
    ]
    assert len(errors) == len(UPDATE_STEPS)
    assert errors[0].exc_info is not None
    assert errors[0].exc_info[0] is RuntimeError


# ---------------------------------------------------------------------------------------------
# Several job servers


def server_of(request: Any) -> str:
    """Return the address of the job server that accepted a request."""
    return str(request.job.connection.address)


def test_generated_uniques_rotate_over_servers(gearmand_factory: GearmandFactory) -> None:
    first, second = gearmand_factory(), gearmand_factory()
    client = GearmanClient([first.address, second.address])
    try:
        requests = [
            client.submit_job("spread", b"%d" % number, background=True, poll_timeout=5)
            for number in range(10)
        ]
    finally:
        client.close()

    assert [request.state for request in requests] == [JOB_CREATED] * 10
    assert first.status()["spread"] == (5, 0, 0)
    assert second.status()["spread"] == (5, 0, 0)
    assert Counter(server_of(request) for request in requests) == {
        first.address: 5,
        second.address: 5,
    }


def test_generated_uniques_reach_worker_per_server(gearmand_factory: GearmandFactory) -> None:
    first, second = gearmand_factory(), gearmand_factory()

    def labelled(label: bytes) -> Handler:
        def handler(worker: GearmanWorker, job: GearmanJob) -> bytes:
            return label

        return handler

    client = GearmanClient([first.address, second.address])
    try:
        with (
            serving(first, {"spread.fg": labelled(b"first")}),
            serving(second, {"spread.fg": labelled(b"second")}),
        ):
            requests = [
                client.submit_job("spread.fg", b"", wait_until_complete=False) for _ in range(10)
            ]
            client.wait_until_jobs_completed(requests, poll_timeout=10)
    finally:
        client.close()

    assert Counter(request.result for request in requests) == {b"first": 5, b"second": 5}


def test_caller_unique_picks_same_server(gearmand_factory: GearmandFactory) -> None:
    first, second = gearmand_factory(), gearmand_factory()
    clients = [GearmanClient([first.address, second.address]) for _ in range(2)]
    try:
        pairs = [
            [
                gearman_client.submit_job(
                    "routed",
                    b"%d" % number,
                    unique=f"key-{number}",
                    background=True,
                    poll_timeout=5,
                )
                for gearman_client in clients
            ]
            for number in range(12)
        ]
    finally:
        for gearman_client in clients:
            gearman_client.close()

    for from_first, from_second in pairs:
        assert server_of(from_first) == server_of(from_second)
        assert from_first.job.handle == from_second.job.handle
    # Twelve keys, one queued job each, spread over both servers.
    counts = [server.status().get("routed", (0, 0, 0))[0] for server in (first, second)]
    assert sum(counts) == 12
    assert all(count > 0 for count in counts), counts


def test_caller_unique_coalesces_across_servers(gearmand_factory: GearmandFactory) -> None:
    servers = [gearmand_factory(), gearmand_factory()]
    addresses = [server.address for server in servers]
    calls: list[str] = []
    started = gevent.event.Event()
    release = gevent.event.Event()

    def slow(worker: GearmanWorker, job: GearmanJob) -> bytes:
        calls.append(job.unique)
        started.set()
        release.wait(10)
        return b"once"

    first, second = GearmanClient(addresses), GearmanClient(addresses)
    try:
        with (
            serving(servers[0], {"coalesce.multi": slow}),
            serving(servers[1], {"coalesce.multi": slow}),
        ):
            a = first.submit_job(
                "coalesce.multi", b"a", unique="multi-key", wait_until_complete=False
            )
            assert started.wait(5)
            b = second.submit_job(
                "coalesce.multi", b"b", unique="multi-key", wait_until_complete=False
            )
            second.wait_until_jobs_accepted([b], poll_timeout=5)
            release.set()
            first.wait_until_jobs_completed([a], poll_timeout=10)
            second.wait_until_jobs_completed([b], poll_timeout=10)
    finally:
        first.close()
        second.close()

    assert calls == ["multi-key"]
    assert server_of(a) == server_of(b)
    assert a.job.handle == b.job.handle
    assert a.result == b"once"
    assert b.result == b"once"


def test_server_down_submissions_use_other(gearmand_factory: GearmandFactory) -> None:
    first, second = gearmand_factory(), gearmand_factory()
    client = GearmanClient([first.address, second.address], connect_timeout=1.0)
    try:
        warm_up = [
            client.submit_job("failover", b"warm", background=True, poll_timeout=5)
            for _ in range(2)
        ]
        assert {server_of(request) for request in warm_up} == {first.address, second.address}

        second.stop()
        wait_until(lambda: not client.connections[1].is_connected(), description="loss")
        generated = [
            client.submit_job("failover", b"%d" % number, background=True, poll_timeout=5)
            for number in range(6)
        ]
        # Some of these uniques hash to the stopped server.
        keyed = [
            client.submit_job(
                "failover", b"k", unique=f"down-{number}", background=True, poll_timeout=5
            )
            for number in range(6)
        ]
    finally:
        client.close()

    for request in generated + keyed:
        assert request.state == JOB_CREATED
        assert server_of(request) == first.address
    assert first.status()["failover"] == (13, 0, 0)


def test_both_servers_down_names_both(gearmand_factory: GearmandFactory) -> None:
    first, second = gearmand_factory(), gearmand_factory()
    first.stop()
    second.stop()
    client = GearmanClient([first.address, second.address], connect_timeout=1.0)

    with pytest.raises(ServerUnavailableError) as generated:
        client.submit_job("nowhere", b"", background=True, poll_timeout=5)
    with pytest.raises(ServerUnavailableError) as keyed:
        client.submit_job("nowhere", b"", unique="key", poll_timeout=5)

    for caught in (generated, keyed):
        assert first.address in str(caught.value)
        assert second.address in str(caught.value)


# ---------------------------------------------------------------------------------------------
# Resubmitting after a lost connection (max_retries)


def test_max_retries_resubmits_after_loss(gearmand: GearmandProcess) -> None:
    calls: list[str] = []
    started = gevent.event.Event()
    release = gevent.event.Event()

    def slow(worker: GearmanWorker, job: GearmanJob) -> bytes:
        calls.append(job.handle)
        started.set()
        release.wait(10)
        return b"done:" + job.data

    with (
        Relay(gearmand.host, gearmand.port) as relay,
        serving(gearmand, {"retry.slow": slow}),
    ):
        client = GearmanClient([relay.address])
        try:
            submitter = gevent.spawn(
                client.submit_job, "retry.slow", b"x", max_retries=1, poll_timeout=15
            )
            assert started.wait(5)
            relay.close_all()
            # Let the resubmission reach gearmand before the job ends.
            relay.wait_for(TO_CLIENT, PacketType.JOB_CREATED, 2, timeout=5)
            release.set()
            request = submitter.get(timeout=15)
        finally:
            client.close()

    assert request.state == JOB_COMPLETE
    assert request.result == b"done:x"
    assert request.error is None
    assert request.connection_attempts == 2
    assert relay.count(TO_SERVER, PacketType.SUBMIT_JOB) == 2
    # At least once: the first run may or may not serve the resubmission too.
    assert 1 <= len(calls) <= 2


def test_max_retries_completes_queued_job(gearmand: GearmandProcess) -> None:
    calls: list[str] = []

    def record(worker: GearmanWorker, job: GearmanJob) -> bytes:
        calls.append(job.handle)
        return b"done:" + job.data

    with Relay(gearmand.host, gearmand.port) as relay:
        client = GearmanClient([relay.address])
        try:
            # No worker yet, so the job is still queued when the connection breaks.
            submitter = gevent.spawn(
                client.submit_job, "retry.queued", b"x", max_retries=1, poll_timeout=5
            )
            relay.wait_for(TO_CLIENT, PacketType.JOB_CREATED, 1, timeout=5)
            relay.close_all()
            relay.wait_for(TO_CLIENT, PacketType.JOB_CREATED, 2, timeout=5)
            with serving(gearmand, {"retry.queued": record}):
                request = submitter.get(timeout=10)
                state, timed_out = request.state, request.timed_out
        finally:
            client.close()

    assert request.connection_attempts == 2
    assert len(calls) == 1, "the resubmitted job never reached the worker"
    assert timed_out is False, "the resubmitted request got no result within 5 s"
    assert state == JOB_COMPLETE
    assert request.result == b"done:x"


def test_no_retry_by_default_after_loss(gearmand: GearmandProcess) -> None:
    calls: list[str] = []
    started = gevent.event.Event()
    release = gevent.event.Event()

    def slow(worker: GearmanWorker, job: GearmanJob) -> bytes:
        calls.append(job.handle)
        started.set()
        release.wait(10)
        return b"done"

    with (
        Relay(gearmand.host, gearmand.port) as relay,
        serving(gearmand, {"retry.none": slow}),
    ):
        client = GearmanClient([relay.address])
        try:
            submitter = gevent.spawn(client.submit_job, "retry.none", b"x", poll_timeout=15)
            assert started.wait(5)
            relay.close_all()
            request = submitter.get(timeout=5)
            release.set()
            wait_until(
                lambda: gearmand.status().get("retry.none", (0, 0, 0))[0] == 0,
                description="job to end at the server",
            )
        finally:
            client.close()

    assert request.state == JOB_FAILED
    assert isinstance(request.error, ConnectionLostError)
    assert request.connection_attempts == 1
    assert relay.count(TO_SERVER, PacketType.SUBMIT_JOB) == 1
    assert len(calls) <= 1


# ---------------------------------------------------------------------------------------------
# ERROR in reply to a submission


def test_queue_full_error_carries_server_text(
    gearmand: GearmandProcess, client: GearmanClient
) -> None:
    queued = client.submit_job("limited.fg", b"1", wait_until_complete=False)
    client.wait_until_jobs_accepted([queued], poll_timeout=5)
    # gearmand ignores maxqueue for a function it has no record of yet.
    assert gearmand.admin("maxqueue limited.fg 1").startswith("OK")

    rejected = client.submit_job("limited.fg", b"2", poll_timeout=5)

    assert rejected.state == JOB_FAILED
    assert rejected.finished
    assert rejected.timed_out is False
    assert rejected.job.handle is None
    assert isinstance(rejected.error, ServerError)
    assert rejected.error.code == "QUEUE_ERROR"
    assert rejected.error.text == "Job queue is full"
    assert rejected.error.server == gearmand.address
    assert "Job queue is full" in str(rejected.error)
    # The first job is still queued and waiting.
    assert queued.state == JOB_CREATED
    assert not queued.finished


# ---------------------------------------------------------------------------------------------
# Payloads and names


def echo(worker: GearmanWorker, job: GearmanJob) -> bytes:
    data: bytes = job.data
    return data


@pytest.mark.parametrize(
    "payload",
    [b"", b"\0", b"\0\0\0", b"ends-with-nul\0", b"\0starts", b"a\0\0b"],
    ids=repr,
)
def test_nul_payloads_round_trip(
    gearmand: GearmandProcess, client: GearmanClient, payload: bytes
) -> None:
    with serving(gearmand, {"echo": echo}):
        request = client.submit_job("echo", payload, poll_timeout=10)

    assert request.state == JOB_COMPLETE
    assert request.result == payload


def test_ten_mib_payload_round_trip(gearmand: GearmandProcess, client: GearmanClient) -> None:
    payload = bytes(range(256)) * (40 * 1024)

    with serving(gearmand, {"reverse": reverse}):
        request = client.submit_job("reverse", payload, poll_timeout=30)

    assert len(payload) == 10 * 1024 * 1024
    assert request.state == JOB_COMPLETE
    assert request.result == payload[::-1]


UNICODE_TASK = "émoji-✓"


def test_unicode_task_name_round_trip(gearmand: GearmandProcess, client: GearmanClient) -> None:
    seen: list[tuple[str, bytes, bytes]] = []

    def record(worker: GearmanWorker, job: GearmanJob) -> str:
        seen.append((job.task, job.function, job.data))
        return "résultat ✓"

    with serving(gearmand, {UNICODE_TASK: record}):
        request = client.submit_job(UNICODE_TASK, "données ✓", poll_timeout=10)
        status = gearmand.status()

    assert request.state == JOB_COMPLETE
    assert request.job.task == UNICODE_TASK
    assert request.result == "résultat ✓".encode()
    assert seen == [(UNICODE_TASK, UNICODE_TASK.encode(), "données ✓".encode())]
    assert UNICODE_TASK in status


def test_unicode_task_with_gearman_cli(
    gearmand: GearmandProcess, gearman_tools: GearmanTools, client: GearmanClient
) -> None:
    if shutil.which("rev") is None:
        pytest.skip("rev (util-linux) is not installed")
    connection = ["-h", gearmand.host, "-p", str(gearmand.port), "-f", UNICODE_TASK]

    # The gearman command as the client, a GearmanWorker serving.
    with serving(gearmand, {UNICODE_TASK: reverse}):
        from_cli = gevent.subprocess.run(
            [gearman_tools.gearman, *connection, "abc✓"],
            capture_output=True,
            timeout=10,
            check=False,
        )

    # GearmanClient as the client, the gearman command serving.
    process = gevent.subprocess.Popen(
        [gearman_tools.gearman, "-w", *connection, "--", "rev"],
        stdout=gevent.subprocess.DEVNULL,
        stderr=gevent.subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: has_workers(gearmand, [UNICODE_TASK]), description="gearman -w")
        to_cli = client.submit_job(UNICODE_TASK, "abc✓\n", poll_timeout=10)
    finally:
        process.kill()
        process.wait(timeout=5)

    assert from_cli.returncode == 0, from_cli.stderr
    assert from_cli.stdout == "abc✓".encode()[::-1]
    assert to_cli.state == JOB_COMPLETE
    assert to_cli.result == "✓cba\n".encode()
