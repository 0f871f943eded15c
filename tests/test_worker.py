"""Tests of GearmanWorker against the real C gearmand and the Perl job server.

Each test runs the worker in a greenlet (see ``worker_helpers.running``) and submits jobs with
GearmanClient, which sends OPTION_REQ "exceptions" on connect. Where a test must see the
packets a worker sends, the worker talks to gearmand through ``tests/relay.py``.
"""

from __future__ import annotations

import logging
import socket as stdlib_socket
import sys
import time
from collections.abc import Iterator
from typing import Any

import gevent
import gevent.event
import pytest
from relay import TO_CLIENT, TO_SERVER, Relay
from worker_helpers import (
    HOST,
    BadMagicJobServer,
    add_ping,
    gearmand_log,
    handle_of,
    log_messages,
    ping,
    registered_functions,
    running,
    terminal_packets_by_handle,
    unused_port,
    wait_for_registration,
    wait_until,
)

from geargevent import (
    JOB_COMPLETE,
    JOB_FAILED,
    ConnectionLostError,
    DataEncoder,
    GearmanClient,
    GearmanJob,
    GearmanWorker,
    JobAbandoned,
    JSONDataEncoder,
    LocalProtocolError,
    MsgpackDataEncoder,
)
from geargevent._packets import PacketType
from geargevent.testing import GearmandFactory, GearmandProcess


@pytest.fixture
def client(gearmand: GearmandProcess) -> Iterator[GearmanClient]:
    """A raw-data client of the ``gearmand`` fixture."""
    with GearmanClient([gearmand.address]) as gearman_client:
        yield gearman_client


def reverse(worker: GearmanWorker, job: GearmanJob) -> bytes:
    return bytes(job.data[::-1])


def echo(worker: GearmanWorker, job: GearmanJob) -> Any:
    return job.data


def sleep_half_second(worker: GearmanWorker, job: GearmanJob) -> bytes:
    gevent.sleep(0.5)
    return b"slept"


# ---------------------------------------------------------------------------------------------
# API compatibility with python-gearman 2.x

HOST_ENTRY_FORMS = {
    "str": lambda port: f"{HOST}:{port}",
    "bytes": lambda port: f"{HOST}:{port}".encode(),
    "tuple": lambda port: (HOST, port),
    "dict": lambda port: {"host": HOST, "port": port},
}


@pytest.mark.parametrize("form", sorted(HOST_ENTRY_FORMS))
def test_host_list_entry_form(gearmand: GearmandProcess, client: GearmanClient, form: str) -> None:
    entry = HOST_ENTRY_FORMS[form](gearmand.port)
    worker = GearmanWorker([entry])
    worker.register_task("reverse", reverse)

    assert [(address.host, address.port) for address in worker.addresses] == [(HOST, gearmand.port)]
    with running(worker):
        request = client.submit_job("reverse", b"abc", poll_timeout=5)
    assert request.state == JOB_COMPLETE
    assert request.result == b"cba"


def test_client_id_in_workers_listing(gearmand: GearmandProcess) -> None:
    worker = GearmanWorker([gearmand.address])
    worker.set_client_id("report-worker")
    worker.register_task("reverse", reverse)

    with running(worker):
        wait_for_registration(gearmand, "reverse", client_id="report-worker")
        assert registered_functions(gearmand, "report-worker") == {"reverse"}


def test_client_id_change_while_working(gearmand: GearmandProcess) -> None:
    worker = GearmanWorker([gearmand.address], client_id="first-id")
    worker.register_task("reverse", reverse)

    with running(worker):
        wait_for_registration(gearmand, "reverse", client_id="first-id")
        worker.set_client_id("second-id")
        wait_for_registration(gearmand, "reverse", client_id="second-id")
        assert registered_functions(gearmand, "first-id") == set()


def test_register_task_as_decorator(gearmand: GearmandProcess, client: GearmanClient) -> None:
    worker = GearmanWorker([gearmand.address])

    @worker.register_task("shout")
    def shout(worker: GearmanWorker, job: GearmanJob) -> bytes:
        return bytes(job.data).upper()

    assert callable(shout)
    assert shout.__name__ == "shout"
    assert worker.registered_tasks == ["shout"]
    with running(worker):
        request = client.submit_job("shout", b"quiet", poll_timeout=5)
    assert request.result == b"QUIET"


def test_register_task_str_and_bytes_names(
    gearmand: GearmandProcess, client: GearmanClient
) -> None:
    calls: list[tuple[str, bytes]] = []

    def record(worker: GearmanWorker, job: GearmanJob) -> bytes:
        calls.append((job.task, job.function))
        return b"recorded"

    worker = GearmanWorker([gearmand.address])
    worker.register_task(b"by-bytes", record)
    worker.register_task("by-str", record)
    # The same name as str replaces the bytes registration instead of adding one.
    worker.register_task("by-bytes", record)

    assert worker.registered_tasks == ["by-bytes", "by-str"]
    with running(worker):
        requests = [
            client.submit_job("by-bytes", b"", wait_until_complete=False),
            client.submit_job(b"by-bytes", b"", wait_until_complete=False),
            client.submit_job("by-str", b"", wait_until_complete=False),
            client.submit_job(b"by-str", b"", wait_until_complete=False),
        ]
        client.wait_until_jobs_completed(requests, poll_timeout=5)
    assert [request.result for request in requests] == [b"recorded"] * 4
    assert sorted(calls) == sorted([("by-bytes", b"by-bytes")] * 2 + [("by-str", b"by-str")] * 2)


def test_unregister_task_before_work(gearmand: GearmandProcess) -> None:
    worker = GearmanWorker([gearmand.address], client_id="unregister-worker")
    worker.register_task("kept", reverse)
    worker.register_task("removed", reverse)
    worker.unregister_task("removed")

    assert worker.registered_tasks == ["kept"]
    with running(worker):
        wait_for_registration(gearmand, "kept", client_id="unregister-worker")
        assert registered_functions(gearmand, "unregister-worker") == {"kept"}


