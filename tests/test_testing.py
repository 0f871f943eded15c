"""Tests of geargevent.testing and of the test relay, against the real job servers."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import gevent
import pytest
from gevent import socket
from relay import TO_CLIENT, TO_SERVER, Relay

from geargevent import testing
from geargevent.testing import GearmandProcess, GearmanTools

# Packet types used below, as numbered by the Gearman protocol.
CAN_DO = 1
PRE_SLEEP = 4
NOOP = 6
SUBMIT_JOB_BG = 18
JOB_CREATED = 8
ECHO_REQ = 16
ECHO_RES = 17
SET_CLIENT_ID = 22

HEADER = struct.Struct(">4sII")


def request_packet(packet_type: int, *arguments: bytes) -> bytes:
    payload = b"\0".join(arguments)
    return HEADER.pack(b"\0REQ", packet_type, len(payload)) + payload


def receive_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(data)} of {size} bytes")
        data += chunk
    return bytes(data)


def receive_packet(sock: socket.socket) -> tuple[bytes, int, bytes]:
    magic, packet_type, size = HEADER.unpack(receive_exactly(sock, HEADER.size))
    return magic, packet_type, receive_exactly(sock, size)


def connect(address: tuple[str, int], timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(address, timeout=timeout)
    sock.settimeout(timeout)
    return sock


def echo(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(request_packet(ECHO_REQ, data))
    magic, packet_type, payload = receive_packet(sock)
    assert magic == b"\0RES"
    assert packet_type == ECHO_RES
    return payload


def nothing_arrives(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        data = sock.recv(1)
    except TimeoutError:
        return True
    finally:
        sock.settimeout(5.0)
    raise AssertionError(f"expected no data, received {data!r}")


@pytest.fixture
def relay(gearmand: GearmandProcess) -> Iterator[Relay]:
    with Relay(gearmand.host, gearmand.port) as started:
        yield started


@pytest.fixture
def c_gearmand_path() -> str:
    path = testing.find_gearmand()
    if path is None:
        pytest.skip("C gearmand not found; install Debian package gearman-job-server")
    return path


# Finding the servers


def test_find_gearmand_returns_c_server(c_gearmand_path: str) -> None:
    output = subprocess.run(
        [c_gearmand_path, "--version"], capture_output=True, text=True, timeout=10, check=True
    ).stdout
    assert output.strip().startswith(("gearmand 1.", "gearmand 2."))


def test_find_gearmand_skips_perl_server(
    monkeypatch: pytest.MonkeyPatch, c_gearmand_path: str
) -> None:
    perl_path = testing.find_perl_gearmand()
    if perl_path is None:
        pytest.skip("Perl gearmand not found; install Debian package gearman-server")

    assert testing.find_gearmand() != perl_path
    monkeypatch.setenv(testing.GEARMAND_ENV, perl_path)
    assert testing.find_gearmand() is None
    monkeypatch.setenv(testing.PERL_GEARMAND_ENV, c_gearmand_path)
    assert testing.find_perl_gearmand() is None


def test_find_gearmand_honours_environment(
    monkeypatch: pytest.MonkeyPatch, c_gearmand_path: str, tmp_path: Path
) -> None:
    monkeypatch.setenv(testing.GEARMAND_ENV, c_gearmand_path)
    assert testing.find_gearmand() == c_gearmand_path

    monkeypatch.setenv(testing.GEARMAND_ENV, str(tmp_path / "no-such-gearmand"))
    assert testing.find_gearmand() is None


def test_process_rejects_wrong_binary(c_gearmand_path: str) -> None:
    with pytest.raises(ValueError, match="not the Perl gearmand"):
        GearmandProcess(perl=True, executable=c_gearmand_path)


def test_process_rejects_string_args(c_gearmand_path: str) -> None:
    with pytest.raises(TypeError, match="sequence of strings"):
        GearmandProcess(args="--job-retries=3", executable=c_gearmand_path)


def test_import_without_pytest() -> None:
    script = textwrap.dedent(
        """
        import sys
        import geargevent.testing as testing
        assert "pytest" not in sys.modules, "pytest was imported"
        assert "_pytest" not in sys.modules, "_pytest was imported"
        assert not hasattr(testing, "gearmand"), "fixtures defined without pytest"
        assert testing.GearmandProcess.host == "127.0.0.1"
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)


