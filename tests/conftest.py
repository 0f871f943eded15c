"""Fixtures that apply to every test.

* Log records of the ``geargevent`` and ``tests`` loggers are captured at DEBUG, so a failing
  test shows the library's packet trace in its report.
* A test fails (with an error at teardown) if an exception reached the gevent hub while it
  ran, for example from a greenlet that died. Such an exception is otherwise only printed and
  the test would pass. A test that provokes these errors on purpose can mark itself with
  ``@pytest.mark.allow_hub_errors``, or inspect and clear the ``hub_errors`` list.

The gearmand fixtures come from the geargevent pytest plugin (``geargevent.testing``), which
pytest loads through the package's entry point once the package is installed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from types import TracebackType
from typing import NamedTuple

import gevent
import pytest


class HubError(NamedTuple):
    """An exception that gevent passed to ``Hub.handle_error``."""

    context: object
    exc_type: type[BaseException] | None
    value: BaseException | None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "allow_hub_errors: do not fail the test when exceptions reach the gevent hub",
    )


@pytest.fixture(autouse=True)
def _debug_logging(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="geargevent")
    caplog.set_level(logging.DEBUG, logger="tests")


@pytest.fixture(autouse=True)
def hub_errors(request: pytest.FixtureRequest) -> Iterator[list[HubError]]:
    """Record the exceptions that reach this thread's gevent hub during the test.

    gevent documents setting ``handle_error`` on the hub instance as the way to take over
    its error handling. The recorder still calls the original handler, so the traceback is
    printed as usual.
    """
    hub = gevent.get_hub()
    errors: list[HubError] = []
    original = hub.handle_error
    had_override = "handle_error" in vars(hub)

    def record(
        context: object,
        exc_type: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # The hub raises KeyboardInterrupt and SystemExit again in the main greenlet, so they
        # end the test by themselves. GreenletExit is how a greenlet is killed, not an error.
        ignored = (KeyboardInterrupt, SystemExit, *hub.NOT_ERROR)
        if exc_type is None or not issubclass(exc_type, ignored):
            errors.append(HubError(context, exc_type, value))
        original(context, exc_type, value, traceback)

    hub.handle_error = record
    try:
        yield errors
    finally:
        if had_override:
            hub.handle_error = original
        else:
            del hub.handle_error

    if errors and request.node.get_closest_marker("allow_hub_errors") is None:
        summary = "\n".join(f"  {error.value!r} in {error.context!r}" for error in errors)
        pytest.fail(f"{len(errors)} exception(s) reached the gevent hub:\n{summary}")