class PollRecordingWorker(GearmanWorker):
    """A worker that records each after_poll call and stops once ``stop_requested`` is set."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.polls: list[bool] = []
        self.stop_requested = False

    def after_poll(self, any_activity: bool) -> bool:
        self.polls.append(any_activity)
        return not self.stop_requested


def test_after_poll_called_each_poll_timeout(
    gearmand: GearmandProcess, client: GearmanClient
) -> None:
    worker = PollRecordingWorker([gearmand.address])
    worker.register_task("reverse", reverse)

    with running(worker, poll_timeout=0.1):
        wait_until(lambda: worker.polls.count(False) >= 3, 3, "three idle after_poll calls")
        worker.polls.clear()
        request = client.submit_job("reverse", b"abc", poll_timeout=5)
        wait_until(lambda: True in worker.polls, 3, "after_poll(True) after a job")

    assert request.result == b"cba"


def test_after_poll_false_stops_work_gracefully(
    gearmand: GearmandProcess, client: GearmanClient
) -> None:
    worker = PollRecordingWorker([gearmand.address])

    def request_stop(worker: PollRecordingWorker, job: GearmanJob) -> bytes:
        worker.stop_requested = True
        gevent.sleep(0.3)
        return b"finished"

    worker.register_task("stop", request_stop)
    with running(worker, poll_timeout=0.1) as greenlet:
        request = client.submit_job("stop", b"", poll_timeout=5)
        greenlet.join(5)
        assert greenlet.dead
        assert greenlet.successful()
    assert request.state == JOB_COMPLETE
    assert request.result == b"finished"


class StopAfterJobWorker(GearmanWorker):
    def after_job(self) -> bool:
        return False


def test_after_job_false_stops_work(gearmand: GearmandProcess, client: GearmanClient) -> None:
    worker = StopAfterJobWorker([gearmand.address])
    worker.register_task("reverse", reverse)

    with running(worker) as greenlet:
        request = client.submit_job("reverse", b"abc", poll_timeout=5)
        greenlet.join(5)
        assert greenlet.dead
        assert greenlet.successful()
    assert request.result == b"cba"


def summarize(worker: GearmanWorker, job: GearmanJob) -> dict[str, Any]:
    return {"total": sum(job.data["numbers"]), "type": type(job.data).__name__}


class JSONWorker(GearmanWorker):
    data_encoder = JSONDataEncoder


def test_data_encoder_class_attribute(gearmand: GearmandProcess) -> None:
    worker = JSONWorker([gearmand.address])
    worker.register_task("summarize", summarize)

    assert worker.data_encoder is JSONDataEncoder
    with running(worker), GearmanClient([gearmand.address], data_encoder="json") as json_client:
        request = json_client.submit_job("summarize", {"numbers": [1, 2, 3]}, poll_timeout=5)
    assert request.result == {"total": 6, "type": "dict"}


@pytest.mark.parametrize(
    ("encoder", "client_encoder"),
    [
        pytest.param(JSONDataEncoder, JSONDataEncoder, id="class"),
        pytest.param(JSONDataEncoder(), JSONDataEncoder, id="instance"),
        pytest.param("json", JSONDataEncoder, id="json-name"),
        pytest.param("msgpack", MsgpackDataEncoder, id="msgpack-name"),
    ],
)
def test_data_encoder_keyword(gearmand: GearmandProcess, encoder: Any, client_encoder: Any) -> None:
    worker = GearmanWorker([gearmand.address], data_encoder=encoder)
    worker.register_task("summarize", summarize)

    with (
        running(worker),
        GearmanClient([gearmand.address], data_encoder=client_encoder) as encoded_client,
    ):
        request = encoded_client.submit_job("summarize", {"numbers": [4, 5]}, poll_timeout=5)
    assert request.state == JOB_COMPLETE
    assert request.result == {"total": 9, "type": "dict"}


def test_function_data_encoder_overrides_worker(
    gearmand: GearmandProcess, client: GearmanClient
) -> None:
    worker = GearmanWorker([gearmand.address])
    worker.register_task("summarize", summarize, data_encoder="json")
    worker.register_task("echo", echo)

    with running(worker), GearmanClient([gearmand.address], data_encoder="json") as json_client:
        summary = json_client.submit_job("summarize", {"numbers": [2, 2]}, poll_timeout=5)
        raw = client.submit_job("echo", b"[1, 2]", poll_timeout=5)
    assert summary.result == {"total": 4, "type": "dict"}
    assert raw.result == b"[1, 2]"


def test_handler_receives_worker_and_job(gearmand: GearmandProcess, client: GearmanClient) -> None:
    seen: dict[str, Any] = {}

    def inspect(worker: GearmanWorker, job: GearmanJob) -> bytes:
        seen.update(
            worker=worker,
            handle=job.handle,
            task=job.task,
            unique=job.unique,
            data=job.data,
            connection=job.connection,
        )
        return b"inspected"

    worker = GearmanWorker([gearmand.address])
    worker.register_task("inspect", inspect)
    with running(worker):
        request = client.submit_job("inspect", b"payload", unique="unique-1", poll_timeout=5)

    assert request.result == b"inspected"
    assert seen["worker"] is worker
    assert seen["handle"] == request.job.handle
    assert seen["task"] == "inspect"
    assert seen["unique"] == "unique-1"
    assert seen["data"] == b"payload"
    assert seen["connection"] is worker.connections[0]
    assert seen["connection"].address.port == gearmand.port


# ---------------------------------------------------------------------------------------------
# Concurrency


def test_jobs_run_concurrently(gearmand: GearmandProcess, client: GearmanClient) -> None:
    worker = GearmanWorker([gearmand.address], max_jobs=20)
    worker.register_task("sleep", sleep_half_second)

    with running(worker):
        wait_for_registration(gearmand, "sleep")
        started = time.monotonic()
        requests = [client.submit_job("sleep", b"", wait_until_complete=False) for _ in range(20)]
        client.wait_until_jobs_completed(requests, poll_timeout=10)
        elapsed = time.monotonic() - started

    assert [request.state for request in requests] == [JOB_COMPLETE] * 20
    assert elapsed < 2.0


def test_max_jobs_limits_running_jobs(gearmand: GearmandProcess, client: GearmanClient) -> None:
    running_now = 0
    running_max = 0
    finished = 0

    def counted(worker: GearmanWorker, job: GearmanJob) -> bytes:
        nonlocal running_now, running_max, finished
        running_now += 1
        running_max = max(running_max, running_now)
        try:
            gevent.sleep(0.15)
        finally:
            running_now -= 1
            finished += 1
        return b""

    for _ in range(10):
        client.submit_job("counted", b"", background=True)
    worker = GearmanWorker([gearmand.address], max_jobs=2)
    worker.register_task("counted", counted)

    server_running: list[int] = []
    with running(worker):
        deadline = time.monotonic() + 10
        while finished < 10 and time.monotonic() < deadline:
            row = gearmand.status().get("counted")
            if row is not None:
                server_running.append(row[1])
            gevent.sleep(0.02)

    assert finished == 10
    assert running_max == 2
    assert len(server_running) >= 10
    assert max(server_running) <= 2


def test_saturated_pool_keeps_taking_jobs(gearmand: GearmandProcess, client: GearmanClient) -> None:
    handled: list[bytes] = []

    def short_sleep(worker: GearmanWorker, job: GearmanJob) -> bytes:
        gevent.sleep(0.02)
        handled.append(job.data)
        return bytes(job.data)

    worker = GearmanWorker([gearmand.address], max_jobs=10)
    worker.register_task("short", short_sleep)

    # poll_timeout=None keeps the re-grab timer at its 10 s default, so a worker that missed
    # its wake-up would not finish the second batch within the 5 s allowed below.
    with running(worker, poll_timeout=None):
        for i in range(50):
            client.submit_job("short", b"background-%d" % i, background=True)
        wait_until(lambda: len(handled) == 50, 10, "50 background jobs")
        gevent.sleep(3)
        foreground = [
            client.submit_job("short", b"%d" % i, wait_until_complete=False) for i in range(50)
        ]
        client.wait_until_jobs_completed(foreground, poll_timeout=5)

    assert sorted(handled[:50]) == sorted(b"background-%d" % i for i in range(50))
    assert [request.result for request in foreground] == [b"%d" % i for i in range(50)]


# ---------------------------------------------------------------------------------------------
# Results and failures


def test_none_result_sends_empty_data(gearmand: GearmandProcess, client: GearmanClient) -> None:
    worker = GearmanWorker([gearmand.address])
    worker.register_task("nothing", lambda worker, job: None)

    with running(worker):
        request = client.submit_job("nothing", b"ignored", poll_timeout=5)
    assert request.state == JOB_COMPLETE
    assert request.result == b""


def explode(worker: GearmanWorker, job: GearmanJob) -> bytes:
    raise ValueError(f"cannot handle {bytes(job.data)!r}")


def test_handler_exception_reaches_client(
    gearmand: GearmandProcess, client: GearmanClient, caplog: pytest.LogCaptureFixture
) -> None:
    with Relay(HOST, gearmand.port) as relay:
        worker = add_ping(GearmanWorker([relay.address]))
        worker.register_task("explode", explode)
        with running(worker):
            requests = [
                client.submit_job("explode", b"input-%d" % i, wait_until_complete=False)
                for i in range(3)
            ]
            client.wait_until_jobs_completed(requests, poll_timeout=5)
            ping(client)
        terminal = terminal_packets_by_handle(relay)
        exceptions_sent = relay.count(TO_SERVER, PacketType.WORK_EXCEPTION)
        failures_sent = relay.count(TO_SERVER, PacketType.WORK_FAIL)

    # gearmand ends a job on WORK_EXCEPTION, so a WORK_FAIL after it would be rejected.
    assert exceptions_sent == 3
    assert failures_sent == 0
    for i, request in enumerate(requests):
        handle = request.job.handle
        assert handle is not None
        assert request.state == JOB_FAILED
        assert isinstance(request.exception, bytes)
        assert b"ValueError" in request.exception
        assert b"input-%d" % i in request.exception
        assert terminal[handle.encode()] == 1
        errors = log_messages(caplog.records, logging.ERROR, handle)
        assert len(errors) == 1
        assert "explode" in errors[0]
    assert "JOB_NOT_FOUND" not in gearmand_log(gearmand)


def test_failed_background_job_not_retried(
    gearmand: GearmandProcess, client: GearmanClient
) -> None:
    calls: list[str] = []

    def explode_once(worker: GearmanWorker, job: GearmanJob) -> bytes:
        calls.append(job.handle)
        raise RuntimeError("background failure")

    request = client.submit_job("explode", b"", background=True)
    worker = add_ping(GearmanWorker([gearmand.address]))
    worker.register_task("explode", explode_once)
    with running(worker):
        wait_until(lambda: calls, 5, "the background job to start")
        wait_until(lambda: gearmand.status()["explode"][0] == 0, 5, "the job to leave the queue")
        ping(client)
        jobs_listing = gearmand.admin("show jobs")

    assert calls == [request.job.handle]
    assert str(request.job.handle) not in jobs_listing


def test_unencodable_result_fails_only_that_job(
    gearmand: GearmandProcess, caplog: pytest.LogCaptureFixture
) -> None:
    worker = GearmanWorker([gearmand.address], data_encoder="json", max_jobs=2)
    worker.register_task("double", lambda worker, job: job.data * 2)
    worker.register_task("make-set", lambda worker, job: {1, 2})

    with running(worker), GearmanClient([gearmand.address], data_encoder="json") as json_client:
        failing = [
            json_client.submit_job("make-set", i, wait_until_complete=False) for i in range(5)
        ]
        good = [json_client.submit_job("double", i, wait_until_complete=False) for i in range(3)]
        json_client.wait_until_jobs_completed(failing + good, poll_timeout=10)

    for request in failing:
        handle = request.job.handle
        assert handle is not None
        assert request.state == JOB_FAILED
        assert isinstance(request.exception, str)
        assert "encode" in request.exception
        assert "set" in request.exception
        errors = log_messages(caplog.records, logging.ERROR, handle)
        assert len(errors) == 1
        assert "make-set" in errors[0]
    assert [request.result for request in good] == [0, 2, 4]


def test_undecodable_data_fails_before_handler(
    gearmand: GearmandProcess, client: GearmanClient, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[Any] = []
    worker = GearmanWorker([gearmand.address], data_encoder="json")
    worker.register_task("parse", lambda worker, job: calls.append(job.data))

    with running(worker):
        request = client.submit_job("parse", b"{not json", poll_timeout=5)

    handle = request.job.handle
    assert handle is not None
    assert request.state == JOB_FAILED
    assert isinstance(request.exception, bytes)
    assert b"decode" in request.exception
    assert calls == []
    errors = log_messages(caplog.records, logging.ERROR, handle)
    assert len(errors) == 1
    assert "parse" in errors[0]


def test_job_timeout_kills_handler(
    gearmand: GearmandProcess, client: GearmanClient, caplog: pytest.LogCaptureFixture
) -> None:
    cleaned_up: list[str] = []

    def maybe_slow(worker: GearmanWorker, job: GearmanJob) -> bytes:
        if job.data != b"slow":
            return b"fast"
        try:
            gevent.sleep(5)
        finally:
            cleaned_up.append(job.handle)
        return b"too late"

    worker = GearmanWorker([gearmand.address])
    worker.register_task("maybe-slow", maybe_slow, timeout=0.3)
    with running(worker):
        wait_for_registration(gearmand, "maybe-slow")
        started = time.monotonic()
        slow = client.submit_job("maybe-slow", b"slow", poll_timeout=5)
        elapsed = time.monotonic() - started
        fast = client.submit_job("maybe-slow", b"fast", poll_timeout=5)

    handle = slow.job.handle
    assert handle is not None
    assert slow.state == JOB_FAILED
    assert isinstance(slow.exception, bytes)
    assert b"timed out" in slow.exception
    assert elapsed < 1.5
    assert cleaned_up == [handle]
    assert fast.result == b"fast"
    errors = log_messages(caplog.records, logging.ERROR, handle)
    assert len(errors) == 1
    assert "maybe-slow" in errors[0]


def test_progress_updates_reach_client_in_order(gearmand: GearmandProcess) -> None:
    def report(worker: GearmanWorker, job: GearmanJob) -> bytes:
        worker.send_job_data(job, b"part-1")
        worker.send_job_warning(job, b"warning-1")
        worker.send_job_status(job, 1, 3)
        worker.send_job_data(job, b"part-2")
        worker.send_job_status(job, 2, 3)
        worker.send_job_warning(job, b"warning-2")
        return b"done"

    worker = GearmanWorker([gearmand.address])
    worker.register_task("report", report)
    with (
        Relay(HOST, gearmand.port) as relay,
        GearmanClient([relay.address]) as relayed_client,
        running(worker),
    ):
        request = relayed_client.submit_job("report", b"", poll_timeout=5)

    handle = request.job.handle
    assert handle is not None
    assert request.result == b"done"
    assert list(request.data_updates) == [b"part-1", b"part-2"]
    assert list(request.warning_updates) == [b"warning-1", b"warning-2"]
    assert request.status["numerator"] == 2
    assert request.status["denominator"] == 3
    prefix = handle.encode() + b"\0"
    updates = [
        (PacketType(record.packet_type).name, record.payload.removeprefix(prefix))
        for record in relay.packets(TO_CLIENT)
        if record.payload.startswith(prefix) and record.packet_type != PacketType.JOB_CREATED
    ]
    assert updates == [
        ("WORK_DATA", b"part-1"),
        ("WORK_WARNING", b"warning-1"),
        ("WORK_STATUS", b"1\x003"),
        ("WORK_DATA", b"part-2"),
        ("WORK_STATUS", b"2\x003"),
        ("WORK_WARNING", b"warning-2"),
        ("WORK_COMPLETE", b"done"),
    ]


def test_send_job_complete_then_return(gearmand: GearmandProcess, client: GearmanClient) -> None:
    def answer_early(worker: GearmanWorker, job: GearmanJob) -> bytes:
        worker.send_job_complete(job, b"explicit")
        return b"returned"

    with Relay(HOST, gearmand.port) as relay:
        worker = add_ping(GearmanWorker([relay.address]))
        worker.register_task("answer-early", answer_early)
        with running(worker):
            request = client.submit_job("answer-early", b"", poll_timeout=5)
            ping(client)
        completes = relay.packets(TO_SERVER, PacketType.WORK_COMPLETE)
        terminal = terminal_packets_by_handle(relay)

    handle = request.job.handle
    assert handle is not None
    assert request.result == b"explicit"
    assert terminal[handle.encode()] == 1
    assert [r.payload for r in completes if handle_of(r.payload) == handle.encode()] == [
        handle.encode() + b"\0explicit"
    ]
    assert "JOB_NOT_FOUND" not in gearmand_log(gearmand)


def test_send_after_answer_raises(gearmand: GearmandProcess, client: GearmanClient) -> None:
    errors: dict[str, BaseException | None] = {}

    def answer_then_send(worker: GearmanWorker, job: GearmanJob) -> None:
        worker.send_job_complete(job, b"answered")
        attempts = {
            "data": lambda: worker.send_job_data(job, b"late"),
            "warning": lambda: worker.send_job_warning(job, b"late"),
            "status": lambda: worker.send_job_status(job, 1, 2),
            "complete": lambda: worker.send_job_complete(job, b"again"),
            "failure": lambda: worker.send_job_failure(job),
        }
        for name, attempt in attempts.items():
            try:
                attempt()
            except Exception as exc:
                errors[name] = exc
            else:
                errors[name] = None

    worker = GearmanWorker([gearmand.address])
    worker.register_task("answer-then-send", answer_then_send)
    with running(worker):
        request = client.submit_job("answer-then-send", b"", poll_timeout=5)

    assert request.result == b"answered"
    assert isinstance(errors["data"], LocalProtocolError)
    assert isinstance(errors["warning"], LocalProtocolError)
    assert isinstance(errors["status"], LocalProtocolError)
    assert isinstance(errors["complete"], LocalProtocolError)
    assert isinstance(errors["failure"], LocalProtocolError)


def test_send_job_status_rejects_non_int(gearmand: GearmandProcess, client: GearmanClient) -> None:
    errors: dict[str, BaseException | None] = {}
    invalid = {"str": ("1", 2), "float": (1.5, 2), "bool": (True, 2), "denominator": (1, "2")}

    def send_bad_status(worker: GearmanWorker, job: GearmanJob) -> bytes:
        for name, (numerator, denominator) in invalid.items():
            try:
                worker.send_job_status(job, numerator, denominator)  # type: ignore[arg-type]
            except Exception as exc:
                errors[name] = exc
            else:
                errors[name] = None
        return b"done"

    worker = GearmanWorker([gearmand.address])
    worker.register_task("bad-status", send_bad_status)
    with running(worker):
        request = client.submit_job("bad-status", b"", poll_timeout=5)

    assert request.result == b"done"
    assert request.status == {}
    assert isinstance(errors["str"], ValueError)
    assert isinstance(errors["float"], ValueError)
    assert isinstance(errors["bool"], ValueError)
    assert isinstance(errors["denominator"], ValueError)


# ---------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param("bad\0name", repr("bad\0name"), id="nul"),
        pytest.param(b"bad\0name", repr(b"bad\0name"), id="nul-bytes"),
        pytest.param("bad name", repr("bad name"), id="space"),
        pytest.param("bad\nname", repr("bad\nname"), id="newline"),
    ],
)
def test_register_task_rejects_invalid_name(
    gearmand: GearmandProcess, client: GearmanClient, name: str | bytes, fragment: str
) -> None:
    with Relay(HOST, gearmand.port) as relay:
        worker = add_ping(GearmanWorker([relay.address]))
        with running(worker):
            wait_for_registration(gearmand, "ping")
            can_do_before = relay.count(TO_SERVER, PacketType.CAN_DO)

            with pytest.raises(ValueError) as raised:
                worker.register_task(name, reverse)
            ping(client)

            assert fragment in str(raised.value)
            assert relay.count(TO_SERVER, PacketType.CAN_DO) == can_do_before
            assert worker.registered_tasks == ["ping"]


@pytest.mark.parametrize("entry", ["host:notaport", ("h",), 42, "h:70000"], ids=repr)
def test_host_list_rejects_invalid_entry(entry: Any) -> None:
    with pytest.raises(ValueError) as raised:
        GearmanWorker([entry])
    assert repr(entry) in str(raised.value)


@pytest.mark.parametrize("payload", [b"\x00", b"a\x00b", b"abc\x00", b""], ids=repr)
def test_payload_round_trips_exactly(
    gearmand: GearmandProcess, client: GearmanClient, payload: bytes
) -> None:
    received: list[bytes] = []

    def record_echo(worker: GearmanWorker, job: GearmanJob) -> bytes:
        received.append(job.data)
        return bytes(job.data)

    worker = GearmanWorker([gearmand.address])
    worker.register_task("echo", record_echo)
    with running(worker):
        request = client.submit_job("echo", payload, poll_timeout=5)

    assert received == [payload]
    assert request.state == JOB_COMPLETE
    assert request.result == payload


def test_ten_mebibyte_payload_round_trips(gearmand: GearmandProcess, client: GearmanClient) -> None:
    payload = bytes(range(256)) * (10 * 1024 * 1024 // 256)
    worker = GearmanWorker([gearmand.address])
    worker.register_task("echo", echo)

    with running(worker):
        request = client.submit_job("echo", payload, poll_timeout=20)

    assert request.state == JOB_COMPLETE
    assert len(request.result) == len(payload)
    assert request.result == payload


def test_sys_exit_requeues_running_jobs(gearmand: GearmandProcess, client: GearmanClient) -> None:
    first_handles: list[str] = []
    both_running = gevent.event.Event()

    def exit_or_wait(worker: GearmanWorker, job: GearmanJob) -> bytes:
        first_handles.append(job.handle)
        if len(first_handles) == 2:
            both_running.set()
        both_running.wait(5)
        if job.data == b"exit":
            sys.exit(3)
        gevent.sleep(5)
        return b"first worker"

    outcome: dict[str, Any] = {}

    def work_and_record(worker: GearmanWorker) -> None:
        try:
            worker.work(1.0)
        except SystemExit as exc:
            outcome["exit"] = exc
            outcome["greenlet"] = gevent.getcurrent()
        else:
            outcome["returned"] = True

    with Relay(HOST, gearmand.port) as relay:
        first = GearmanWorker([relay.address])
        first.register_task("crash", exit_or_wait)
        caller = gevent.spawn(work_and_record, first)
        try:
            requests = [
                client.submit_job("crash", b"exit", wait_until_complete=False),
                client.submit_job("crash", b"wait", wait_until_complete=False),
            ]
            caller.join(5)
        finally:
            first.shutdown(graceful=False)
            caller.join(5)
        wait_until(lambda: relay.open_connections == 0, 5, "the relay to see the worker close")
        terminal = terminal_packets_by_handle(relay)

    assert isinstance(outcome.get("exit"), SystemExit)
    assert outcome["exit"].code == 3
    assert outcome["greenlet"] is caller
    assert len(first_handles) == 2
    assert terminal[first_handles[0].encode()] == 0
    assert terminal[first_handles[1].encode()] == 0

    second_handles: list[str] = []

    def finish(worker: GearmanWorker, job: GearmanJob) -> bytes:
        second_handles.append(job.handle)
        return b"second worker"

    second = GearmanWorker([gearmand.address])
    second.register_task("crash", finish)
    with running(second):
        client.wait_until_jobs_completed(requests, poll_timeout=5)

    assert [request.result for request in requests] == [b"second worker"] * 2
    assert sorted(second_handles) == sorted(first_handles)


def test_bad_magic_from_server_reconnects(caplog: pytest.LogCaptureFixture) -> None:
    fake = BadMagicJobServer()
    try:
        worker = GearmanWorker([fake.address])
        worker.register_task("reverse", reverse)
        with running(worker, poll_timeout=0.1) as greenlet:
            wait_until(lambda: fake.connections >= 2, 5, "a second connection")
            wait_until(lambda: 1 in fake.closed_by_peer, 5, "the first connection to close")
            gevent.sleep(0.3)
            assert not greenlet.dead
    finally:
        fake.stop()

    errors = log_messages(caplog.records, logging.ERROR, "bad magic")
    assert len(errors) == 1
    assert "BAD" in errors[0]
    assert fake.address in errors[0]


# ---------------------------------------------------------------------------------------------
# Connections


class CountingResolver:
    """A worker resolver that maps every host to 127.0.0.1 and counts connection attempts."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, host: str, port: int) -> list[tuple[int, tuple[str, int]]]:
        self.calls += 1
        return [(stdlib_socket.AF_INET, (HOST, port))]