def test_report_header_names_version(
    request: pytest.FixtureRequest, gearmand: GearmandProcess
) -> None:
    lines = testing.pytest_report_header(request.config)

    assert f"gearmand: {gearmand.executable} {gearmand.version}" in lines


# Starting and the admin protocol


def test_gearmand_fixture_runs(gearmand: GearmandProcess) -> None:
    assert gearmand.is_running()
    assert gearmand.host == "127.0.0.1"
    assert gearmand.address == f"127.0.0.1:{gearmand.port}"
    assert gearmand.version.startswith(("1.", "2."))
    assert gearmand.admin("getpid") == f"OK {gearmand.pid}\n"
    assert gearmand.admin("version").startswith(f"OK {gearmand.version}")
    assert "--verbose=INFO" in gearmand.command()
    assert gearmand.log_path.exists()


def test_admin_list_reply_complete(gearmand: GearmandProcess) -> None:
    reply = gearmand.admin("workers")
    lines = reply.split("\n")

    # At least the admin connection itself is listed. The startup probe's connection may
    # still be listed too, because gearmand removes a closed connection in its own time.
    assert lines[-2:] == [".", ""]
    assert len(lines) >= 3
    assert all(" : " in line or line.endswith(" :") for line in lines[:-2])


def test_admin_unknown_command_one_line(gearmand: GearmandProcess) -> None:
    assert gearmand.admin("no-such-command").startswith("ERR UNKNOWN_COMMAND")
    # "jobs" is a list command only on the Perl server. gearmand's single ERR line must
    # still end the reply instead of waiting for a "." line.
    assert gearmand.admin("jobs").startswith("ERR UNKNOWN_COMMAND")


def test_admin_rejects_line_break(gearmand: GearmandProcess) -> None:
    with pytest.raises(ValueError, match="one line"):
        gearmand.admin("status\nworkers")


def test_status_and_workers_parsed(gearmand: GearmandProcess) -> None:
    worker = connect((gearmand.host, gearmand.port))
    client = connect((gearmand.host, gearmand.port))
    with worker, client:
        worker.sendall(
            request_packet(SET_CLIENT_ID, b"probe-worker") + request_packet(CAN_DO, b"alpha")
        )
        client.sendall(request_packet(SUBMIT_JOB_BG, b"alpha", b"", b"data"))
        assert receive_packet(client)[1] == JOB_CREATED
        echo(worker, b"sync")  # CAN_DO has no reply, so an echo shows it was processed

        assert gearmand.status() == {"alpha": (1, 0, 1)}
        workers = gearmand.workers()
        assert any(line.endswith("probe-worker : alpha") for line in workers)


def test_status_keeps_tab_in_name(gearmand: GearmandProcess) -> None:
    with connect((gearmand.host, gearmand.port)) as worker:
        worker.sendall(request_packet(CAN_DO, b"with\ttab"))
        echo(worker, b"sync")

        assert gearmand.status() == {"with\ttab": (0, 0, 1)}


def test_threads_and_args_on_command(gearmand_factory: testing.GearmandFactory) -> None:
    server = gearmand_factory("--job-retries=3", "--verbose=DEBUG", threads=1)
    command = server.command()

    assert "--threads=1" in command
    assert "--job-retries=3" in command
    assert "--verbose=DEBUG" in command
    assert "--verbose=INFO" not in command
    assert server.admin("verbose") == "OK DEBUG\n"


def test_factory_starts_separate_servers(gearmand_factory: testing.GearmandFactory) -> None:
    first = gearmand_factory()
    second = gearmand_factory()

    assert first.port != second.port
    assert first.workdir != second.workdir
    assert first.is_running()
    assert second.is_running()


def test_start_fails_on_bad_option(gearmand_factory: testing.GearmandFactory) -> None:
    with pytest.raises(RuntimeError, match="exited with status") as raised:
        gearmand_factory("--no-such-option")

    assert "no-such-option" in str(raised.value)


