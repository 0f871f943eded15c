"""The ``geargevent`` command: submit jobs and read a job server's admin listings.

Subcommands:

- ``submit TASK [DATA|-]`` submits one job, or ``--count N`` jobs, and prints
  results (or handles, with ``--background``) to stdout.
- ``status`` and ``workers`` print the admin listings as tables.
- ``top`` shows queue depth per function, refreshed every ``--interval`` seconds.

Exit codes: 0 success, 1 a job failed or timed out, 2 usage error, 3 a job server
could not be reached or did not reply. Errors are one line on stderr.

Tables, the progress bar and the live view need ``rich`` (the ``cli`` extra).
It is imported only by the code that draws them, so importing this module, the
worker or the client never imports it, and a plain ``submit`` works without it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

import gevent
import gevent.event

from geargevent._admin import FunctionStatus, WorkerInfo
from geargevent.admin import DEFAULT_ADMIN_TIMEOUT, GearmanAdminClient, _reason
from geargevent.client import (
    JOB_COMPLETE,
    JOB_CREATED,
    PRIORITY_HIGH,
    PRIORITY_LOW,
    PRIORITY_NONE,
    GearmanClient,
    GearmanJobRequest,
)
from geargevent.connection import parse_address
from geargevent.encoders import ENCODERS, resolve_encoder
from geargevent.errors import (
    ConnectionLostError,
    GearmanConnectionError,
    GearmanError,
    GearmanTimeoutError,
    ServerError,
    ServerUnavailableError,
)

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

__all__ = [
    "DEFAULT_SERVER",
    "EXIT_JOB_FAILED",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "SERVERS_ENV",
    "TopRow",
    "TopSample",
    "build_parser",
    "compute_top_rows",
    "main",
    "render_top",
    "render_top_text",
]

EXIT_OK = 0
EXIT_JOB_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

DEFAULT_SERVER = "127.0.0.1:4730"
SERVERS_ENV = "GEARGEVENT_SERVERS"

_PRIORITIES = {"low": PRIORITY_LOW, "normal": PRIORITY_NONE, "high": PRIORITY_HIGH}

# Width used for tables when stdout is not a terminal, so that piped output is
# never wrapped. A table takes only the width it needs.
_PIPE_WIDTH = 1000


class CommandError(Exception):
    """An error that ends the command with ``exit_code`` and a one-line message."""

    def __init__(self, exit_code: int, message: str) -> None:
        self.exit_code = exit_code
        self.message = message
        super().__init__(message)


# Command line -------------------------------------------------------------------------


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {text!r}")
    return value


def _add_connection_options(parser: argparse.ArgumentParser, dest_prefix: str) -> None:
    # The options are accepted before and after the subcommand. After it they are
    # stored under other names, because argparse would otherwise overwrite the
    # values given before it, and main() merges the two.
    parser.add_argument(
        "--server",
        dest=f"{dest_prefix}server",
        action="append",
        metavar="HOST:PORT",
        help=(
            f"job server address, repeatable (default: ${SERVERS_ENV}, a "
            f"comma-separated list, or else {DEFAULT_SERVER})"
        ),
    )
    parser.add_argument(
        "--timeout",
        dest=f"{dest_prefix}timeout",
        type=_positive_float,
        metavar="SECONDS",
        help=(
            "seconds to wait for a job's result or handle (default: no limit) and for "
            f"an admin reply (default: {DEFAULT_ADMIN_TIMEOUT:g})"
        ),
    )


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``geargevent`` command."""
    parser = argparse.ArgumentParser(
        prog="geargevent",
        description="Submit Gearman jobs and inspect Gearman job servers.",
        epilog=(
            "exit codes: 0 success, 1 job failed or timed out, 2 usage error, "
            "3 job server unreachable"
        ),
    )
    _add_connection_options(parser, "")
    parser.add_argument(
        "--verbose",
        "-v",
        action="count",
        default=0,
        help="log the library's messages to stderr: -v at INFO level, -vv at DEBUG",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    submit = commands.add_parser(
        "submit",
        help="submit a job and print its result",
        description=(
            "Submit a job and print its result to stdout, or its handle with --background. "
            "With --count, results or handles go to stdout one per line and a summary "
            "goes to stderr."
        ),
    )
    submit.add_argument("task", metavar="TASK", help="the Gearman function name")
    submit.add_argument(
        "data",
        metavar="DATA",
        nargs="?",
        default="-",
        help="job data, or '-' (the default) to read it from stdin",
    )
    submit.add_argument(
        "--background", action="store_true", help="submit as a background job and print its handle"
    )
    submit.add_argument(
        "--priority", choices=sorted(_PRIORITIES), default="normal", help="job priority"
    )
    submit.add_argument(
        "--unique",
        metavar="U",
        help="unique id (jobs of one function with the same unique are coalesced into one run)",
    )
    submit.add_argument(
        "--encoder",
        choices=sorted(ENCODERS),
        default="raw",
        help=(
            "data encoder (default: raw bytes). With json and msgpack, DATA is read as "
            "JSON and results are printed as JSON"
        ),
    )
    submit.add_argument(
        "--count", type=_positive_int, default=1, metavar="N", help="submit N jobs (default: 1)"
    )
    submit.add_argument(
        "--concurrency",
        type=_positive_int,
        default=10,
        metavar="C",
        help="jobs in flight at once with --count (default: 10)",
    )
    submit.add_argument(
        "--quiet", "-q", action="store_true", help="print no results or handles, only errors"
    )

    status = commands.add_parser(
        "status",
        help="list functions with queued, running and worker counts",
        description=(
            "List the functions each job server knows, like 'gearadmin --status'. Total is "
            "queued plus running, as the server reports it."
        ),
    )
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")

    workers = commands.add_parser(
        "workers",
        help="list the connections to the job server and their functions",
        description=(
            "List every connection to each job server, like 'gearadmin --workers'. Clients "
            "and admin connections appear with no functions."
        ),
    )
    workers.add_argument("--json", action="store_true", help="print JSON instead of a table")

    top = commands.add_parser(
        "top",
        help="live view of queue depth and its rate of change per function",
        description=(
            "Show queue depth per function, refreshed every --interval seconds. Rates are "
            "changes between two status samples. 'finished/s (min)' is a lower bound on jobs "
            "that left the server, because jobs that arrive and finish within one interval do "
            "not change the counts. Press q or Ctrl-C to quit."
        ),
    )
    top.add_argument(
        "--interval",
        type=_positive_float,
        default=1.0,
        metavar="SECONDS",
        help="seconds between refreshes (default: 1)",
    )
    top.add_argument(
        "--once",
        action="store_true",
        help="take two samples one interval apart, print one frame and exit",
    )
    for subparser in commands.choices.values():
        _add_connection_options(subparser, "command_")
    return parser


def _server_entries(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[str]:
    entries: list[str] = (args.server or []) + (args.command_server or [])
    if not entries:
        configured = os.environ.get(SERVERS_ENV, "")
        entries = [entry.strip() for entry in configured.split(",") if entry.strip()]
    if not entries:
        entries = [DEFAULT_SERVER]
    for entry in entries:
        try:
            parse_address(entry)
        except ValueError as exc:
            parser.error(f"invalid server {entry!r}: {exc}")
    return entries


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``geargevent`` command and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    servers = _server_entries(args, parser)
    if args.command_timeout is not None:
        args.timeout = args.command_timeout
    _configure_logging(args.verbose)

    # gevent's hub prints a KeyboardInterrupt that arrives while it waits, before
    # passing it on to the main greenlet. Listing it in the hub's NOT_ERROR
    # classes keeps Ctrl-C quiet, and the handlers below report it in one line.
    hub = gevent.get_hub()
    saved_not_error = hub.NOT_ERROR
    hub.NOT_ERROR = (*saved_not_error, KeyboardInterrupt)
    handlers = {"submit": _submit, "status": _status, "workers": _workers, "top": _top}
    try:
        return handlers[args.command](args, servers, parser)
    except CommandError as exc:
        _print_error(exc.message)
        return exc.exit_code
    except KeyboardInterrupt:
        _print_error("interrupted")
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (for example `| head`). Point stdout at
        # /dev/null so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    finally:
        hub.NOT_ERROR = saved_not_error


def _configure_logging(verbosity: int) -> None:
    if verbosity:
        logging.basicConfig(
            level=logging.DEBUG if verbosity > 1 else logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
        return
    # Without a handler, Python prints WARNING records to stderr. The command
    # reports every failure itself in one line, so the library's records are
    # shown only with --verbose.
    library_log = logging.getLogger("geargevent")
    if not any(isinstance(handler, logging.NullHandler) for handler in library_log.handlers):
        library_log.addHandler(logging.NullHandler())


def _print_error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)


def _unreachable(addresses: Sequence[object], exc: BaseException) -> CommandError:
    # The admin client keeps the OSError as the cause. The job client's message
    # quotes every server's error, from which _reason() takes the "[Errno N]" texts.
    cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else OSError(str(exc))
    reason = _reason(cause)
    names = ", ".join(str(address) for address in addresses)
    noun = "job server" if len(addresses) == 1 else "any of the job servers"
    return CommandError(
        EXIT_UNREACHABLE,
        f"cannot connect to {noun} {names} ({reason}); is gearmand running? start it or "
        "pass --server HOST:PORT",
    )


# rich ---------------------------------------------------------------------------------


def _require_rich(command: str) -> None:
    try:
        import rich  # noqa: F401
    except ImportError:
        raise CommandError(
            EXIT_USAGE,
            f"'{command}' needs the rich package; install it with: pip install 'geargevent[cli]'",
        ) from None


def _stdout_console() -> Console:
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=_PIPE_WIDTH)
    return console


# submit -------------------------------------------------------------------------------


@dataclass
class _SubmitTally:
    """Outcome counts of a --count run."""

    succeeded: int = 0
    failed: int = 0
    timed_out: int = 0
    first_failure: str = ""
    unreachable: BaseException | None = None


def _read_data(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Any:
    if args.data == "-":
        raw: bytes = sys.stdin.buffer.read()
    else:
        raw = os.fsencode(args.data)
    if args.encoder == "raw":
        return raw
    try:
        return json.loads(raw)
    except ValueError as exc:
        source = "stdin" if args.data == "-" else "DATA"
        parser.error(f"{source} is not valid JSON, which --encoder {args.encoder} needs: {exc}")


def _submit(args: argparse.Namespace, servers: list[str], parser: argparse.ArgumentParser) -> int:
    data = _read_data(args, parser)
    encoder = resolve_encoder(args.encoder)
    client = GearmanClient(servers, data_encoder=encoder)
    try:
        if args.count == 1:
            return _submit_one(args, client, data)
        _require_rich("submit --count")
        return _submit_many(args, client, data)
    except ValueError as exc:
        # An invalid function name or unique, found before anything was sent.
        parser.error(str(exc))
    finally:
        client.close()


def _send(args: argparse.Namespace, client: GearmanClient, data: Any) -> GearmanJobRequest:
    return client.submit_job(
        args.task,
        data,
        unique=args.unique,
        priority=_PRIORITIES[args.priority],
        background=args.background,
        wait_until_complete=True,
        poll_timeout=args.timeout,
    )


def _submit_one(args: argparse.Namespace, client: GearmanClient, data: Any) -> int:
    try:
        request = _send(args, client, data)
    except ServerUnavailableError as exc:
        raise _unreachable(client.addresses, exc) from None
    failure = _describe_failure(args, request)
    if failure is not None:
        exit_code, message = failure
        raise CommandError(exit_code, message)
    if not args.quiet:
        _write_outcome(args, request, single=True)
    return EXIT_OK


def _describe_failure(
    args: argparse.Namespace, request: GearmanJobRequest
) -> tuple[int, str] | None:
    """Return (exit code, message) for a request that did not succeed, else None."""
    expected = JOB_CREATED if args.background else JOB_COMPLETE
    if request.state == expected and not request.timed_out:
        return None
    handle = request.job.handle
    job = f"job {handle} of function {args.task!r}" if handle else f"job for {args.task!r}"
    if request.timed_out:
        waited = "its handle" if args.background else "its result"
        still = "" if handle is None else "; the job may still run on the server"
        return (
            EXIT_JOB_FAILED,
            f"{job}: timed out after {args.timeout:g} s waiting for {waited}{still}",
        )
    if request.exception is not None:
        return EXIT_JOB_FAILED, f"{job} raised an exception: {_display(request.exception)}"
    error = request.error
    if isinstance(error, GearmanConnectionError):
        return EXIT_UNREACHABLE, f"{job}: {error}; the job server may have stopped"
    if isinstance(error, ServerError):
        return EXIT_JOB_FAILED, f"{job}: the job server rejected it: {error.code} {error.text}"
    if error is not None:
        return EXIT_JOB_FAILED, f"{job}: {error}"
    return EXIT_JOB_FAILED, f"{job} failed (WORK_FAIL)"


def _display(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=_json_default)


def _json_default(value: object) -> object:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "backslashreplace")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _write_outcome(args: argparse.Namespace, request: GearmanJobRequest, *, single: bool) -> None:
    out = sys.stdout.buffer
    if args.background:
        out.write(f"{request.job.handle}\n".encode())
    elif args.encoder == "raw":
        result = request.result if isinstance(request.result, bytes) else b""
        out.write(result)
        # A single result is written exactly as received, except that a terminal
        # gets a final newline so the prompt starts on its own line.
        if not result.endswith(b"\n") and (not single or sys.stdout.isatty()):
            out.write(b"\n")
    else:
        text = json.dumps(request.result, ensure_ascii=False, default=_json_default)
        out.write(text.encode("utf-8") + b"\n")
    out.flush()


def _submit_many(args: argparse.Namespace, client: GearmanClient, data: Any) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    stderr = Console(stderr=True, highlight=False)
    tally = _SubmitTally()
    remaining = iter(range(args.count))
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=stderr,
        disable=not stderr.is_terminal,
        transient=True,
    )

    def submit_next() -> None:
        for _ in remaining:
            if tally.unreachable is not None:
                return
            try:
                request = _send(args, client, data)
            except ServerUnavailableError as exc:
                tally.unreachable = exc
                return
            failure = _describe_failure(args, request)
            if failure is None:
                tally.succeeded += 1
                if not args.quiet:
                    _write_outcome(args, request, single=False)
            else:
                if request.timed_out:
                    tally.timed_out += 1
                else:
                    tally.failed += 1
                if not tally.first_failure:
                    tally.first_failure = failure[1]
            progress.advance(task_id)

    started = time.perf_counter()
    with progress:
        task_id = progress.add_task(f"{args.task}", total=args.count)
        greenlets = [gevent.spawn(submit_next) for _ in range(min(args.concurrency, args.count))]
        try:
            gevent.joinall(greenlets, raise_error=True)
        finally:
            gevent.killall(greenlets)
    elapsed = time.perf_counter() - started

    if tally.unreachable is not None:
        raise _unreachable(client.addresses, tally.unreachable)
    done = tally.succeeded + tally.failed + tally.timed_out
    rate = done / elapsed if elapsed > 0 else float("inf")
    succeeded = "accepted" if args.background else "complete"
    print(
        f"{done} jobs for {args.task!r} in {elapsed:.2f} s ({rate:.1f} jobs/s): "
        f"{tally.succeeded} {succeeded}, {tally.failed} failed, {tally.timed_out} timed out",
        file=sys.stderr,
        flush=True,
    )
    if tally.failed or tally.timed_out:
        _print_error(f"first failure: {tally.first_failure}")
        return EXIT_JOB_FAILED
    return EXIT_OK