def test_worker_started_before_gearmand(gearmand_factory: GearmandFactory) -> None:
    port = unused_port()
    resolver = CountingResolver()
    worker = GearmanWorker([f"{HOST}:{port}"], resolver=resolver)
    worker.register_task("reverse", reverse)

    with running(worker) as greenlet:
        wait_until(lambda: resolver.calls >= 2, 5, "two failed connection attempts")
        server = gearmand_factory(port=port)
        with GearmanClient([server.address]) as late_client:
            request = late_client.submit_job("reverse", b"late", poll_timeout=10)
        assert not greenlet.dead

    assert request.result == b"etal"


def test_worker_reregisters_after_gearmand_restart(gearmand: GearmandProcess) -> None:
    worker = GearmanWorker([gearmand.address], client_id="restart-worker")
    worker.register_task("reverse", reverse)
    worker.register_task("echo", echo)

    with running(worker) as greenlet:
        wait_for_registration(gearmand, "echo", client_id="restart-worker")
        gearmand.kill()
        gearmand.start()
        wait_until(
            lambda: registered_functions(gearmand, "restart-worker") == {"reverse", "echo"},
            5,
            "the worker to register again after the restart",
        )
        with GearmanClient([gearmand.address]) as new_client:
            request = new_client.submit_job("reverse", b"again", poll_timeout=5)
        assert not greenlet.dead

    assert request.result == b"niaga"


