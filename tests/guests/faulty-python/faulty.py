"""Test fixture, a class-style job. Counts lines per first word, and misbehaves on purpose:

- a line containing the ``fail-on`` parameter's value raises an exception (two frames deep, so
  the traceback has something to show);
- reduce raises when the ``fail-reduce`` parameter is ``yes``.

Every line bumps the ``lines-seen`` counter and every reduce call logs once.
"""

import mr_sdk as mr


class Faulty(mr.Job):
    info = mr.JobInfo(
        "faulty-python",
        "0.0.1",
        description="Counts lines by first word; fails on purpose on marked lines.",
        params=[
            mr.Param("fail-on", "Raise an exception on a line containing this text"),
            mr.Param("fail-reduce", "Fail every reduce call when `yes`", default="no", type="enum", choices=("yes", "no")),
        ],
    )

    def __init__(self):
        # Read once per worker: the instance is created on the first call, inside the task.
        self.fail_on = mr.param("fail-on")

    def map(self, record, emit):
        line = record.value
        if self.fail_on and self.fail_on in line:
            refuse(line, self.fail_on)
        mr.counter("lines-seen")
        words = line.split()
        emit(words[0] if words else "", 1)

    def reduce(self, key, values, emit):
        if mr.param("fail-reduce") == "yes":
            raise RuntimeError(f"reduce refused key {key!r} on purpose")
        mr.log.debug(f"reducing in partition {mr.task().shard}")
        emit(key, sum(1 for _ in values))


def refuse(line, marker):
    raise ValueError(f"refusing the line with marker {marker!r}")
