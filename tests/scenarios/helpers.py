"""Tools shared by the scenario tests: worker greenlets, worker processes and a raw client.

The raw client speaks the Gearman binary protocol with ``struct`` and a gevent socket. It does
not use geargevent's framing code, so a test that checks bytes on the wire with it does not
depend on the code under test. Everything here talks to 127.0.0.1 only.

Scenario tests measure time with ``time.monotonic()``, also across processes: on Linux it reads
CLOCK_MONOTONIC, one clock for the whole system, while the wall clock may drift or step.
"""

from __future__ import annotations

import contextlib
import os
import signal
import struct
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import gevent
import gevent.subprocess
from gevent import socket

from geargevent import GearmanWorker
from geargevent.testing import GearmandProcess

T = TypeVar("T")

# Packet types, numbered as in the Gearman protocol.
CAN_DO = 1
PRE_SLEEP = 4
NOOP = 6
SUBMIT_JOB = 7
JOB_CREATED = 8
GRAB_JOB = 9
NO_JOB = 10
JOB_ASSIGN = 11
WORK_STATUS = 12
WORK_COMPLETE = 13
WORK_FAIL = 14
SUBMIT_JOB_BG = 18
ERROR = 19
SET_CLIENT_ID = 22
WORK_EXCEPTION = 25
OPTION_REQ = 26
OPTION_RES = 27
WORK_DATA = 28
WORK_WARNING = 29
GRAB_JOB_UNIQ = 30
JOB_ASSIGN_UNIQ = 31

TERMINAL_PACKETS = frozenset({WORK_COMPLETE, WORK_FAIL, WORK_EXCEPTION})

_HEADER = struct.Struct(">4sII")


# -- Waiting -------------------------------------------------------------------------------------


def wait_until(predicate: Callable[[], T], timeout: float, message: str, step: float = 0.02) -> T:
    """Poll ``predicate`` until it returns a true value and return that value.

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
        gevent.sleep(step)


# -- Workers in this process ---------------------------------------------------------------------


@contextlib.contextmanager
def running_worker(worker: GearmanWorker, poll_timeout: float | None = 60.0) -> Iterator[Any]:
    """Run ``worker.work(poll_timeout)`` in a greenlet and stop the worker on exit."""
    greenlet = gevent.spawn(worker.work, poll_timeout)
    try:
        yield greenlet
    finally:
        worker.shutdown(graceful=False)
        greenlet.join(5)


def wait_for_workers(
    server: GearmandProcess, function: str, count: int = 1, timeout: float = 10.0
) -> None:
    """Wait until the server's ``status`` lists ``count`` workers for ``function``."""

    def registered() -> bool:
        row = server.status().get(function)
        return row is not None and row[2] >= count

    wait_until(registered, timeout, f"{count} worker(s) for {function!r} on {server.address}")


def wait_for_idle(server: GearmandProcess, function: str, timeout: float) -> None:
    """Wait until the server counts no queued or running job for ``function``."""

    def idle() -> bool:
        row = server.status().get(function)
        return row is None or row[0] == 0

    wait_until(idle, timeout, f"jobs of {function!r} still queued or running on {server.address}")


@dataclass(frozen=True)
class WorkerEntry:
    """One line of the admin ``workers`` listing."""

    fd: str
    ip: str
    client_id: str
    functions: frozenset[str]


def worker_entries(server: GearmandProcess) -> list[WorkerEntry]:
    """Return the ``workers`` listing, one entry per connection (clients included)."""
    entries = []
    for line in server.workers():
        head, separator, tail = line.partition(" :")
        fields = head.split()
        if not separator or len(fields) != 3:
            continue
        entries.append(WorkerEntry(fields[0], fields[1], fields[2], frozenset(tail.split())))
    return entries


def show_jobs(server: GearmandProcess) -> dict[str, int]:
    """Return the admin ``show jobs`` listing as job handle -> retry count."""
    retries = {}
    for line in server.admin("show jobs").splitlines():
        fields = line.rstrip("\r").split("\t")
        if len(fields) == 4:
            retries[fields[0]] = int(fields[1])
    return retries


# -- Worker processes ----------------------------------------------------------------------------


def write_script(directory: Path, name: str, source: str) -> Path:
    """Write a Python script (dedented) into ``directory`` and return its path."""
    path = directory / name
    path.write_text(textwrap.dedent(source).lstrip())
    return path


