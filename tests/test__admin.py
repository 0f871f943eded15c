"""Tests of admin command encoding, the reply reader and the reply parsers.

The byte strings under "Captured replies" are real replies, recorded from gearmand 1.1.20
(Debian package gearman-job-server 1.1.20+ds) and the Perl Gearman::Server 1.130.1 (package
gearman-server) on 127.0.0.1. Workers registered over raw sockets with SET_CLIENT_ID and
CAN_DO, and jobs came from SUBMIT_JOB_BG and SUBMIT_JOB. The live tests at the end send the
same commands to servers started by the ``gearmand`` and ``perl_gearmand`` fixtures.
"""

from __future__ import annotations

import itertools
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geargevent._admin import (
    MAX_COMMAND_SIZE,
    AdminCommand,
    AdminReply,
    AdminReplyReader,
    FunctionStatus,
    JobInfo,
    PerlClientInfo,
    PerlClientJob,
    PerlJobInfo,
    PriorityStatus,
    WorkerInfo,
    encode_command,
    parse_ok,
    parse_perl_clients,
    parse_perl_jobs,
    parse_pid,
    parse_priority_status,
    parse_show_jobs,
    parse_show_unique_jobs,
    parse_status,
    parse_verbose,
    parse_version,
    parse_workers,
)
from geargevent._framing import PacketParser, encode_packet
from geargevent._packets import Packet, PacketType
from geargevent.errors import RemoteProtocolError, ServerError
from geargevent.testing import GearmandProcess, GearmanTools

C = AdminCommand
CYRILLIC = "функция"
CYRILLIC_BYTES = CYRILLIC.encode()

# Captured replies ---------------------------------------------------------------------------

# gearmand 1.1.20: worker-42 registered adm.a then adm.b and was assigned one adm.a job, a second
# worker registered adm.b, a client submitted three adm.a jobs and adm.c jobs at each
# priority. Lines 36 and 39 are the client and the admin connection itself.
C_WORKERS = (
    b"36 127.0.0.1 - :\n37 127.0.0.1 worker-42 : adm.b adm.a\n"
    b"38 127.0.0.1 - : adm.b\n39 127.0.0.1 - :\n.\n"
)
C_STATUS = b"adm.b\t0\t0\t2\nadm.a\t3\t1\t1\nadm.c\t3\t0\t0\n.\n"
C_PRIORITY_STATUS = b"adm.b\t0\t0\t0\t2\nadm.a\t0\t2\t0\t1\nadm.c\t1\t1\t1\t0\n.\n"
C_SHOW_JOBS = (
    b"H:vm:1\t0\t0\t1\nH:vm:5\t0\t0\t1\nH:vm:2\t0\t0\t1\nH:vm:4\t0\t0\t1\n"
    b"H:vm:6\t0\t0\t1\nH:vm:3\t0\t0\t1\n.\n"
)
# A background and a foreground job; the foreground one was then flagged by "cancel job".
C_SHOW_JOBS_CANCELLED = b"H:vm:1\t0\t0\t1\nH:vm:2\t0\t1\t0\n.\n"
# The job submitted with an empty unique shows as an empty line.
C_SHOW_UNIQUE_JOBS = b"\nhi\nu-1\nlo\nu-0\nu-2\n.\n"
C_VERSION = b"OK 1.1.20+ds\n"
C_GETPID = b"OK 3886\n"
C_VERBOSE = b"OK ERROR\n"
C_OK = b"OK\r\n"
C_UNKNOWN_JOB = b"ERR UNKNOWN_JOB\r\n"
C_UNKNOWN_SHOW = b"ERR UNKNOWN_SHOW_ARGUMENTS\r\n"
C_SHUTDOWN = b"ERR UNKNOWN_COMMAND Unknown+server+commandshutdown\r\n"
C_JOBS = b"ERR UNKNOWN_COMMAND Unknown+server+commandjobs\r\n"
C_DROP_BUSY = b"ERR there are still connected workers or executing clients\r\n"
C_DROP_MISSING = b"ERR function not found\r\n"
# Names with a space, Cyrillic and invalid UTF-8; an empty id and an id with a space and a tab.
C_WORKERS_ODD = (
    b"36 127.0.0.1 - :\n37 127.0.0.1  : \xff\xfe " + CYRILLIC_BYTES + b" fn one\n"
    b"38 127.0.0.1 id with\tspace : fg\n39 127.0.0.1 - :\n.\n"
)
C_STATUS_ODD = (
    b"fn one\t0\t0\t1\nfg\t2\t1\t1\n" + CYRILLIC_BYTES + b"\t0\t0\t1\n\xff\xfe\t0\t0\t1\n.\n"
)
# "version", "status" and "bogus" sent in one write.
C_PIPELINED = C_VERSION + C_STATUS_ODD + b"ERR UNKNOWN_COMMAND Unknown+server+commandbogus\r\n"

# Perl Gearman::Server 1.130.1, with the same workers and background jobs as above (it
# rejects the HIGH and LOW submissions, so adm.c has one job).
PERL_WORKERS = (
    b"6 127.0.0.1 - : \n7 127.0.0.1 worker-42 : adm.b adm.a\n"
    b"8 127.0.0.1 - : adm.b\n9 127.0.0.1 - : \n.\n"
)
PERL_STATUS = b"adm.a\t3\t1\t1\nadm.b\t0\t0\t2\nadm.c\t1\t0\t0\n.\n"
PERL_JOBS = (
    b"adm.c\t\t-\t0\nadm.a\tu-0\t127.0.0.1:44550\t0\nadm.a\tu-1\t-\t0\nadm.a\tu-2\t-\t0\n.\n"
)
# Two foreground jobs from one client, one of them running.
PERL_JOBS_FOREGROUND = b"fg\tuq-2\t-\t1\nfg\tuq-1\t127.0.0.1:42834\t1\n.\n"
PERL_CLIENTS = (
    b"127.0.0.1:42834\n127.0.0.1:42838\n\tfg\tuq-2\t-\n\tfg\tuq-1\t127.0.0.1:42834\n"
    b"127.0.0.1:42822\n127.0.0.1:42850\n.\n"
)
PERL_VERSION = b"v1.130.1\n"
PERL_OK = b"OK\n"
PERL_UNKNOWN_COMMAND = b"ERR unknown_command \r\n"
PERL_UNKNOWN_ARGS = b"ERR unknown_args Unknown+arguments+to+server+command\r\n"
# The Perl server removes whitespace from client ids. It lists functions in the order of a
# Perl hash, which changes from run to run.
PERL_WORKERS_ODD = (
    b"6 127.0.0.1 - : \n7 127.0.0.1 - : " + CYRILLIC_BYTES + b" fn one \xff\xfe\n"
    b"8 127.0.0.1 idwithspace : fg\n9 127.0.0.1 - : \n.\n"
)


