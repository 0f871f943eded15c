"""A GearmanWorker subclass in python-gearman style: a JSON data encoder and an after_poll hook.

The function 'summarize' takes a JSON list of numbers and returns a JSON object with their
count, sum, minimum, maximum and mean. An empty list or a non-number makes the handler
raise, and the client receives the exception as WORK_EXCEPTION data.

after_poll() counts the polls in a row in which nothing arrived from the job servers and,
with --max-idle-polls, stops the worker after that many: a worker for batch runs that ends
once its queue has been empty for a while.

    python examples/json_worker.py 127.0.0.1:4730 --poll-timeout 5 --max-idle-polls 12
    python examples/client.py 127.0.0.1:4730 summarize '[3, 1, 4, 1, 5]' --encoder json
"""

# Monkey-patching must come before every other import, so that libraries a handler uses
# get gevent's cooperative socket and time.sleep instead of the blocking originals.
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402

from geargevent import GearmanJob, GearmanWorker, JSONDataEncoder  # noqa: E402

log = logging.getLogger("examples.json_worker")


class IdleStopJSONWorker(GearmanWorker):
    """A worker that decodes job data and encodes results as JSON, and stops when idle."""

    data_encoder = JSONDataEncoder

    def __init__(self, *args: Any, max_idle_polls: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_idle_polls = max_idle_polls
        self.polls = 0
        self.idle_polls = 0

    def after_poll(self, any_activity: bool) -> bool:
        # work() calls this after each poll_timeout seconds without activity, and after
        # activity at most once per wake-up. Returning False stops the worker gracefully.
        self.polls += 1
        if any_activity:
            self.idle_polls = 0
        else:
            self.idle_polls += 1
        log.info(
            "poll %d: activity=%s, idle polls in a row=%d",
            self.polls,
            any_activity,
            self.idle_polls,
        )
        if self.max_idle_polls is not None and self.idle_polls >= self.max_idle_polls:
            log.info("no activity for %d polls in a row; stopping", self.idle_polls)
            return False
        return True


def summarize(worker: GearmanWorker, job: GearmanJob) -> dict[str, float]:
    numbers = job.data
    if not isinstance(numbers, list) or not numbers:
        raise ValueError(f"expected a non-empty JSON list of numbers, got {numbers!r}")
    for number in numbers:
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise TypeError(f"expected only numbers, got {number!r}")
    return {
        "count": len(numbers),
        "sum": sum(numbers),
        "min": min(numbers),
        "max": max(numbers),
        "mean": sum(numbers) / len(numbers),
    }


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Serve 'summarize' with JSON data, stopping after idle polls if asked."
    )
    parser.add_argument(
        "servers",
        nargs="*",
        default=["127.0.0.1:4730"],
        help="job servers as host:port (default: 127.0.0.1:4730)",
    )
    parser.add_argument("--max-jobs", type=int, default=100, help="jobs run at once (default: 100)")
    parser.add_argument(
        "--poll-timeout",
        type=float,
        default=60.0,
        help="seconds without activity after which after_poll() runs (default: 60)",
    )
    parser.add_argument(
        "--max-idle-polls",
        type=int,
        default=None,
        help="stop after this many polls in a row without activity (default: never)",
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

    worker = IdleStopJSONWorker(
        arguments.servers, max_jobs=arguments.max_jobs, max_idle_polls=arguments.max_idle_polls
    )
    worker.set_client_id("json-worker")
    worker.register_task("summarize", summarize)
    stop_on_signal(worker)

    log.info(
        "serving 'summarize' on %s, up to %d jobs at once; Ctrl-C stops",
        ", ".join(arguments.servers),
        arguments.max_jobs,
    )
    worker.work(poll_timeout=arguments.poll_timeout)
    log.info("stopped after %d polls", worker.polls)


if __name__ == "__main__":
    main()
