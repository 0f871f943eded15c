"""Tests of the exception tree: base classes, attributes and messages."""

from __future__ import annotations

import gevent
import gevent.event
import pytest

import geargevent
from geargevent import errors
from geargevent.errors import (
    ConnectionLostError,
    EncodingError,
    GearmanConnectionError,
    GearmanError,
    GearmanTimeoutError,
    JobAbandoned,
    JobExceptionError,
    JobFailedError,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
    ServerError,
    ServerUnavailableError,
)


def test_gearman_error_is_abstract() -> None:
    with pytest.raises(TypeError, match="base class"):
        GearmanError("x")
    with pytest.raises(TypeError, match="base class"):
        GearmanError()


def test_protocol_error_is_abstract() -> None:
    with pytest.raises(TypeError, match="LocalProtocolError or RemoteProtocolError"):
        ProtocolError("x")


@pytest.mark.parametrize(
    ("error_class", "parent"),
    [
        (ProtocolError, GearmanError),
        (LocalProtocolError, ProtocolError),
        (RemoteProtocolError, ProtocolError),
        (ServerError, GearmanError),
        (GearmanConnectionError, GearmanError),
        (ServerUnavailableError, GearmanConnectionError),
        (ConnectionLostError, GearmanConnectionError),
        (GearmanTimeoutError, GearmanError),
        (EncodingError, GearmanError),
        (EncodingError, ValueError),
        (JobFailedError, GearmanError),
        (JobExceptionError, GearmanError),
    ],
    ids=lambda value: value.__name__,
)
def test_error_tree(error_class: type[BaseException], parent: type[BaseException]) -> None:
    assert issubclass(error_class, parent)


@pytest.mark.parametrize(
    "error_class",
    [
        LocalProtocolError,
        RemoteProtocolError,
        GearmanConnectionError,
        ServerUnavailableError,
        ConnectionLostError,
        GearmanTimeoutError,
            JobFailedError,
    ],
    ids=lambda value: value.__name__,
)
def test_subclasses_instantiate(error_class: type[GearmanError]) -> None:
    error = error_class("what went wrong")

    assert str(error) == "what went wrong"
    assert isinstance(error, GearmanError)
    with pytest.raises(error_class):
        raise error


def test_subclass_of_subclass_instantiates() -> None:
    class AppError(RemoteProtocolError):
        pass

    error = AppError("custom")

    assert str(error) == "custom"
    assert isinstance(error, ProtocolError)


def test_catching_base_catches_all() -> None:
    with pytest.raises(GearmanError):
        raise ServerUnavailableError("down")
    with pytest.raises(ProtocolError):
        raise LocalProtocolError("bad argument")


def test_drop_connection_flags() -> None:
    assert RemoteProtocolError("bad magic").drop_connection is True
    assert LocalProtocolError("NUL in name").drop_connection is False
    assert ProtocolError.drop_connection is True


def test_server_error_attributes() -> None:
    error = ServerError("JOB_NOT_FOUND", "Job given in work result not found", "127.0.0.1:4730")

    assert error.code == "JOB_NOT_FOUND"
    assert error.text == "Job given in work result not found"
    assert error.server == "127.0.0.1:4730"
    assert str(error) == (
        "job server 127.0.0.1:4730 returned an error: "
        "JOB_NOT_FOUND: Job given in work result not found"
    )


def test_server_error_message_parts_optional() -> None:
    assert str(ServerError("not_worker")) == "job server returned an error: not_worker"
    assert ServerError("not_worker").text == ""
    assert ServerError("not_worker").server == ""
    assert str(ServerError("", "")) == "job server returned an error: no details"
    assert "QUEUE_ERROR" in str(ServerError("QUEUE_ERROR", server="h:1"))


def test_encoding_error_attributes() -> None:
    error = EncodingError("cannot encode", function="reverse", direction="encode")

    assert str(error) == "cannot encode"
    assert error.function == "reverse"
    assert error.direction == "encode"
    with pytest.raises(ValueError):
        raise error


def test_encoding_error_defaults() -> None:
    error = EncodingError("cannot decode")

    assert error.function == ""
    assert error.direction == ""


def test_job_exception_error_message() -> None:
    error = JobExceptionError("ValueError: boom", handle="H:vm:3")

    assert error.data == "ValueError: boom"
    assert error.handle == "H:vm:3"
    assert "H:vm:3" in str(error)
    assert "ValueError: boom" in str(error)
    assert str(JobExceptionError({"code": 1})) == "{'code': 1}"


def test_job_abandoned_is_greenlet_exit() -> None:
    assert issubclass(JobAbandoned, gevent.GreenletExit)
    # A cancellation, not an error: `except Exception` in a handler does not swallow it.
    assert not issubclass(JobAbandoned, Exception)


def test_job_abandoned_kills_greenlet_quietly() -> None:
    started = gevent.event.Event()

    def handler() -> None:
        started.set()
        gevent.sleep(10)

    greenlet = gevent.spawn(handler)
    started.wait(5)
    greenlet.kill(JobAbandoned, block=True, timeout=5)

    assert greenlet.dead
    assert greenlet.successful()
    assert isinstance(greenlet.value, JobAbandoned)


def test_every_listed_error_exported() -> None:
    for name in errors.__all__:
        error_class = getattr(errors, name)
        assert isinstance(error_class, type), name
        assert issubclass(error_class, BaseException), name
        assert getattr(geargevent, name) is error_class, name