def read_one(command: AdminCommand, data: bytes) -> AdminReply:
    reader = AdminReplyReader()
    reader.expect(command)
    replies = reader.feed(data)
    assert len(replies) == 1
    assert reader.pending == 0
    assert reader.buffered == 0
    return replies[0]


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    return [data[start:end] for start, end in itertools.pairwise([0, *points, len(data)])]


# encode_command ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "arguments", "line"),
    [
        ("status", (), b"status\n"),
        (C.SHOW_UNIQUE_JOBS, (), b"show unique jobs\n"),
        (C.CANCEL_JOB, ("H:vm:1",), b"cancel job H:vm:1\n"),
        (C.MAXQUEUE, ("adm.a", "5", "4", "3"), b"maxqueue adm.a 5 4 3\n"),
        (C.MAXQUEUE, (b"\xff\xfe", b"0"), b"maxqueue \xff\xfe 0\n"),
        (C.DROP_FUNCTION, (CYRILLIC,), b"drop function " + CYRILLIC_BYTES + b"\n"),
        ("SHUTDOWN", ("graceful",), b"SHUTDOWN graceful\n"),
    ],
)
def test_encode_command(command: str, arguments: tuple[str | bytes, ...], line: bytes) -> None:
    assert encode_command(command, *arguments) == line


def test_encode_command_round_trips_undecodable_name() -> None:
    status = parse_status(read_one(C.STATUS, C_STATUS_ODD))
    name = status[-1].function

    assert encode_command(C.MAXQUEUE, name, "1") == b"maxqueue \xff\xfe 1\n"


@pytest.mark.parametrize(
    "command", ["", " status", "status ", "show  jobs", "status\n", "st4tus", "show\tjobs"]
)
def test_encode_command_rejects_invalid_command(command: str) -> None:
    with pytest.raises(ValueError, match="invalid admin command"):
        encode_command(command)


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("", "is empty"),
        (b"", "is empty"),
        ("a b", r"contains b' '"),
        ("a\tb", r"contains b'\\t'"),
        ("a\nstatus", r"contains b'\\n'"),
        ("a\r", r"contains b'\\r'"),
        (b"a\0b", r"contains b'\\x00'"),
        ("a\x7f", r"contains b'\\x7f'"),
        ("\x0b", r"contains b'\\x0b'"),
    ],
)
def test_encode_command_rejects_bad_argument(argument: str | bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        encode_command(C.MAXQUEUE, "adm.a", argument)

    assert repr(argument) in str(caught.value)


def test_encode_command_rejects_unencodable_surrogate() -> None:
    with pytest.raises(ValueError, match="cannot be encoded"):
        encode_command(C.CANCEL_JOB, "\ud800x")


def test_encode_command_size_limit() -> None:
    prefix = len(b"maxqueue ") + len(b" 1\n")
    longest = "x" * (MAX_COMMAND_SIZE - prefix)

    assert len(encode_command(C.MAXQUEUE, longest, "1")) == MAX_COMMAND_SIZE
    with pytest.raises(ValueError, match=f"{MAX_COMMAND_SIZE + 1} bytes"):
        encode_command(C.MAXQUEUE, longest + "x", "1")


# AdminReplyReader ---------------------------------------------------------------------------

# (command, captured bytes, expected lines, expected error code or None)
READER_TABLE: list[tuple[AdminCommand, bytes, tuple[str, ...], str | None]] = [
    (
        C.WORKERS,
        C_WORKERS,
        (
            "36 127.0.0.1 - :",
            "37 127.0.0.1 worker-42 : adm.b adm.a",
            "38 127.0.0.1 - : adm.b",
            "39 127.0.0.1 - :",
        ),
        None,
    ),
    (C.STATUS, C_STATUS, ("adm.b\t0\t0\t2", "adm.a\t3\t1\t1", "adm.c\t3\t0\t0"), None),
    (C.SHOW_UNIQUE_JOBS, C_SHOW_UNIQUE_JOBS, ("", "hi", "u-1", "lo", "u-0", "u-2"), None),
    (C.SHOW_UNIQUE_JOBS, b".\n", (), None),
    (C.VERSION, C_VERSION, ("OK 1.1.20+ds",), None),
    (C.MAXQUEUE, C_OK, ("OK",), None),
    (C.CANCEL_JOB, C_UNKNOWN_JOB, ("ERR UNKNOWN_JOB",), "UNKNOWN_JOB"),
    (C.SHOW_JOBS, C_UNKNOWN_SHOW, ("ERR UNKNOWN_SHOW_ARGUMENTS",), "UNKNOWN_SHOW_ARGUMENTS"),
    (C.JOBS, C_JOBS, ("ERR UNKNOWN_COMMAND Unknown+server+commandjobs",), "UNKNOWN_COMMAND"),
    (C.VERSION, PERL_VERSION, ("v1.130.1",), None),
    (C.PRIORITY_STATUS, PERL_UNKNOWN_COMMAND, ("ERR unknown_command ",), "unknown_command"),
    (C.GETPID, PERL_UNKNOWN_COMMAND, ("ERR unknown_command ",), "unknown_command"),
    (C.CLIENTS, PERL_CLIENTS, tuple(PERL_CLIENTS.decode().split("\n")[:-2]), None),
]
READER_IDS = [f"{row[0].name}-{index}" for index, row in enumerate(READER_TABLE)]


@pytest.mark.parametrize(("command", "data", "lines", "code"), READER_TABLE, ids=READER_IDS)
def test_reader_whole(
    command: AdminCommand, data: bytes, lines: tuple[str, ...], code: str | None
) -> None:
    reply = read_one(command, data)

    assert reply.command is command
    assert reply.lines == lines
    assert reply.error_code == code
    assert reply.is_error is (code is not None)


@pytest.mark.parametrize(("command", "data", "lines", "code"), READER_TABLE, ids=READER_IDS)
def test_reader_byte_by_byte(
    command: AdminCommand, data: bytes, lines: tuple[str, ...], code: str | None
) -> None:
    reader = AdminReplyReader()
    reader.expect(command)
    for index in range(len(data) - 1):
        assert reader.feed(data[index : index + 1]) == []

    [reply] = reader.feed(data[-1:])

    assert reply.lines == lines
    assert reply.error_code == code
    assert reader.buffered == 0


@pytest.mark.parametrize(("command", "data", "lines", "code"), READER_TABLE, ids=READER_IDS)
@settings(max_examples=20, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=10))
def test_reader_random_chunks(
    command: AdminCommand, data: bytes, lines: tuple[str, ...], code: str | None, cuts: list[int]
) -> None:
    reader = AdminReplyReader()
    reader.expect(command)
    replies = []
    for chunk in split_at(data, cuts):
        replies.extend(reader.feed(chunk))

    assert [reply.lines for reply in replies] == [lines]
    assert replies[0].error_code == code


