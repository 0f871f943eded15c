"""Processes, job servers and measurements shared by the benchmark scenarios.

Everything here is plain blocking Python with threads: the driver must not share
a gevent hub with anything it measures. Every process the driver starts is
recorded in :class:`ProcessRegistry` and stopped by PID when its run ends, and
again at exit or on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from geargevent.testing import GearmandProcess

log = logging.getLogger("bench")

# gearmand flags for every run. One I/O thread, because on 2 cores more
# gearmand threads only compete with the worker for CPU. Only errors are
# logged, so writing the log costs nothing during a drain. gearmand 1.1.20 keeps
# jobs in hash tables of 991 buckets by default, and with 200,000 jobs queued
# the chains slow it down so much that it, not the worker, limits fast drains
# (S1 reports the bare loop under the default too), so the tables get 262,139.
GEARMAND_THREADS = 1
GEARMAND_DEFAULT_BUCKETS_ARGS = ("--verbose=ERROR",)
GEARMAND_ARGS = (*GEARMAND_DEFAULT_BUCKETS_ARGS, "--hashtable-buckets=262139")

_HEADER = struct.Struct(">4sII")
_REQ = b"\0REQ"
_RES = b"\0RES"
_SUBMIT_JOB_BG = 18
_JOB_CREATED = 8
_ERROR = 19


class BenchError(Exception):
    """A run could not be set up or measured (not a slow result: that is a timeout)."""


# Processes


@dataclass
class Child:
    """A process started by the driver, with what its standard output reported."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    first_job: float | None = None
    lines: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def exited(self) -> bool:
        return self.process.poll() is not None

    def describe_exit(self) -> str:
        tail = ""
        with contextlib.suppress(OSError):
            tail = self.log_path.read_text(errors="replace")[-2000:]
        return f"{self.name} (pid {self.pid}) exited with status {self.process.returncode}: {tail}"


