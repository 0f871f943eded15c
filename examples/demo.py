"""Run geargevent end to end: a private gearmand, the reverse worker, and a batch of jobs.

What it does, in order:

1. Starts the C gearmand on 127.0.0.1 and a free port (geargevent.testing.GearmandProcess),
   with its log in a temporary folder.
2. Starts examples/reverse_worker.py as a separate process with a pool of --max-jobs.
3. Submits a few foreground jobs and prints their results, then a batch of foreground
   jobs whose results it checks, then a batch of background jobs, and prints the rate of
   each batch in jobs per second.
4. Stops the worker (SIGTERM, then SIGKILL if it does not exit) and gearmand, also when
   interrupted by Ctrl-C or SIGTERM.

The rates depend on the machine and tell little about a real workload, because the reverse
handler does almost no work.

    python examples/demo.py
    python examples/demo.py --jobs 100000 --max-jobs 200
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

import gevent

from geargevent import JOB_COMPLETE, GearmanClient, GearmanJobRequest
from geargevent.testing import GearmandProcess

EXAMPLES = Path(__file__).resolve().parent
FUNCTION = "reverse"
SAMPLE_WORDS = ["hello", "gevent", "gearman", "stressed", "drawer"]

# Seconds allowed for the worker to start and register, and to stop after SIGTERM.
WORKER_START_TIMEOUT = 20.0
WORKER_STOP_TIMEOUT = 10.0


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Start a private gearmand and the reverse worker, and run jobs through them."
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=10_000,
        help="background jobs in the batch (default: 10000)",
    )
    parser.add_argument(
        "--foreground-jobs",
        type=int,
        default=10_000,
        help="foreground jobs whose results are checked (default: 10000)",
    )
    parser.add_argument(
        "--max-jobs",
        type=int,
        default=100,
        help="jobs the worker runs at once (default: 100)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds each batch may take before the demo gives up (default: 120)",
    )
    arguments = parser.parse_args()
    for name in ("jobs", "foreground_jobs"):
        if getattr(arguments, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must be 0 or more")
    if arguments.max_jobs < 1:
        parser.error("--max-jobs must be 1 or more")
    return arguments


def say(text: str) -> None:
    print(text, flush=True)


# Starting and stopping the worker process.


def start_worker(server: GearmandProcess, max_jobs: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        str(EXAMPLES / "reverse_worker.py"),
        server.address,
        "--max-jobs",
        str(max_jobs),
        "--client-id",
        "demo-reverse-worker",
        "--log-level",
        "WARNING",
    ]
    # A new session keeps a Ctrl-C in the terminal away from the worker, so that this
    # script stops it in order: the worker first, then gearmand.
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True)


def wait_for_worker(server: GearmandProcess, worker: subprocess.Popen[bytes]) -> None:
    """Wait until gearmand lists a worker for FUNCTION, or raise RuntimeError."""
    deadline = time.monotonic() + WORKER_START_TIMEOUT
    while True:
        if worker.poll() is not None:
            raise RuntimeError(f"the reverse worker exited with status {worker.returncode}")
        _total, _running, workers = server.status().get(FUNCTION, (0, 0, 0))
        if workers > 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the reverse worker did not register within {WORKER_START_TIMEOUT:g} s"
            )
        gevent.sleep(0.05)


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + WORKER_STOP_TIMEOUT
        while worker.poll() is None and time.monotonic() < deadline:
            gevent.sleep(0.02)
    if worker.poll() is None:
        say(f"the worker did not stop within {WORKER_STOP_TIMEOUT:g} s; killing it")
        worker.kill()
        worker.wait()


# The jobs.


def submit_all(
    client: GearmanClient, words: list[str], *, background: bool
) -> list[GearmanJobRequest]:
    requests = []
    for index, word in enumerate(words):
        requests.append(
            client.submit_job(FUNCTION, word, background=background, wait_until_complete=False)
        )
        # Submitting does not yield to other greenlets. Yielding now and then lets the
        # client send and read while it submits, and lets a SIGTERM handler run.
        if index % 1000 == 999:
            gevent.sleep(0)
    return requests


def run_samples(client: GearmanClient, timeout: float) -> None:
    requests = [
        client.submit_job(FUNCTION, word, wait_until_complete=False) for word in SAMPLE_WORDS
    ]
    client.wait_until_jobs_completed(requests, poll_timeout=timeout)
    for word, request in zip(SAMPLE_WORDS, requests, strict=True):
        if request.state != JOB_COMPLETE:
            raise RuntimeError(f"job {word!r} ended as {request.state}, not complete")
        say(f"  {word!r} -> {request.result.decode()!r}")


def run_foreground_batch(client: GearmanClient, count: int, timeout: float) -> None:
    if count == 0:
        return
    words = [f"job-{index:07d}" for index in range(count)]
    started = time.monotonic()
    requests = submit_all(client, words, background=False)
    client.wait_until_jobs_completed(requests, poll_timeout=timeout)
    elapsed = time.monotonic() - started

    for word, request in zip(words, requests, strict=True):
        if request.state != JOB_COMPLETE:
            raise RuntimeError(f"foreground job {word!r} ended as {request.state}, not complete")
        if request.result != word[::-1].encode():
            raise RuntimeError(f"foreground job {word!r} returned {request.result!r}")
    say(
        f"{count:,} foreground jobs: {elapsed:.2f} s, {count / elapsed:,.0f} jobs/s "
        "(every result checked)"
    )


def run_background_batch(
    client: GearmanClient, server: GearmandProcess, count: int, timeout: float
) -> None:
    if count == 0:
        return
    started = time.monotonic()
    requests = submit_all(client, [f"bg-{index}" for index in range(count)], background=True)
    client.wait_until_jobs_completed(requests, poll_timeout=timeout)
    not_queued = sum(1 for request in requests if request.job.handle is None)
    if not_queued:
        raise RuntimeError(f"{not_queued} background jobs got no job handle")

    # Background jobs send no result, so wait until gearmand counts none queued or running.
    deadline = started + timeout
    while True:
        total, _running, _workers = server.status().get(FUNCTION, (0, 0, 0))
        if total == 0:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{total} background jobs still unfinished after {timeout:g} s")
        gevent.sleep(0.02)
    elapsed = time.monotonic() - started
    say(f"{count:,} background jobs: {elapsed:.2f} s, {count / elapsed:,.0f} jobs/s")


def run_demo(arguments: argparse.Namespace, server: GearmandProcess) -> None:
    server.start()
    say(f"gearmand {server.version} pid {server.pid} listening on {server.address}")

    worker = start_worker(server, arguments.max_jobs)
    try:
        say(f"reverse worker pid {worker.pid} with max_jobs={arguments.max_jobs}")
        wait_for_worker(server, worker)

        with GearmanClient([server.address]) as client:
            say("sample results:")
            run_samples(client, arguments.timeout)
            say(
                f"submitting {arguments.foreground_jobs:,} foreground and "
                f"{arguments.jobs:,} background jobs"
            )
            run_foreground_batch(client, arguments.foreground_jobs, arguments.timeout)
            run_background_batch(client, server, arguments.jobs, arguments.timeout)
    finally:
        stop_worker(worker)
        say(f"stopped the reverse worker (exit status {worker.returncode})")


def main() -> int:
    arguments = parse_arguments()
    # SIGTERM takes the same path as Ctrl-C: KeyboardInterrupt in the main greenlet.
    gevent.signal_handler(signal.SIGTERM, gevent.kill, gevent.getcurrent(), KeyboardInterrupt)

    try:
        server = GearmandProcess()
    except FileNotFoundError as error:
        print(
            f"demo.py: error: {error}. On Debian or Ubuntu run, as root: "
            "apt-get install gearman-job-server (`make demo` does this for you)",
            file=sys.stderr,
        )
        return 1

    try:
        run_demo(arguments, server)
    except KeyboardInterrupt:
        say("interrupted; stopping")
        return 130
    except RuntimeError as error:
        print(f"demo.py: error: {error}", file=sys.stderr)
        log_tail = server.log_tail(20)
        if log_tail:
            print(f"end of the gearmand log:\n{log_tail}", file=sys.stderr)
        return 1
    finally:
        pid = server.pid
        server.close()
        if pid is not None:
            say(f"stopped gearmand pid {pid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
