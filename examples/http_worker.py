"""An I/O-bound worker: each job fetches a URL with urllib.request, many jobs at once.

The function 'fetch_url' takes a JSON string holding an http:// or https:// URL and returns
a JSON object with the URL, the HTTP status, the body length in bytes and the seconds the
request took. An HTTP error status (404, 500, ...) is a result, not a failure. A connection
error or an invalid URL makes the handler raise, and the client receives the exception as
WORK_EXCEPTION data.

Because patch_all() makes urllib's sockets cooperative, a job waiting for its response
lets the other jobs run: with --max-jobs 10, ten requests that each take 0.2 s finish in
about 0.2 s, not 2 s.

    python examples/http_worker.py 127.0.0.1:4730 --max-jobs 10
    python examples/client.py 127.0.0.1:4730 fetch_url '"http://127.0.0.1:8000/"' --encoder json
"""

# Monkey-patching must come before every other import: urllib.request, http.client and ssl
# must see gevent's cooperative socket module. Without it each request blocks the whole
# process, and the jobs run one after the other however large max_jobs is.
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.parse  # noqa: E402
import urllib.request  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402

from geargevent import GearmanJob, GearmanWorker  # noqa: E402

log = logging.getLogger("examples.http_worker")

_CHUNK_SIZE = 64 * 1024


def make_handler(
    request_timeout: float, max_body_bytes: int
) -> Callable[[GearmanWorker, GearmanJob], dict[str, Any]]:
    def fetch_url(worker: GearmanWorker, job: GearmanJob) -> dict[str, Any]:
        url = job.data
        if not isinstance(url, str):
            raise TypeError(f"expected the URL as a JSON string, got {url!r}")
        # urllib also opens file: and ftp: URLs, which a job must not be able to request.
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme not in ("http", "https"):
            raise ValueError(f"only http and https URLs are fetched, got {url!r}")

        started = time.monotonic()
        try:
            response = urllib.request.urlopen(url, timeout=request_timeout)
        except urllib.error.HTTPError as error:
            response = error
        with response:
            length = 0
            truncated = False
            while chunk := response.read(_CHUNK_SIZE):
                length += len(chunk)
                if length > max_body_bytes:
                    truncated = True
                    break
        return {
            "url": url,
            "status": response.status,
            "length": length,
            "truncated": truncated,
            "seconds": round(time.monotonic() - started, 3),
        }

    return fetch_url


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve 'fetch_url', which fetches a URL.")
    parser.add_argument(
        "servers",
        nargs="*",
        default=["127.0.0.1:4730"],
        help="job servers as host:port (default: 127.0.0.1:4730)",
    )
    parser.add_argument("--max-jobs", type=int, default=100, help="jobs run at once (default: 100)")
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=10.0,
        help="seconds urllib waits for the server to connect or send data (default: 10)",
    )
    parser.add_argument(
        "--job-timeout",
        type=float,
        default=30.0,
        help="seconds a job may run in all before the worker fails it (default: 30)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=10 * 1024 * 1024,
        help="stop reading a response body after this many bytes (default: 10 MiB)",
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

    worker = GearmanWorker(arguments.servers, max_jobs=arguments.max_jobs, data_encoder="json")
    worker.set_client_id("http-worker")
    # timeout= is enforced inside this worker: at the deadline gevent.Timeout is raised in
    # the handler, and the job fails with a message saying that it timed out. It bounds name
    # lookup, connect and a slowly trickling body together, which urllib's timeout (per
    # socket operation) does not.
    worker.register_task(
        "fetch_url",
        make_handler(arguments.request_timeout, arguments.max_body_bytes),
        timeout=arguments.job_timeout,
    )
    stop_on_signal(worker)

    log.info(
        "serving 'fetch_url' on %s, up to %d jobs at once; Ctrl-C stops",
        ", ".join(arguments.servers),
        arguments.max_jobs,
    )
    worker.work()
    log.info("stopped")


if __name__ == "__main__":
    main()