class ProcessRegistry:
    """The processes the driver started, so that each can be stopped by PID."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._children: list[Child] = []
        self._count = 0

    def start(
        self,
        name: str,
        command: Sequence[str],
        *,
        cpus: Sequence[int] | None = None,
        read_output: bool = True,
    ) -> Child:
        """Start ``command`` in its own session, optionally pinned with taskset.

        Standard error goes to a log file. With ``read_output``, a thread reads
        standard output and records the ``FIRST <time>`` line of workers.
        """
        self._count += 1
        log_path = self.log_dir / f"{self._count:03d}-{name}.log"
        full = list(command)
        if cpus is not None:
            full = ["taskset", "-c", ",".join(str(cpu) for cpu in cpus), *full]
        with log_path.open("wb") as stderr:
            process = subprocess.Popen(
                full,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                start_new_session=True,
            )
        child = Child(name, process, log_path)
        self._children.append(child)
        if read_output:
            child._reader = threading.Thread(target=_read_output, args=(child,), daemon=True)
            child._reader.start()
        log.debug("started %s pid=%d: %s", name, process.pid, " ".join(full))
        return child

    def run(self, name: str, command: Sequence[str], timeout: float) -> tuple[str, bool]:
        """Run ``command`` to completion; return (standard output, timed out)."""
        child = self.start(name, command, read_output=False)
        try:
            output, _ = child.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            return "", True
        finally:
            # Also on Ctrl-C: the child must not outlive the driver.
            self.stop(child)
        if child.process.returncode != 0:
            raise BenchError(child.describe_exit())
        return output.decode(errors="replace"), False

    def stop(self, child: Child, grace: float = 3.0) -> None:
        """Stop one child: SIGTERM, then SIGKILL after ``grace`` seconds."""
        if child.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)
            try:
                child.process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGKILL)
                child.process.wait(grace)
        if child.process.stdout is not None:
            child.process.stdout.close()
        self._children = [c for c in self._children if c is not child]

    def stop_all(self) -> None:
        for child in list(self._children):
            self.stop(child)


def _read_output(child: Child) -> None:
    stream = child.process.stdout
    assert stream is not None
    with contextlib.suppress(ValueError, OSError):
        for raw in stream:
            line = raw.decode(errors="replace").strip()
            if line.startswith("FIRST ") and child.first_job is None:
                child.first_job = float(line.split()[1])
            else:
                child.lines.append(line)


# Job servers


class JobServer:
    """A gearmand for one run, with a persistent admin connection for polling."""

    def __init__(self, workdir: Path, args: Sequence[str] = GEARMAND_ARGS) -> None:
        self.process = GearmandProcess(threads=GEARMAND_THREADS, args=args, workdir=workdir)
        self._admin: socket.socket | None = None
        self._buffer = b""

    def __enter__(self) -> JobServer:
        self.process.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def address(self) -> str:
        return self.process.address

    @property
    def port(self) -> int:
        return self.process.port

    @property
    def pid(self) -> int:
        pid = self.process.pid
        if pid is None:
            raise BenchError("gearmand is not running")
        return pid

    def pin(self, cpus: Sequence[int] | None) -> None:
        """Pin every thread of gearmand to ``cpus`` (None: all CPUs)."""
        pin_process(self.pid, cpus)

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        self.process.close()

    def status(self) -> dict[str, tuple[int, int, int]]:
        """Return the admin ``status`` table: function -> (queued + running, running, workers)."""
        if self._admin is None:
            self._admin = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            self._admin.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._admin.sendall(b"status\n")
        buffer = self._buffer
        while not (buffer.endswith(b"\n.\n") or buffer == b".\n"):
            chunk = self._admin.recv(65536)
            if not chunk:
                raise BenchError("gearmand closed the admin connection")
            buffer += chunk
        self._buffer = b""
        table = {}
        for line in buffer.decode().splitlines():
            fields = line.rsplit("\t", 3)
            if len(fields) == 4:
                table[fields[0]] = (int(fields[1]), int(fields[2]), int(fields[3]))
        return table

    def function_status(self, function: str) -> tuple[int, int, int]:
        return self.status().get(function, (0, 0, 0))

    def wait_for_workers(self, function: str, count: int, timeout: float) -> None:
        """Wait until ``count`` worker connections registered ``function``."""
        deadline = time.monotonic() + timeout
        while self.function_status(function)[2] < count:
            if time.monotonic() > deadline:
                seen = self.function_status(function)[2]
                raise BenchError(
                    f"only {seen} of {count} worker connections registered {function!r} "
                    f"within {timeout:g} s"
                )
            time.sleep(0.02)


def pin_process(pid: int, cpus: Sequence[int] | None) -> None:
    """Set the CPU affinity of every thread of ``pid`` (None: all CPUs)."""
    mask = set(cpus) if cpus is not None else set(range(os.cpu_count() or 1))
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(tid), mask)


# Loading jobs


def submit_packet(function: str, payload: bytes) -> bytes:
    """Encode SUBMIT_JOB_BG with an empty unique (the server then coalesces nothing)."""
    body = function.encode() + b"\0\0" + payload
    return _HEADER.pack(_REQ, _SUBMIT_JOB_BG, len(body)) + body


def load_jobs(address: str, function: str, count: int, payload: bytes, timeout: float) -> float:
    """Queue ``count`` background jobs over one raw socket; return the seconds taken.

    Submissions are pipelined: batches of up to 1 MB are written while the
    JOB_CREATED replies of at most two earlier batches are outstanding.

    Raises:
        BenchError: the server replied with ERROR, closed the connection, or
            the load took longer than ``timeout`` seconds.
    """
    host, _, port = address.rpartition(":")
    packet = submit_packet(function, payload)
    batch_size = max(1, min(1000, 1_000_000 // len(packet)))
    window = 2 * batch_size
    started = time.monotonic()
    deadline = started + timeout
    sent = created = 0
    buffer = b""
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while created < count:
            if time.monotonic() > deadline:
                raise BenchError(f"loading {count} jobs timed out after {timeout:g} s")
            if sent < count and sent - created < window:
                batch = min(batch_size, count - sent)
                sock.sendall(packet * batch)
                sent += batch
                continue
            chunk = sock.recv(262144)
            if not chunk:
                raise BenchError("gearmand closed the loader connection")
            buffer += chunk
            offset = 0
            while len(buffer) - offset >= _HEADER.size:
                magic, kind, size = _HEADER.unpack_from(buffer, offset)
                end = offset + _HEADER.size + size
                if len(buffer) < end:
                    break
                if magic != _RES or kind not in (_JOB_CREATED, _ERROR):
                    raise BenchError(f"unexpected reply {magic!r} type {kind} while loading")
                if kind == _ERROR:
                    raise BenchError(f"gearmand rejected a submission: {buffer[offset:end]!r}")
                created += 1
                offset = end
            buffer = buffer[offset:]
    return time.monotonic() - started


# Drains


class SystemLoad:
    """CPU time used on the whole machine by processes other than ours.

    Other programs on the machine (another test suite, say) slow every
    measurement down, so each drain records how much CPU they used while it ran,
    and runs wait for a quiet machine before they start.
    """

    def __init__(self, quiet_budget: float = 120.0) -> None:
        self.quiet_budget = quiet_budget
        self.waited = 0.0
        self.cpus = os.cpu_count() or 1

    @staticmethod
    def busy_seconds() -> float:
        """CPU seconds spent busy on all CPUs since boot, from /proc/stat."""
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def own_seconds(pids: Sequence[int]) -> float:
        total = 0.0
        for pid in pids:
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += cpu_seconds_stat(pid)
        return total

    def wait_for_quiet(
        self, max_wait: float = 10.0, threshold: float = 0.10, window: float = 0.5
    ) -> float:
        """Wait until other processes use under ``threshold`` of one CPU.

        Waits at most ``max_wait`` seconds per call, and at most ``quiet_budget``
        seconds over all calls, so a busy machine delays the run only so much.
        Returns the seconds waited.
        """
        started = time.monotonic()
        if self.waited >= self.quiet_budget:
            return 0.0
        me = [os.getpid()]
        while True:
            busy = self.busy_seconds() - self.own_seconds(me)
            time.sleep(window)
            other = (self.busy_seconds() - self.own_seconds(me) - busy) / window
            waited = time.monotonic() - started
            if (
                other < threshold
                or waited >= max_wait
                or self.waited + waited >= self.quiet_budget
            ):
                self.waited += waited
                if other >= threshold:
                    log.warning("machine still busy (%.0f %% of one CPU used by other "
                                "processes); measuring anyway", 100 * other)
                return waited


class LoadMeter:
    """Meter of the share of all CPUs used by processes outside ``pids`` since it was created."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = list(pids)
        self.started = time.monotonic()
        self.busy = SystemLoad.busy_seconds()
        self.own = SystemLoad.own_seconds(self.pids)

    def other_share(self) -> float:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        busy = SystemLoad.busy_seconds() - self.busy
        own = SystemLoad.own_seconds(self.pids) - self.own
        return max(0.0, busy - own) / (elapsed * (os.cpu_count() or 1))


