"""Host services for job code: counters, parameters, logging and the current task.

Inside a component these call the host's ``mr:job/context`` imports (``_guest`` installs that
backend); under :class:`mr_sdk.testing.Harness` they read and write the harness's state. Job code
is the same in both places.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Protocol


@dataclass(frozen=True)
class Task:
    """The piece of work the current call belongs to."""

    job: str
    #: ``map``, ``combine`` or ``reduce``.
    phase: str
    #: Shard index (map) or partition index (reduce).
    shard: int
    slice: int
    #: Attempt number, from 1.
    attempt: int


class Backend(Protocol):
    """Where context calls go: the host's imports, or the native harness."""

    def counter_add(self, name: str, delta: int) -> None: ...

    def log(self, level: str, message: str) -> None: ...

    def param(self, name: str) -> Optional[str]: ...

    def task(self) -> Task: ...


class _Unbound:
    """The backend outside a job run: say how to run the job instead of failing obscurely."""

    def _fail(self, *_args: object) -> None:
        raise RuntimeError(
            "mr_sdk context used outside a job call: counters, params, logs and task() work "
            "inside map/combine/reduce (under mr-host or mr_sdk.testing.Harness), not at "
            "import time (a component imports the job module when it is built)"
        )

    counter_add = log = param = task = _fail  # type: ignore[assignment]


backend: Backend = _Unbound()  # type: ignore[assignment]

# Counter increments buffered during one host call and flushed once per counter per batch, so
# a counter bumped per record costs no boundary crossing per record.
_pending: dict[str, int] = {}


def counter(name: str, delta: int = 1) -> None:
    """Adds ``delta`` to the job counter ``name`` (summed over the whole job and reported at the
    end of the run as ``job.NAME``)."""
    _pending[name] = _pending.get(name, 0) + delta


def flush_counters() -> None:
    """Sends the buffered counter increments to the backend."""
    if not _pending:
        return
    pending = list(_pending.items())
    _pending.clear()
    for name, delta in pending:
        if delta:
            backend.counter_add(name, delta)


def discard_counters() -> None:
    """Forgets buffered increments (a new native run starts from zero)."""
    _pending.clear()


def param(name: str) -> Optional[str]:
    """The value of job parameter ``name`` (``--param name=value`` or its declared default), or
    ``None`` when it is not set."""
    return backend.param(name)


def task() -> Task:
    """The task the current call belongs to."""
    return backend.task()


class _Log:
    """``mr_sdk.log.info("...")`` and friends: messages for the host's log, tagged with the task.
    ``mr-host`` shows them with ``MR_LOG=debug`` (or the message's level)."""

    def write(self, level: str, message: object) -> None:
        if level not in ("trace", "debug", "info", "warn", "error"):
            raise ValueError(f"unknown log level {level!r}")
        backend.log(level, str(message))

    def trace(self, message: object) -> None:
        self.write("trace", message)

    def debug(self, message: object) -> None:
        self.write("debug", message)

    def info(self, message: object) -> None:
        self.write("info", message)

    def warn(self, message: object) -> None:
        self.write("warn", message)

    def error(self, message: object) -> None:
        self.write("error", message)


log = _Log()
