"""Encode Gearman admin commands and parse their text replies, with no I/O.

The admin protocol shares the job server's port with the binary protocol. A
command is one line of text ending in ``\\n``. The reply is either a single line
(``OK ...``, ``ERR CODE TEXT`` or, for the Perl server's ``version``, a bare
version string) or a listing of lines that ends with a line holding only ``.``.
Which of the two comes back depends on the command, so the caller passes each
command sent to :class:`AdminReplyReader`, in the order sent.

Servers print function names, uniques and client ids as raw bytes. This module
decodes every line as UTF-8 with the ``surrogateescape`` error handler, so a name
that is not valid UTF-8 keeps its bytes. ``name.encode("utf-8",
"surrogateescape")`` returns them, and :func:`encode_command` encodes ``str``
arguments the same way, so a name read from a listing can be sent back in a
command.

The parsers were checked against replies of gearmand 1.1.20 and the Perl
Gearman::Server 1.130.1. Where the two differ, the parsers accept both forms.
"""

from __future__ import annotations

import enum
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from geargevent.errors import RemoteProtocolError, ServerError

__all__ = [
    "DEFAULT_MAX_LINE_SIZE",
    "MAX_COMMAND_SIZE",
    "AdminCommand",
    "AdminReply",
    "AdminReplyReader",
    "FunctionStatus",
    "JobInfo",
    "PerlClientInfo",
    "PerlClientJob",
    "PerlJobInfo",
    "PriorityStatus",
    "WorkerInfo",
    "encode_command",
    "parse_ok",
    "parse_perl_clients",
    "parse_perl_jobs",
    "parse_pid",
    "parse_priority_status",
    "parse_show_jobs",
    "parse_show_unique_jobs",
    "parse_status",
    "parse_verbose",
    "parse_version",
    "parse_workers",
]

# gearmand 1.1.20 replies to a command line of 8191 bytes plus the newline and
# closes the connection on 8192 bytes plus the newline (measured), so an encoded
# command, newline included, may be at most this long.
MAX_COMMAND_SIZE = 8192

# Guards against a peer that never sends a newline. Real reply lines are far
# shorter, except a `workers` line for a connection with many functions.
DEFAULT_MAX_LINE_SIZE = 1024 * 1024


class AdminCommand(str, enum.Enum):
    """Admin commands, each valued with the words sent on the wire.

    ``JOBS`` and ``CLIENTS`` exist only on the Perl server. ``PRIORITY_STATUS``,
    ``SHOW_JOBS``, ``SHOW_UNIQUE_JOBS``, ``GETPID``, ``VERBOSE``,
    ``CANCEL_JOB``, ``CREATE_FUNCTION`` and ``DROP_FUNCTION`` exist only on
    gearmand, which in turn rejects ``SHUTDOWN`` in version 1.1.20.
    """

    STATUS = "status"
    PRIORITY_STATUS = "prioritystatus"
    WORKERS = "workers"
    SHOW_JOBS = "show jobs"
    SHOW_UNIQUE_JOBS = "show unique jobs"
    JOBS = "jobs"
    CLIENTS = "clients"
    VERSION = "version"
    GETPID = "getpid"
    VERBOSE = "verbose"
    MAXQUEUE = "maxqueue"
    CANCEL_JOB = "cancel job"
    SHUTDOWN = "shutdown"
    CREATE_FUNCTION = "create function"
    DROP_FUNCTION = "drop function"

    @property
    def is_list(self) -> bool:
        """Whether the reply is a listing ended by a ``.`` line."""
        return self in _LIST_COMMANDS


_LIST_COMMANDS = frozenset(
    {
        AdminCommand.STATUS,
        AdminCommand.PRIORITY_STATUS,
        AdminCommand.WORKERS,
        AdminCommand.SHOW_JOBS,
        AdminCommand.SHOW_UNIQUE_JOBS,
        AdminCommand.JOBS,
        AdminCommand.CLIENTS,
    }
)


# Typed results -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FunctionStatus:
    """One ``status`` line.

    Attributes:
        function: the function name.
        total: queued plus running jobs, as the server counts them.
        running: jobs that a worker holds.
        workers: registrations for the function. On gearmand a connection that
            sends CAN_DO twice counts twice.
    """

    function: str
    total: int
    running: int
    workers: int

    @property
    def queued(self) -> int:
        """Jobs waiting for a worker, ``total - running``, never below 0.

        gearmand 1.1.x can print a running count above the total after a stale
        CAN_DO_TIMEOUT timer fires (the count wraps around below zero as a u32),
        so the difference is clamped at 0.
        """
        return max(self.total - self.running, 0)