@pytest.mark.parametrize(("command", "data", "lines", "code"), READER_TABLE, ids=READER_IDS)
def test_reader_keeps_trailing_partial_line(
    command: AdminCommand, data: bytes, lines: tuple[str, ...], code: str | None
) -> None:
    reader = AdminReplyReader()
    reader.expect(command)
    reader.expect(C.STATUS)

    [reply] = reader.feed(data + b"adm.a\t1")

    assert reply.lines == lines
    assert reader.buffered == len(b"adm.a\t1")
    assert reader.pending == 1
    [status] = reader.feed(b"\t0\t1\n.\n")
    assert status.lines == ("adm.a\t1\t0\t1",)
    assert reader.buffered == 0


def test_reader_pipelined_replies_in_order() -> None:
    reader = AdminReplyReader()
    for command in (C.VERSION, C.STATUS, C.STATUS):
        reader.expect(command)

    replies = reader.feed(C_PIPELINED)

    assert [reply.command for reply in replies] == [C.VERSION, C.STATUS, C.STATUS]
    assert parse_version(replies[0]) == "1.1.20+ds"
    assert len(parse_status(replies[1])) == 4
    assert replies[2].error_code == "UNKNOWN_COMMAND"
    assert replies[2].error_text == "Unknown server commandbogus"


@settings(max_examples=50, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=len(C_PIPELINED)), max_size=30))
def test_reader_pipelined_in_random_chunks(cuts: list[int]) -> None:
    reader = AdminReplyReader()
    for command in (C.VERSION, C.STATUS, C.STATUS):
        reader.expect(command)

    replies = []
    for chunk in split_at(C_PIPELINED, cuts):
        replies.extend(reader.feed(chunk))

    assert [reply.is_error for reply in replies] == [False, False, True]
    assert reader.pending == 0


def test_reader_decodes_invalid_utf8_with_surrogateescape() -> None:
    reply = read_one(C.STATUS, C_STATUS_ODD)

    assert reply.lines[2] == f"{CYRILLIC}\t0\t0\t1"
    assert reply.lines[3] == "\udcff\udcfe\t0\t0\t1"
    assert reply.lines[3].encode("utf-8", "surrogateescape") == b"\xff\xfe\t0\t0\t1"


def test_reader_strips_only_one_carriage_return() -> None:
    reply = read_one(C.SHOW_UNIQUE_JOBS, b"u\r\r\n.\r\n")

    assert reply.lines == ("u\r",)


def test_reader_error_text_decodes_plus_as_space() -> None:
    reply = read_one(C.SHUTDOWN, PERL_UNKNOWN_ARGS)

    assert reply.error_code == "unknown_args"
    assert reply.error_text == "Unknown arguments to server command"


@pytest.mark.parametrize(
    "data", [C_DROP_BUSY, C_DROP_MISSING], ids=["still-connected", "not-found"]
)
def test_reader_error_sentence_has_empty_code(data: bytes) -> None:
    reply = read_one(C.DROP_FUNCTION, data)

    assert reply.error_code == ""
    assert reply.error_text == data.decode()[4:-2]


def test_reader_err_line_with_tab_is_data() -> None:
    reply = read_one(C.STATUS, b"ERR x\t1\t0\t1\n.\n")

    assert reply.is_error is False
    assert parse_status(reply) == [FunctionStatus("ERR x", 1, 0, 1)]


def test_reader_err_unique_without_cr_is_data() -> None:
    reply = read_one(C.SHOW_UNIQUE_JOBS, b"ERR x\n.\n")

    assert reply.is_error is False
    assert reply.lines == ("ERR x",)


def test_reader_unique_jobs_error_needs_cr() -> None:
    reply = read_one(C.SHOW_UNIQUE_JOBS, PERL_UNKNOWN_COMMAND)

    assert reply.error_code == "unknown_command"


def test_reader_raise_for_error() -> None:
    reply = read_one(C.CANCEL_JOB, C_UNKNOWN_JOB)

    with pytest.raises(ServerError, match="UNKNOWN_JOB") as caught:
        reply.raise_for_error()
    assert caught.value.code == "UNKNOWN_JOB"
    assert caught.value.text == ""


def test_reader_rejects_line_with_nothing_expected() -> None:
    reader = AdminReplyReader()

    with pytest.raises(RemoteProtocolError, match="no command outstanding"):
        reader.feed(b"OK\n")


def test_reader_rejects_extra_line_after_reply() -> None:
    reader = AdminReplyReader()
    reader.expect(C.VERSION)

    with pytest.raises(RemoteProtocolError, match="'surplus'"):
        reader.feed(b"OK 1.1.20+ds\nsurplus\n")


def test_reader_rejects_binary_packet() -> None:
    reader = AdminReplyReader()
    reader.expect(C.STATUS)

    with pytest.raises(RemoteProtocolError, match="binary packet"):
        reader.feed(encode_packet(PacketType.ECHO_RES, b"x\n"))


def test_reader_rejects_line_over_max_size_without_newline() -> None:
    reader = AdminReplyReader(max_line_size=16)
    reader.expect(C.STATUS)
    # 17 bytes may still be 16 plus the "\r" of a "\r\n" line end.
    assert reader.feed(b"x" * 17) == []

    with pytest.raises(RemoteProtocolError, match="longer than 16 bytes"):
        reader.feed(b"x")


def test_reader_rejects_complete_line_over_max_size() -> None:
    reader = AdminReplyReader(max_line_size=16)
    reader.expect(C.STATUS)

    with pytest.raises(RemoteProtocolError, match="17 bytes"):
        reader.feed(b"x" * 17 + b"\n.\n")


def test_reader_accepts_line_at_max_size() -> None:
    reader = AdminReplyReader(max_line_size=16)
    reader.expect(C.SHOW_UNIQUE_JOBS)

    [reply] = reader.feed(b"u" * 16 + b"\r\n.\n")

    assert reply.lines == ("u" * 16,)


def test_reader_error_repeats_on_every_later_feed() -> None:
    reader = AdminReplyReader()
    with pytest.raises(RemoteProtocolError) as first:
        reader.feed(b"OK\n")
    reader.expect(C.VERSION)

    for later in (b"", b"OK 1\n"):
        with pytest.raises(RemoteProtocolError) as again:
            reader.feed(later)
        assert again.value is first.value