def test_reconnect_attempts_bounded_during_outage(gearmand: GearmandProcess) -> None:
    resolver = CountingResolver()
    worker = GearmanWorker([gearmand.address], resolver=resolver)
    worker.register_task("reverse", reverse)

    with running(worker) as greenlet:
        wait_for_registration(gearmand, "reverse")
        gearmand.kill()
        attempts_before = resolver.calls
        gevent.sleep(3)
        attempts = resolver.calls - attempts_before
        gearmand.start()
        assert not greenlet.dead

    assert attempts >= 2
    assert attempts <= 12


def test_dropped_connection_abandons_running_job(
    gearmand: GearmandProcess, client: GearmanClient
) -> None:
    attempts: list[GearmanJob] = []
    abandoned: list[str] = []
    first_started = gevent.event.Event()

    def slow_first_attempt(worker: GearmanWorker, job: GearmanJob) -> bytes:
        attempts.append(job)
        if len(attempts) > 1:
            return b"second attempt"
        first_started.set()
        try:
            gevent.sleep(5)
        except JobAbandoned:
            abandoned.append(job.handle)
            raise
        return b"first attempt"

    with Relay(HOST, gearmand.port) as relay:
        worker = GearmanWorker([relay.address])
        worker.register_task("slow-first", slow_first_attempt)
        with running(worker):
            request = client.submit_job("slow-first", b"", wait_until_complete=False)
            assert first_started.wait(5)
            relay.close_all()
            client.wait_until_jobs_completed([request], poll_timeout=10)
        completes = relay.packets(TO_SERVER, PacketType.WORK_COMPLETE)

    handle = request.job.handle
    assert handle is not None
    assert len(attempts) == 2
    assert attempts[0].handle == handle
    assert attempts[1].handle == handle
    assert abandoned == [handle]
    assert attempts[0].connection_lost is True
    assert request.result == b"second attempt"
    assert [record.payload for record in completes] == [handle.encode() + b"\0second attempt"]