@dataclass
class Drain:
    """Outcome of draining a queue, with times as time.monotonic() values."""

    status: str  # "ok", "timeout" or "error"
    jobs: int
    done: int
    started: float
    ended: float
    detail: str = ""
    other_cpu_share: float | None = None

    @property
    def seconds(self) -> float:
        return max(self.ended - self.started, 1e-9)

    @property
    def rate(self) -> float:
        return self.done / self.seconds


def wait_for_drain(
    server: JobServer,
    function: str,
    jobs: int,
    workers: Sequence[Child],
    *,
    timeout: float,
    poll_interval: float,
) -> Drain:
    """Poll gearmand until no job of ``function`` is queued or running.

    The drain starts at the earliest ``FIRST`` report of ``workers``. If none
    reported one, it starts at the first poll that saw progress. It ends at the
    first poll that found the function empty, which is late by at most one
    ``poll_interval`` plus one admin round trip.
    """
    meter = LoadMeter([os.getpid(), server.pid, *(child.pid for child in workers)])
    polled_at = time.monotonic()
    deadline = polled_at + timeout
    progress_seen: float | None = None
    remaining = jobs
    while True:
        remaining = server.function_status(function)[0]
        now = time.monotonic()
        if remaining < jobs and progress_seen is None:
            progress_seen = now
        if remaining == 0:
            status, detail = "ok", ""
            break
        dead = [child for child in workers if child.exited()]
        if dead:
            status, detail = "error", dead[0].describe_exit()
            break
        if now > deadline:
            status, detail = "timeout", f"{remaining} of {jobs} jobs left after {timeout:g} s"
            break
        time.sleep(poll_interval)
    reports = [child.first_job for child in workers if child.first_job is not None]
    started = min(reports) if reports else (progress_seen or polled_at)
    return Drain(
        status, jobs, jobs - remaining, started, now, detail, round(meter.other_share(), 4)
    )


# /proc readers


def rss_bytes(pid: int) -> int:
    """Return the resident set size of ``pid`` in bytes, from /proc/PID/status (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise BenchError(f"no VmRSS line for pid {pid}")


def cpu_seconds_stat(pid: int) -> float:
    """Return the user plus system CPU seconds of ``pid`` from /proc/PID/stat (tick resolution)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    # Fields 14 and 15 of stat (utime, stime) are at 11 and 12 after the command name.
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def thread_cpu_ns(pid: int) -> dict[int, int]:
    """Return the CPU time in ns of each live thread of ``pid``, from /proc/PID/task/*/schedstat."""
    times = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            path = Path(f"/proc/{pid}/task/{tid}/schedstat")
            times[int(tid)] = int(path.read_text().split()[0])
    return times


def cpu_seconds_between(before: dict[int, int], after: dict[int, int]) -> float:
    """Return the CPU seconds used between two :func:`thread_cpu_ns` readings.

    Threads that started in between count from zero. Threads that exited in
    between are missing from ``after``, so their last interval is lost.
    """
    return sum(ns - before.get(tid, 0) for tid, ns in after.items()) / 1e9
