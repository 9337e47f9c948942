"""What a job is: its metadata and its map / combine / reduce callables, found in a module of
plain functions or in a class.

A job module defines ``map(record, emit)``, optionally ``reduce(key, values, emit)`` and
``combine(key, values, emit)``, and optionally ``INFO = JobInfo(...)``. A job class (a subclass of
:class:`mr_sdk.Job`) defines the same names as methods and ``info`` as a class attribute; one
instance is created per worker on its first call and reused, so it may keep state.
"""

from __future__ import annotations

import importlib
import inspect
import re
import types
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, Union


@dataclass(frozen=True)
class Param:
    """A parameter the job declares; ``mr-host`` validates ``--param NAME=VALUE`` against these."""

    name: str
    description: str = ""
    #: Value used when the user passes none.
    default: Optional[str] = None
    #: The job refuses to run without it.
    required: bool = False
    #: What its values must look like: ``"string"`` (any text), ``"integer"``, ``"float"``,
    #: ``"bool"`` (``true``/``false``) or ``"enum"`` (one of ``choices``). Values still reach the
    #: job as text; ``mr-host`` refuses a value of the wrong type when the job is submitted.
    type: str = "string"
    #: The allowed words of an ``"enum"`` parameter.
    choices: Sequence[str] = ()

    def __post_init__(self) -> None:
        if self.type not in _PARAM_TYPES:
            raise ValueError(f"parameter {self.name!r}: type must be one of {', '.join(_PARAM_TYPES)}, not {self.type!r}")
        if (self.type == "enum") != bool(self.choices):
            raise ValueError(f"parameter {self.name!r}: choices go with type 'enum' (and an enum needs choices)")
        if self.default is not None:
            self.check(self.default)

    def check(self, value: str) -> None:
        """Raises ``ValueError`` when ``value`` is not of the parameter's type, in the host's
        words."""
        if self.type == "integer":
            ok = bool(_INTEGER.match(value)) and -(2**63) <= int(value) < 2**63
        elif self.type == "float":
            ok = bool(_FLOAT.match(value)) and float(value) not in (float("inf"), float("-inf"))
        elif self.type == "bool":
            ok = value in ("true", "false")
        elif self.type == "enum":
            ok = value in self.choices
        else:
            ok = True
        if not ok:
            raise ValueError(f"must be {self._expected()}, not {_rust_debug(value)}")

    def _expected(self) -> str:
        return {
            "integer": "an integer (e.g. 42 or -7)",
            "float": "a number (e.g. 0.25, 3 or 1e-3)",
            "bool": "true or false",
            "enum": "one of " + ", ".join(self.choices),
        }.get(self.type, "text")


_PARAM_TYPES = ("string", "integer", "float", "bool", "enum")
# What the host's parsers (Rust's i64 and f64) accept; Python's int() and float() also take
# underscores and surrounding spaces, which the host would refuse.
_INTEGER = re.compile(r"[+-]?[0-9]+\Z")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\Z")


def _rust_debug(value: str) -> str:
    """``value`` quoted as the host quotes it (Rust's ``{:?}``), for identical messages."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class JobInfo:
    """What ``mr-host inspect`` shows about a job."""

    name: str
    version: str = "0.1.0"
    description: str = ""
    params: Sequence[Param] = field(default_factory=tuple)


class Job:
    """Base class for class-style jobs. Override ``map`` and, for a full job, ``reduce`` and
    optionally ``combine``; set ``info`` to a :class:`JobInfo`."""

    info: Optional[JobInfo] = None


JobTarget = Union[str, types.ModuleType, type]


class LoadedJob:
    """A job in one normal form, whatever style it was written in."""

    def __init__(self, info: JobInfo, impl: Any, is_class: bool) -> None:
        self.info = info
        self.has_combine = callable(getattr(impl, "combine", None))
        self.has_reduce = callable(getattr(impl, "reduce", None))
        self._impl = impl
        self._is_class = is_class
        self._bound: Any = None

    @property
    def world(self) -> str:
        """The component world this job targets."""
        return "mapreduce-job" if self.has_reduce else "mapper-job"

    def bound(self) -> Any:
        """The object whose ``map`` / ``combine`` / ``reduce`` to call. A job class is
        instantiated on the first call, not at import: a component imports the job when it is
        built, and ``__init__`` may want the task's parameters."""
        if self._bound is None:
            self._bound = self._impl() if self._is_class else self._impl
        return self._bound


def _resolve(target: JobTarget) -> Any:
    """``"module"`` / ``"module:attr"`` → the object; modules and classes pass through."""
    if not isinstance(target, str):
        return target
    module_name, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"job {target!r}: module {module_name!r} has no {part!r}") from None
    return obj


def load_job(target: JobTarget) -> LoadedJob:
    """Finds the job's metadata and phases in a module, a :class:`Job` subclass (instantiated
    on the first call), any other object with the functions as attributes, or a
    ``"module[:attr]"`` string naming one of those."""
    obj = _resolve(target)
    if inspect.isclass(obj):
        info = getattr(obj, "info", None) or JobInfo(
            name=obj.__name__.lower(), description=_first_paragraph(obj.__doc__)
        )
        return _checked(obj.__name__, LoadedJob(info, obj, is_class=True))
    # A module, or any object with the functions as attributes (an instance, a namespace).
    name = getattr(obj, "__name__", type(obj).__name__)
    info = getattr(obj, "INFO", None) or JobInfo(
        name=name.rpartition(".")[2],
        description=_first_paragraph(obj.__doc__) if isinstance(obj, types.ModuleType) else "",
    )
    return _checked(name, LoadedJob(info, obj, is_class=False))


def _checked(name: str, job: LoadedJob) -> LoadedJob:
    if not isinstance(job.info, JobInfo):
        raise TypeError(
            f"job {name}: INFO/info must be an mr_sdk.JobInfo, not {type(job.info).__name__}"
        )
    if not callable(getattr(job._impl, "map", None)):
        raise TypeError(f"job {name} has no map(record, emit)")
    if job.has_combine and not job.has_reduce:
        raise TypeError(f"job {name} has combine() but no reduce(): a combiner needs a reducer")
    for p in job.info.params:
        if not isinstance(p, Param):
            raise TypeError(f"job {name}: params must be mr_sdk.Param values, not {p!r}")
    return job


def _first_paragraph(doc: Optional[str]) -> str:
    if not doc:
        return ""
    return " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())