def test_start_fails_on_taken_port(c_gearmand_path: str, tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(64)
        port = holder.getsockname()[1]
        server = GearmandProcess(port=port, executable=c_gearmand_path, workdir=tmp_path)
        server.start_timeout = 1.0

        with pytest.raises(RuntimeError, match=f"did not accept connections on port {port}"):
            server.start()
        assert not server.is_running()
        server.close()


def test_context_manager_removes_workdir(c_gearmand_path: str) -> None:
    with GearmandProcess(executable=c_gearmand_path) as server:
        workdir = server.workdir
        port = server.port
        assert server.log_path.exists()

    assert not workdir.exists()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_atexit_stops_server(c_gearmand_path: str) -> None:
    script = textwrap.dedent(
        f"""
        from geargevent.testing import GearmandProcess
        server = GearmandProcess(executable={c_gearmand_path!r}).start()
        print(server.pid, server.port, server.workdir, flush=True)
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    pid, port, workdir = completed.stdout.split()

    with pytest.raises(ProcessLookupError):
        os.kill(int(pid), 0)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(port)), timeout=2).close()
    assert not Path(workdir).exists()


# Stopping and restarting


def test_stop_closes_port(gearmand: GearmandProcess) -> None:
    port = gearmand.port

    assert gearmand.stop() == 0
    assert not gearmand.is_running()
    assert gearmand.pid is None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert gearmand.stop() == 0  # a second stop changes nothing


def test_stop_ends_open_connections(gearmand: GearmandProcess) -> None:
    with connect((gearmand.host, gearmand.port)) as worker:
        worker.sendall(request_packet(CAN_DO, b"alpha") + request_packet(PRE_SLEEP))
        echo(worker, b"sync")
        gearmand.stop()

        assert worker.recv(1) == b""


def test_kill_reports_signal(gearmand: GearmandProcess) -> None:
    assert gearmand.kill() == -signal.SIGKILL
    assert not gearmand.is_running()


def test_sigusr1_graceful_exit(gearmand: GearmandProcess) -> None:
    gearmand.send_signal(signal.SIGUSR1)

    assert gearmand.wait(timeout=10) == 0
    assert not gearmand.is_running()


def test_wait_times_out_while_running(gearmand: GearmandProcess) -> None:
    with pytest.raises(TimeoutError, match="still runs"):
        gearmand.wait(timeout=0.1)


def test_restart_keeps_port(gearmand: GearmandProcess) -> None:
    port = gearmand.port
    old_pid = gearmand.pid
    with connect((gearmand.host, gearmand.port)) as client:
        client.sendall(request_packet(SUBMIT_JOB_BG, b"alpha", b"", b"data"))
        assert receive_packet(client)[1] == JOB_CREATED
    assert gearmand.status() == {"alpha": (1, 0, 0)}

    gearmand.restart()

    assert gearmand.port == port
    assert gearmand.pid != old_pid
    assert gearmand.admin("getpid") == f"OK {gearmand.pid}\n"
    assert gearmand.status() == {}  # the in-memory queue was lost


def test_restart_lets_greenlets_run(gearmand: GearmandProcess) -> None:
    refused = 0
    probes = 0

    def probe_port() -> None:
        nonlocal refused, probes
        for _ in range(500):
            probes += 1
            try:
                socket.create_connection((gearmand.host, gearmand.port), timeout=1).close()
            except ConnectionRefusedError:
                refused += 1
            gevent.sleep(0.01)

    prober = gevent.spawn(probe_port)
    started = time.monotonic()
    gearmand.restart(down_seconds=0.3)
    elapsed = time.monotonic() - started
    prober.kill()

    assert elapsed >= 0.3
    assert probes > 5
    assert refused > 0
    assert gearmand.is_running()


# -- The Perl server and the command-line tools --------------------------------------------------


def test_perl_gearmand_fixture_runs(perl_gearmand: GearmandProcess) -> None:
    assert perl_gearmand.is_running()
    assert perl_gearmand.perl
    assert perl_gearmand.admin("version") == f"v{perl_gearmand.version}\n"
    assert perl_gearmand.status() == {}
    assert perl_gearmand.workers()  # at least the admin connection itself


def test_perl_gearmand_status_parsed(perl_gearmand: GearmandProcess) -> None:
    with connect((perl_gearmand.host, perl_gearmand.port)) as worker:
        worker.sendall(request_packet(CAN_DO, b"alpha"))
        echo(worker, b"sync")

        assert perl_gearmand.status() == {"alpha": (0, 0, 1)}


def test_perl_gearmand_restart(perl_gearmand: GearmandProcess) -> None:
    port = perl_gearmand.port

    perl_gearmand.restart()

    assert perl_gearmand.port == port
    assert perl_gearmand.admin("version").startswith("v")


def test_gearadmin_reads_status(gearmand: GearmandProcess, gearman_tools: GearmanTools) -> None:
    with connect((gearmand.host, gearmand.port)) as worker:
        worker.sendall(request_packet(CAN_DO, b"alpha"))
        echo(worker, b"sync")

        completed = subprocess.run(
            [gearman_tools.gearadmin, "-h", gearmand.host, "-p", str(gearmand.port), "--status"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )

    assert completed.stdout.splitlines()[0].split() == ["alpha", "0", "0", "1"]


# The relay


def test_relay_forwards_echo(relay: Relay) -> None:
    with connect((relay.host, relay.port)) as sock:
        assert echo(sock, b"hello") == b"hello"
        assert echo(sock, b"a\0b\0\0") == b"a\0b\0\0"
        assert echo(sock, b"") == b""

    assert relay.count(TO_SERVER, ECHO_REQ) == 3
    assert relay.count(TO_CLIENT, ECHO_RES) == 3
    assert [record.payload for record in relay.packets(TO_CLIENT, ECHO_RES)] == [
        b"hello",
        b"a\0b\0\0",
        b"",
    ]
    assert relay.log[0].connection == 1


def test_relay_parses_split_header(relay: Relay) -> None:
    packet = request_packet(ECHO_REQ, b"split")
    with connect((relay.host, relay.port)) as sock:
        for index in range(len(packet)):
            sock.sendall(packet[index : index + 1])
            gevent.sleep(0.001)
        magic, packet_type, payload = receive_packet(sock)

    assert (magic, packet_type, payload) == (b"\0RES", ECHO_RES, b"split")
    assert relay.count(TO_SERVER, ECHO_REQ) == 1


def test_relay_parses_packets_in_one_write(relay: Relay) -> None:
    with connect((relay.host, relay.port)) as sock:
        sock.sendall(request_packet(ECHO_REQ, b"one") + request_packet(ECHO_REQ, b"two"))
        first = receive_packet(sock)[2]
        second = receive_packet(sock)[2]

    assert (first, second) == (b"one", b"two")
    relay.wait_for(TO_SERVER, ECHO_REQ, 2)


def test_relay_passes_admin_lines(relay: Relay) -> None:
    with connect((relay.host, relay.port)) as sock:
        sock.sendall(b"status\n" + request_packet(ECHO_REQ, b"after"))
        assert receive_exactly(sock, 2) == b".\n"
        assert receive_packet(sock)[2] == b"after"

    text_records = [
        (record.direction, record.payload) for record in relay.log if record.packet_type is None
    ]
    assert text_records == [(TO_SERVER, b"status\n"), (TO_CLIENT, b".\n")]
    assert relay.count(TO_CLIENT, ECHO_RES) == 1


def test_relay_drops_one_reply(relay: Relay) -> None:
    relay.drop(TO_CLIENT, ECHO_RES, times=1)
    with connect((relay.host, relay.port)) as sock:
        sock.sendall(request_packet(ECHO_REQ, b"first"))
        relay.wait_for(TO_CLIENT, ECHO_RES, dropped=True)
        assert nothing_arrives(sock, 0.2)
        assert echo(sock, b"second") == b"second"

    assert relay.count(TO_CLIENT, ECHO_RES, dropped=True) == 1
    assert relay.count(TO_CLIENT, ECHO_RES, dropped=False) == 1
    assert relay.count(TO_CLIENT, ECHO_RES) == 2


def test_relay_drops_request(relay: Relay) -> None:
    relay.drop(TO_SERVER, ECHO_REQ, times=1)
    with connect((relay.host, relay.port)) as sock:
        sock.sendall(request_packet(ECHO_REQ, b"lost"))
        assert nothing_arrives(sock, 0.2)
        assert echo(sock, b"kept") == b"kept"

    assert relay.count(TO_SERVER, ECHO_REQ, dropped=True) == 1
    assert relay.count(TO_CLIENT, ECHO_RES) == 1


def test_relay_drops_noop_to_worker(gearmand: GearmandProcess, relay: Relay) -> None:
    relay.drop(TO_CLIENT, NOOP, times=1)
    worker = connect((relay.host, relay.port))
    client = connect((gearmand.host, gearmand.port))
    with worker, client:
        worker.sendall(request_packet(CAN_DO, b"alpha") + request_packet(PRE_SLEEP))
        echo(worker, b"sync")
        client.sendall(request_packet(SUBMIT_JOB_BG, b"alpha", b"", b"data"))

        relay.wait_for(TO_CLIENT, NOOP, dropped=True)
        assert nothing_arrives(worker, 0.3)

    assert relay.count(TO_CLIENT, NOOP, dropped=False) == 0


def test_relay_delays_reply(relay: Relay) -> None:
    relay.delay(TO_CLIENT, ECHO_RES, seconds=0.3)
    with connect((relay.host, relay.port)) as sock:
        started = time.monotonic()
        assert echo(sock, b"late") == b"late"
        elapsed = time.monotonic() - started
        assert echo(sock, b"prompt") == b"prompt"

    assert elapsed >= 0.29
    assert relay.count(TO_CLIENT, ECHO_RES) == 2


def test_relay_large_payload(relay: Relay) -> None:
    relay.max_logged_payload = 1000
    data = bytes(range(256)) * 4096  # 1 MiB with every byte value
    with connect((relay.host, relay.port), timeout=20) as sock:
        assert echo(sock, data) == data

    record = relay.packets(TO_CLIENT, ECHO_RES)[0]
    assert record.size == len(data)
    assert record.payload == data[:1000]


def test_relay_close_all_sends_eof(gearmand: GearmandProcess, relay: Relay) -> None:
    with connect((relay.host, relay.port)) as worker:
        worker.sendall(request_packet(SET_CLIENT_ID, b"cut-worker"))
        echo(worker, b"sync")
        assert any("cut-worker" in line for line in gearmand.workers())

        assert relay.close_all() == 1
        assert worker.recv(1) == b""

    with connect((relay.host, relay.port)) as again:
        assert echo(again, b"still relaying") == b"still relaying"
    deadline = time.monotonic() + 5
    while any("cut-worker" in line for line in gearmand.workers()):
        assert time.monotonic() < deadline, "gearmand still lists the severed connection"
        gevent.sleep(0.02)


def test_relay_close_all_reset(relay: Relay) -> None:
    with connect((relay.host, relay.port)) as sock:
        echo(sock, b"sync")
        relay.close_all(reset=True)

        with pytest.raises(ConnectionResetError):
            sock.recv(1)


def test_relay_passes_server_eof(gearmand: GearmandProcess, relay: Relay) -> None:
    with connect((relay.host, relay.port)) as sock:
        echo(sock, b"sync")
        gearmand.stop()

        assert sock.recv(1) == b""


def test_relay_closes_when_target_down(gearmand: GearmandProcess, relay: Relay) -> None:
    gearmand.stop()
    with connect((relay.host, relay.port)) as sock:
        assert sock.recv(1) == b""

    assert relay.accepted == 1
    assert relay.open_connections == 0


def test_relay_wait_for_times_out(relay: Relay) -> None:
    with pytest.raises(TimeoutError, match="packets of type 6 to_client; the relay counted 0"):
        relay.wait_for(TO_CLIENT, NOOP, timeout=0.05)


def test_relay_rejects_invalid_rules(relay: Relay) -> None:
    with pytest.raises(ValueError, match="invalid direction"):
        relay.drop("sideways", NOOP)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invalid times"):
        relay.drop(TO_CLIENT, NOOP, times=0)


def test_relay_stop_ends_connections(gearmand: GearmandProcess) -> None:
    relay = Relay(gearmand.host, gearmand.port)
    with connect((relay.host, relay.port)) as sock:
        echo(sock, b"sync")
        relay.stop()

        assert sock.recv(1) == b""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((relay.host, relay.port), timeout=2).close()
