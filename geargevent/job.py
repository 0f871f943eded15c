"""The job object handed to worker handlers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import greenlet

    from geargevent.worker import WorkerConnection

__all__ = ["GearmanJob"]


class GearmanJob:
    """One job assigned to this worker.

    Attributes:
        handle: the job handle the server assigned, as str (``"H:host:42"``).
        task: the Gearman function name, as str (python-gearman's name for it).
        function: the same name as bytes, exactly as it went on the wire.
        unique: the unique id the client sent, as str (empty if none was sent).
        data: the job data, decoded with the function's data encoder.
        raw_data: the job data exactly as received.
        connection: the connection that assigned the job.
        connection_lost: True once that connection has dropped. The server has
            then put the job back in its queue, and nothing this job sends is
            delivered.
        answered: True once a WORK_COMPLETE, WORK_FAIL or WORK_EXCEPTION was sent.
    """

    __slots__ = (
        "_function_spec",
        "answered",
        "connection",
        "connection_lost",
        "data",
        "function",
        "generation",
        "greenlet",
        "handle",
        "handle_bytes",
        "raw_data",
        "unique",
    )

    def __init__(
        self,
        connection: WorkerConnection,
        generation: int,
        handle: bytes,
        function: bytes,
        unique: bytes,
        raw_data: bytes,
    ) -> None:
        self.connection = connection
        self.generation = generation
        self.handle_bytes = handle
        self.handle = handle.decode("utf-8", "surrogateescape")
        self.function = function
        self.unique = unique.decode("utf-8", "surrogateescape")
        self.raw_data = raw_data
        self.data: Any = raw_data
        self.connection_lost = False
        self.answered = False
        self.greenlet: greenlet.greenlet | None = None
        self._function_spec: Any = None

    @property
    def task(self) -> str:
        """The Gearman function name as str."""
        return self.function.decode("utf-8", "surrogateescape")

    def __repr__(self) -> str:
        return f"<GearmanJob {self.handle} function={self.task!r} unique={self.unique!r}>"