def test_reader_expect_accepts_command_words() -> None:
    reader = AdminReplyReader()
    reader.expect("show jobs")

    [reply] = reader.feed(b".\n")

    assert reply.command is C.SHOW_JOBS


def test_reader_expect_rejects_unknown_command() -> None:
    with pytest.raises(ValueError, match="'show everything'"):
        AdminReplyReader().expect("show everything")


def test_reader_rejects_invalid_max_line_size() -> None:
    with pytest.raises(ValueError, match="max_line_size"):
        AdminReplyReader(max_line_size=0)


def test_command_is_list() -> None:
    listings = {command for command in AdminCommand if command.is_list}

    assert listings == {
        C.STATUS,
        C.PRIORITY_STATUS,
        C.WORKERS,
        C.SHOW_JOBS,
        C.SHOW_UNIQUE_JOBS,
        C.JOBS,
        C.CLIENTS,
    }


# Parsers on captured replies ----------------------------------------------------------------


def test_parse_status_gearmand() -> None:
    assert parse_status(read_one(C.STATUS, C_STATUS)) == [
        FunctionStatus(function="adm.b", total=0, running=0, workers=2),
        FunctionStatus(function="adm.a", total=3, running=1, workers=1),
        FunctionStatus(function="adm.c", total=3, running=0, workers=0),
    ]


def test_parse_status_perl() -> None:
    assert parse_status(read_one(C.STATUS, PERL_STATUS)) == [
        FunctionStatus("adm.a", 3, 1, 1),
        FunctionStatus("adm.b", 0, 0, 2),
        FunctionStatus("adm.c", 1, 0, 0),
    ]


def test_parse_status_odd_names() -> None:
    functions = [status.function for status in parse_status(read_one(C.STATUS, C_STATUS_ODD))]

    assert functions == ["fn one", "fg", CYRILLIC, "\udcff\udcfe"]


def test_function_status_queued() -> None:
    assert FunctionStatus("adm.a", total=3, running=1, workers=1).queued == 2


def test_function_status_queued_clamps_wrapped_running_count() -> None:
    # gearmand 1.1.x printed "to4 0 4294967295 1" after a stale CAN_DO_TIMEOUT timer fired.
    assert parse_status(["to4\t0\t4294967295\t1", "."])[0].queued == 0


def test_parse_status_tab_in_name_keeps_leading_columns() -> None:
    assert parse_status(["a\tb\t1\t0\t1"]) == [FunctionStatus("a\tb", 1, 0, 1)]


def test_parse_priority_status() -> None:
    assert parse_priority_status(read_one(C.PRIORITY_STATUS, C_PRIORITY_STATUS)) == [
        PriorityStatus(function="adm.b", high=0, normal=0, low=0, workers=2),
        PriorityStatus(function="adm.a", high=0, normal=2, low=0, workers=1),
        PriorityStatus(function="adm.c", high=1, normal=1, low=1, workers=0),
    ]


def test_parse_workers_gearmand() -> None:
    assert parse_workers(read_one(C.WORKERS, C_WORKERS)) == [
        WorkerInfo(fd=36, ip="127.0.0.1", client_id="-", functions=()),
        WorkerInfo(fd=37, ip="127.0.0.1", client_id="worker-42", functions=("adm.b", "adm.a")),
        WorkerInfo(fd=38, ip="127.0.0.1", client_id="-", functions=("adm.b",)),
        WorkerInfo(fd=39, ip="127.0.0.1", client_id="-", functions=()),
    ]


def test_parse_workers_perl() -> None:
    assert parse_workers(read_one(C.WORKERS, PERL_WORKERS)) == [
        WorkerInfo(6, "127.0.0.1", "-", ()),
        WorkerInfo(7, "127.0.0.1", "worker-42", ("adm.b", "adm.a")),
        WorkerInfo(8, "127.0.0.1", "-", ("adm.b",)),
        WorkerInfo(9, "127.0.0.1", "-", ()),
    ]


def test_parse_workers_gearmand_odd_ids_and_names() -> None:
    workers = parse_workers(read_one(C.WORKERS, C_WORKERS_ODD))

    assert workers[1] == WorkerInfo(37, "127.0.0.1", "", ("\udcff\udcfe", CYRILLIC, "fn", "one"))
    assert workers[2] == WorkerInfo(38, "127.0.0.1", "id with\tspace", ("fg",))


def test_parse_workers_perl_odd_ids_and_names() -> None:
    workers = parse_workers(read_one(C.WORKERS, PERL_WORKERS_ODD))

    assert workers[1] == WorkerInfo(7, "127.0.0.1", "-", (CYRILLIC, "fn", "one", "\udcff\udcfe"))
    assert workers[2].client_id == "idwithspace"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("-1 127.0.0.1 - :", WorkerInfo(None, "127.0.0.1", "-", ())),
        ("- ::1 w : f", WorkerInfo(None, "::1", "w", ("f",))),
        ("5 127.0.0.1 :x : f", WorkerInfo(5, "127.0.0.1", ":x", ("f",))),
        ("5 127.0.0.1 a:b : f g", WorkerInfo(5, "127.0.0.1", "a:b", ("f", "g"))),
        ("5  - : f", WorkerInfo(5, "", "-", ("f",))),
    ],
)
def test_parse_workers_edge_lines(line: str, expected: WorkerInfo) -> None:
    assert parse_workers([line]) == [expected]


def test_parse_show_jobs() -> None:
    jobs = parse_show_jobs(read_one(C.SHOW_JOBS, C_SHOW_JOBS))

    assert [job.handle for job in jobs] == [f"H:vm:{n}" for n in (1, 5, 2, 4, 6, 3)]
    assert jobs[0] == JobInfo(handle="H:vm:1", retries=0, ignored=0, in_persistent_queue=1)


def test_parse_show_jobs_cancelled_foreground_job() -> None:
    assert parse_show_jobs(read_one(C.SHOW_JOBS, C_SHOW_JOBS_CANCELLED)) == [
        JobInfo("H:vm:1", 0, 0, 1),
        JobInfo("H:vm:2", 0, 1, 0),
    ]


def test_parse_show_unique_jobs() -> None:
    uniques = parse_show_unique_jobs(read_one(C.SHOW_UNIQUE_JOBS, C_SHOW_UNIQUE_JOBS))

    assert uniques == ["", "hi", "u-1", "lo", "u-0", "u-2"]


def test_parse_perl_jobs() -> None:
    assert parse_perl_jobs(read_one(C.JOBS, PERL_JOBS)) == [
        PerlJobInfo(function="adm.c", unique="", worker_address=None, waiting_clients=0),
        PerlJobInfo("adm.a", "u-0", "127.0.0.1:44550", 0),
        PerlJobInfo("adm.a", "u-1", None, 0),
        PerlJobInfo("adm.a", "u-2", None, 0),
    ]