# status and workers -------------------------------------------------------------------


def _admin_client(server: str, args: argparse.Namespace) -> GearmanAdminClient:
    timeout = args.timeout if args.timeout is not None else DEFAULT_ADMIN_TIMEOUT
    return GearmanAdminClient([server], poll_timeout=timeout)


def _admin_failure(client: GearmanAdminClient, exc: GearmanError) -> CommandError:
    if isinstance(exc, ServerUnavailableError):
        return _unreachable([client.address], exc)
    if isinstance(exc, GearmanTimeoutError):
        return CommandError(EXIT_UNREACHABLE, f"{exc}; check the address or raise --timeout")
    if isinstance(exc, ConnectionLostError):
        return CommandError(EXIT_UNREACHABLE, str(exc))
    return CommandError(EXIT_JOB_FAILED, str(exc))


def _status(args: argparse.Namespace, servers: list[str], parser: argparse.ArgumentParser) -> int:
    if not args.json:
        _require_rich("status")
    report: dict[str, list[dict[str, Any]]] = {}
    errors: list[CommandError] = []
    for server in servers:
        with _admin_client(server, args) as client:
            try:
                statuses = sorted(client.get_status(), key=lambda status: status.function)
            except GearmanError as exc:
                errors.append(_admin_failure(client, exc))
                continue
        if args.json:
            report[str(client.address)] = [
                {
                    "function": status.function,
                    "total": status.total,
                    "queued": status.queued,
                    "running": status.running,
                    "workers": status.workers,
                }
                for status in statuses
            ]
        else:
            _print_status_table(str(client.address), statuses)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    return _finish(errors)