def test_stale_result_not_sent_after_restart(
    gearmand: GearmandProcess, client: GearmanClient
) -> None:
    old_started = gevent.event.Event()
    new_started = gevent.event.Event()
    old_returned = gevent.event.Event()
    abandoned: list[str] = []

    def old_or_new(worker: GearmanWorker, job: GearmanJob) -> bytes:
        if job.data == b"new":
            new_started.set()
            old_returned.wait(5)
            return b"fresh result"
        old_started.set()
        try:
            gevent.sleep(5)
        except JobAbandoned:
            abandoned.append(job.handle)
        # Keep running past the reconnect, like a handler whose code ignores the kill, and
        # return only once the new job that reuses this handle is running.
        new_started.wait(5)
        old_returned.set()
        return b"stale result"

    with Relay(HOST, gearmand.port) as relay:
        worker = GearmanWorker([relay.address])
        worker.register_task("old-or-new", old_or_new)
        with running(worker):
            old = client.submit_job("old-or-new", b"old", wait_until_complete=False)
            assert old_started.wait(5)
            gearmand.kill()
            gearmand.start()
            with GearmanClient([gearmand.address]) as new_client:
                new = new_client.submit_job("old-or-new", b"new", poll_timeout=10)
            client.wait_until_jobs_completed([old], poll_timeout=5)
        sent = [record.payload for record in relay.packets(TO_SERVER)]

    assert old.job.handle is not None
    assert new.job.handle == old.job.handle
    assert abandoned == [old.job.handle]
    assert isinstance(old.error, ConnectionLostError)
    assert new.result == b"fresh result"
    assert not any(b"stale result" in payload for payload in sent)