def test_parse_perl_jobs_foreground() -> None:
    assert parse_perl_jobs(read_one(C.JOBS, PERL_JOBS_FOREGROUND)) == [
        PerlJobInfo("fg", "uq-2", None, 1),
        PerlJobInfo("fg", "uq-1", "127.0.0.1:42834", 1),
    ]


def test_parse_perl_jobs_tab_in_unique() -> None:
    assert parse_perl_jobs(["fn\ta\tb\t-\t2"]) == [PerlJobInfo("fn", "a\tb", None, 2)]


def test_parse_perl_clients() -> None:
    assert parse_perl_clients(read_one(C.CLIENTS, PERL_CLIENTS)) == [
        PerlClientInfo(address="127.0.0.1:42834", jobs=()),
        PerlClientInfo(
            address="127.0.0.1:42838",
            jobs=(
                PerlClientJob(function="fg", unique="uq-2", worker_address=None),
                PerlClientJob("fg", "uq-1", "127.0.0.1:42834"),
            ),
        ),
        PerlClientInfo("127.0.0.1:42822", ()),
        PerlClientInfo("127.0.0.1:42850", ()),
    ]


def test_parse_version_gearmand_and_perl() -> None:
    assert parse_version(read_one(C.VERSION, C_VERSION)) == "1.1.20+ds"
    assert parse_version(read_one(C.VERSION, PERL_VERSION)) == "v1.130.1"
    assert parse_version("OK 1.1.20+ds\n") == "1.1.20+ds"


def test_parse_pid() -> None:
    assert parse_pid(read_one(C.GETPID, C_GETPID)) == 3886


def test_parse_verbose() -> None:
    assert parse_verbose(read_one(C.VERBOSE, C_VERBOSE)) == "ERROR"


@pytest.mark.parametrize(
    ("command", "data"),
    [
        (C.MAXQUEUE, C_OK),
        (C.MAXQUEUE, PERL_OK),
        (C.CANCEL_JOB, C_OK),
        (C.CREATE_FUNCTION, C_OK),
        (C.SHUTDOWN, PERL_OK),
        (C.VERBOSE, C_VERBOSE),
    ],
)
def test_parse_ok(command: AdminCommand, data: bytes) -> None:
    parse_ok(read_one(command, data))


@pytest.mark.parametrize(
    ("parser", "command", "data", "code", "text"),
    [
        (parse_ok, C.CANCEL_JOB, C_UNKNOWN_JOB, "UNKNOWN_JOB", ""),
        (parse_ok, C.SHUTDOWN, C_SHUTDOWN, "UNKNOWN_COMMAND", "Unknown server commandshutdown"),
        (parse_ok, C.DROP_FUNCTION, C_DROP_MISSING, "", "function not found"),
        (parse_pid, C.GETPID, PERL_UNKNOWN_COMMAND, "unknown_command", ""),
        (parse_verbose, C.VERBOSE, PERL_UNKNOWN_COMMAND, "unknown_command", ""),
        (parse_version, C.VERSION, C_SHUTDOWN, "UNKNOWN_COMMAND", "Unknown server commandshutdown"),
        (parse_show_jobs, C.SHOW_JOBS, C_UNKNOWN_SHOW, "UNKNOWN_SHOW_ARGUMENTS", ""),
        (parse_show_unique_jobs, C.SHOW_UNIQUE_JOBS, PERL_UNKNOWN_COMMAND, "unknown_command", ""),
        (parse_priority_status, C.PRIORITY_STATUS, PERL_UNKNOWN_COMMAND, "unknown_command", ""),
        (parse_perl_jobs, C.JOBS, C_JOBS, "UNKNOWN_COMMAND", "Unknown server commandjobs"),
        (parse_perl_clients, C.CLIENTS, C_JOBS, "UNKNOWN_COMMAND", "Unknown server commandjobs"),
        (parse_status, C.STATUS, PERL_UNKNOWN_COMMAND, "unknown_command", ""),
        (parse_workers, C.WORKERS, PERL_UNKNOWN_COMMAND, "unknown_command", ""),
    ],
)
def test_parse_err_reply_raises_server_error(
    parser: Callable[[AdminReply], object],
    command: AdminCommand,
    data: bytes,
    code: str,
    text: str,
) -> None:
    with pytest.raises(ServerError) as caught:
        parser(read_one(command, data))

    assert caught.value.code == code
    assert caught.value.text == text


@pytest.mark.parametrize(
    ("parser", "line"),
    [
        (parse_ok, "ERR UNKNOWN_JOB\r\n"),
        (parse_pid, "ERR unknown_command "),
        (parse_version, "ERR"),
    ],
)
def test_parse_err_line_string_raises_server_error(
    parser: Callable[[str], object], line: str
) -> None:
    with pytest.raises(ServerError):
        parser(line)


def test_parse_err_raw_lines_raise_server_error() -> None:
    with pytest.raises(ServerError, match="unknown_command"):
        parse_priority_status(["ERR unknown_command "])


@pytest.mark.parametrize(
    ("parser", "lines"),
    [
        (parse_status, ["adm.a\t3\t1"]),
        (parse_status, ["adm.a\t3\t1\tx"]),
        (parse_status, ["adm.a\t3\t-1\t1"]),
        (parse_status, ["adm.a\t3\t 1\t1"]),
        (parse_status, ["adm.a\t3\t1_0\t1"]),
        (parse_status, ["adm.a\t3\t\u0661\t1"]),
        (parse_status, ["36 127.0.0.1 - :"]),
        (parse_priority_status, ["adm.a\t0\t2\t0"]),
        (parse_priority_status, ["adm.a\t0\t2\t0\tmany"]),
        (parse_workers, ["36 127.0.0.1 -"]),
        (parse_workers, ["36"]),
        (parse_workers, ["x6 127.0.0.1 - :"]),
        (parse_workers, ["adm.a\t3\t1\t1"]),
        (parse_show_jobs, ["H:vm:1\t0\t0"]),
        (parse_show_jobs, ["\t0\t0\t1"]),
        (parse_show_jobs, ["H:vm:1\t0\t0\tyes"]),
        (parse_perl_jobs, ["adm.a\t-\t0"]),
        (parse_perl_jobs, ["adm.a\tu\t-\tmany"]),
        (parse_perl_clients, ["\tfg\tuq-2\t-"]),
        (parse_perl_clients, ["127.0.0.1:1", "\tfg-only"]),
        (parse_perl_clients, ["127.0.0.1:1\tx"]),
        (parse_perl_clients, [""]),
    ],
)
def test_parse_unrecognised_line_raises_naming_it(
    parser: Callable[[list[str]], object], lines: list[str]
) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        parser(lines)

    assert repr(lines[-1]) in str(caught.value)


