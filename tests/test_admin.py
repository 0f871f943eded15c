"""GearmanAdminClient against gearmand 1.1.20, the Perl Gearman::Server and fake servers.

Workers run in greenlets of this process. gearadmin runs through gevent.subprocess, so the
workers keep serving while it runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket as stdlib_socket
import sys
import time
from collections.abc import Callable, Iterator

import gevent
import gevent.server
import gevent.subprocess
import pytest
from gevent import socket

from geargevent import GearmanClient, GearmanWorker, ServerError
from geargevent.admin import GearmanAdminClient
from geargevent.client import PRIORITY_HIGH, PRIORITY_LOW
from geargevent.errors import (
    ConnectionLostError,
    GearmanTimeoutError,
    RemoteProtocolError,
    ServerUnavailableError,
)
from geargevent.testing import GearmandFactory, GearmandProcess, GearmanTools

HOST = "127.0.0.1"


# Helpers ------------------------------------------------------------------------------


@contextlib.contextmanager
def running_worker(
    server: GearmandProcess, functions: list[str], client_id: str = "admin-test"
) -> Iterator[GearmanWorker]:
    """Run a worker that registers ``functions`` (each echoes its data) until the block ends."""
    worker = GearmanWorker([server.address], client_id=client_id)
    for name in functions:
        worker.register_task(name, lambda _worker, job: job.data)
    greenlet = gevent.spawn(worker.work, 1.0)
    try:
        wait_until(
            lambda: all(name in server.status() for name in functions),
            what=f"functions {functions} registered on {server.address}",
        )
        yield worker
    finally:
        worker.shutdown(graceful=False)
        greenlet.join(5)


def wait_until(predicate: Callable[[], object], timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        gevent.sleep(0.02)


def submit_background(
    server: GearmandProcess,
    task: str,
    count: int,
    unique: str | None = None,
    priority: str | None = None,
) -> list[str]:
    """Submit ``count`` background jobs and return their handles."""
    client = GearmanClient([server.address])
    try:
        handles = []
        for index in range(count):
            request = client.submit_job(
                task,
                f"job-{index}",
                unique=unique,
                priority=priority,
                background=True,
                poll_timeout=5,
            )
            assert request.job.handle, f"background job {index} for {task!r} got no handle"
            handles.append(request.job.handle)
        return handles
    finally:
        client.close()


def gearadmin(tools: GearmanTools, server: GearmandProcess, option: str) -> str:
    completed = gevent.subprocess.run(
        [tools.gearadmin, "-h", HOST, "-p", str(server.port), option],
        stdout=gevent.subprocess.PIPE,
        stderr=gevent.subprocess.PIPE,
        timeout=15,
        check=True,
    )
    output: bytes = completed.stdout
    return output.decode("utf-8", "surrogateescape")


def listing_lines(output: str) -> list[str]:
    """Return the lines of a gearadmin listing up to its closing '.' line."""
    lines = []
    for line in output.split("\n"):
        line = line.rstrip("\r")
        if line == ".":
            break
        lines.append(line)
    return lines


def unused_port() -> int:
    with stdlib_socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class FakeAdminServer:
    """A fake job server on 127.0.0.1 that replies to each admin command line from a table.

    Args:
        replies: command line (without the newline) -> bytes to send back. A command
            missing from the table gets no reply at all.
        close_after_reply: close the connection right after sending a reply.

    Attributes:
        received: every line received, over all connections.
        connections: connections accepted so far.
    """

    def __init__(self, replies: dict[str, bytes], close_after_reply: bool = False) -> None:
        self.replies = replies
        self.close_after_reply = close_after_reply
        self.received: list[bytes] = []
        self.connections = 0
        self._server = gevent.server.StreamServer((HOST, 0), self._serve)
        self._server.start()

    @property
    def address(self) -> str:
        return f"{HOST}:{self._server.server_port}"

    def stop(self) -> None:
        self._server.stop(timeout=2)

    def _serve(self, sock: socket.socket, _peer: tuple[str, int]) -> None:
        self.connections += 1
        buffer = b""
        try:
            while True:
                data = sock.recv(4096)
                if not data:
                    return
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    self.received.append(line)
                    reply = self.replies.get(line.decode("utf-8", "replace"))
                    if reply is not None:
                        sock.sendall(reply)
                        if self.close_after_reply:
                            return
        finally:
            sock.close()


@pytest.fixture
def fake_admin_server() -> Iterator[Callable[..., FakeAdminServer]]:
    servers: list[FakeAdminServer] = []

    def start(replies: dict[str, bytes], close_after_reply: bool = False) -> FakeAdminServer:
        server = FakeAdminServer(replies, close_after_reply)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# gearmand: listings compared with gearadmin --------------------------------------------


def test_status_matches_gearadmin(gearmand: GearmandProcess, gearman_tools: GearmanTools) -> None:
    submit_background(gearmand, "queued_only", 3)
    with running_worker(gearmand, ["echo_a", "echo_b"]):
        admin = GearmanAdminClient([gearmand.address])
        figures = {
            (status.function, status.total, status.running, status.workers)
            for status in admin.get_status()
        }
        expected = set()
        for line in listing_lines(gearadmin(gearman_tools, gearmand, "--status")):
            function, total, running, workers = line.rsplit("\t", 3)
            expected.add((function, int(total), int(running), int(workers)))
        admin.close()

    assert figures == expected
    assert ("queued_only", 3, 0, 0) in figures
    assert ("echo_a", 0, 0, 1) in figures


def test_status_queued_is_total_minus_running(gearmand: GearmandProcess) -> None:
    submit_background(gearmand, "waiting", 2)
    with GearmanAdminClient([gearmand.address]) as admin:
        (status,) = [item for item in admin.get_status() if item.function == "waiting"]

    assert status.total == 2
    assert status.running == 0
    assert status.queued == 2


def test_workers_matches_gearadmin(gearmand: GearmandProcess, gearman_tools: GearmanTools) -> None:
    with running_worker(gearmand, ["alpha", "beta"], client_id="listing-worker"):
        admin = GearmanAdminClient([gearmand.address])
        ours = {
            (info.fd, info.ip, info.client_id, frozenset(info.functions))
            for info in admin.get_workers()
            if info.functions
        }
        listed = set()
        for line in listing_lines(gearadmin(gearman_tools, gearmand, "--workers")):
            head, _, names = line.partition(" :")
            fd, ip, client_id = head.split(" ", 2)
            if names.split():
                listed.add((int(fd), ip, client_id, frozenset(names.split())))
        admin.close()

    assert ours == listed
    assert len(ours) == 1
    (entry,) = ours
    assert entry[1] == HOST
    assert entry[2] == "listing-worker"
    assert entry[3] == {"alpha", "beta"}


def test_workers_lists_admin_connection_itself(gearmand: GearmandProcess) -> None:
    with GearmanAdminClient([gearmand.address]) as admin:
        admin.get_status()
        admin.ping_server()
        connections = admin.get_workers()

    # One admin connection is reused for every command, so it is listed once.
    assert len(connections) == 1
    assert connections[0].functions == ()
    assert connections[0].client_id == "-"


# gearmand: single values ----------------------------------------------------------------


def test_version_matches_gearadmin(gearmand: GearmandProcess, gearman_tools: GearmanTools) -> None:
    with GearmanAdminClient([gearmand.address]) as admin:
        version = admin.get_version()

    assert version.startswith("1.1.")
    assert gearadmin(gearman_tools, gearmand, "--server-version").strip() == version


def test_get_pid_is_server_process(gearmand: GearmandProcess) -> None:
    with GearmanAdminClient([gearmand.address]) as admin:
        assert admin.get_pid() == gearmand.pid


def test_get_verbose_returns_level(gearmand: GearmandProcess) -> None:
    with GearmanAdminClient([gearmand.address]) as admin:
        # The fixture starts gearmand with --verbose=INFO.
        assert admin.get_verbose() == "INFO"


def test_ping_server_returns_round_trip(gearmand: GearmandProcess) -> None:
    with GearmanAdminClient([gearmand.address]) as admin:
        first = admin.ping_server()
        # Text and binary requests share the one connection in any order.
        admin.get_status()
        second = admin.ping_server()
        version = admin.get_version()

    assert 0 < first < 5
    assert 0 < second < 5
    assert version.startswith("1.1.")


def test_priority_status_counts_queued_jobs(gearmand: GearmandProcess) -> None:
    submit_background(gearmand, "prio", 1, priority=PRIORITY_HIGH)
    submit_background(gearmand, "prio", 2)
    submit_background(gearmand, "prio", 3, priority=PRIORITY_LOW)
    with GearmanAdminClient([gearmand.address]) as admin:
        (row,) = [item for item in admin.get_priority_status() if item.function == "prio"]

    assert (row.high, row.normal, row.low, row.workers) == (1, 2, 3, 0)


def test_show_jobs_and_unique_jobs(gearmand: GearmandProcess) -> None:
    (handle,) = submit_background(gearmand, "held", 1, unique="unique-held-1")
    with GearmanAdminClient([gearmand.address]) as admin:
        jobs = {job.handle: job for job in admin.show_jobs()}
        uniques = admin.show_unique_jobs()

    assert handle in jobs
    assert jobs[handle].retries == 0
    assert jobs[handle].ignored == 0
    assert "unique-held-1" in uniques


# gearmand: changes ----------------------------------------------------------------------


def test_cancel_job_flags_queued_job(gearmand: GearmandProcess) -> None:
    (handle,) = submit_background(gearmand, "to_cancel", 1)
    with GearmanAdminClient([gearmand.address]) as admin:
        admin.cancel_job(handle)
        jobs = {job.handle: job for job in admin.show_jobs()}

    assert jobs[handle].ignored == 1


def test_cancel_unknown_job_raises_server_error(gearmand: GearmandProcess) -> None:
    with GearmanAdminClient([gearmand.address]) as admin, pytest.raises(ServerError) as caught:
        admin.cancel_job("H:nowhere:999")

    assert caught.value.code == "UNKNOWN_JOB"
    assert "H:nowhere:999" in str(caught.value)
    assert gearmand.address in str(caught.value)


def submit_until_refused(
    server: GearmandProcess, task: str, attempts: int, priority: str | None = None
) -> int:
    """Submit background jobs until one is refused; return how many were accepted."""
    client = GearmanClient([server.address])
    try:
        for accepted in range(attempts):
            request = client.submit_job(
                task, "x", background=True, priority=priority, poll_timeout=5
            )
            if request.error is not None:
                assert isinstance(request.error, ServerError)
                assert request.error.code == "QUEUE_ERROR"
                return accepted
        return attempts
    finally:
        client.close()


def test_set_maxqueue_limits_submissions(gearmand: GearmandProcess) -> None:
    submit_background(gearmand, "limited", 1)
    with GearmanAdminClient([gearmand.address]) as admin:
        applied = admin.set_maxqueue("limited", 3)

    assert applied is True
    # The limit counts the job already queued.
    assert submit_until_refused(gearmand, "limited", 5) == 2


def test_set_maxqueue_unknown_function_is_not_applied(gearmand: GearmandProcess) -> None:
    with GearmanAdminClient([gearmand.address]) as admin:
        applied = admin.set_maxqueue("not_yet_known", 1)

    assert applied is False
    # gearmand 1.1.20 replied OK but kept no limit.
    assert submit_until_refused(gearmand, "not_yet_known", 3) == 3


def test_set_maxqueue_per_priority(gearmand: GearmandProcess) -> None:
    submit_background(gearmand, "tiered", 1, priority=PRIORITY_LOW)
    with GearmanAdminClient([gearmand.address]) as admin:
        # Counting the queued low job: high may reach 3 jobs, normal and low 2.
        assert admin.set_maxqueue("tiered", 3, 2, 2) is True

    assert submit_until_refused(gearmand, "tiered", 5) == 1
    assert submit_until_refused(gearmand, "tiered", 5, priority=PRIORITY_LOW) == 0
    assert submit_until_refused(gearmand, "tiered", 5, priority=PRIORITY_HIGH) == 1


def test_send_maxqueue_is_python_gearman_alias(gearmand: GearmandProcess) -> None:
    submit_background(gearmand, "alias_limited", 1)
    with GearmanAdminClient([gearmand.address]) as admin:
        assert admin.send_maxqueue("alias_limited", 1) is True

    assert submit_until_refused(gearmand, "alias_limited", 3) == 0


@pytest.mark.parametrize(
    "sizes",
    [(), (1, 2), (1, 2, 3, 4), (-1,), (True,), (1.5,), ("3",)],
    ids=["none", "two", "four", "negative", "bool", "float", "str"],
)
def test_set_maxqueue_rejects_bad_limits(sizes: tuple[object, ...]) -> None:
    admin = GearmanAdminClient([f"{HOST}:{unused_port()}"])

    with pytest.raises(ValueError):
        admin.set_maxqueue("fn", *sizes)  # type: ignore[arg-type]


def test_send_shutdown_on_gearmand_explains_signals(gearmand: GearmandProcess) -> None:
    with GearmanAdminClient([gearmand.address]) as admin:
        with pytest.raises(ServerError) as caught:
            admin.send_shutdown()
        # The connection stays usable after the ERR reply.
        assert admin.get_pid() == gearmand.pid

    message = str(caught.value)
    assert caught.value.code == "UNKNOWN_COMMAND"
    assert "gearmand 1.1.x has no shutdown command" in message
    assert "SIGTERM" in message
    assert "SIGUSR1" in message
    assert str(gearmand.pid) in message
    assert gearmand.is_running()


# Argument checks before sending ----------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["two words", "tab\tname", "line\nbreak", "nul\0byte", "", "bell\x07"],
    ids=["space", "tab", "newline", "nul", "empty", "control"],
)
def test_bad_function_name_rejected_before_sending(
    fake_admin_server: Callable[..., FakeAdminServer], name: str
) -> None:
    fake = fake_admin_server({})
    admin = GearmanAdminClient([fake.address], poll_timeout=1)

    with pytest.raises(ValueError):
        admin.set_maxqueue(name, 1)
    with pytest.raises(ValueError):
        admin.cancel_job(name)

    assert fake.connections == 0
    assert fake.received == []


# Unicode names ----------------------------------------------------------------------------


def test_unicode_function_names(gearmand: GearmandProcess) -> None:
    names = ["задача", "任务🙂"]
    with (
        running_worker(gearmand, names, client_id="unicode-worker"),
        GearmanAdminClient([gearmand.address]) as admin,
    ):
        statuses = {status.function: status for status in admin.get_status()}
        functions = {
            name
            for info in admin.get_workers()
            if info.client_id == "unicode-worker"
            for name in info.functions
        }
        applied = admin.set_maxqueue("задача", 5)

    assert statuses["задача"].workers == 1
    assert statuses["任务🙂"].workers == 1
    assert functions == set(names)
    assert applied is True


# Errors from the server and from malformed replies ----------------------------------------


def test_unknown_status_line_rejected(
    fake_admin_server: Callable[..., FakeAdminServer],
) -> None:
    fake = fake_admin_server({"status": b"fn\t1\t0\t1\nthis is no status line\n.\n"})
    admin = GearmanAdminClient([fake.address], poll_timeout=2)

    with pytest.raises(RemoteProtocolError) as caught:
        admin.get_status()

    assert "this is no status line" in str(caught.value)
    assert fake.address in str(caught.value)


def test_unknown_version_reply_rejected(
    fake_admin_server: Callable[..., FakeAdminServer],
) -> None:
    fake = fake_admin_server({"version": b"hello there\n"})
    admin = GearmanAdminClient([fake.address], poll_timeout=2)

    with pytest.raises(RemoteProtocolError) as caught:
        admin.get_version()

    assert "hello there" in str(caught.value)


def test_binary_bytes_in_text_reply(
    fake_admin_server: Callable[..., FakeAdminServer],
) -> None:
    fake = fake_admin_server({"workers": b"\0RES\0\0\0\x0a\0\0\0\0\n"})
    admin = GearmanAdminClient([fake.address], poll_timeout=2)

    with pytest.raises(RemoteProtocolError) as caught:
        admin.get_workers()

    assert fake.address in str(caught.value)


def test_err_reply_raises_server_error(
    fake_admin_server: Callable[..., FakeAdminServer],
) -> None:
    fake = fake_admin_server({"getpid": b"ERR SOME_CODE Some+explanation\r\n"})
    admin = GearmanAdminClient([fake.address], poll_timeout=2)

    with pytest.raises(ServerError) as caught:
        admin.get_pid()

    assert caught.value.code == "SOME_CODE"
    assert caught.value.text == "Some explanation"
    assert caught.value.server == fake.address


def test_reply_timeout_names_server_and_command(
    fake_admin_server: Callable[..., FakeAdminServer],
) -> None:
    fake = fake_admin_server({"version": b"OK 9.9\n"})
    admin = GearmanAdminClient([fake.address], poll_timeout=0.3)

    started = time.monotonic()
    with pytest.raises(GearmanTimeoutError) as caught:
        admin.get_status()  # The fake never replies to status.
    elapsed = time.monotonic() - started

    assert fake.address in str(caught.value)
    assert "'status'" in str(caught.value)
    assert elapsed < 3
    # The stream is out of step after a timeout, so the next command uses a new connection.
    assert admin.get_version() == "9.9"
    assert fake.connections == 2


def test_ping_timeout_raises_gearman_timeout_error(
    fake_admin_server: Callable[..., FakeAdminServer],
) -> None:
    fake = fake_admin_server({})
    admin = GearmanAdminClient([fake.address], poll_timeout=0.3)

    with pytest.raises(GearmanTimeoutError) as caught:
        admin.ping_server()

    assert fake.address in str(caught.value)


def test_connection_closed_mid_reply_raises_connection_lost(
    fake_admin_server: Callable[..., FakeAdminServer],
) -> None:
    fake = fake_admin_server({"status": b"fn\t1\t0\t1\n"}, close_after_reply=True)
    admin = GearmanAdminClient([fake.address], poll_timeout=2)

    with pytest.raises(ConnectionLostError) as caught:
        admin.get_status()

    assert fake.address in str(caught.value)


def test_unreachable_server_raises_server_unavailable() -> None:
    address = f"{HOST}:{unused_port()}"
    admin = GearmanAdminClient([address], poll_timeout=1)

    with pytest.raises(ServerUnavailableError) as caught:
        admin.get_status()

    assert address in str(caught.value)
    assert "Connection refused" in str(caught.value)


# Connection handling -----------------------------------------------------------------------


def test_reconnects_after_server_restart(gearmand: GearmandProcess) -> None:
    admin = GearmanAdminClient([gearmand.address], poll_timeout=5)
    first_pid = admin.get_pid()

    gearmand.restart()
    second_pid = admin.get_pid()
    gearmand.restart()
    ping = admin.ping_server()
    gearmand.restart()
    admin.set_maxqueue("after_restart", 3)
    admin.close()

    assert first_pid != second_pid
    assert second_pid != gearmand.pid
    assert ping > 0


def test_server_down_then_up_again(gearmand: GearmandProcess) -> None:
    admin = GearmanAdminClient([gearmand.address], poll_timeout=5)
    admin.get_status()

    gearmand.stop()
    with pytest.raises(ServerUnavailableError):
        admin.get_status()
    gearmand.start()

    assert admin.get_pid() == gearmand.pid
    admin.close()


def test_concurrent_greenlets_share_one_connection(gearmand: GearmandProcess) -> None:
    submit_background(gearmand, "shared", 2)
    admin = GearmanAdminClient([gearmand.address])

    def ask(index: int) -> object:
        if index % 3 == 0:
            return admin.ping_server()
        if index % 3 == 1:
            return admin.get_status()
        return admin.get_version()

    greenlets = [gevent.spawn(ask, index) for index in range(30)]
    gevent.joinall(greenlets, timeout=10, raise_error=True)
    connections = admin.get_workers()
    admin.close()

    assert all(greenlet.successful() for greenlet in greenlets)
    assert any(
        isinstance(value, list) and value and value[0].function == "shared"
        for value in (greenlet.value for greenlet in greenlets)
    )
    assert len(connections) == 1


def test_works_under_monkey_patching(gearmand: GearmandProcess) -> None:
    code = (
        "from gevent import monkey\n"
        "monkey.patch_all()\n"
        "from geargevent.admin import GearmanAdminClient\n"
        f"admin = GearmanAdminClient([{gearmand.address!r}], poll_timeout=5)\n"
        "print(admin.get_pid(), admin.get_status(), admin.ping_server() > 0)\n"
    )
    completed = gevent.subprocess.run(
        [sys.executable, "-c", code],
        stdout=gevent.subprocess.PIPE,
        stderr=gevent.subprocess.PIPE,
        timeout=30,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr.decode(errors="replace")
    assert completed.stdout.decode().split() == [str(gearmand.pid), "[]", "True"]


def test_default_and_first_server() -> None:
    assert str(GearmanAdminClient().address) == "127.0.0.1:4730"
    admin = GearmanAdminClient(["127.0.0.1:4801", "127.0.0.1:4802"])
    assert str(admin.address) == "127.0.0.1:4801"


def test_invalid_timeouts_rejected() -> None:
    with pytest.raises(ValueError):
        GearmanAdminClient(poll_timeout=0)
    with pytest.raises(ValueError):
        GearmanAdminClient(connect_timeout=-1)


# The Perl Gearman::Server ------------------------------------------------------------------


def test_perl_listings_and_values(perl_gearmand: GearmandProcess) -> None:
    submit_background(perl_gearmand, "perl_queued", 2)
    with (
        running_worker(perl_gearmand, ["perl_fn"], client_id="perl-worker"),
        GearmanAdminClient([perl_gearmand.address]) as admin,
    ):
        statuses = {status.function: status for status in admin.get_status()}
        workers = [info for info in admin.get_workers() if info.client_id == "perl-worker"]
        version = admin.get_version()
        ping = admin.ping_server()
        expected = perl_gearmand.status()

    assert {name: (s.total, s.running, s.workers) for name, s in statuses.items()} == expected
    assert statuses["perl_queued"].total == 2
    assert statuses["perl_fn"].workers == 1
    assert len(workers) == 1
    assert workers[0].functions == ("perl_fn",)
    assert version.startswith("v1.")
    assert ping > 0


def test_perl_set_maxqueue(perl_gearmand: GearmandProcess) -> None:
    with GearmanAdminClient([perl_gearmand.address]) as admin:
        admin.set_maxqueue("perl_limited", 1)
        with pytest.raises(ValueError) as caught:
            admin.set_maxqueue("perl_limited", 3, 2, 1)

    assert "Perl" in str(caught.value)
    assert "set_maxqueue(task, max_size)" in str(caught.value)


@pytest.mark.parametrize(
    "call",
    [
        lambda admin: admin.get_pid(),
        lambda admin: admin.get_priority_status(),
        lambda admin: admin.show_jobs(),
        lambda admin: admin.show_unique_jobs(),
        lambda admin: admin.cancel_job("H:perl:1"),
        lambda admin: admin.get_verbose(),
    ],
    ids=["getpid", "prioritystatus", "show_jobs", "show_unique_jobs", "cancel_job", "verbose"],
)
def test_perl_missing_commands_raise_server_error(
    perl_gearmand: GearmandProcess, call: Callable[[GearmanAdminClient], object]
) -> None:
    with GearmanAdminClient([perl_gearmand.address]) as admin:
        with pytest.raises(ServerError) as caught:
            call(admin)
        # An ERR reply leaves the connection usable.
        assert admin.get_version().startswith("v")

    assert caught.value.code == "unknown_command"


def test_perl_send_shutdown_stops_server(perl_gearmand: GearmandProcess) -> None:
    with GearmanAdminClient([perl_gearmand.address], poll_timeout=5) as admin:
        admin.send_shutdown(graceful=False)

    wait_until(lambda: not perl_gearmand.is_running(), what="the Perl server to exit")


def test_perl_graceful_shutdown_stops_idle_server(gearmand_factory: GearmandFactory) -> None:
    server = gearmand_factory(perl=True)
    with GearmanAdminClient([server.address], poll_timeout=5) as admin:
        admin.send_shutdown(graceful=True)

    wait_until(lambda: not server.is_running(), what="the Perl server to exit")


def test_gearmand_stops_on_signal_named_in_advice(gearmand: GearmandProcess) -> None:
    # The advice in send_shutdown's error works: SIGUSR1 stops an idle gearmand.
    with GearmanAdminClient([gearmand.address]) as admin:
        with pytest.raises(ServerError):
            admin.send_shutdown(graceful=True)
        pid = admin.get_pid()

    assert pid == gearmand.pid
    os.kill(pid, signal.SIGUSR1)
    wait_until(lambda: not gearmand.is_running(), what="gearmand to exit after SIGUSR1")