def test_dead_server_does_not_delay_live_one(
    gearmand: GearmandProcess, client: GearmanClient
) -> None:
    worker = GearmanWorker([gearmand.address, f"{HOST}:{unused_port()}"])
    worker.register_task("reverse", reverse)

    with running(worker):
        wait_for_registration(gearmand, "reverse")
        started = time.monotonic()
        requests = [
            client.submit_job("reverse", b"job-%d" % i, wait_until_complete=False) for i in range(5)
        ]
        client.wait_until_jobs_completed(requests, poll_timeout=5)
        elapsed = time.monotonic() - started

    assert [request.result for request in requests] == [b"%d-boj" % i for i in range(5)]
    assert elapsed < 2.0


def test_lost_noop_recovered_by_regrab(gearmand: GearmandProcess, client: GearmanClient) -> None:
    with Relay(HOST, gearmand.port) as relay:
        relay.drop(TO_CLIENT, PacketType.NOOP)
        worker = GearmanWorker([relay.address])
        worker.register_task("reverse", reverse)
        with running(worker, poll_timeout=1.0):
            relay.wait_for(TO_SERVER, PacketType.PRE_SLEEP)
            started = time.monotonic()
            request = client.submit_job("reverse", b"woken", poll_timeout=5)
            elapsed = time.monotonic() - started

    assert request.result == b"nekow"
    assert elapsed < 3.0
    assert relay.count(TO_CLIENT, PacketType.NOOP, dropped=True) == 1


# ---------------------------------------------------------------------------------------------
# Shutdown


def test_shutdown_from_handler(gearmand: GearmandProcess, client: GearmanClient) -> None:
    def stop_worker(worker: GearmanWorker, job: GearmanJob) -> bytes:
        worker.shutdown()
        return b"last job"

    worker = GearmanWorker([gearmand.address])
    worker.register_task("stop", stop_worker)
    with running(worker) as greenlet:
        request = client.submit_job("stop", b"", poll_timeout=5)
        greenlet.join(5)
        assert greenlet.dead
        assert greenlet.successful()
    assert request.result == b"last job"