@pytest.mark.parametrize(
    ("parser", "line"),
    [
        (parse_version, "OK"),
        (parse_version, "OK "),
        (parse_version, "gearmand"),
        (parse_pid, "OK"),
        (parse_pid, "OK abc"),
        (parse_pid, "OK 0"),
        (parse_pid, "OK -5"),
        (parse_pid, "3886"),
        (parse_verbose, "OK"),
        (parse_verbose, "INFO"),
        (parse_ok, "OKAY"),
        (parse_ok, ""),
        (parse_ok, "v1.130.1"),
    ],
)
def test_parse_unrecognised_single_line_raises_naming_it(
    parser: Callable[[str], object], line: str
) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        parser(line)

    assert repr(line) in str(caught.value)


def test_parse_raw_lines_with_and_without_terminator() -> None:
    expected = [FunctionStatus("adm.a", 3, 1, 1)]

    assert parse_status(["adm.a\t3\t1\t1", "."]) == expected
    assert parse_status(["adm.a\t3\t1\t1\r", ".\r"]) == expected
    assert parse_status(["adm.a\t3\t1\t1"]) == expected
    assert parse_status(["."]) == []
    assert parse_status([]) == []


def test_parse_rejects_reply_to_other_command() -> None:
    reply = read_one(C.WORKERS, C_WORKERS)

    with pytest.raises(ValueError, match=r"use parse_workers\(\)"):
        parse_status(reply)
    with pytest.raises(ValueError, match="listing reply to 'workers'"):
        parse_ok(reply)
    with pytest.raises(ValueError, match="use parse_ok"):
        parse_status(read_one(C.MAXQUEUE, C_OK))


def test_parse_mismatched_listing_names_line() -> None:
    # A reader that expects "status" while the server sends a "workers" listing passes
    # worker lines to parse_status, which must reject them rather than misread them.
    reply = read_one(C.STATUS, C_WORKERS)

    with pytest.raises(RemoteProtocolError, match=re.escape("'36 127.0.0.1 - :'")):
        parse_status(reply)


# Live servers -------------------------------------------------------------------------------

TIMEOUT = 5.0


class RawConnection:
    """A binary-protocol connection that sends packets and waits for replies."""

    def __init__(self, server: GearmandProcess) -> None:
        self.socket = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
        self.parser = PacketParser()
        self.received: list[Packet] = []

    def send(self, packet_type: PacketType, *arguments: bytes) -> None:
        self.socket.sendall(encode_packet(packet_type, *arguments))

    def receive(self, count: int) -> list[Packet]:
        deadline = time.monotonic() + TIMEOUT
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"only {self.received} of {count} packets"
            data = self.socket.recv(65536)
            assert data, "server closed the connection"
            self.received.extend(self.parser.feed(data))
        packets, self.received = self.received[:count], self.received[count:]
        return packets

    def sync(self) -> None:
        """Wait until the server processed everything sent so far (ECHO comes back in order)."""
        self.send(PacketType.ECHO_REQ, b"sync")
        assert self.receive(1) == [Packet(PacketType.ECHO_RES, (b"sync",))]


class AdminConnection:
    """An admin connection that pairs each sent command with an AdminReplyReader reply."""

    def __init__(self, server: GearmandProcess) -> None:
        self.socket = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
        self.reader = AdminReplyReader()
        self.replies: list[AdminReply] = []

    def send(self, command: AdminCommand, *arguments: str | bytes) -> None:
        self.socket.sendall(encode_command(command, *arguments))
        self.reader.expect(command)

    def receive(self, count: int = 1) -> list[AdminReply]:
        deadline = time.monotonic() + TIMEOUT
        while len(self.replies) < count:
            assert time.monotonic() < deadline, f"only {self.replies} of {count} replies"
            data = self.socket.recv(65536)
            assert data, "server closed the admin connection"
            self.replies.extend(self.reader.feed(data))
        replies, self.replies = self.replies[:count], self.replies[count:]
        return replies

    def run(self, command: AdminCommand, *arguments: str | bytes) -> AdminReply:
        self.send(command, *arguments)
        return self.receive(1)[0]


class Connections:
    """Opens raw and admin connections and closes them all at the end of a test."""

    def __init__(self) -> None:
        self.opened: list[RawConnection | AdminConnection] = []

    def raw(self, server: GearmandProcess) -> RawConnection:
        connection = RawConnection(server)
        self.opened.append(connection)
        return connection

    def admin(self, server: GearmandProcess) -> AdminConnection:
        connection = AdminConnection(server)
        self.opened.append(connection)
        return connection

    def close(self) -> None:
        for connection in self.opened:
            connection.socket.close()


@pytest.fixture
def connections() -> Iterator[Connections]:
    opened = Connections()
    yield opened
    opened.close()


def start_worker(
    connections: Connections, server: GearmandProcess, client_id: bytes, *functions: bytes
) -> RawConnection:
    worker = connections.raw(server)
    worker.send(PacketType.SET_CLIENT_ID, client_id)
    for function in functions:
        worker.send(PacketType.CAN_DO, function)
    worker.sync()
    return worker


def submit_jobs(
    client: RawConnection,
    function: bytes,
    uniques: list[bytes],
    packet_type: PacketType = PacketType.SUBMIT_JOB_BG,
) -> list[str]:
    """Submit one job per unique and return the handles from JOB_CREATED."""
    for unique in uniques:
        client.send(packet_type, function, unique, b"payload")
    created = client.receive(len(uniques))
    assert {packet.type for packet in created} == {PacketType.JOB_CREATED}
    return [packet.arguments[0].decode() for packet in created]


def status_by_function(statuses: list[FunctionStatus]) -> dict[str, FunctionStatus]:
    return {status.function: status for status in statuses}


def test_live_status_counts_background_jobs(
    gearmand: GearmandProcess, connections: Connections
) -> None:
    start_worker(connections, gearmand, b"worker-a", b"adm.a")
    submit_jobs(connections.raw(gearmand), b"adm.a", [b"u-0", b"u-1", b"u-2"])
    admin = connections.admin(gearmand)

    status = status_by_function(parse_status(admin.run(C.STATUS)))

    assert status["adm.a"] == FunctionStatus("adm.a", total=3, running=0, workers=1)
    assert status["adm.a"].queued == 3


