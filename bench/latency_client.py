"""Time foreground round trips with geargevent's GearmanClient.

``--concurrency`` greenlets share one GearmanClient (one connection, the way an
application would use it) and ``--requests`` foreground jobs, each greenlet
submitting one job at a time. Each greenlet first sends ``--warmup`` jobs that
are not timed, and timing starts when all greenlets have done so. Prints one
line per timed job with its round trip in microseconds, then ``FAILED <count>``,
the same output as the C client in ``c/client.c``.
"""

from __future__ import annotations

import argparse
import time

import gevent
import gevent.event

from geargevent import GearmanClient


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True, help="job server HOST:PORT")
    parser.add_argument("--function", required=True)
    parser.add_argument("--requests", type=int, default=1000, help="timed jobs in all")
    parser.add_argument("--concurrency", type=int, default=1, help="submitters at once")
    parser.add_argument("--warmup", type=int, default=20, help="untimed jobs per submitter")
    parser.add_argument("--size", type=int, default=100, help="payload bytes")
    parser.add_argument("--timeout-ms", type=int, default=10000, help="limit per job")
    args = parser.parse_args()

    client = GearmanClient([args.server])
    payload = bytes(ord("a") + i % 26 for i in range(args.size))
    timeout = args.timeout_ms / 1000.0
    latencies_us: list[float] = []
    failures = 0
    warmed_up = 0
    all_warmed_up = gevent.event.Event()

    def round_trip() -> bool:
        request = client.submit_job(args.function, payload, poll_timeout=timeout)
        return bool(request.complete)

    def submit(count: int) -> None:
        nonlocal failures, warmed_up
        for _ in range(args.warmup):
            if not round_trip():
                failures += 1
        warmed_up += 1
        if warmed_up == args.concurrency:
            all_warmed_up.set()
        all_warmed_up.wait()
        for _ in range(count):
            started = time.perf_counter()
            ok = round_trip()
            elapsed = time.perf_counter() - started
            if ok:
                latencies_us.append(elapsed * 1e6)
            else:
                failures += 1

    shares = [
        args.requests // args.concurrency + (i < args.requests % args.concurrency)
        for i in range(args.concurrency)
    ]
    gevent.joinall([gevent.spawn(submit, share) for share in shares], raise_error=True)
    client.close()
    print("\n".join(f"{value:.1f}" for value in latencies_us))
    print(f"FAILED {failures}", flush=True)


if __name__ == "__main__":
    main()
