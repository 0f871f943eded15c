"""Gearman workers on gevent, with python-gearman 2.x's worker API.

Importing geargevent does not monkey-patch anything: patching is the
application's choice, made with ``gevent.monkey.patch_all()`` before its other
imports.
"""

from geargevent.admin import GearmanAdminClient
from geargevent.client import (
    JOB_COMPLETE,
    JOB_CREATED,
    JOB_FAILED,
    JOB_PENDING,
    JOB_UNKNOWN,
    PRIORITY_HIGH,
    PRIORITY_LOW,
    PRIORITY_NONE,
    GearmanClient,
    GearmanJobRequest,
)
from geargevent.encoders import DataEncoder, JSONDataEncoder, MsgpackDataEncoder
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
    ServerUnavailable,
    ServerUnavailableError,
)
from geargevent.job import GearmanJob
from geargevent.worker import GearmanWorker

__version__ = "0.1.0"

__all__ = [
    "JOB_COMPLETE",
    "JOB_CREATED",
    "JOB_FAILED",
    "JOB_PENDING",
    "JOB_UNKNOWN",
    "PRIORITY_HIGH",
    "PRIORITY_LOW",
    "PRIORITY_NONE",
    "ConnectionLostError",
    "DataEncoder",
    "EncodingError",
    "GearmanAdminClient",
    "GearmanClient",
    "GearmanConnectionError",
    "GearmanError",
    "GearmanJob",
    "GearmanJobRequest",
    "GearmanTimeoutError",
    "GearmanWorker",
    "JSONDataEncoder",
    "JobAbandoned",
    "JobExceptionError",
    "JobFailedError",
    "LocalProtocolError",
    "MsgpackDataEncoder",
    "ProtocolError",
    "RemoteProtocolError",
    "ServerError",
    "ServerUnavailable",
    "ServerUnavailableError",
]
