"""Small jobs the SDK tests run."""

import mr_sdk as mr

INFO = mr.JobInfo(
    "sample",
    "1.2.3",
    params=[mr.Param("suffix", "appended to every key", default="!"), mr.Param("fail-on")],
)


def map(record, emit):
    if mr.param("fail-on") and mr.param("fail-on") in record.value:
        explode(record.value)
    mr.counter("records")
    mr.counter("chars", len(record.value))
    for word in record.value.split():
        emit(word + mr.param("suffix"), 1)


def combine(key, values, emit):
    emit(sum(int(v) for v in values))


def reduce(key, values, emit):
    mr.log.info(f"reducing {key}")
    emit(key, sum(int(v) for v in values))


def explode(line):
    raise ValueError(f"cannot take {line!r}")


class Lengths(mr.Job):
    """Line lengths, map only.

    A second paragraph that is not part of the description.
    """

    created = 0

    def __init__(self):
        Lengths.created += 1

    def map(self, record, emit):
        emit("", len(record.value_bytes))