@dataclass(frozen=True, slots=True)
class PriorityStatus:
    """One ``prioritystatus`` line: queued jobs per priority (running jobs are not counted)."""

    function: str
    high: int
    normal: int
    low: int
    workers: int


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One ``workers`` line, which describes a connection, not only a worker.

    Attributes:
        fd: the connection's file descriptor on the server, or None when the
            server prints ``-`` or a negative number there.
        ip: the peer address as the server prints it.
        client_id: the id from SET_CLIENT_ID. Both servers print ``-`` when none
            was set, and gearmand prints an empty id for an empty SET_CLIENT_ID.
        functions: the registered functions in the server's order. gearmand
            lists the most recently registered first, and the Perl server uses
            the order of a Perl hash, which varies between runs. Clients and
            admin connections, the one asking included, are listed with none.
    """

    fd: int | None
    ip: str
    client_id: str
    functions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class JobInfo:
    """One gearmand ``show jobs`` line.

    Attributes:
        handle: the job handle.
        retries: how often the job went back to the queue after a worker lost it.
        ignored: 1 once ``cancel job`` flagged the job, else 0.
        in_persistent_queue: 1 when gearmand handed the job to its queue storage,
            else 0. gearmand 1.1.20 does this for every background job, even with
            no persistent queue configured, and never for foreground jobs.
    """

    handle: str
    retries: int
    ignored: int
    in_persistent_queue: int


@dataclass(frozen=True, slots=True)
class PerlJobInfo:
    """One line of the Perl server's ``jobs`` listing.

    Attributes:
        function: the function name.
        unique: the unique, empty when the client sent none.
        worker_address: ``ip:port`` of the worker running the job, or None when
            the job is queued.
        waiting_clients: foreground clients waiting for the result.
    """

    function: str
    unique: str
    worker_address: str | None
    waiting_clients: int


@dataclass(frozen=True, slots=True)
class PerlClientJob:
    """A job that a client of the Perl server waits for, from its ``clients`` listing."""

    function: str
    unique: str
    worker_address: str | None


@dataclass(frozen=True, slots=True)
class PerlClientInfo:
    """One connection in the Perl server's ``clients`` listing, with the jobs it waits for."""

    address: str
    jobs: tuple[PerlClientJob, ...]


# Encoding commands -----------------------------------------------------------------

_COMMAND_WORDS = re.compile(r"[A-Za-z]+(?: [A-Za-z]+)*")

# Whitespace splits an argument in two and control bytes (a newline, a NUL as
# the first byte of a line) corrupt the line, so neither may appear.
_FORBIDDEN_ARGUMENT_BYTE = re.compile(rb"[\x00-\x20\x7f]")


def encode_command(command: str, *arguments: str | bytes) -> bytes:
    """Encode one admin command line, ending in ``\\n``.

    Args:
        command: the command words, such as ``"status"`` or
            ``AdminCommand.CANCEL_JOB``.
        arguments: function names, job handles or numbers. A ``str`` is encoded
            as UTF-8 with ``surrogateescape``, so names read from a listing
            come back as the same bytes.

    Raises:
        ValueError: the command is not ASCII letters in single-space-separated
            words, an argument is empty or contains whitespace or a control
            character, or the line would be longer than ``MAX_COMMAND_SIZE``.
    """
    # An AdminCommand member is a str too; use its wire words in messages.
    command = getattr(command, "value", command)
    if not _COMMAND_WORDS.fullmatch(command):
        raise ValueError(
            f"invalid admin command {command!r}: expected ASCII letters in words "
            "separated by single spaces, such as 'status' or 'cancel job'"
        )
    parts = [command.encode("ascii")]
    for argument in arguments:
        parts.append(_encode_argument(command, argument))
    line = b" ".join(parts) + b"\n"
    if len(line) > MAX_COMMAND_SIZE:
        raise ValueError(
            f"admin command {command!r} encodes to {len(line)} bytes, over the limit of "
            f"{MAX_COMMAND_SIZE} bytes including the newline (gearmand closes the "
            "connection on longer lines); shorten its arguments"
        )
    return line