# A rule under the header and columns two spaces apart, with no border, so that
# the output copies cleanly and splits on whitespace.
_TABLE_STYLE: dict[str, Any] = {
    "title_justify": "left",
    "collapse_padding": True,
    "pad_edge": False,
    "show_edge": False,
}


def _print_status_table(server: str, statuses: list[FunctionStatus]) -> None:
    from rich import box
    from rich.table import Table

    table = Table(title=f"status of {server}", box=box.SIMPLE, **_TABLE_STYLE)
    table.add_column("function", no_wrap=True)
    for name in ("total", "queued", "running", "workers"):
        table.add_column(name, justify="right", no_wrap=True)
    for status in statuses:
        table.add_row(
            status.function,
            str(status.total),
            str(status.queued),
            str(status.running),
            str(status.workers),
        )
    if not statuses:
        table.caption = "no functions known to this server"
    _stdout_console().print(table)


def _workers(args: argparse.Namespace, servers: list[str], parser: argparse.ArgumentParser) -> int:
    if not args.json:
        _require_rich("workers")
    report: dict[str, list[dict[str, Any]]] = {}
    errors: list[CommandError] = []
    for server in servers:
        with _admin_client(server, args) as client:
            try:
                connections: list[WorkerInfo] = client.get_workers()
            except GearmanError as exc:
                errors.append(_admin_failure(client, exc))
                continue
        connections.sort(key=lambda info: (info.fd is None, info.fd or 0))
        if args.json:
            report[str(client.address)] = [
                {
                    "fd": info.fd,
                    "ip": info.ip,
                    "client_id": info.client_id,
                    "functions": list(info.functions),
                }
                for info in connections
            ]
        else:
            _print_workers_table(str(client.address), connections)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    return _finish(errors)