def test_live_status_counts_running_job(
    gearmand: GearmandProcess, connections: Connections
) -> None:
    worker = start_worker(connections, gearmand, b"worker-a", b"adm.a")
    submit_jobs(connections.raw(gearmand), b"adm.a", [b"u-0", b"u-1"])
    worker.send(PacketType.GRAB_JOB)
    assert worker.receive(1)[0].type is PacketType.JOB_ASSIGN
    admin = connections.admin(gearmand)

    status = status_by_function(parse_status(admin.run(C.STATUS)))["adm.a"]

    assert (status.total, status.running, status.queued) == (2, 1, 1)


def test_live_status_matches_gearadmin(
    gearmand: GearmandProcess, gearman_tools: GearmanTools, connections: Connections
) -> None:
    start_worker(connections, gearmand, b"worker-a", b"adm.a", b"adm.b")
    start_worker(connections, gearmand, b"worker-b", b"adm.b")
    client = connections.raw(gearmand)
    submit_jobs(client, b"adm.a", [b"u-0", b"u-1", b"u-2"])
    submit_jobs(client, b"adm.c", [b"u-3"])
    admin = connections.admin(gearmand)

    ours = parse_status(admin.run(C.STATUS))
    completed = subprocess.run(
        [gearman_tools.gearadmin, "--status", "-h", gearmand.host, "-p", str(gearmand.port)],
        capture_output=True,
        timeout=TIMEOUT,
        check=True,
    )
    theirs = parse_status(completed.stdout.decode("utf-8", "surrogateescape").splitlines())

    assert status_by_function(ours) == status_by_function(theirs)
    assert status_by_function(ours)["adm.b"].workers == 2
    assert status_by_function(ours)["adm.c"].total == 1


def test_live_status_matches_fixture_admin(
    gearmand: GearmandProcess, connections: Connections
) -> None:
    start_worker(connections, gearmand, b"worker-a", b"adm.a")
    submit_jobs(connections.raw(gearmand), b"adm.a", [b"u-0"])
    admin = connections.admin(gearmand)

    ours = parse_status(admin.run(C.STATUS))
    theirs = gearmand.status()

    assert {s.function: (s.total, s.running, s.workers) for s in ours} == theirs


def test_live_workers_shows_client_id(gearmand: GearmandProcess, connections: Connections) -> None:
    start_worker(connections, gearmand, b"worker-42", b"alpha", b"beta")
    admin = connections.admin(gearmand)

    workers = parse_workers(admin.run(C.WORKERS))

    [worker] = [info for info in workers if info.client_id == "worker-42"]
    assert worker.functions == ("beta", "alpha")
    assert worker.ip == "127.0.0.1"
    assert worker.fd is not None
    # The admin connection itself is listed with no id and no functions.
    assert any(info.client_id == "-" and info.functions == () for info in workers)


def test_live_workers_odd_names_round_trip(
    gearmand: GearmandProcess, connections: Connections
) -> None:
    start_worker(connections, gearmand, b"", CYRILLIC_BYTES, b"\xff\xfe")
    admin = connections.admin(gearmand)

    workers = parse_workers(admin.run(C.WORKERS))
    [worker] = [info for info in workers if info.functions]

    assert worker.client_id == ""
    assert set(worker.functions) == {CYRILLIC, "\udcff\udcfe"}
    parse_ok(admin.run(C.MAXQUEUE, "\udcff\udcfe", "2"))


def test_live_getpid_is_server_pid(gearmand: GearmandProcess, connections: Connections) -> None:
    admin = connections.admin(gearmand)

    assert parse_pid(admin.run(C.GETPID)) == gearmand.pid


def test_live_version_and_verbose(gearmand: GearmandProcess, connections: Connections) -> None:
    admin = connections.admin(gearmand)

    assert parse_version(admin.run(C.VERSION)) == gearmand.version
    assert parse_verbose(admin.run(C.VERBOSE)) in {
        "FATAL",
        "ALERT",
        "CRITICAL",
        "ERROR",
        "WARNING",
        "NOTICE",
        "INFO",
        "DEBUG",
    }


def test_live_maxqueue_ok(gearmand: GearmandProcess, connections: Connections) -> None:
    admin = connections.admin(gearmand)

    parse_ok(admin.run(C.MAXQUEUE, "adm.a", "10"))
    parse_ok(admin.run(C.MAXQUEUE, "adm.a", "5", "4", "3"))


def test_live_cancel_unknown_job_is_server_error(
    gearmand: GearmandProcess, connections: Connections
) -> None:
    admin = connections.admin(gearmand)

    with pytest.raises(ServerError) as caught:
        parse_ok(admin.run(C.CANCEL_JOB, "H:nohost:999"))
    assert caught.value.code == "UNKNOWN_JOB"


def test_live_cancel_job_then_show_jobs(
    gearmand: GearmandProcess, connections: Connections
) -> None:
    start_worker(connections, gearmand, b"worker-a", b"adm.a")
    client = connections.raw(gearmand)
    [handle] = submit_jobs(client, b"adm.a", [b"u-fg"], PacketType.SUBMIT_JOB)
    admin = connections.admin(gearmand)

    parse_ok(admin.run(C.CANCEL_JOB, handle))
    jobs = parse_show_jobs(admin.run(C.SHOW_JOBS))

    assert jobs == [JobInfo(handle, retries=0, ignored=1, in_persistent_queue=0)]


def test_live_show_jobs_and_unique_jobs(
    gearmand: GearmandProcess, connections: Connections
) -> None:
    handles = submit_jobs(connections.raw(gearmand), b"adm.a", [b"u-0", b"u-1", b""])
    admin = connections.admin(gearmand)

    jobs = parse_show_jobs(admin.run(C.SHOW_JOBS))
    uniques = parse_show_unique_jobs(admin.run(C.SHOW_UNIQUE_JOBS))

    assert sorted(job.handle for job in jobs) == sorted(handles)
    assert all(job.retries == 0 and job.ignored == 0 for job in jobs)
    assert sorted(uniques) == ["", "u-0", "u-1"]


def test_live_priority_status(gearmand: GearmandProcess, connections: Connections) -> None:
    client = connections.raw(gearmand)
    submit_jobs(client, b"adm.p", [b"h-0", b"h-1"], PacketType.SUBMIT_JOB_HIGH_BG)
    submit_jobs(client, b"adm.p", [b"n-0"])
    submit_jobs(client, b"adm.p", [b"l-0", b"l-1", b"l-2"], PacketType.SUBMIT_JOB_LOW_BG)
    admin = connections.admin(gearmand)

    statuses = parse_priority_status(admin.run(C.PRIORITY_STATUS))

    assert PriorityStatus("adm.p", high=2, normal=1, low=3, workers=0) in statuses