def _encode_argument(command: str, argument: str | bytes) -> bytes:
    if isinstance(argument, str):
        try:
            raw = argument.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"argument {argument!r} of admin command {command!r} cannot be encoded "
                f"as UTF-8: {exc.reason}"
            ) from exc
    else:
        raw = bytes(argument)
    if not raw:
        raise ValueError(
            f"argument {argument!r} of admin command {command!r} is empty; pass a "
            "non-empty function name, job handle or number"
        )
    bad = _FORBIDDEN_ARGUMENT_BYTE.search(raw)
    if bad is not None:
        raise ValueError(
            f"argument {argument!r} of admin command {command!r} contains "
            f"{bad.group()!r} at byte {bad.start()}; whitespace and control characters "
            "would split or corrupt the command line"
        )
    return raw


# Reading replies ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AdminReply:
    """One complete reply to an admin command.

    Attributes:
        command: the command this reply is for, as given to
            :meth:`AdminReplyReader.expect`.
        lines: the lines of a listing without its closing ``.``, or the single
            line of any other reply, with ``\\r\\n``/``\\n`` removed. For an
            error reply this is the ``ERR`` line.
        error_code: the code of an ``ERR`` reply, for example ``"UNKNOWN_JOB"``
            (gearmand) or ``"unknown_command"`` (Perl). It is ``""`` when the
            server sent a plain sentence with no code, and None when the
            reply is not an error.
        error_text: the explanation of an ``ERR`` reply with ``+`` read as a
            space, possibly empty.
    """

    command: AdminCommand
    lines: tuple[str, ...]
    error_code: str | None = None
    error_text: str = ""

    @property
    def is_error(self) -> bool:
        """Whether the server replied with an ``ERR`` line."""
        return self.error_code is not None

    def raise_for_error(self) -> None:
        """Raise :class:`ServerError` for an ``ERR`` reply, and do nothing otherwise."""
        if self.error_code is not None:
            raise ServerError(self.error_code, self.error_text)


