"""The exception tree of geargevent.

Every error the library raises derives from :class:`GearmanError`, so callers can
catch one base class. Subclasses carry the consequence as attributes (should the
connection be dropped, which server code came back), and their messages name the
bad value and what to do next.
"""

from __future__ import annotations

from typing import Any

import gevent

__all__ = [
    "ConnectionLostError",
    "EncodingError",
    "GearmanConnectionError",
    "GearmanError",
    "GearmanTimeoutError",
    "JobAbandoned",
    "JobExceptionError",
    "JobFailedError",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "ServerError",
    "ServerUnavailable",
    "ServerUnavailableError",
]


class GearmanError(Exception):
    """Base class of every geargevent error; not raised itself."""

    def __new__(cls, *args: Any, **kwargs: Any) -> GearmanError:
        if cls is GearmanError:
            raise TypeError("GearmanError is a base class; raise one of its subclasses")
        return super().__new__(cls, *args, **kwargs)


class ProtocolError(GearmanError):
    """Bytes that break the Gearman protocol.

    Attributes:
        drop_connection: True when the byte stream can no longer be trusted, so
            the connection must be closed and opened again.
    """

    drop_connection = True

    def __new__(cls, *args: Any, **kwargs: Any) -> ProtocolError:
        if cls is ProtocolError:
            raise TypeError(
                "ProtocolError is a base class; raise LocalProtocolError or RemoteProtocolError"
            )
        return super().__new__(cls, *args, **kwargs)  # type: ignore[return-value]


class LocalProtocolError(ProtocolError):
    """This side was asked to send something the protocol cannot carry."""

    drop_connection = False


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that are not a valid Gearman packet or text reply."""


class ServerError(GearmanError):
    """The job server answered with an ERROR packet or an ``ERR`` admin line.

    Attributes:
        code: the server's error code, for example ``"JOB_NOT_FOUND"``.
        text: the server's explanation, possibly empty.
    """

    def __init__(self, code: str, text: str = "", server: str = "") -> None:
        self.code = code
        self.text = text
        self.server = server
        where = f" {server}" if server else ""
        detail = ": ".join(part for part in (code, text) if part) or "no details"
        super().__init__(f"job server{where} returned an error: {detail}")


class GearmanConnectionError(GearmanError):
    """A connection to a job server could not be made or was lost."""


class ServerUnavailableError(GearmanConnectionError):
    """No configured job server accepted a connection."""


# python-gearman 2.x's name for the same error.
ServerUnavailable = ServerUnavailableError


class ConnectionLostError(GearmanConnectionError):
    """An established connection closed while a request depended on it."""


class GearmanTimeoutError(GearmanError):
    """An operation did not finish within its time limit."""


class EncodingError(GearmanError, ValueError):
    """A data encoder could not encode or decode a value.

    Attributes:
        function: the Gearman function whose data failed, if known.
        direction: ``"encode"`` or ``"decode"``.
    """

    def __init__(self, message: str, *, function: str = "", direction: str = "") -> None:
        self.function = function
        self.direction = direction
        super().__init__(message)


class JobFailedError(GearmanError):
    """A job ended with WORK_FAIL."""


class JobExceptionError(GearmanError):
    """A job ended with WORK_EXCEPTION; ``data`` contains the decoded exception data."""

    def __init__(self, data: object, handle: str = "") -> None:
        self.data = data
        self.handle = handle
        super().__init__(f"job {handle} raised: {data!r}" if handle else repr(data))


class JobAbandoned(gevent.GreenletExit):  # type: ignore[misc]
    """Raised inside a running handler whose connection to the job server was lost.

    The job server has already put the job back in its queue, so any result this
    handler produced would be discarded. It derives from GreenletExit because it
    is a cancellation, not an error.
    """
