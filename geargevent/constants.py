"""Constants under python-gearman 2.x's module name, so its imports keep working.

``from gearman.constants import PRIORITY_HIGH, JOB_COMPLETE`` becomes
``from geargevent.constants import ...`` with the same names and values.
"""

from __future__ import annotations

from geargevent.client import (
    JOB_COMPLETE,
    JOB_CREATED,
    JOB_FAILED,
    JOB_PENDING,
    JOB_UNKNOWN,
    PRIORITY_HIGH,
    PRIORITY_LOW,
    PRIORITY_NONE,
)
from geargevent.connection import DEFAULT_PORT

__all__ = [
    "DEFAULT_GEARMAN_PORT",
    "JOB_COMPLETE",
    "JOB_CREATED",
    "JOB_FAILED",
    "JOB_PENDING",
    "JOB_UNKNOWN",
    "PRIORITY_HIGH",
    "PRIORITY_LOW",
    "PRIORITY_NONE",
]

DEFAULT_GEARMAN_PORT = DEFAULT_PORT