def _print_workers_table(server: str, connections: Sequence[WorkerInfo]) -> None:
    from rich import box
    from rich.table import Table

    table = Table(title=f"workers of {server}", box=box.SIMPLE, **_TABLE_STYLE)
    table.add_column("fd", justify="right", no_wrap=True)
    table.add_column("ip", no_wrap=True)
    table.add_column("client id", no_wrap=True)
    table.add_column("functions")
    for info in connections:
        table.add_row(
            "-" if info.fd is None else str(info.fd),
            info.ip,
            info.client_id,
            " ".join(info.functions),
        )
    _stdout_console().print(table)


def _finish(errors: list[CommandError]) -> int:
    if not errors:
        return EXIT_OK
    for error in errors[:-1]:
        _print_error(error.message)
    raise errors[-1]


# top ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TopSample:
    """One ``status`` listing and when it was taken.

    Attributes:
        monotonic: ``time.monotonic()`` at the sample, for intervals.
        wall: ``time.time()`` at the sample, for display.
        functions: the listing by function name. Rows with the same name (gearmand
            can print two) are summed.
    """

    monotonic: float
    wall: float
    functions: dict[str, FunctionStatus] = field(default_factory=dict)

    @classmethod
    def from_status(
        cls, statuses: Sequence[FunctionStatus], monotonic: float, wall: float
    ) -> TopSample:
        """Build a sample from a ``status`` listing."""
        functions: dict[str, FunctionStatus] = {}
        for status in statuses:
            seen = functions.get(status.function)
            if seen is not None:
                status = FunctionStatus(
                    status.function,
                    seen.total + status.total,
                    seen.running + status.running,
                    seen.workers + status.workers,
                )
            functions[status.function] = status
        return cls(monotonic, wall, functions)