class WorkerProcess:
    """A Python script run with this interpreter, its output recorded to a file.

    The process is started with :mod:`gevent.subprocess`, so waiting for it lets the greenlets
    of the test (workers, relays) keep running.

    Args:
        script: the script to run.
        args: command-line arguments for the script.
        output: file that receives standard output and standard error.
        python_options: interpreter options placed before the script, such as ``-W``.
        cwd: working folder; the script's folder if None.
    """

    def __init__(
        self,
        script: Path,
        *args: str,
        output: Path,
        python_options: tuple[str, ...] = (),
        cwd: Path | None = None,
    ) -> None:
        self.script = script
        self.args = args
        self.output_path = output
        self.python_options = python_options
        self.cwd = cwd or script.parent
        self.process: Any = None

    def start(self) -> WorkerProcess:
        environment = dict(os.environ, PYTHONUNBUFFERED="1")
        with self.output_path.open("ab") as output:
            self.process = gevent.subprocess.Popen(
                [sys.executable, *self.python_options, str(self.script), *self.args],
                stdin=gevent.subprocess.DEVNULL,
                stdout=output,
                stderr=gevent.subprocess.STDOUT,
                cwd=self.cwd,
                env=environment,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None, "start() the process first"
        pid: int = self.process.pid
        return pid

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit and return its exit status.

        Raises:
            AssertionError: it still ran after ``timeout`` seconds; the message shows its output.
        """
        try:
            returncode: int = self.process.wait(timeout=timeout)
        except gevent.subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.script.name} (pid {self.pid}) still runs after {timeout} s; "
                f"output:\n{self.output()}"
            ) from None
        return returncode

    def send_signal(self, sig: int) -> None:
        if self.is_running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def stop(self, timeout: float = 5.0) -> int | None:
        """Stop the process by its PID: SIGTERM, then SIGKILL after ``timeout`` seconds."""
        if self.process is None:
            return None
        if self.is_running():
            self.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except gevent.subprocess.TimeoutExpired:
                self.send_signal(signal.SIGKILL)
                self.process.wait(timeout=timeout)
        returncode: int | None = self.process.poll()
        return returncode

    def output(self) -> str:
        try:
            return self.output_path.read_text("utf-8", "replace")
        except OSError:
            return ""


def cpu_seconds(pid: int) -> float:
    """Return the user plus system CPU time a process has used, from ``/proc/PID/stat``."""
    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name in brackets may contain spaces, so split after its closing bracket.
    # The rest starts with field 3 (state), and utime and stime are fields 14 and 15 in ticks.
    fields = text.rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def open_fd_count(pid: int) -> int:
    """Count the file descriptors a process has open, from ``/proc/PID/fd``."""
    return len(os.listdir(f"/proc/{pid}/fd"))


# -- A raw Gearman client ------------------------------------------------------------------------


class RawPacket(NamedTuple):
    """One packet a job server sent: its type number and its whole payload."""

    type: int
    payload: bytes

    @property
    def arguments(self) -> list[bytes]:
        """The payload split at NUL, for packets whose only argument before the data is a handle.

        The split stops after the handle, so data that contains NUL stays whole.
        """
        return self.payload.split(b"\0", 1)


class RawClient:
    """A Gearman client over a plain socket, independent of geargevent's protocol code.

    Args:
        address: ``"127.0.0.1:PORT"``.
        exceptions: send OPTION_REQ "exceptions" first, so that the server forwards
            WORK_EXCEPTION instead of turning it into WORK_FAIL.
    """

    def __init__(self, address: str, *, exceptions: bool = False, timeout: float = 5.0) -> None:
        host, _, port = address.rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self._buffer = bytearray()
        if exceptions:
            self.send(OPTION_REQ, b"exceptions")
            reply = self.receive(timeout)
            if reply is None or reply.type != OPTION_RES:
                raise AssertionError(f"expected OPTION_RES for 'exceptions', got {reply!r}")

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def send(self, packet_type: int, *arguments: bytes) -> None:
        payload = b"\0".join(arguments)
        self.sock.sendall(_HEADER.pack(b"\0REQ", packet_type, len(payload)) + payload)

    def receive(self, timeout: float) -> RawPacket | None:
        """Return the next packet, or None if none arrived within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        header = self._read_exact(_HEADER.size, deadline)
        if header is None:
            return None
        magic, packet_type, size = _HEADER.unpack(header)
        if magic != b"\0RES":
            raise AssertionError(f"invalid magic {magic!r} from the job server")
        payload = self._read_exact(size, deadline + 5.0)
        if payload is None:
            raise AssertionError(f"job server announced a {size}-byte payload but sent none")
        return RawPacket(packet_type, payload)

    def _read_exact(self, size: int, deadline: float) -> bytes | None:
        while len(self._buffer) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return None
            if not chunk:
                raise AssertionError("the job server closed the connection")
            self._buffer += chunk
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def submit(
        self, function: bytes, data: bytes, unique: bytes = b"", *, background: bool = False
    ) -> bytes:
        """Submit a job and return the handle from JOB_CREATED."""
        self.send(SUBMIT_JOB_BG if background else SUBMIT_JOB, function, unique, data)
        reply = self.receive(5.0)
        if reply is None or reply.type != JOB_CREATED:
            raise AssertionError(f"expected JOB_CREATED for {function!r}, got {reply!r}")
        return reply.payload

    def collect(self, timeout: float, linger: float = 0.0) -> list[RawPacket]:
        """Collect packets until a terminal one (WORK_COMPLETE, _FAIL or _EXCEPTION) arrives.

        Afterwards keep reading for ``linger`` seconds, so that a test can see packets that
        arrive after the end of the job. Stops early at ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        packets: list[RawPacket] = []
        while not any(packet.type in TERMINAL_PACKETS for packet in packets):
            packet = self.receive(max(0.0, deadline - time.monotonic()))
            if packet is None:
                return packets
            packets.append(packet)
        linger_deadline = time.monotonic() + linger
        while True:
            packet = self.receive(max(0.0, linger_deadline - time.monotonic()))
            if packet is None:
                return packets
            packets.append(packet)
