"""Run real Gearman job servers for tests: a helper class and pytest fixtures.

:class:`GearmandProcess` starts the C gearmand (or the Perl Gearman::Server) as a child
process that listens on 127.0.0.1 and a free port, waits until it accepts connections, talks
to its admin port and stops it again. It uses only the standard library, so scripts and test
suites without pytest can import it, and importing it never imports pytest.

When pytest loads this module as a plugin (the ``pytest11`` entry point named ``geargevent``
that the package installs), it also defines the fixtures ``gearmand``, ``gearmand_factory``,
``perl_gearmand`` and ``gearman_tools``, and adds the gearmand path and version to the report
header. The fixtures exist only if pytest was already imported when this module was first
imported, which is always the case when pytest loads the plugin.

Environment variables:
    GEARGEVENT_GEARMAND: path or command name of the C gearmand to use. When set, no other
        place is searched, so a wrong value makes the fixtures skip instead of quietly
        testing against another binary.
    GEARGEVENT_PERL_GEARMAND: the same for the Perl gearmand.
"""

from __future__ import annotations

import atexit
import contextlib
import enum
import functools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

__all__ = [
    "GEARMAND_ENV",
    "HOST",
    "PERL_GEARMAND_ENV",
    "GearmanTools",
    "GearmandFactory",
    "GearmandProcess",
    "find_gearman_tools",
    "find_gearmand",
    "find_perl_gearmand",
]

HOST = "127.0.0.1"
GEARMAND_ENV = "GEARGEVENT_GEARMAND"
PERL_GEARMAND_ENV = "GEARGEVENT_PERL_GEARMAND"

# Debian installs the C server (package gearman-job-server) as /usr/sbin/gearmand and the Perl
# server (package gearman-server) as /usr/bin/gearmand, so the name alone does not tell them
# apart and every candidate is checked by its --version output.
_C_GEARMAND_PATH = "/usr/sbin/gearmand"
_PERL_GEARMAND_PATH = "/usr/bin/gearmand"

_C_MISSING_REASON = (
    "C gearmand not found; install Debian package gearman-job-server or set GEARGEVENT_GEARMAND"
)
_PERL_MISSING_REASON = (
    "Perl gearmand not found; install Debian package gearman-server or set GEARGEVENT_PERL_GEARMAND"
)


def _missing_reason(perl: bool) -> str:
    """Say why no server binary was found, naming an environment variable that is set."""
    variable = "GEARGEVENT_PERL_GEARMAND" if perl else "GEARGEVENT_GEARMAND"
    value = os.environ.get(variable)
    if value:
        kind = "the Perl job server" if perl else "a C gearmand 1.x or 2.x"
        return f"{variable}={value!r} is not {kind}; point it at one or unset it"
    return _PERL_MISSING_REASON if perl else _C_MISSING_REASON


_TOOLS_MISSING_REASON = "gearman and gearadmin not found; install Debian package gearman-tools"

# The C server prints "gearmand 1.1.20+ds - <url>" after a blank line. The Perl server prints
# "Gearman::Server v1.130.1".
_C_VERSION_PATTERN = re.compile(r"gearmand ([12]\.\S+)")
_PERL_VERSION_PATTERN = re.compile(r"Gearman::Server v?(\S+)")
_VERSION_PROBE_TIMEOUT = 10.0

# Admin commands whose reply is a list of lines closed by a line containing only ".". gearmand
# 1.1.20 implements the first five, and the Perl server implements status, workers, jobs,
# clients and gladiator. Either server replies to an unknown command with one "ERR ..." line.
_LIST_COMMANDS = frozenset(
    {
        "status",
        "workers",
        "show jobs",
        "show unique jobs",
        "prioritystatus",
        "jobs",
        "clients",
        "gladiator",
    }
)


# Finding the binaries


def _resolve_executable(candidate: str) -> str | None:
    """Return the executable path for a path or a command name, or None if there is none."""
    if os.sep in candidate:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
        return None
    return shutil.which(candidate)


