"""A worker whose job data and results are MessagePack maps containing both bytes and str.

The function 'checksum' takes ``{"name": str, "content": bytes, "algorithm": str}`` (the
algorithm is optional and defaults to "sha256") and returns ``{"name": str, "size": int,
"algorithm": str, "digest": bytes, "hexdigest": str}``. MsgpackDataEncoder keeps bytes and
str apart in both directions, which JSON cannot do.

    python examples/msgpack_worker.py 127.0.0.1:4730

Submit jobs from Python, because the data contains bytes:

    from geargevent import GearmanClient
    client = GearmanClient(["127.0.0.1:4730"], data_encoder="msgpack")
    request = client.submit_job("checksum", {"name": "greeting", "content": b"hello"})
    print(request.result)
"""

# Monkey-patching must come before every other import, so that libraries a handler uses
# get gevent's cooperative socket and time.sleep instead of the blocking originals.
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import hashlib  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402

from geargevent import GearmanJob, GearmanWorker  # noqa: E402

log = logging.getLogger("examples.msgpack_worker")


def checksum(worker: GearmanWorker, job: GearmanJob) -> dict[str, Any]:
    request = job.data
    if not isinstance(request, dict):
        raise TypeError(f"expected a map, got {type(request).__name__}")
    name = request.get("name")
    content = request.get("content")
    algorithm = request.get("algorithm", "sha256")
    if not isinstance(name, str):
        raise TypeError(f"'name' must be a str, got {type(name).__name__}")
    if not isinstance(content, bytes):
        raise TypeError(f"'content' must be bytes, got {type(content).__name__}")
    if algorithm not in hashlib.algorithms_guaranteed:
        raise ValueError(
            f"unknown algorithm {algorithm!r}; "
            f"choose one of {', '.join(sorted(hashlib.algorithms_guaranteed))}"
        )

    digest = hashlib.new(algorithm, content)
    return {
        "name": name,
        "size": len(content),
        "algorithm": algorithm,
        "digest": digest.digest(),
        "hexdigest": digest.hexdigest(),
    }


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve 'checksum' with MessagePack data.")
    parser.add_argument(
        "servers",
        nargs="*",
        default=["127.0.0.1:4730"],
        help="job servers as host:port (default: 127.0.0.1:4730)",
    )
    parser.add_argument("--max-jobs", type=int, default=100, help="jobs run at once (default: 100)")
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

    # data_encoder also takes MsgpackDataEncoder, an instance of a custom encoder, or the
    # names "raw" and "json".
    worker = GearmanWorker(arguments.servers, max_jobs=arguments.max_jobs, data_encoder="msgpack")
    worker.set_client_id("msgpack-worker")
    worker.register_task("checksum", checksum)
    stop_on_signal(worker)

    log.info(
        "serving 'checksum' on %s, up to %d jobs at once; Ctrl-C stops",
        ", ".join(arguments.servers),
        arguments.max_jobs,
    )
    worker.work()
    log.info("stopped")


if __name__ == "__main__":
    main()