@dataclass(frozen=True)
class TopRow:
    """One function's line in ``top``.

    Attributes:
        queued_rate, running_rate: change of the queued and running counts per
            second since the previous sample, None without a previous sample.
        finished_rate: ``max(0, previous total - total)`` per second, a lower
            bound on jobs that left the server (completed, failed or dropped).
            Jobs that arrive and leave within one interval do not show in it.
    """

    function: str
    total: int
    queued: int
    running: int
    workers: int
    queued_rate: float | None
    running_rate: float | None
    finished_rate: float | None


def compute_top_rows(previous: TopSample | None, current: TopSample) -> list[TopRow]:
    """Compute the rows of a ``top`` frame from two samples, sorted by function name.

    Rates need a previous sample taken earlier, so a function missing from it
    gets rates of None.
    """
    interval = None if previous is None else current.monotonic - previous.monotonic
    rows = []
    for name in sorted(current.functions):
        status = current.functions[name]
        before = None if previous is None else previous.functions.get(name)
        queued_rate = running_rate = finished_rate = None
        if before is not None and interval is not None and interval > 0:
            queued_rate = (status.queued - before.queued) / interval
            running_rate = (status.running - before.running) / interval
            finished_rate = max(0, before.total - status.total) / interval
        rows.append(
            TopRow(
                function=name,
                total=status.total,
                queued=status.queued,
                running=status.running,
                workers=status.workers,
                queued_rate=queued_rate,
                running_rate=running_rate,
                finished_rate=finished_rate,
            )
        )
    return rows