@functools.lru_cache(maxsize=32)
def _version_output(path: str) -> str:
    """Run ``path --version`` and return its stripped output, or "" if it could not run."""
    try:
        completed = subprocess.run(
            [path, "--version"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=_VERSION_PROBE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return completed.stdout.decode("utf-8", "replace").strip()


def _c_gearmand_version(path: str) -> str | None:
    """Return the version of a C gearmand 1.x or 2.x at ``path``, or None if it is not one."""
    match = _C_VERSION_PATTERN.match(_version_output(path))
    return match.group(1) if match else None


def _perl_gearmand_version(path: str) -> str | None:
    """Return the Gearman::Server version of the Perl gearmand at ``path``, or None."""
    match = _PERL_VERSION_PATTERN.match(_version_output(path))
    return match.group(1) if match else None


def find_gearmand() -> str | None:
    """Find the C gearmand, returning its path or None.

    Tries ``$GEARGEVENT_GEARMAND`` (and only that, when it is set), then /usr/sbin/gearmand,
    then ``gearmand`` on PATH. A candidate counts only if its ``--version`` output starts with
    ``gearmand 1.`` or ``gearmand 2.``, so the Perl server, which Debian also installs as
    ``gearmand``, is never returned.
    """
    configured = os.environ.get(GEARMAND_ENV)
    if configured:
        candidates = [_resolve_executable(configured)]
    else:
        candidates = [_resolve_executable(_C_GEARMAND_PATH), shutil.which("gearmand")]

    for candidate in candidates:
        if candidate is not None and _c_gearmand_version(candidate) is not None:
            return candidate
    return None


def find_perl_gearmand() -> str | None:
    """Find the Perl gearmand (Gearman::Server), returning its path or None.

    Tries ``$GEARGEVENT_PERL_GEARMAND`` (and only that, when it is set), then
    /usr/bin/gearmand. A candidate counts only if ``--version`` prints ``Gearman::Server``.
    """
    configured = os.environ.get(PERL_GEARMAND_ENV)
    candidate = _resolve_executable(configured or _PERL_GEARMAND_PATH)
    if candidate is not None and _perl_gearmand_version(candidate) is not None:
        return candidate
    return None


@dataclass(frozen=True)
class GearmanTools:
    """Paths of the command-line tools from the Debian package gearman-tools."""

    gearman: str
    gearadmin: str


def find_gearman_tools() -> GearmanTools | None:
    """Find ``gearman`` and ``gearadmin`` on PATH, or return None if either is missing."""
    gearman = shutil.which("gearman")
    gearadmin = shutil.which("gearadmin")
    if gearman is None or gearadmin is None:
        return None
    return GearmanTools(gearman=gearman, gearadmin=gearadmin)


# Waiting and probing


# Set by the atexit handler, which then waits with time.sleep instead of switching to a
# gevent hub while the interpreter shuts down.
_exiting = False


def _popen_class() -> type[subprocess.Popen[bytes]]:
    """Return gevent's Popen once gevent is loaded, else the standard one.

    Once anything in the process has used gevent.subprocess, gevent reaps every
    child itself, and the standard Popen then reports exit status 0 even for a
    killed server. gevent's Popen sees the real status either way.
    """
    if "gevent" in sys.modules and not _exiting:
        import gevent.subprocess

        popen: type[subprocess.Popen[bytes]] = gevent.subprocess.Popen
        return popen
    return subprocess.Popen


def _pause(seconds: float) -> None:
    """Sleep, letting other greenlets run if gevent is loaded.

    Workers under test keep running while a test waits for gearmand to start or stop. The
    process is not monkey-patched for this: gevent is used only if something imported it.
    """
    gevent = sys.modules.get("gevent")
    if gevent is not None and not _exiting:
        gevent.sleep(seconds)
    else:
        time.sleep(seconds)


def _pick_free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago.

    Another process can take the port before gearmand binds it, so callers must be ready to
    retry with a new port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _port_accepts(port: int) -> bool:
    """Return whether something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection((HOST, port), timeout=1.0):
            return True
    except OSError:
        return False


def _read_tail(path: Path, max_lines: int) -> str:
    """Return the last ``max_lines`` lines of a text file, or "" if it cannot be read."""
    try:
        with path.open("rb") as stream:
            stream.seek(0, os.SEEK_END)
            size = stream.tell()
            stream.seek(max(0, size - 64 * 1024))
            data = stream.read()
    except OSError:
        return ""
    lines = data.decode("utf-8", "replace").splitlines()
    return "\n".join(lines[-max_lines:])


def _is_admin_reply_complete(reply: bytes, is_list: bool) -> bool:
    if not is_list:
        return b"\n" in reply
    if reply.startswith(b"ERR "):
        return b"\n" in reply
    return reply in (b".\n", b".\r\n") or reply.endswith((b"\n.\n", b"\n.\r\n"))


class _Listener(enum.Enum):
    """Owner of the listening socket on the port that a server is being started on."""

    NOBODY = "nobody"
    OURS = "ours"
    OTHER = "other"
    SILENT = "silent"  # accepts connections but sent no reply to the probe


_LISTENER_HINTS = {
    _Listener.NOBODY: "",
    _Listener.OURS: "",
    _Listener.OTHER: " (another process listens on that port)",
    _Listener.SILENT: " (the port accepts connections but sends no reply to getpid)",
}


class _StartOutcome(enum.Enum):
    READY = "ready"
    PORT_TAKEN = "port taken"


# Servers started and not yet stopped, so that the atexit handler can stop them.
_running_servers: set[GearmandProcess] = set()


def _stop_running_servers() -> None:
    global _exiting
    _exiting = True
    for server in list(_running_servers):
        try:
            server.close()
        except (OSError, RuntimeError) as error:
            print(f"geargevent.testing: failed to stop {server!r}: {error}", file=sys.stderr)


atexit.register(_stop_running_servers)


# The server process


class GearmandProcess:
    """A Gearman job server running as a child process on 127.0.0.1.

    The C server gets ``-L 127.0.0.1 -p PORT --log-file=WORKDIR/gearmand.log --verbose=INFO
    --pid-file=WORKDIR/gearmand.pid``, then ``--threads=N`` if ``threads`` is given, then
    ``args``. The ``--verbose`` default is left out when ``args`` contains a ``--verbose``
    option, because gearmand rejects the option twice. The Perl server gets ``--port=PORT
    --listen 127.0.0.1 --pidfile=WORKDIR/gearmand.pid`` and then ``args``.

    The process runs in its own session, so a Ctrl-C in the terminal that runs the tests does
    not reach it, and it is stopped when the interpreter exits if it still runs then.

    Args:
        port: TCP port to listen on. None picks a free port at the first start. Later starts
            (and restarts) reuse the same port.
        args: extra command-line arguments, for example ``("--job-retries=3",)``.
        perl: start the Perl Gearman::Server instead of the C gearmand.
        workdir: folder for the log and pid files. None creates a temporary folder that
            :meth:`close` removes again.
        threads: number of gearmand I/O threads (``--threads``). None keeps gearmand's default
            (4 in gearmand 1.1.20). The Perl server has no such option.
        executable: path of the server binary. None uses :func:`find_gearmand` or
            :func:`find_perl_gearmand`.

    Raises:
        FileNotFoundError: no suitable server binary was found.
        ValueError: an argument is invalid, or ``executable`` is not the expected server.
    """

    host: str = HOST
    #: Seconds that :meth:`start` waits for the port to accept connections.
    start_timeout: float = 10.0
    #: Seconds during which a server that exits because its fixed port is still taken is
    #: started again. Only the Perl server exits in that case: the C one retries by itself.
    bind_retry_seconds: float = 5.0
    #: How many free ports :meth:`start` tries when another process takes the chosen one.
    port_attempts: int = 3

    def __init__(
        self,
        *,
        port: int | None = None,
        args: Sequence[str] = (),
        perl: bool = False,
        workdir: str | os.PathLike[str] | None = None,
        threads: int | None = None,
        executable: str | None = None,
    ) -> None:
        if isinstance(args, (str, bytes)):
            raise TypeError(f"args must be a sequence of strings, not a single string: {args!r}")
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"invalid port {port!r}; expected 1 to 65535, or None for a free one")
        if perl and threads is not None:
            raise ValueError("threads is not supported by the Perl gearmand; leave it as None")

        self.perl = perl
        self.args = tuple(args)
        self.threads = threads
        self.executable = self._check_executable(executable)

        self._port = port
        self._workdir = Path(workdir) if workdir is not None else None
        self._remove_workdir: weakref.finalize[..., GearmandProcess] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._output_offset = 0
        # True once the current process was seen accepting connections on the port, so that
        # stop() waits for the port to close only when the listener on it was ours.
        self._was_ready = False

    def _check_executable(self, executable: str | None) -> str:
        if executable is None:
            found = find_perl_gearmand() if self.perl else find_gearmand()
            if found is None:
                raise FileNotFoundError(_missing_reason(self.perl))
            return found

        resolved = _resolve_executable(executable)
        if resolved is None:
            raise FileNotFoundError(f"gearmand executable not found: {executable!r}")
        if self.perl and _perl_gearmand_version(resolved) is None:
            raise ValueError(f"{resolved!r} is not the Perl gearmand (Gearman::Server)")
        if not self.perl and _c_gearmand_version(resolved) is None:
            raise ValueError(f"{resolved!r} is not a C gearmand 1.x or 2.x")
        return resolved

    def __repr__(self) -> str:
        kind = "perl" if self.perl else "c"
        state = f"pid={self.pid}" if self.is_running() else "stopped"
        return f"<GearmandProcess {kind} {self.host}:{self._port} {state}>"

    # Properties

    @property
    def port(self) -> int:
        """TCP port of the server. Raises RuntimeError before the first start picks one."""
        if self._port is None:
            raise RuntimeError("no port chosen yet; call start() first or pass port=")
        return self._port

    @property
    def address(self) -> str:
        """Address as ``"127.0.0.1:PORT"``, the form Gearman clients and workers take."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """Process id while the server runs, else None."""
        return self._process.pid if self.is_running() and self._process else None

    @property
    def returncode(self) -> int | None:
        """Exit status of the last process once it exited (negative: killed by that signal)."""
        return self._process.returncode if self._process is not None else None

    @property
    def workdir(self) -> Path:
        """Folder of the log and pid files.

        Without a ``workdir`` argument this is a temporary folder, created on first use.
        """
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="geargevent-gearmand-"))
            # Removes the folder when this object is garbage collected or the interpreter
            # exits, unless close() removed it before.
            self._remove_workdir = weakref.finalize(
                self, shutil.rmtree, str(self._workdir), ignore_errors=True
            )
        return self._workdir

    @property
    def log_path(self) -> Path:
        """Server log. For the Perl server this is its standard output and error."""
        return self.workdir / "gearmand.log"

    @property
    def output_path(self) -> Path:
        """Standard output and error of the process (the same file as the log for Perl)."""
        if self.perl:
            return self.log_path
        return self.workdir / "gearmand.out"

    @property
    def pid_path(self) -> Path:
        return self.workdir / "gearmand.pid"

    @property
    def version(self) -> str:
        """Server version from ``--version``, for example ``"1.1.20+ds"`` or ``"1.130.1"``."""
        if self.perl:
            version = _perl_gearmand_version(self.executable)
        else:
            version = _c_gearmand_version(self.executable)
        if version is None:
            raise RuntimeError(f"could not read the version of {self.executable!r}")
        return version

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """Return the last lines of the log and, for the C server, of its standard error."""
        if self._workdir is None:
            return ""
        parts = [_read_tail(self.log_path, lines)]
        if not self.perl:
            output = _read_tail(self.output_path, lines)
            if output:
                parts.append(f"--- standard output and error ---\n{output}")
        return "\n".join(part for part in parts if part)

    # Starting

    def command(self) -> list[str]:
        """Return the command line that :meth:`start` runs."""
        if self.perl:
            return [
                self.executable,
                f"--port={self.port}",
                "--listen",
                self.host,
                f"--pidfile={self.pid_path}",
                *self.args,
            ]

        command = [
            self.executable,
            "-L",
            self.host,
            "-p",
            str(self.port),
            f"--log-file={self.log_path}",
            f"--pid-file={self.pid_path}",
        ]
        if not any(arg.startswith("--verbose") for arg in self.args):
            command.append("--verbose=INFO")
        if self.threads is not None:
            command.append(f"--threads={self.threads}")
        command.extend(self.args)
        return command

    def start(self) -> GearmandProcess:
        """Start the server and wait until its port accepts connections.

        With no fixed port, a free one is picked, and a new one is picked if another process
        takes it first (up to :attr:`port_attempts` ports). Returns ``self``.

        Raises:
            RuntimeError: the server is already running, exited during startup, or did not
                accept connections within :attr:`start_timeout` seconds. The last two messages
                include the end of the server log.
        """
        if self.is_running():
            raise RuntimeError(f"{self!r} is already running")

        fixed_port = self._port is not None
        attempts = 1 if fixed_port else self.port_attempts
        for _ in range(attempts):
            if not fixed_port:
                self._port = _pick_free_port()
            if self._launch_and_wait(fixed_port) is _StartOutcome.READY:
                self._was_ready = True
                _running_servers.add(self)
                return self

        raise RuntimeError(
            f"could not start gearmand: another process took the chosen free port "
            f"{attempts} times in a row (last port {self._port})"
        )

    def _spawn(self) -> None:
        self._was_ready = False
        self.workdir.mkdir(parents=True, exist_ok=True)
        output_path = self.output_path
        with output_path.open("ab") as output:
            self._output_offset = output.tell()
            self._process = _popen_class()(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,
            )

    def _new_output(self) -> str:
        """Return what the process wrote to its output file since the last spawn."""
        try:
            with self.output_path.open("rb") as stream:
                stream.seek(self._output_offset)
                return stream.read(64 * 1024).decode("utf-8", "replace")
        except OSError:
            return ""

    def _exited_because_port_taken(self) -> bool:
        # Only the Perl server exits on a taken port. gearmand 1.1.20 keeps retrying the bind.
        return self.perl and "Error creating socket" in self._new_output()

    def _launch_and_wait(self, fixed_port: bool) -> _StartOutcome:
        self._spawn()
        deadline = time.monotonic() + self.start_timeout
        bind_deadline = time.monotonic() + self.bind_retry_seconds
        delay = 0.01

        while True:
            assert self._process is not None
            returncode = self._process.poll()
            if returncode is not None:
                # Step 1: the process exited. A taken port is retried (the same port until
                # the bind deadline, or another free port). Anything else is an error.
                if self._exited_because_port_taken():
                    if not fixed_port:
                        return _StartOutcome.PORT_TAKEN
                    if time.monotonic() < bind_deadline:
                        _pause(0.1)
                        self._spawn()
                        continue
                raise RuntimeError(
                    f"gearmand exited with status {returncode} during startup on port "
                    f"{self._port}: {' '.join(self.command())}\n{self.log_tail()}"
                )

            # Step 2: the process runs. Find out whether it is the one accepting connections.
            listener = self._probe_listener()
            if listener is _Listener.OURS:
                return _StartOutcome.READY
            if listener is _Listener.OTHER and not fixed_port:
                self._kill_quietly()
                return _StartOutcome.PORT_TAKEN

            if time.monotonic() >= deadline:
                self._kill_quietly()
                raise RuntimeError(
                    f"gearmand did not accept connections on port {self._port} within "
                    f"{self.start_timeout} s{_LISTENER_HINTS[listener]}: "
                    f"{' '.join(self.command())}\n{self.log_tail()}"
                )
            _pause(delay)
            delay = min(delay * 2, 0.1)

    def _probe_listener(self) -> _Listener:
        assert self._process is not None
        try:
            connection = socket.create_connection((self.host, self.port), timeout=1.0)
        except OSError:
            return _Listener.NOBODY

        with connection:
            if self.perl:
                # Gearman::Server writes its pid file right after binding the port, so a pid
                # file with our pid means the listener is ours. A Perl server whose port is
                # taken exits instead, and the caller's poll() detects that.
                if self._read_pid_file() == self._process.pid:
                    return _Listener.OURS
                return _Listener.NOBODY

            # The C server replies to the admin command "getpid" with "OK <pid>".
            try:
                connection.sendall(b"getpid\n")
                reply = connection.recv(256)
            except TimeoutError:
                return _Listener.SILENT
            except OSError:
                return _Listener.NOBODY
        if reply.strip() == f"OK {self._process.pid}".encode():
            return _Listener.OURS
        return _Listener.OTHER if reply else _Listener.NOBODY

    def _read_pid_file(self) -> int | None:
        try:
            return int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None

    # Stopping

    def send_signal(self, sig: int) -> None:
        """Send a signal without waiting, for example SIGUSR1 for gearmand's graceful stop."""
        if self.is_running():
            assert self._process is not None
            self._process.send_signal(sig)

    def wait(self, timeout: float = 10.0) -> int:
        """Wait for the process to exit by itself and return its exit status.

        Raises:
            RuntimeError: the server was never started.
            TimeoutError: it still runs after ``timeout`` seconds.
        """
        if self._process is None:
            raise RuntimeError(f"{self!r} was never started")
        if not self._wait_for_exit(timeout):
            raise TimeoutError(f"gearmand pid {self._process.pid} still runs after {timeout} s")
        _running_servers.discard(self)
        return self._process.returncode

    def _wait_for_exit(self, timeout: float) -> bool:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        delay = 0.005
        while self._process.poll() is None:
            if time.monotonic() >= deadline:
                return False
            _pause(delay)
            delay = min(delay * 2, 0.05)
        return True

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """Stop the server and wait until it exited and its port refuses connections.

        Sends ``sig``, waits up to ``timeout`` seconds for the exit, then sends SIGKILL. Does
        nothing if the server was not started. Returns the exit status (negative when a signal
        ended the process).

        Raises:
            RuntimeError: the port still accepts connections ``timeout`` seconds after the
                process exited, so another process listens on it. This is checked only if
                the server had started successfully.
        """
        process = self._process
        if process is None:
            return None

        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
            if not self._wait_for_exit(timeout):
                process.kill()
                self._wait_for_exit(timeout)
        _running_servers.discard(self)
        if not self._was_ready:
            return process.returncode
        self._was_ready = False

        deadline = time.monotonic() + timeout
        while self._port is not None and _port_accepts(self._port):
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"port {self._port} still accepts connections {timeout} s after gearmand "
                    f"pid {process.pid} exited; another process listens on it"
                )
            _pause(0.05)
        return process.returncode

    def kill(self) -> int | None:
        """Stop the server with SIGKILL, as in a crash. Returns the exit status."""
        return self.stop(signal.SIGKILL)

    def _kill_quietly(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._wait_for_exit(5.0)

    def restart(self, down_seconds: float = 0.0, sig: int = signal.SIGTERM) -> GearmandProcess:
        """Stop the server with ``sig``, wait ``down_seconds``, and start it on the same port.

        The in-memory queue of the C server is lost, and job handles start again at 1.
        Returns ``self``.
        """
        self.stop(sig)
        if down_seconds > 0:
            _pause(down_seconds)
        return self.start()

    def close(self) -> None:
        """Stop the server and remove the work folder if this object created it."""
        self.stop()
        if self._remove_workdir is not None:
            self._remove_workdir()
            self._remove_workdir = None
            self._workdir = None

    def __enter__(self) -> GearmandProcess:
        if not self.is_running():
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # Admin protocol

    def admin(self, command: str, timeout: float = 5.0) -> str:
        """Send one admin text command and return the reply as received.

        For list commands (``status``, ``workers``, ``show jobs``, ``show unique jobs``,
        ``prioritystatus``, and the Perl server's ``jobs``, ``clients`` and ``gladiator``) the
        reply runs up to and including the closing ``.`` line, unless it is an ``ERR`` line.
        Other commands have a one-line reply. Line ends (``\\n`` or ``\\r\\n``) are kept, and
        bytes that are not UTF-8 are decoded with ``surrogateescape``.

        Raises:
            ValueError: ``command`` contains a line break.
            ConnectionError: the server closed the connection before the reply was complete.
            TimeoutError: the reply was not complete within ``timeout`` seconds.
            OSError: the connection failed, for example because the server is not running.
        """
        if "\n" in command or "\r" in command:
            raise ValueError(f"admin command must be one line: {command!r}")
        is_list = " ".join(command.split()).lower() in _LIST_COMMANDS
        deadline = time.monotonic() + timeout

        reply = bytearray()
        with socket.create_connection((self.host, self.port), timeout=timeout) as connection:
            connection.sendall(command.encode("utf-8", "surrogateescape") + b"\n")
            while not _is_admin_reply_complete(bytes(reply), is_list):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"admin command {command!r} on {self.address}: reply incomplete "
                        f"after {timeout} s: {bytes(reply)[-200:]!r}"
                    )
                connection.settimeout(remaining)
                chunk = connection.recv(65536)
                if not chunk:
                    raise ConnectionError(
                        f"admin command {command!r}: {self.address} closed the connection "
                        f"before the reply was complete: {bytes(reply)[-200:]!r}"
                    )
                reply += chunk
        return reply.decode("utf-8", "surrogateescape")

    def _admin_lines(self, command: str, timeout: float) -> list[str]:
        """Return the lines of a list reply without line ends and the closing ``.``."""
        lines = [line.rstrip("\r") for line in self.admin(command, timeout).split("\n")]
        if lines and lines[0].startswith("ERR "):
            raise RuntimeError(f"{self.address} rejected admin command {command!r}: {lines[0]}")
        while lines and lines[-1] in ("", "."):
            if lines.pop() == ".":
                break
        return lines

    def status(self, timeout: float = 5.0) -> dict[str, tuple[int, int, int]]:
        """Return the ``status`` table: function name -> (total, running, available workers).

        ``total`` counts queued and running jobs. A name that contains tabs is kept whole,
        because the three numbers are split off from the right.

        Raises:
            ValueError: a line does not have the expected form.
        """
        table: dict[str, tuple[int, int, int]] = {}
        for line in self._admin_lines("status", timeout):
            fields = line.rsplit("\t", 3)
            if len(fields) != 4:
                raise ValueError(f"unexpected status line from {self.address}: {line!r}")
            name, total, running, workers = fields
            table[name] = (int(total), int(running), int(workers))
        return table

    def workers(self, timeout: float = 5.0) -> list[str]:
        """Return the ``workers`` lines (``FD IP CLIENT-ID : FUNCTION ...``) as sent."""
        return self._admin_lines("workers", timeout)


class GearmandFactory(Protocol):
    """Type of the ``gearmand_factory`` fixture."""

    def __call__(
        self,
        *args: str,
        port: int | None = None,
        perl: bool = False,
        threads: int | None = None,
        workdir: str | os.PathLike[str] | None = None,
        executable: str | None = None,
    ) -> GearmandProcess: ...


# pytest plugin
#
# The fixtures are defined only when pytest is already loaded, so that importing this module
# outside a test run never imports pytest.

if TYPE_CHECKING or "_pytest" in sys.modules:
    import pytest

    def _skip_unless_found(perl: bool) -> str:
        path = find_perl_gearmand() if perl else find_gearmand()
        if path is not None:
            return path
        reason = _missing_reason(perl)
        variable = PERL_GEARMAND_ENV if perl else GEARMAND_ENV
        configured = os.environ.get(variable)
        if configured:
            reason += f" ({variable}={configured!r} is not a usable server)"
        pytest.skip(reason)

    def _close_for_test(request: pytest.FixtureRequest, server: GearmandProcess) -> None:
        """Stop a fixture's server and attach its log tail, which pytest shows on failure."""
        try:
            server.close()
        finally:
            tail = server.log_tail(60)
            if tail:
                name = f"{'perl ' if server.perl else ''}gearmand log (port {server._port})"
                request.node.add_report_section("teardown", name, tail)

    @pytest.fixture
    def gearmand(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GearmandProcess]:
        """Start a C gearmand on 127.0.0.1 and a free port, and stop it after the test.

        Skips the test if no C gearmand is installed.
        """
        executable = _skip_unless_found(perl=False)
        server = GearmandProcess(executable=executable, workdir=tmp_path / "gearmand")
        server.start()
        yield server
        _close_for_test(request, server)

    @pytest.fixture
    def perl_gearmand(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GearmandProcess]:
        """Start a Perl gearmand (Gearman::Server) and stop it after the test.

        Skips the test if the Perl server is not installed.
        """
        executable = _skip_unless_found(perl=True)
        server = GearmandProcess(
            perl=True, executable=executable, workdir=tmp_path / "perl-gearmand"
        )
        server.start()
        yield server
        _close_for_test(request, server)

    @pytest.fixture
    def gearmand_factory(
        request: pytest.FixtureRequest, tmp_path: Path
    ) -> Iterator[GearmandFactory]:
        """Provide a function that starts more servers, and stop them all after the test.

        ``gearmand_factory(*args, port=None, perl=False, threads=None, workdir=None,
        executable=None)`` returns a started :class:`GearmandProcess`. Positional arguments
        are extra server arguments, for example ``gearmand_factory("--job-retries=3")``.
        The call skips the test if the requested server is not installed.
        """
        servers: list[GearmandProcess] = []

        def start_server(
            *args: str,
            port: int | None = None,
            perl: bool = False,
            threads: int | None = None,
            workdir: str | os.PathLike[str] | None = None,
            executable: str | None = None,
        ) -> GearmandProcess:
            if executable is None:
                executable = _skip_unless_found(perl)
            if workdir is None:
                workdir = tmp_path / f"gearmand-{len(servers) + 1}"
            server = GearmandProcess(
                port=port,
                args=args,
                perl=perl,
                workdir=workdir,
                threads=threads,
                executable=executable,
            )
            servers.append(server)
            server.start()
            return server

        yield start_server

        # Stop every server even if one of them fails to stop, then report the first failure.
        errors: list[BaseException] = []
        for server in servers:
            try:
                _close_for_test(request, server)
            except (OSError, RuntimeError) as error:
                errors.append(error)
        if errors:
            raise errors[0]

    @pytest.fixture(scope="session")
    def gearman_tools() -> GearmanTools:
        """Return the paths of ``gearman`` and ``gearadmin``, or skip if they are missing."""
        tools = find_gearman_tools()
        if tools is None:
            pytest.skip(_TOOLS_MISSING_REASON)
        return tools

    def pytest_report_header(config: pytest.Config) -> list[str]:
        """Name the gearmand binaries and versions, because server behaviour differs by version."""
        lines = []
        path = find_gearmand()
        if path is None:
            lines.append("gearmand: not found; tests that need it are skipped")
        else:
            lines.append(f"gearmand: {path} {_c_gearmand_version(path)}")
        perl_path = find_perl_gearmand()
        if perl_path is None:
            lines.append("perl gearmand: not found; tests that need it are skipped")
        else:
            lines.append(f"perl gearmand: {perl_path} {_perl_gearmand_version(perl_path)}")
        return lines