class AdminReplyReader:
    """Incremental reader of admin replies on one connection.

    Call :meth:`expect` once for every command sent, in the order sent, and pass
    the received bytes to :meth:`feed` in any chunking. Replies come out in the
    same order.

    A listing command can get a single ``ERR`` line instead of a listing, for
    example ``prioritystatus`` on the Perl server. The first line of a listing
    is read as that error when it starts with ``ERR `` and contains no tab.
    Such a line cannot be a listing line, because lines of ``status``,
    ``prioritystatus``, ``show jobs`` and ``jobs`` always contain tabs, and
    lines of ``workers`` and ``clients`` start with a number or an address.
    The lines of ``show unique jobs`` are bare uniques, so there the ``ERR``
    line must also end in ``\\r\\n``, as the ``ERR`` lines of both servers do.

    Args:
        max_line_size: the maximum line length accepted, in bytes, not counting
            ``\\r\\n`` or ``\\n``. Longer input raises instead of buffering
            without bound.
    """

    def __init__(self, *, max_line_size: int = DEFAULT_MAX_LINE_SIZE) -> None:
        if max_line_size < 1:
            raise ValueError(f"max_line_size must be >= 1, got {max_line_size!r}")
        self.max_line_size = max_line_size
        self._buffer = bytearray()
        # Where to resume the newline search, so byte-by-byte input is not rescanned.
        self._scan_from = 0
        self._expected: deque[AdminCommand] = deque()
        self._listing: list[str] = []
        self._error: RemoteProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Number of bytes received but not yet part of a complete line."""
        return len(self._buffer)

    @property
    def pending(self) -> int:
        """Number of expected replies that are not complete yet."""
        return len(self._expected)

    def expect(self, command: AdminCommand | str) -> None:
        """Queue the command whose reply comes after all replies queued before.

        A ``str`` must be the command words, such as ``"show jobs"``; anything
        else raises ValueError.
        """
        self._expected.append(AdminCommand(command))

    def feed(self, data: bytes) -> list[AdminReply]:
        """Add received bytes and return every reply they complete, in order.

        Raises:
            RemoteProtocolError: a line arrived while no reply was expected, a
                line starts with a NUL byte (a binary packet), or a line is
                longer than ``max_line_size``. The same error is raised again
                on every later call, because the stream is out of step.
        """
        if self._error is not None:
            raise self._error
        buffer = self._buffer
        buffer += data
        replies: list[AdminReply] = []
        start = 0
        try:
            while True:
                newline = buffer.find(b"\n", max(start, self._scan_from))
                if newline < 0:
                    self._scan_from = len(buffer)
                    # One byte more leaves room for a "\r" before the newline.
                    if len(buffer) - start > self.max_line_size + 1:
                        raise self._fail(
                            f"admin reply line is longer than {self.max_line_size} bytes "
                            f"with no newline yet (starts {bytes(buffer[start : start + 64])!r}); "
                            "raise max_line_size if such lines are expected"
                        )
                    break
                raw = bytes(buffer[start:newline])
                start = newline + 1
                self._scan_from = start
                reply = self._take_line(raw)
                if reply is not None:
                    replies.append(reply)
        finally:
            # Keep only the incomplete tail for the next call.
            if start:
                del buffer[:start]
                self._scan_from -= start
        return replies

    def _take_line(self, raw: bytes) -> AdminReply | None:
        if not self._expected:
            raise self._fail(f"admin reply line {raw[:200]!r} arrived with no command outstanding")
        if raw.startswith(b"\0"):
            raise self._fail(
                f"binary packet bytes {raw[:16]!r} where an admin text reply was expected; "
                "use a separate connection for admin commands"
            )
        ended_with_cr = raw.endswith(b"\r")
        if ended_with_cr:
            raw = raw[:-1]
        if len(raw) > self.max_line_size:
            raise self._fail(
                f"admin reply line of {len(raw)} bytes is longer than "
                f"max_line_size={self.max_line_size} (starts {raw[:64]!r})"
            )
        line = raw.decode("utf-8", "surrogateescape")
        command = self._expected[0]

        # Step 1: a single-line reply is complete at once.
        if not command.is_list:
            self._expected.popleft()
            if _is_error_line(line):
                return _error_reply(command, line)
            return AdminReply(command, (line,))

        # Step 2: the first line of a listing may be an ERR reply instead.
        if not self._listing and _is_listing_error(command, line, ended_with_cr):
            self._expected.popleft()
            return _error_reply(command, line)

        # Step 3: a lone "." ends the listing.
        if line == ".":
            self._expected.popleft()
            lines = tuple(self._listing)
            self._listing = []
            return AdminReply(command, lines)
        self._listing.append(line)
        return None

    def _fail(self, message: str) -> RemoteProtocolError:
        self._error = RemoteProtocolError(message)
        return self._error


def _is_error_line(line: str) -> bool:
    return line == "ERR" or line.startswith("ERR ")


def _is_listing_error(command: AdminCommand, line: str, ended_with_cr: bool) -> bool:
    if not _is_error_line(line) or "\t" in line:
        return False
    if command is AdminCommand.SHOW_UNIQUE_JOBS:
        return ended_with_cr
    return True


def _split_error(line: str) -> tuple[str, str]:
    # Both servers send "ERR CODE TEXT" with the spaces of TEXT written as "+".
    # gearmand's drop function replies are plain sentences instead ("ERR function
    # not found"); a space left in TEXT marks those, and they get an empty code.
    rest = line[4:]
    code, _, text = rest.partition(" ")
    if " " in text:
        return "", rest
    return code, text.replace("+", " ")


def _error_reply(command: AdminCommand, line: str) -> AdminReply:
    code, text = _split_error(line)
    return AdminReply(command, (line,), error_code=code, error_text=text)


# Parsing replies ---------------------------------------------------------------------


def _listing_lines(
    reply: AdminReply | Iterable[str], commands: tuple[AdminCommand, ...], parser: str
) -> list[str]:
    """Return the lines of a listing reply, raising for an ERR reply.

    Raw lines may keep the closing ``.`` line. Without it, a single ``ERR`` line
    is read as an error reply.
    """
    if isinstance(reply, AdminReply):
        if reply.command not in commands:
            raise ValueError(
                f"{parser}() cannot parse the reply to {reply.command.value!r}; "
                f"{_parser_advice(reply.command)}"
            )
        reply.raise_for_error()
        return list(reply.lines)
    lines = [line[:-1] if line.endswith("\r") else line for line in reply]
    if lines and lines[-1] == ".":
        return lines[:-1]
    if len(lines) == 1 and _is_error_line(lines[0]):
        raise ServerError(*_split_error(lines[0]))
    return lines


def _single_line(reply: AdminReply | str, parser: str) -> str:
    if isinstance(reply, AdminReply):
        if reply.command.is_list:
            raise ValueError(
                f"{parser}() cannot parse the listing reply to {reply.command.value!r}; "
                f"{_parser_advice(reply.command)}"
            )
        reply.raise_for_error()
        return reply.lines[0]
    line = reply[:-1] if reply.endswith("\n") else reply
    line = line[:-1] if line.endswith("\r") else line
    if _is_error_line(line):
        raise ServerError(*_split_error(line))
    return line


_LISTING_PARSERS = {
    AdminCommand.STATUS: "parse_status",
    AdminCommand.PRIORITY_STATUS: "parse_priority_status",
    AdminCommand.WORKERS: "parse_workers",
    AdminCommand.SHOW_JOBS: "parse_show_jobs",
    AdminCommand.SHOW_UNIQUE_JOBS: "parse_show_unique_jobs",
    AdminCommand.JOBS: "parse_perl_jobs",
    AdminCommand.CLIENTS: "parse_perl_clients",
}


def _parser_advice(command: AdminCommand) -> str:
    if command in _LISTING_PARSERS:
        return f"use {_LISTING_PARSERS[command]}()"
    return "use parse_ok(), parse_version(), parse_pid() or parse_verbose()"


_COUNT = re.compile(r"[0-9]+")


def _parse_count(value: str, line: str, command: str) -> int:
    # int() would also accept signs, underscores, spaces and non-ASCII digits.
    if not _COUNT.fullmatch(value):
        raise RemoteProtocolError(
            f"invalid {command} line {line!r}: {value!r} is not a non-negative integer"
        )
    return int(value)


def parse_status(reply: AdminReply | Iterable[str]) -> list[FunctionStatus]:
    """Parse a ``status`` reply (gearmand and Perl).

    Each line is ``function<TAB>total<TAB>running<TAB>workers``. The counts are
    split off from the right, so a function name may contain spaces. A tab in a
    name adds a column, which this parser keeps as part of the name.

    Raises:
        ServerError: the server replied with ``ERR``.
        RemoteProtocolError: a line does not have that form.
    """
    results = []
    for line in _listing_lines(reply, (AdminCommand.STATUS,), "parse_status"):
        fields = line.rsplit("\t", 3)
        if len(fields) != 4:
            raise RemoteProtocolError(
                f"invalid status line {line!r}: expected "
                "'function<TAB>total<TAB>running<TAB>workers'"
            )
        function, total, running, workers = fields
        results.append(
            FunctionStatus(
                function=function,
                total=_parse_count(total, line, "status"),
                running=_parse_count(running, line, "status"),
                workers=_parse_count(workers, line, "status"),
            )
        )
    return results


def parse_priority_status(reply: AdminReply | Iterable[str]) -> list[PriorityStatus]:
    """Parse a gearmand ``prioritystatus`` reply.

    Each line is ``function<TAB>high<TAB>normal<TAB>low<TAB>workers``, split from
    the right as in :func:`parse_status`.

    Raises:
        ServerError: the server replied with ``ERR`` (the Perl server does).
        RemoteProtocolError: a line does not have that form.
    """
    results = []
    lines = _listing_lines(reply, (AdminCommand.PRIORITY_STATUS,), "parse_priority_status")
    for line in lines:
        fields = line.rsplit("\t", 4)
        if len(fields) != 5:
            raise RemoteProtocolError(
                f"invalid prioritystatus line {line!r}: expected "
                "'function<TAB>high<TAB>normal<TAB>low<TAB>workers'"
            )
        function, high, normal, low, workers = fields
        results.append(
            PriorityStatus(
                function=function,
                high=_parse_count(high, line, "prioritystatus"),
                normal=_parse_count(normal, line, "prioritystatus"),
                low=_parse_count(low, line, "prioritystatus"),
                workers=_parse_count(workers, line, "prioritystatus"),
            )
        )
    return results


_FD = re.compile(r"-|-?[0-9]+")


def parse_workers(reply: AdminReply | Iterable[str]) -> list[WorkerInfo]:
    """Parse a ``workers`` reply (gearmand and Perl).

    Each line is ``FD IP ID : FUNCTION FUNCTION...``. The id ends at the first
    ``" :"`` that is followed by a space or ends the line, and the functions
    are split on spaces. So an id that contains ``" : "`` is cut short, and a
    function name that contains a space becomes two names. gearmand prints ids
    and names as sent, while the Perl server removes whitespace from ids.

    Raises:
        ServerError: the server replied with ``ERR``.
        RemoteProtocolError: a line does not have that form.
    """
    results = []
    for line in _listing_lines(reply, (AdminCommand.WORKERS,), "parse_workers"):
        fd_text, _, rest = line.partition(" ")
        ip, found_ip, rest = rest.partition(" ")
        separator = _find_worker_separator(rest)
        if not found_ip or separator < 0 or not _FD.fullmatch(fd_text):
            raise RemoteProtocolError(
                f"invalid workers line {line!r}: expected 'FD IP ID : FUNCTION...'"
            )
        fd: int | None = None
        if fd_text != "-" and int(fd_text) >= 0:
            fd = int(fd_text)
        results.append(
            WorkerInfo(
                fd=fd,
                ip=ip,
                client_id=rest[:separator],
                functions=tuple(name for name in rest[separator + 2 :].split(" ") if name),
            )
        )
    return results


def _find_worker_separator(rest: str) -> int:
    # The separator is " :" followed by a space or the end of the line. An empty
    # id leaves rest starting with " :" (gearmand prints "FD IP  : ...").
    index = rest.find(" :")
    while index >= 0:
        after = index + 2
        if after == len(rest) or rest[after] == " ":
            return index
        index = rest.find(" :", index + 1)
    return -1


def parse_show_jobs(reply: AdminReply | Iterable[str]) -> list[JobInfo]:
    """Parse a gearmand ``show jobs`` reply.

    Each line is ``handle<TAB>retries<TAB>ignored<TAB>in_persistent_queue``.

    Raises:
        ServerError: the server replied with ``ERR`` (the Perl server does).
        RemoteProtocolError: a line does not have that form.
    """
    results = []
    for line in _listing_lines(reply, (AdminCommand.SHOW_JOBS,), "parse_show_jobs"):
        fields = line.rsplit("\t", 3)
        if len(fields) != 4 or not fields[0]:
            raise RemoteProtocolError(
                f"invalid show jobs line {line!r}: expected "
                "'handle<TAB>retries<TAB>ignored<TAB>in_persistent_queue'"
            )
        handle, retries, ignored, queued = fields
        results.append(
            JobInfo(
                handle=handle,
                retries=_parse_count(retries, line, "show jobs"),
                ignored=_parse_count(ignored, line, "show jobs"),
                in_persistent_queue=_parse_count(queued, line, "show jobs"),
            )
        )
    return results


def parse_show_unique_jobs(reply: AdminReply | Iterable[str]) -> list[str]:
    """Parse a gearmand ``show unique jobs`` reply into the uniques, one per line.

    gearmand 1.1.20 prints only the unique, and an empty line for a job that has
    none. Every line is valid, so this raises only for an ``ERR`` reply.

    Raises:
        ServerError: the server replied with ``ERR`` (the Perl server does).
    """
    return _listing_lines(reply, (AdminCommand.SHOW_UNIQUE_JOBS,), "parse_show_unique_jobs")


def parse_perl_jobs(reply: AdminReply | Iterable[str]) -> list[PerlJobInfo]:
    """Parse the Perl server's ``jobs`` reply.

    Each line is ``function<TAB>unique<TAB>worker<TAB>waiting_clients``, where
    the worker is ``ip:port`` or ``-`` for a queued job. The function ends at the
    first tab, so a unique may contain tabs but a function name may not.

    Raises:
        ServerError: the server replied with ``ERR`` (gearmand does).
        RemoteProtocolError: a line does not have that form.
    """
    results = []
    for line in _listing_lines(reply, (AdminCommand.JOBS,), "parse_perl_jobs"):
        fields = line.rsplit("\t", 2)
        if len(fields) != 3 or "\t" not in fields[0]:
            raise RemoteProtocolError(
                f"invalid jobs line {line!r}: expected "
                "'function<TAB>unique<TAB>worker<TAB>waiting_clients'"
            )
        head, worker, waiting = fields
        function, _, unique = head.partition("\t")
        results.append(
            PerlJobInfo(
                function=function,
                unique=unique,
                worker_address=None if worker == "-" else worker,
                waiting_clients=_parse_count(waiting, line, "jobs"),
            )
        )
    return results


def parse_perl_clients(reply: AdminReply | Iterable[str]) -> list[PerlClientInfo]:
    """Parse the Perl server's ``clients`` reply.

    Every connection is a line with its ``ip:port`` address. The jobs it waits
    for follow it, each on a line ``<TAB>function<TAB>unique<TAB>worker`` where
    the worker is ``ip:port`` or ``-`` for a queued job.

    Raises:
        ServerError: the server replied with ``ERR`` (gearmand does).
        RemoteProtocolError: a job line comes before any address line, or a line
            does not have either form.
    """
    clients: list[tuple[str, list[PerlClientJob]]] = []
    for line in _listing_lines(reply, (AdminCommand.CLIENTS,), "parse_perl_clients"):
        if not line.startswith("\t"):
            if not line or "\t" in line:
                raise RemoteProtocolError(
                    f"invalid clients line {line!r}: expected an 'ip:port' address"
                )
            clients.append((line, []))
            continue
        fields = line[1:].rsplit("\t", 1)
        if len(fields) != 2 or "\t" not in fields[0]:
            raise RemoteProtocolError(
                f"invalid clients line {line!r}: expected '<TAB>function<TAB>unique<TAB>worker'"
            )
        if not clients:
            raise RemoteProtocolError(
                f"clients job line {line!r} comes before any client address line"
            )
        head, worker = fields
        function, _, unique = head.partition("\t")
        clients[-1][1].append(
            PerlClientJob(
                function=function,
                unique=unique,
                worker_address=None if worker == "-" else worker,
            )
        )
    return [PerlClientInfo(address=address, jobs=tuple(jobs)) for address, jobs in clients]


_PERL_VERSION = re.compile(r"v?[0-9]+(?:\.[0-9]+)*\S*")


def parse_version(reply: AdminReply | str) -> str:
    """Parse a ``version`` reply into the version string.

    gearmand answers ``OK 1.1.20+ds`` and this returns ``"1.1.20+ds"``. The Perl
    server answers with a bare ``v1.130.1``, returned unchanged.

    Raises:
        ServerError: the server replied with ``ERR``.
        RemoteProtocolError: the line is neither form.
    """
    line = _single_line(reply, "parse_version")
    if line.startswith("OK ") and line[3:].strip():
        return line[3:].strip()
    if _PERL_VERSION.fullmatch(line):
        return line
    raise RemoteProtocolError(
        f"invalid version reply {line!r}: expected 'OK VERSION' or a bare version "
        "such as 'v1.130.1'"
    )


def parse_pid(reply: AdminReply | str) -> int:
    """Parse a gearmand ``getpid`` reply, ``OK PID``, into the server's process id.

    Raises:
        ServerError: the server replied with ``ERR`` (the Perl server does).
        RemoteProtocolError: the line is not ``OK`` and a positive integer.
    """
    line = _single_line(reply, "parse_pid")
    value = line[3:] if line.startswith("OK ") else ""
    if not _COUNT.fullmatch(value) or int(value) == 0:
        raise RemoteProtocolError(f"invalid getpid reply {line!r}: expected 'OK PID'")
    return int(value)


def parse_verbose(reply: AdminReply | str) -> str:
    """Parse a gearmand ``verbose`` reply, ``OK LEVEL``, into the log level name.

    gearmand started with default options answers ``OK ERROR``.

    Raises:
        ServerError: the server replied with ``ERR`` (the Perl server does).
        RemoteProtocolError: the line is not ``OK`` and a level name.
    """
    line = _single_line(reply, "parse_verbose")
    level = line[3:].strip() if line.startswith("OK ") else ""
    if not level:
        raise RemoteProtocolError(f"invalid verbose reply {line!r}: expected 'OK LEVEL'")
    return level


def parse_ok(reply: AdminReply | str) -> None:
    """Check a reply that only reports success, ``OK`` alone or followed by text.

    The commands that reply this way are ``maxqueue``, ``cancel job``,
    ``shutdown``, ``create function`` and ``drop function``.

    Raises:
        ServerError: the server replied with ``ERR``, for example
            ``UNKNOWN_JOB`` for ``cancel job`` on a handle the server does not
            hold, or ``UNKNOWN_COMMAND`` for ``shutdown`` on gearmand 1.1.20.
        RemoteProtocolError: the line is anything else.
    """
    line = _single_line(reply, "parse_ok")
    if line != "OK" and not line.startswith("OK "):
        raise RemoteProtocolError(f"invalid admin reply {line!r}: expected 'OK'")