def _format_rate(rate: float | None, signed: bool) -> str:
    if rate is None:
        return "–"
    if signed:
        return f"{rate:+.1f}"
    return f"{rate:.1f}"


def render_top(
    previous: TopSample | None,
    current: TopSample,
    *,
    server: str,
    error: str | None = None,
) -> RenderableType:
    """Return one ``top`` frame for ``server`` as a rich renderable.

    It depends only on its arguments, so two synthetic samples can be rendered
    in a test. ``error`` adds a line under the table, for a sample that failed.
    """
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    rows = compute_top_rows(previous, current)
    clock = time.strftime("%H:%M:%S", time.localtime(current.wall))
    if error is not None:
        span = "last successful sample"
    elif previous is None:
        span = "rates after the next sample"
    else:
        span = f"rates over {current.monotonic - previous.monotonic:.1f} s"
    table = Table(
        title=f"{server}  {clock}  {span}",
        box=box.SIMPLE,
        **_TABLE_STYLE,
        caption=(
            "finished/s (min) is a lower bound: jobs that arrive and finish within one "
            "interval leave the counts unchanged"
        ),
        caption_justify="left",
    )
    # Two-line headers keep the table within 80 columns for names of up to 18 characters.
    table.add_column("function", no_wrap=True, min_width=8)
    for name in ("total", "queued", "running", "workers", "queued\nΔ/s", "running\nΔ/s"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("finished/s\n(min)", justify="right", no_wrap=True)
    for row in rows:
        table.add_row(
            row.function,
            str(row.total),
            str(row.queued),
            str(row.running),
            str(row.workers),
            _format_rate(row.queued_rate, signed=True),
            _format_rate(row.running_rate, signed=True),
            _format_rate(row.finished_rate, signed=False),
        )
    if not rows:
        table.add_row("(no functions)", "", "", "", "", "", "", "")
    parts: list[RenderableType] = [table]
    if error is not None:
        parts.append(Text(f"error: {error}", style="bold red"))
    return Group(*parts)


def render_top_text(
    previous: TopSample | None, current: TopSample, *, server: str, width: int = 120
) -> str:
    """Return one ``top`` frame as plain text, ``width`` columns wide."""
    import io

    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, highlight=False)
    console.print(render_top(previous, current, server=server))
    return buffer.getvalue()


