"""mr-sdk for Python: write MapReduce jobs for the mr host as plain Python functions.

A job is a module (or a :class:`Job` subclass) with ``map(record, emit)`` and, for a full
MapReduce job, ``reduce(key, values, emit)`` and optionally ``combine(key, values, emit)``::

    import re
    import mr_sdk as mr

    INFO = mr.JobInfo("wordcount", "0.1.0", description="Counts words.")
    WORD = re.compile(r"[A-Za-z0-9]+")

    def map(record, emit):
        for word in WORD.findall(record.value):
            emit(word.lower(), 1)

    def combine(key, values, emit):
        emit(sum(int(v) for v in values))

    def reduce(key, values, emit):
        emit(key, sum(int(v) for v in values))

``mr-host build DIR`` (or ``python -m mr_sdk build DIR``) compiles it to a WebAssembly component
with componentize-py; :class:`mr_sdk.testing.Harness` runs the same functions natively in
CPython for unit tests. The WIT bindings and the flat batch encoding never appear in job code.
"""

from ._context import Task, counter, log, param, task
from ._glue import Record, Values
from ._job import Job, JobInfo, Param, load_job

__all__ = [
    "Job",
    "JobInfo",
    "Param",
    "Record",
    "Task",
    "Values",
    "counter",
    "load_job",
    "log",
    "param",
    "task",
]

__version__ = "0.1.0"
