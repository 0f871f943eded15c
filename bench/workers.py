"""Benchmark workers, one process per run: geargevent, pygearman, gear and a bare loop.

Every worker serves one function in one of two modes:

- ``echo``: return the payload reversed, as fast as possible.
- ``sleep``: wait ``--sleep-ms`` milliseconds without using the CPU, then
  return the payload. gevent-based workers wait with ``gevent.sleep``, and
  gear's threads with ``time.sleep``.

On its first job a worker prints ``FIRST <time.monotonic()>``, so the driver can
time a drain from the first job, not from the process start. Workers run until
the driver kills them.

How each one reaches ``--pool`` jobs at once in sleep mode:

- geargevent: one connection per server and ``max_jobs=pool``.
- pygearman: ``pool`` GearmanWorker objects, each with its own connection,
  in greenlets of one monkey-patched process (pygearman runs one job at a time
  per worker object).
- gear: one gear.Worker and ``pool`` threads calling ``getJob()`` (gear's own
  model for concurrency).
- bare: echo mode only, always one connection with 32 GRABs outstanding.
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
import threading
import time

_first_job_reported = False


def report_first_job() -> None:
    global _first_job_reported
    if not _first_job_reported:
        _first_job_reported = True
        print(f"FIRST {time.monotonic():.6f}", flush=True)


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


# geargevent


def run_geargevent(args: argparse.Namespace) -> None:
    import gevent.monkey

    gevent.monkey.patch_all()
    import gevent

    from geargevent import GearmanWorker

    max_jobs = args.pool if args.mode == "sleep" else args.max_jobs
    worker = GearmanWorker(args.server, max_jobs=max_jobs)
    sleep_seconds = args.sleep_ms / 1000.0

    def echo(worker: GearmanWorker, job: object) -> bytes:
        if not _first_job_reported:
            report_first_job()
        return job.data[::-1]  # type: ignore[attr-defined,no-any-return]

    def wait(worker: GearmanWorker, job: object) -> bytes:
        if not _first_job_reported:
            report_first_job()
        gevent.sleep(sleep_seconds)
        return job.data  # type: ignore[attr-defined,no-any-return]

    worker.register_task(args.function, echo if args.mode == "echo" else wait)
    worker.work()


# pygearman (python-gearman 2.x API, Python 3 fork)


def run_pygearman(args: argparse.Namespace) -> None:
    if args.mode == "sleep":
        # Patch before gearman imports select, so it falls back to the
        # cooperative select.select instead of epoll.
        import gevent.monkey

        gevent.monkey.patch_all()
        import gevent
    import gearman

    hosts = args.server
    # pygearman compares the function name of JOB_ASSIGN (bytes) with the
    # registered names, so a str name would never match.
    function = args.function.encode()
    sleep_seconds = args.sleep_ms / 1000.0

    def echo(worker: object, job: gearman.job.GearmanJob) -> bytes:
        if not _first_job_reported:
            report_first_job()
        return job.data[::-1]  # type: ignore[no-any-return]

    def wait(worker: object, job: gearman.job.GearmanJob) -> bytes:
        if not _first_job_reported:
            report_first_job()
        gevent.sleep(sleep_seconds)
        return job.data  # type: ignore[no-any-return]

    if args.mode == "echo":
        worker = gearman.GearmanWorker(hosts)
        worker.register_task(function, echo)
        worker.work()
        return

    workers = []
    for _ in range(args.pool):
        worker = gearman.GearmanWorker(hosts)
        worker.register_task(function, wait)
        workers.append(gevent.spawn(worker.work))
    gevent.joinall(workers, raise_error=True)


# gear (OpenStack)


def patch_gear_nodelay(gear: object) -> None:
    """Make gear set TCP_NODELAY on every connection it opens.

    Stock gear leaves Nagle's algorithm on, so a small packet can wait for the
    peer's delayed ACK (40 ms minimum on Linux) on every job. gear's clients
    and workers create connections through the module-level name
    ``gear.Connection``, so replacing it with a subclass covers all of them.
    """
    base = gear.Connection  # type: ignore[attr-defined]

    class NoDelayConnection(base):  # type: ignore[misc,valid-type]
        def connect(self) -> None:
            super().connect()
            self.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    gear.Connection = NoDelayConnection  # type: ignore[attr-defined]


def run_gear(args: argparse.Namespace) -> None:
    import gear

    patch_gear_nodelay(gear)
    worker = gear.Worker("bench")
    for address in args.server:
        host, port = split_address(address)
        worker.addServer(host, port)
    worker.waitForServer(timeout=10)
    worker.registerFunction(args.function)
    sleep_seconds = args.sleep_ms / 1000.0

    def serve() -> None:
        while True:
            job = worker.getJob()
            if not _first_job_reported:
                report_first_job()
            if args.mode == "echo":
                job.sendWorkComplete(job.arguments[::-1])
            else:
                time.sleep(sleep_seconds)
                job.sendWorkComplete(job.arguments)

    if args.mode == "echo":
        serve()
        return
    threading.stack_size(256 * 1024)
    threads = [threading.Thread(target=serve, daemon=True) for _ in range(args.pool)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# The bare loop: the ceiling for Python on this job.

_HEADER = struct.Struct(">4sII")
_REQ = b"\0REQ"
_RES = b"\0RES"
_CAN_DO = 1
_PRE_SLEEP = 4
_NOOP = 6
_NO_JOB = 10
_WORK_COMPLETE = 13
_GRAB_JOB_UNIQ = 30
_JOB_ASSIGN_UNIQ = 31
BARE_OUTSTANDING_GRABS = 32


def packet(kind: int, payload: bytes = b"") -> bytes:
    return _HEADER.pack(_REQ, kind, len(payload)) + payload


def run_bare(args: argparse.Namespace) -> None:
    """Serve echo jobs with plain blocking sockets and no library.

    One connection keeps 32 GRAB_JOB_UNIQ outstanding. Each assigned job is
    completed inline, and its WORK_COMPLETE leaves in the same write as the GRAB
    that replaces it. When every GRAB got NO_JOB it sends PRE_SLEEP and waits
    for NOOP. This is the least work a Python worker can do per job.
    """
    if args.mode != "echo" or len(args.server) != 1:
        sys.exit("the bare loop serves echo jobs from one server only")
    sock = socket.create_connection(split_address(args.server[0]))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    grab = packet(_GRAB_JOB_UNIQ)
    sock.sendall(packet(_CAN_DO, args.function.encode()) + grab * BARE_OUTSTANDING_GRABS)
    outstanding = BARE_OUTSTANDING_GRABS
    header = _HEADER
    header_size = header.size
    buffer = b""
    while True:
        data = sock.recv(262144)
        if not data:
            return
        buffer = buffer + data if buffer else data
        offset = 0
        end = len(buffer)
        out = []
        while end - offset >= header_size:
            magic, kind, size = header.unpack_from(buffer, offset)
            if magic != _RES:
                sys.exit(f"bad magic {magic!r} from the job server")
            start = offset + header_size
            if end - start < size:
                break
            offset = start + size
            if kind == _JOB_ASSIGN_UNIQ:
                if not _first_job_reported:
                    report_first_job()
                handle, _function, _unique, payload = buffer[start:offset].split(b"\0", 3)
                result = payload[::-1]
                out.append(header.pack(_REQ, _WORK_COMPLETE, len(handle) + 1 + len(result)))
                out.append(handle + b"\0" + result)
                out.append(grab)
            elif kind == _NO_JOB:
                outstanding -= 1
                if outstanding == 0:
                    out.append(packet(_PRE_SLEEP))
            elif kind == _NOOP and outstanding == 0:
                outstanding = BARE_OUTSTANDING_GRABS
                out.append(grab * BARE_OUTSTANDING_GRABS)
        buffer = buffer[offset:]
        if out:
            sock.sendall(b"".join(out))


RUNNERS = {
    "geargevent": run_geargevent,
    "pygearman": run_pygearman,
    "gear": run_gear,
    "bare": run_bare,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("implementation", choices=sorted(RUNNERS))
    parser.add_argument(
        "--server", action="append", required=True, help="job server HOST:PORT (repeatable)"
    )
    parser.add_argument("--function", required=True, help="Gearman function name to serve")
    parser.add_argument("--mode", choices=("echo", "sleep"), default="echo")
    parser.add_argument("--sleep-ms", type=float, default=50.0, help="wait per job in sleep mode")
    parser.add_argument("--pool", type=int, default=1, help="jobs at once in sleep mode")
    parser.add_argument(
        "--max-jobs", type=int, default=100, help="geargevent max_jobs in echo mode"
    )
    args = parser.parse_args()
    RUNNERS[args.implementation](args)


if __name__ == "__main__":
    main()