def test_shutdown_from_other_greenlet(gearmand: GearmandProcess) -> None:
    worker = GearmanWorker([gearmand.address])
    worker.register_task("reverse", reverse)

    with running(worker) as greenlet:
        wait_for_registration(gearmand, "reverse")
        gevent.spawn(worker.shutdown).join(5)
        greenlet.join(5)
        assert greenlet.dead
        assert greenlet.successful()


def test_graceful_shutdown_delivers_results(
    gearmand: GearmandProcess, client: GearmanClient
) -> None:
    started: list[str] = []

    def slow(worker: GearmanWorker, job: GearmanJob) -> bytes:
        started.append(job.handle)
        gevent.sleep(0.5)
        return b"finished " + bytes(job.data)

    worker = GearmanWorker([gearmand.address])
    worker.register_task("slow", slow)
    with running(worker) as greenlet:
        requests = [
            client.submit_job("slow", b"%d" % i, wait_until_complete=False) for i in range(3)
        ]
        wait_until(lambda: len(started) == 3, 5, "three running jobs")
        worker.shutdown()
        gevent.sleep(0.05)
        still_working = not greenlet.dead
        greenlet.join(5)
        assert greenlet.dead
        assert greenlet.successful()
        client.wait_until_jobs_completed(requests, poll_timeout=1)

    assert still_working
    assert [request.result for request in requests] == [b"finished %d" % i for i in range(3)]


def test_graceful_shutdown_timeout_requeues_job(
    gearmand: GearmandProcess, client: GearmanClient
) -> None:
    started = gevent.event.Event()

    def stuck(worker: GearmanWorker, job: GearmanJob) -> bytes:
        started.set()
        gevent.sleep(5)
        return b"too late"

    worker = GearmanWorker([gearmand.address])
    worker.register_task("stuck", stuck)
    with running(worker) as greenlet:
        request = client.submit_job("stuck", b"", wait_until_complete=False)
        assert started.wait(5)
        shutdown_started = time.monotonic()
        worker.shutdown(timeout=0.2)
        greenlet.join(5)
        elapsed = time.monotonic() - shutdown_started
        assert greenlet.dead

    assert elapsed < 1.0
    wait_until(lambda: gearmand.status()["stuck"] == (1, 0, 0), 5, "the job to be requeued")
    assert not request.finished

    second = GearmanWorker([gearmand.address])
    second.register_task("stuck", lambda worker, job: b"second worker")
    with running(second):
        client.wait_until_jobs_completed([request], poll_timeout=5)
    assert request.result == b"second worker"


def test_immediate_shutdown_requeues_job(gearmand: GearmandProcess, client: GearmanClient) -> None:
    started = gevent.event.Event()

    def stuck(worker: GearmanWorker, job: GearmanJob) -> bytes:
        started.set()
        gevent.sleep(5)
        return b"too late"

    worker = GearmanWorker([gearmand.address])
    worker.register_task("stuck", stuck)
    with running(worker) as greenlet:
        request = client.submit_job("stuck", b"", wait_until_complete=False)
        assert started.wait(5)
        shutdown_started = time.monotonic()
        worker.shutdown(graceful=False)
        greenlet.join(5)
        elapsed = time.monotonic() - shutdown_started
        assert greenlet.dead

    assert elapsed < 1.0
    wait_until(lambda: gearmand.status()["stuck"] == (1, 0, 0), 5, "the job to be requeued")
    assert not request.finished


# ---------------------------------------------------------------------------------------------
# Registering during work()


def test_register_task_while_working(gearmand: GearmandProcess, client: GearmanClient) -> None:
    worker = GearmanWorker([gearmand.address])
    worker.register_task("reverse", reverse)

    with running(worker):
        wait_for_registration(gearmand, "reverse")
        worker.register_task("echo", echo)
        request = client.submit_job("echo", b"added later", poll_timeout=5)

    assert request.result == b"added later"


def test_unregister_task_while_job_runs(
    gearmand: GearmandProcess, client: GearmanClient, caplog: pytest.LogCaptureFixture
) -> None:
    started = gevent.event.Event()
    release = gevent.event.Event()

    def wait_for_release(worker: GearmanWorker, job: GearmanJob) -> bytes:
        started.set()
        release.wait(5)
        return b"completed after unregister"

    worker = GearmanWorker([gearmand.address], client_id="unregister-worker")
    worker.register_task("held", wait_for_release)
    worker.register_task("reverse", reverse)
    with running(worker):
        request = client.submit_job("held", b"", wait_until_complete=False)
        assert started.wait(5)
        worker.unregister_task("held")
        release.set()
        client.wait_until_jobs_completed([request], poll_timeout=5)
        wait_until(
            lambda: registered_functions(gearmand, "unregister-worker") == {"reverse"},
            5,
            "the function to leave the workers listing",
        )

    assert request.state == JOB_COMPLETE
    assert request.result == b"completed after unregister"
    assert worker.registered_tasks == ["reverse"]
    assert "JOB_NOT_FOUND" not in gearmand_log(gearmand)
    assert log_messages(caplog.records, logging.WARNING, "returned ERROR") == []


# ---------------------------------------------------------------------------------------------
# Perl job server (Gearman::Server)


@pytest.fixture
def perl_client(perl_gearmand: GearmandProcess) -> Iterator[GearmanClient]:
    with GearmanClient([perl_gearmand.address]) as gearman_client:
        yield gearman_client


def test_perl_server_completes_jobs(
    perl_gearmand: GearmandProcess, perl_client: GearmanClient
) -> None:
    worker = GearmanWorker([perl_gearmand.address])
    worker.register_task("reverse", reverse)

    with running(worker):
        requests = [
            perl_client.submit_job("reverse", b"perl-%d" % i, wait_until_complete=False)
            for i in range(5)
        ]
        perl_client.wait_until_jobs_completed(requests, poll_timeout=5)

    assert [request.result for request in requests] == [b"%d-lrep" % i for i in range(5)]


def test_perl_server_handler_exception_ends_job(
    perl_gearmand: GearmandProcess, perl_client: GearmanClient
) -> None:
    worker = GearmanWorker([perl_gearmand.address])
    worker.register_task("explode", explode)

    with running(worker):
        request = perl_client.submit_job("explode", b"perl", poll_timeout=5)
        wait_until(
            lambda: perl_gearmand.status().get("explode", (None, None))[:2] == (0, 0),
            5,
            "no queued or running explode job",
        )

    assert request.state == JOB_FAILED
    assert isinstance(request.exception, bytes)
    assert b"ValueError" in request.exception