def _take_sample(client: GearmanAdminClient) -> TopSample:
    statuses = client.get_status()
    return TopSample.from_status(statuses, time.monotonic(), time.time())


def _top(args: argparse.Namespace, servers: list[str], parser: argparse.ArgumentParser) -> int:
    _require_rich("top")
    clients = [_admin_client(server, args) for server in servers]
    try:
        samples: list[TopSample] = []
        for client in clients:
            try:
                samples.append(_take_sample(client))
            except GearmanError as exc:
                raise _admin_failure(client, exc) from None
        if args.once:
            gevent.sleep(args.interval)
            _stdout_console().print(_render_all(clients, samples, _sample_all(clients)))
            return EXIT_OK
        _run_live(args, clients, samples)
        return EXIT_OK
    finally:
        for client in clients:
            client.close()


def _sample_all(
    clients: list[GearmanAdminClient],
) -> list[TopSample | str]:
    """Sample every server, putting the error message in place of a failed sample."""
    results: list[TopSample | str] = []
    for client in clients:
        try:
            results.append(_take_sample(client))
        except GearmanError as exc:
            results.append(_admin_failure(client, exc).message)
    return results


def _render_all(
    clients: list[GearmanAdminClient],
    previous: Sequence[TopSample | None],
    current: Sequence[TopSample | str],
    interactive: bool = False,
) -> RenderableType:
    from rich.console import Group

    frames: list[RenderableType] = []
    for client, before, now in zip(clients, previous, current, strict=True):
        if isinstance(now, str):
            # Show the last good sample, without rates, under the error.
            assert before is not None, "the first sample of every server succeeded"
            frames.append(render_top(None, before, server=str(client.address), error=now))
        else:
            frames.append(render_top(before, now, server=str(client.address)))
    if interactive:
        from rich.text import Text

        frames.append(Text("press q or Ctrl-C to quit", style="dim"))
    return Group(*frames)


def _run_live(
    args: argparse.Namespace, clients: list[GearmanAdminClient], first: list[TopSample]
) -> None:
    from rich.live import Live

    console = _stdout_console()
    interactive = sys.stdin.isatty()
    previous = first
    frame = _render_all(clients, [None] * len(first), first, interactive)
    with (
        _quit_requests(sys.stdin if interactive else None) as quit_requested,
        Live(frame, console=console, auto_refresh=False, transient=False) as live,
    ):
        try:
            while not quit_requested.wait(args.interval):
                current = _sample_all(clients)
                live.update(_render_all(clients, previous, current, interactive), refresh=True)
                previous = [
                    now if isinstance(now, TopSample) else before
                    for before, now in zip(previous, current, strict=True)
                ]
        except KeyboardInterrupt:
            return  # Ctrl-C is the usual way to leave the view.


@contextlib.contextmanager
def _quit_requests(stream: TextIO | None) -> Iterator[gevent.event.Event]:
    """Yield an event that is set when q is pressed on the terminal on ``stream``.

    The terminal is put in cbreak mode, so keys arrive without Enter and Ctrl-C
    still raises KeyboardInterrupt, until the block ends. Without a terminal
    the event is never set.
    """
    quit_requested = gevent.event.Event()
    reader: gevent.Greenlet | None = None
    saved: Any = None
    fd = -1
    try:
        if stream is not None:
            import termios
            import tty

            fd = stream.fileno()
            saved = termios.tcgetattr(fd)
            tty.setcbreak(fd)
            reader = gevent.spawn(_read_quit_key, fd, quit_requested)
        yield quit_requested
    finally:
        if reader is not None:
            reader.kill()
        if saved is not None:
            import termios

            termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _read_quit_key(fd: int, quit_requested: gevent.event.Event) -> None:
    from gevent.socket import wait_read

    while True:
        wait_read(fd)
        key = os.read(fd, 1)
        if not key:
            return  # End of input: only Ctrl-C can stop the view now.
        if key in (b"q", b"Q"):
            quit_requested.set()
            return
