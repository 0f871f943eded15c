"""Submit jobs to a Gearman function from the command line and print what comes back.

Each DATA argument becomes one job, and all of them are submitted at once. Foreground jobs
(the default) wait for the results and print each one with its WORK_DATA updates and last
WORK_STATUS. --background only submits and prints the job handles.

    python examples/client.py 127.0.0.1:4730 reverse hello world
    python examples/client.py 127.0.0.1:4730 reverse --background one two three
    python examples/client.py 127.0.0.1:4730 summarize '[1, 2, 3]' --encoder json

With --encoder json or msgpack, each DATA is parsed as JSON text and sent with that
encoder. The exit status is 0 when every job completed (or, with --background, was
queued), 1 when any job failed or timed out, and 2 for invalid arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from geargevent import JOB_COMPLETE, GearmanClient, GearmanError, GearmanJobRequest


def format_value(value: Any, encoder: str) -> str:
    """Return a printable form of decoded data: text for raw bytes, JSON for JSON data."""
    if isinstance(value, bytes) and encoder == "raw":
        return value.decode("utf-8", "backslashreplace")
    if encoder == "json":
        return json.dumps(value, ensure_ascii=False)
    return repr(value)


def parse_data(texts: list[str], encoder: str) -> list[Any]:
    if encoder == "raw":
        return list(texts)
    values = []
    for text in texts:
        try:
            values.append(json.loads(text))
        except json.JSONDecodeError as error:
            raise SystemExit(
                f"client.py: error: invalid JSON in DATA {text!r}: {error}; "
                "quote strings, as in '\"text\"'"
            ) from None
    return values


def print_result(text: str, request: GearmanJobRequest, encoder: str, timeout: float) -> bool:
    """Print how one foreground job ended, and return True if it completed."""
    if request.data_updates:
        updates = ", ".join(format_value(update, encoder) for update in request.data_updates)
        print(f"{text}: {len(request.data_updates)} WORK_DATA updates: {updates}")
    for warning in request.warning_updates:
        print(f"{text}: WORK_WARNING {format_value(warning, encoder)}")
    if request.status:
        print(
            f"{text}: last WORK_STATUS {request.status['numerator']}/"
            f"{request.status['denominator']}"
        )

    if request.state == JOB_COMPLETE:
        print(f"{text} -> {format_value(request.result, encoder)}")
        return True
    if request.timed_out:
        print(f"{text} -> no result within {timeout:g} s (is a worker running?)")
    elif request.exception is not None:
        print(f"{text} -> exception: {format_value(request.exception, encoder)}")
    elif request.error is not None:
        print(f"{text} -> failed: {request.error}")
    else:
        print(f"{text} -> failed (WORK_FAIL)")
    return False


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Submit one job per DATA argument to a Gearman function."
    )
    parser.add_argument("server", help="job server as host:port, for example 127.0.0.1:4730")
    parser.add_argument("function", help="Gearman function name, for example reverse")
    parser.add_argument("data", nargs="+", help="job data, one job per argument")
    parser.add_argument(
        "--background",
        action="store_true",
        help="submit background jobs: print their handles, wait for no result",
    )
    parser.add_argument(
        "--encoder",
        choices=["raw", "json", "msgpack"],
        default="raw",
        help="data encoder; with json or msgpack each DATA is parsed as JSON (default: raw)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds to wait for all results, or for the handles with --background (default: 30)",
    )
    return parser.parse_args()


def main() -> int:
    arguments = parse_arguments()
    values = parse_data(arguments.data, arguments.encoder)

    with GearmanClient([arguments.server], data_encoder=arguments.encoder) as client:
        try:
            requests = [
                client.submit_job(
                    arguments.function,
                    value,
                    background=arguments.background,
                    wait_until_complete=False,
                )
                for value in values
            ]
        except (GearmanError, ValueError) as error:
            print(f"client.py: error: {error}", file=sys.stderr)
            return 1
        client.wait_until_jobs_completed(requests, poll_timeout=arguments.timeout)

        all_succeeded = True
        for text, request in zip(arguments.data, requests, strict=True):
            if not arguments.background:
                all_succeeded &= print_result(text, request, arguments.encoder, arguments.timeout)
            elif request.job.handle is not None:
                print(f"{text} -> queued as {request.job.handle}")
            else:
                reason = request.error or f"no handle within {arguments.timeout:g} s"
                print(f"{text} -> not queued: {reason}")
                all_succeeded = False
    return 0 if all_succeeded else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