def test_perl_server_drops_work_data(
    perl_gearmand: GearmandProcess, perl_client: GearmanClient, caplog: pytest.LogCaptureFixture
) -> None:
    def stream(worker: GearmanWorker, job: GearmanJob) -> bytes:
        worker.send_job_data(job, b"part-1")
        worker.send_job_data(job, b"part-2")
        return b"complete"

    worker = GearmanWorker([perl_gearmand.address])
    worker.register_task("stream", stream)
    with running(worker):
        first = perl_client.submit_job("stream", b"", poll_timeout=5)
        second = perl_client.submit_job("stream", b"", poll_timeout=5)

    assert first.result == b"complete"
    assert second.result == b"complete"
    assert list(first.data_updates) == []
    assert len(log_messages(caplog.records, logging.WARNING, "WORK_DATA")) == 1


# ---------------------------------------------------------------------------------------------
# python-gearman's overridable hooks


def test_on_job_exception_override(gearmand: GearmandProcess, client: GearmanClient) -> None:
    seen: list[str] = []

    class PlainFailWorker(GearmanWorker):
        def on_job_exception(self, current_job: GearmanJob, exc_info: Any) -> bool:
            seen.append(type(exc_info[1]).__name__)
            self.send_job_failure(current_job)
            return False

    def boom(worker: GearmanWorker, job: GearmanJob) -> bytes:
        raise KeyError("missing")

    worker = PlainFailWorker([gearmand.address], max_jobs=2)
    worker.register_task("hooks.boom", boom)
    with running(worker):
        request = client.submit_job("hooks.boom", b"x", poll_timeout=5)

    assert request.state == JOB_FAILED
    assert request.exception is None
    assert seen == ["KeyError"]


def test_on_job_complete_override(gearmand: GearmandProcess, client: GearmanClient) -> None:
    class WrappingWorker(GearmanWorker):
        def on_job_complete(self, current_job: GearmanJob, job_result: Any) -> bool:
            return super().on_job_complete(current_job, b"<" + job_result + b">")

    worker = WrappingWorker([gearmand.address], max_jobs=2)
    worker.register_task("hooks.wrap", reverse)
    with running(worker):
        request = client.submit_job("hooks.wrap", b"abc", poll_timeout=5)

    assert request.state == JOB_COMPLETE
    assert request.result == b"<cba>"


def test_unanswering_on_job_execute_fails_job(
    gearmand: GearmandProcess, client: GearmanClient
) -> None:
    class ForgetfulWorker(GearmanWorker):
        def on_job_execute(self, current_job: GearmanJob) -> bool:
            return True

    worker = ForgetfulWorker([gearmand.address], max_jobs=2)
    worker.register_task("hooks.forget", reverse)
    with running(worker):
        request = client.submit_job("hooks.forget", b"abc", poll_timeout=5)

    assert request.state == JOB_FAILED
    assert b"did not answer" in request.exception


def test_timeout_not_swallowed_by_handler(gearmand: GearmandProcess, client: GearmanClient) -> None:
    def catches_everything(worker: GearmanWorker, job: GearmanJob) -> bytes:
        try:
            gevent.sleep(5)
        except Exception:
            return b"caught"
        return b"slept"

    worker = GearmanWorker([gearmand.address], max_jobs=2)
    worker.register_task("hooks.catch", catches_everything, timeout=0.2)
    with running(worker):
        started = time.monotonic()
        request = client.submit_job("hooks.catch", b"", poll_timeout=5)
        elapsed = time.monotonic() - started

    assert request.state == JOB_FAILED
    assert b"timed out after 0.2 s" in request.exception
    assert elapsed < 2


def test_repeated_server_errors_logged_once(
    gearmand: GearmandProcess, client: GearmanClient, caplog: pytest.LogCaptureFixture
) -> None:
    from geargevent._framing import encode_packet

    def stray_results(worker: GearmanWorker, job: GearmanJob) -> bytes:
        # Results for a handle this connection does not hold: gearmand answers each
        # with ERROR JOB_NOT_FOUND, which names no job.
        stray = encode_packet(PacketType.WORK_COMPLETE, b"H:nosuch:1", b"")
        for _ in range(5):
            job.connection.send_job_packet(job, stray, terminal=False)
        return b"done"

    worker = GearmanWorker([gearmand.address], max_jobs=2)
    worker.register_task("errors.stray", stray_results)
    with running(worker):
        request = client.submit_job("errors.stray", b"", poll_timeout=5)
        assert request.result == b"done"
        wait_until(
            lambda: log_messages(caplog.records, logging.WARNING, "JOB_NOT_FOUND"),
            5,
            "the first ERROR to be logged",
        )
        gevent.sleep(0.3)

    reports = log_messages(caplog.records, logging.WARNING, "JOB_NOT_FOUND")
    assert len(reports) == 1
    assert request.state == JOB_COMPLETE


def test_python_gearman_text_encoder(gearmand: GearmandProcess) -> None:
    import json

    class TextJSONEncoder(DataEncoder):
        # python-gearman's JSON encoder example: json.dumps returns str on Python 3.
        @classmethod
        def encode(cls, encodable_object: Any) -> Any:
            return json.dumps(encodable_object)

        @classmethod
        def decode(cls, decodable_string: bytes) -> Any:
            return json.loads(decodable_string)

    class TextJSONWorker(GearmanWorker):
        data_encoder = TextJSONEncoder

    def total(worker: GearmanWorker, job: GearmanJob) -> Any:
        return {"sum": sum(job.data["numbers"]), "note": "ü"}

    def broken(worker: GearmanWorker, job: GearmanJob) -> Any:
        raise ValueError("bad input")

    worker = TextJSONWorker([gearmand.address], max_jobs=2)
    worker.register_task("text.sum", total)
    worker.register_task("text.broken", broken)
    with (
        running(worker),
        GearmanClient([gearmand.address], data_encoder=TextJSONEncoder) as json_client,
    ):
        good = json_client.submit_job("text.sum", {"numbers": [1, 2, 3]}, poll_timeout=5)
        bad = json_client.submit_job("text.broken", {}, poll_timeout=5)

    assert good.result == {"sum": 6, "note": "ü"}
    assert bad.state == JOB_FAILED
    assert bad.exception == "ValueError: bad input"