def test_live_create_and_drop_function(gearmand: GearmandProcess, connections: Connections) -> None:
    start_worker(connections, gearmand, b"worker-a", b"busy")
    admin = connections.admin(gearmand)

    parse_ok(admin.run(C.CREATE_FUNCTION, "newfn"))
    with pytest.raises(ServerError) as busy:
        parse_ok(admin.run(C.DROP_FUNCTION, "busy"))
    with pytest.raises(ServerError) as missing:
        parse_ok(admin.run(C.DROP_FUNCTION, "nosuch"))

    assert busy.value.text == "there are still connected workers or executing clients"
    assert missing.value.text == "function not found"


def test_live_shutdown_is_unknown_on_1_1_20(
    gearmand: GearmandProcess, connections: Connections
) -> None:
    if not gearmand.version.startswith("1.1.20"):
        pytest.skip(f"checks gearmand 1.1.20, which rejects shutdown; found {gearmand.version}")
    admin = connections.admin(gearmand)

    with pytest.raises(ServerError, match="UNKNOWN_COMMAND") as caught:
        parse_ok(admin.run(C.SHUTDOWN))

    assert caught.value.code == "UNKNOWN_COMMAND"
    assert gearmand.is_running()


def test_live_perl_only_commands_are_errors(
    gearmand: GearmandProcess, connections: Connections
) -> None:
    admin = connections.admin(gearmand)

    with pytest.raises(ServerError, match="UNKNOWN_COMMAND"):
        parse_perl_jobs(admin.run(C.JOBS))
    with pytest.raises(ServerError, match="UNKNOWN_COMMAND"):
        parse_perl_clients(admin.run(C.CLIENTS))


def test_live_pipelined_commands(gearmand: GearmandProcess, connections: Connections) -> None:
    start_worker(connections, gearmand, b"worker-a", b"adm.a")
    admin = connections.admin(gearmand)
    admin.send(C.VERSION)
    admin.send(C.STATUS)
    admin.send(C.CANCEL_JOB, "H:nohost:1")
    admin.send(C.WORKERS)
    admin.send(C.GETPID)

    version, status, cancel, workers, pid = admin.receive(5)

    assert parse_version(version) == gearmand.version
    assert [s.function for s in parse_status(status)] == ["adm.a"]
    assert cancel.error_code == "UNKNOWN_JOB"
    assert len(parse_workers(workers)) == 2
    assert parse_pid(pid) == gearmand.pid


def test_live_wrong_expectation_raises_naming_line(
    gearmand: GearmandProcess, connections: Connections
) -> None:
    start_worker(connections, gearmand, b"worker-a", b"adm.a")
    admin = connections.admin(gearmand)
    admin.socket.sendall(encode_command(C.WORKERS))
    admin.reader.expect(C.STATUS)

    [reply] = admin.receive(1)

    with pytest.raises(RemoteProtocolError, match=r"invalid status line '[0-9]+ 127\.0\.0\.1 "):
        parse_status(reply)


def test_live_longest_command_is_answered(
    gearmand: GearmandProcess, connections: Connections
) -> None:
    admin = connections.admin(gearmand)
    name = "x" * (MAX_COMMAND_SIZE - len(b"maxqueue ") - len(b" 1\n"))

    parse_ok(admin.run(C.MAXQUEUE, name, "1"))


def test_live_perl_status_workers_and_jobs(
    perl_gearmand: GearmandProcess, connections: Connections
) -> None:
    worker = start_worker(connections, perl_gearmand, b"worker-42", b"adm.a", b"adm.b")
    handles = submit_jobs(connections.raw(perl_gearmand), b"adm.a", [b"u-0", b"u-1", b"u-2"])
    worker.send(PacketType.GRAB_JOB)
    [assigned] = worker.receive(1)
    admin = connections.admin(perl_gearmand)

    status = status_by_function(parse_status(admin.run(C.STATUS)))
    workers = parse_workers(admin.run(C.WORKERS))
    jobs = parse_perl_jobs(admin.run(C.JOBS))

    assert status["adm.a"] == FunctionStatus("adm.a", total=3, running=1, workers=1)
    assert status["adm.b"] == FunctionStatus("adm.b", total=0, running=0, workers=1)
    [registered] = [info for info in workers if info.client_id == "worker-42"]
    assert sorted(registered.functions) == ["adm.a", "adm.b"]
    assert len(handles) == 3
    assert assigned.type is PacketType.JOB_ASSIGN
    assert sorted(job.unique for job in jobs) == ["u-0", "u-1", "u-2"]
    assert sum(job.worker_address is not None for job in jobs) == 1
    assert all(job.waiting_clients == 0 for job in jobs)


def test_live_perl_clients_lists_foreground_jobs(
    perl_gearmand: GearmandProcess, connections: Connections
) -> None:
    client = connections.raw(perl_gearmand)
    submit_jobs(client, b"fg", [b"uq-1", b"uq-2"], PacketType.SUBMIT_JOB)
    admin = connections.admin(perl_gearmand)

    clients = parse_perl_clients(admin.run(C.CLIENTS))
    jobs = parse_perl_jobs(admin.run(C.JOBS))

    [waiting] = [info for info in clients if info.jobs]
    assert sorted(job.unique for job in waiting.jobs) == ["uq-1", "uq-2"]
    assert all(job.worker_address is None for job in waiting.jobs)
    assert sorted((job.unique, job.waiting_clients) for job in jobs) == [("uq-1", 1), ("uq-2", 1)]


def test_live_perl_version_and_maxqueue(
    perl_gearmand: GearmandProcess, connections: Connections
) -> None:
    admin = connections.admin(perl_gearmand)

    version = parse_version(admin.run(C.VERSION))

    assert version.startswith("v")
    assert version.removeprefix("v") == perl_gearmand.version
    parse_ok(admin.run(C.MAXQUEUE, "adm.a", "10"))


def test_live_perl_gearmand_only_commands_are_errors(
    perl_gearmand: GearmandProcess, connections: Connections
) -> None:
    admin = connections.admin(perl_gearmand)
    for command in (C.PRIORITY_STATUS, C.SHOW_JOBS, C.SHOW_UNIQUE_JOBS, C.GETPID):
        admin.send(command)
    admin.send(C.SHUTDOWN, "bogus")

    replies = admin.receive(5)

    assert [reply.error_code for reply in replies] == ["unknown_command"] * 4 + ["unknown_args"]
    with pytest.raises(ServerError, match="unknown_command"):
        parse_priority_status(replies[0])
    with pytest.raises(ServerError, match="Unknown arguments to server command"):
        parse_ok(replies[4])


def test_live_perl_shutdown_stops_server(
    perl_gearmand: GearmandProcess, connections: Connections
) -> None:
    admin = connections.admin(perl_gearmand)

    parse_ok(admin.run(C.SHUTDOWN))
    assert perl_gearmand.wait(timeout=TIMEOUT) == 0
