"""Send a job's result piece by piece: WORK_DATA for each character, WORK_STATUS for progress.

python-gearman's in-flight updates example on geargevent. The function 'reverse_inflight'
decodes the job data as UTF-8, sends the reversed text one character per WORK_DATA packet
with a WORK_STATUS after each, and returns None, so the final WORK_COMPLETE is empty.
Only foreground clients that wait for the job receive the updates.

    python examples/inflight_worker.py 127.0.0.1:4730
    python examples/client.py 127.0.0.1:4730 reverse_inflight hello
"""

# Monkey-patching must come before every other import, so that libraries a handler uses
# get gevent's cooperative socket and time.sleep instead of the blocking originals.
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
from collections.abc import Callable  # noqa: E402

import gevent  # noqa: E402

from geargevent import GearmanJob, GearmanWorker  # noqa: E402

log = logging.getLogger("examples.inflight_worker")


def make_handler(delay: float) -> Callable[[GearmanWorker, GearmanJob], None]:
    def reverse_inflight(worker: GearmanWorker, job: GearmanJob) -> None:
        # Reverse characters, not bytes, so that multi-byte UTF-8 characters stay intact.
        reversed_text = job.data.decode("utf-8")[::-1]
        total = len(reversed_text)
        for index, character in enumerate(reversed_text):
            # The raw encoder sends str as UTF-8.
            worker.send_job_data(job, character)
            worker.send_job_status(job, index + 1, total)
            # Stands in for real work between updates; other jobs run meanwhile.
            gevent.sleep(delay)
        return None

    return reverse_inflight


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Serve 'reverse_inflight', which streams its result with WORK_DATA."
    )
    parser.add_argument(
        "servers",
        nargs="*",
        default=["127.0.0.1:4730"],
        help="job servers as host:port (default: 127.0.0.1:4730)",
    )
    parser.add_argument("--max-jobs", type=int, default=100, help="jobs run at once (default: 100)")
    parser.add_argument(
        "--delay",
        type=float,
        default=0.05,
        help="seconds to wait after each character, to make progress visible (default: 0.05)",
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

    gevent.signal_handler(signal.SIGINT, stop, "SIGINT")
    gevent.signal_handler(signal.SIGTERM, stop, "SIGTERM")


def main() -> None:
    arguments = parse_arguments()
    logging.basicConfig(
        level=arguments.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )

    worker = GearmanWorker(arguments.servers, max_jobs=arguments.max_jobs)
    worker.set_client_id("inflight-worker")
    worker.register_task("reverse_inflight", make_handler(arguments.delay))
    stop_on_signal(worker)

    log.info(
        "serving 'reverse_inflight' on %s, up to %d jobs at once; Ctrl-C stops",
        ", ".join(arguments.servers),
        arguments.max_jobs,
    )
    worker.work()
    log.info("stopped")


if __name__ == "__main__":
    main()
