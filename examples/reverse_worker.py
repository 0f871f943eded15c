"""Reverse the bytes of each job's data: python-gearman's reverse worker on geargevent.

Run it against a job server, then submit jobs with examples/client.py:

    python examples/reverse_worker.py 127.0.0.1:4730
    python examples/client.py 127.0.0.1:4730 reverse hello world

Ctrl-C or SIGTERM stops it gracefully: running jobs finish and deliver their results first.
"""

# Monkey-patching must come before every other import. patch_all() replaces the blocking
# parts of the standard library (socket, ssl, time.sleep, threading, ...) with cooperative
# gevent versions. A module imported earlier keeps the blocking originals, and a handler that
# blocks in one of them stops every other job in this process until it returns.
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402

import gevent  # noqa: E402

from geargevent import GearmanJob, GearmanWorker  # noqa: E402

log = logging.getLogger("examples.reverse_worker")


def reverse(worker: GearmanWorker, job: GearmanJob) -> bytes:
    # job.data is bytes with the default (raw) encoder. python-gearman's example returned
    # reversed(job.data), which in Python 3 is an iterator, not bytes. A slice is bytes.
    return job.data[::-1]


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve the Gearman function 'reverse'.")
    parser.add_argument(
        "servers",
        nargs="*",
        default=["127.0.0.1:4730"],
        help="job servers as host:port (default: 127.0.0.1:4730)",
    )
    parser.add_argument("--max-jobs", type=int, default=100, help="jobs run at once (default: 100)")
    parser.add_argument(
        "--client-id",
        default="reverse-worker",
        help="id shown by gearadmin --workers (default: reverse-worker)",
    )
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        default="INFO",
        help="logging level (default: INFO)",
    )
    return parser.parse_args()


def stop_on_signal(worker: GearmanWorker) -> None:
    """Stop gracefully on the first Ctrl-C or SIGTERM, and at once on the second."""

    def stop(signal_name: str) -> None:
        if worker.is_stopping():
            log.warning("%s again: closing connections without waiting for jobs", signal_name)
            worker.shutdown(graceful=False)
        else:
            log.info("%s: finishing running jobs, then stopping", signal_name)
            worker.shutdown()

    # gevent runs these handlers in a new greenlet, where calling the worker is safe.
    gevent.signal_handler(signal.SIGINT, stop, "SIGINT")
    gevent.signal_handler(signal.SIGTERM, stop, "SIGTERM")


def main() -> None:
    arguments = parse_arguments()
    logging.basicConfig(
        level=arguments.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )

    worker = GearmanWorker(arguments.servers, max_jobs=arguments.max_jobs)
    worker.set_client_id(arguments.client_id)
    worker.register_task("reverse", reverse)
    stop_on_signal(worker)

    log.info(
        "serving 'reverse' on %s, up to %d jobs at once; Ctrl-C stops",
        ", ".join(arguments.servers),
        arguments.max_jobs,
    )
    worker.work()
    log.info("stopped")


if __name__ == "__main__":
    main()
