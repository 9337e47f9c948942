"""The component's exports, for componentize-py. Imported only inside a component build: the
``wit_world`` bindings exist only there.

``python -m mr_sdk build`` generates a two-line app module that calls :func:`exports` with the
job's target and assigns the classes componentize-py looks for (``Metadata``, ``Mapper`` and, in
the ``mapreduce-job`` world, ``Combiner`` and ``Reducer``).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from componentize_py_types import Err  # type: ignore[import-not-found]
from wit_world import exports as wit_exports  # type: ignore[import-not-found]
from wit_world.exports import param_types as wit_param_types  # type: ignore[import-not-found]
from wit_world.imports import context, types  # type: ignore[import-not-found]

from . import _context, _glue
from ._context import Task
from ._job import LoadedJob, load_job

_LEVELS = {
    "trace": types.LogLevel.TRACE,
    "debug": types.LogLevel.DEBUG,
    "info": types.LogLevel.INFO,
    "warn": types.LogLevel.WARN,
    "error": types.LogLevel.ERROR,
}


class _HostBackend:
    """Context calls go to the host's ``mr:job/context`` imports."""

    def counter_add(self, name: str, delta: int) -> None:
        context.counter_add(name, delta)

    def log(self, level: str, message: str) -> None:
        context.log(_LEVELS[level], message)

    def param(self, name: str) -> Optional[str]:
        return context.param(name)

    def task(self) -> Task:
        t = context.task()
        return Task(t.job, t.phase, t.shard, t.slice, t.attempt)


def _call(fn: Callable[..., bytes], *args: Any) -> bytes:
    """Runs a batch loop; a failure becomes the WIT ``job-error``. The job's counter increments
    of this batch go out with this call, whether it succeeded or not."""
    try:
        return fn(*args)
    except _glue.Failure as f:
        raise Err(types.JobError(f.message, f.record_index)) from None
    except Exception as e:  # an SDK bug: still report it in words, not as a trap
        failure = _glue._failure(e, None, "mr_sdk internal error: ")
        raise Err(types.JobError(failure.message, None)) from None
    finally:
        _context.flush_counters()


def _job_info(job: LoadedJob) -> Any:
    phases = types.Phases.MAP
    if job.has_reduce:
        phases |= types.Phases.REDUCE
    if job.has_combine:
        phases |= types.Phases.COMBINE
    info = job.info
    params = [types.ParamInfo(p.name, p.description, p.default, p.required) for p in info.params]
    return types.JobInfo(info.name, info.version, info.description, phases, params)


def _param_types(job: LoadedJob) -> list[Any]:
    """The ``param-types`` export's answer: every parameter that is not a string."""
    t = wit_param_types
    kinds = {
        "integer": t.ParamType_Integer,
        "float": t.ParamType_Float,
        "bool": t.ParamType_Bool,
    }
    typed = []
    for p in job.info.params:
        if p.type == "enum":
            typed.append(t.ParamTypeInfo(p.name, t.ParamType_Enum(list(p.choices))))
        elif p.type in kinds:
            typed.append(t.ParamTypeInfo(p.name, kinds[p.type]()))
    return typed


def exports(target: str, world: str, project_dir: str = "") -> tuple[type, ...]:
    """The export classes for ``world``, serving the job found at ``target``. ``project_dir`` is
    where componentize-py placed the project's files (``/1/``): tracebacks show paths relative
    to the project instead."""
    _context.backend = _HostBackend()
    if project_dir:
        _glue.display_path = lambda f: f[len(project_dir) :] if f.startswith(project_dir) else f
    job = load_job(target)
    if job.world != world:
        raise TypeError(f"job {target} belongs in world {job.world}, not {world}")
    info = _job_info(job)

    typed = _param_types(job)

    class Metadata(wit_exports.Metadata):  # type: ignore[misc]
        def describe(self) -> Any:
            return info

    class ParamTypes(wit_exports.ParamTypes):  # type: ignore[misc]
        def param_types(self) -> Any:
            return typed

    if world == "mapper-job":

        class Mapper(wit_exports.Mapper):  # type: ignore[misc]
            def map(self, input: bytes) -> bytes:
                return _call(_glue.map_batch, job, input)

        return Metadata, ParamTypes, Mapper

    map_fn = _glue.map_and_combine if job.has_combine else _glue.map_batch

    class MapReduceMapper(wit_exports.Mapper):  # type: ignore[misc]
        def map(self, input: bytes) -> bytes:
            return _call(map_fn, job, input)

    class Combiner(wit_exports.Combiner):  # type: ignore[misc]
        def combine(self, groups: bytes) -> bytes:
            if not job.has_combine:
                message = "this job declares no combiner; the host must not call combine"
                raise Err(types.JobError(message, None))
            return _call(_glue.combine_batch, job, groups)

    class Reducer(wit_exports.Reducer):  # type: ignore[misc]
        def reduce(self, groups: bytes, rest: Any) -> bytes:
            return _call(_glue.reduce_batch, job, groups, rest)

    return Metadata, ParamTypes, MapReduceMapper, Combiner, Reducer
