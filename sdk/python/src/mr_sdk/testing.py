"""Run a job's functions natively in CPython, without wasm, for fast unit tests with inline data
or real files.

:class:`Harness` runs the same map / combine / reduce loops as the component, over the same flat
encoding, with the host's rules: parameters checked against the job's declarations and defaults
filled in, groups in key-byte order, values in input order, lines of files keyed ``path:line``.
It streams every group's values beyond the first through a stand-in for the host's value
stream, so the large-group path is exercised too. Counters, parameters and logs work as under
``mr-host``::

    from mr_sdk.testing import Harness
    import wordcount

    out = Harness().run_mapreduce_combined(wordcount, ["a b", "b"])
    assert out.lines() == ["a\\t1", "b\\t2"]
    out = Harness().run_files(wordcount, ["data.txt"])   # as `mr-host run --reducers 1` would

``python -m mr_sdk run job.py -i data.txt`` does the same from the command line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Optional, Sequence, Union

from . import _codec, _context, _glue
from ._context import Task
from ._job import JobTarget, LoadedJob, load_job


#: Input bytes per map call in :meth:`Harness.run_files`, as ``mr-host run``'s default
#: ``--batch-size``.
FILE_BATCH_BYTES = 4 << 20

Records = list[tuple[bytes, bytes]]


class JobFailed(Exception):
    """The job failed (or the harness refused a parameter): its message (with the
    traceback) and, for map, the failing record's index among all records of the run
    (``record_index``, 0-based) and its key as ``mr-host`` names it (``record``: ``input:N`` for
    inline lines, ``path:line`` for files)."""

    def __init__(self, message: str, record_index: Optional[int], record: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.record_index = record_index
        self.record = record


@dataclass
class Output:
    """What a native run produced."""

    #: Output pairs in output order, as raw bytes.
    records: list[tuple[bytes, bytes]] = field(default_factory=list)
    #: Job counters the job incremented.
    counters: dict[str, int] = field(default_factory=dict)
    #: Log messages as ``(level, message)``.
    logs: list[tuple[str, str]] = field(default_factory=list)
    #: Value-stream batches the reducer pulled (large groups stream; see the module docs).
    stream_pulls: int = 0

    def lines(self) -> list[str]:
        """The records formatted as ``mr-host`` writes them: ``key<TAB>value``, or just
        ``value`` when the key is empty."""
        out = []
        for k, v in self.records:
            key, value = k.decode("utf-8", "replace"), v.decode("utf-8", "replace")
            out.append(f"{key}\t{value}" if key else value)
        return out


class _NativeBackend:
    def __init__(self, params: Mapping[str, str], output: Output) -> None:
        self.params = dict(params)
        self.output = output

    def counter_add(self, name: str, delta: int) -> None:
        self.output.counters[name] = self.output.counters.get(name, 0) + delta

    def log(self, level: str, message: str) -> None:
        self.output.logs.append((level, message))

    def param(self, name: str) -> Optional[str]:
        return self.params.get(name)

    def task(self) -> Task:
        return Task("native-test", "test", 0, 0, 1)


class _Stream:
    """Stands in for the host's value stream: hands out a group's remaining values a few at a
    time and counts the pulls."""

    def __init__(self, values: list[bytes], output: Output, per_pull: int = 2) -> None:
        self.values = values
        self.output = output
        self.per_pull = per_pull

    def next_batch(self, max_bytes: int) -> bytes:
        batch = bytearray()
        taken = self.values[: self.per_pull]
        del self.values[: self.per_pull]
        for v in taken:
            _codec.put_value(batch, v)
        if taken:
            self.output.stream_pulls += 1
        return bytes(batch)


class Harness:
    """Runs jobs natively. ``params`` are the job's ``--param`` values, checked against its
    declarations with declared defaults filled in, as the host does."""

    def __init__(self, params: Optional[Mapping[str, str]] = None) -> None:
        self.params = dict(params or {})

    def run_map(self, job: JobTarget, lines: Iterable[str]) -> Output:
        """Runs only the map phase over text lines (keys ``input:1``, ``input:2``, …), as one
        batch."""
        records = _inline_records(lines)
        return self._run(job, records, lambda j, out: self._map(j, records, out))

    def run_mapreduce(self, job: JobTarget, lines: Iterable[str]) -> Output:
        """Runs map, then reduce over the groups (no combiner)."""
        records = _inline_records(lines)

        def run(j: LoadedJob, out: Output) -> None:
            self._reduce(j, _group(self._map(j, records, out)), out)

        return self._run(job, records, run)

    def run_mapreduce_combined(self, job: JobTarget, lines: Iterable[str]) -> Output:
        """Runs map with the in-batch combine the component uses, the combiner again over each
        line's output as the host would on a spill (every record its own batch, the harshest
        split), then reduce."""
        records = _inline_records(lines)
        return self._run(job, records, lambda j, out: self._combined(j, records, 0, out))

    def run_reduce(self, job: JobTarget, groups: Mapping[str, Iterable[str]]) -> Output:
        """Runs only reduce, over the given groups (sorted by key as the host does)."""
        pairs = [(k.encode(), v.encode()) for k, vs in groups.items() for v in vs]
        return self._run(job, [], lambda j, out: self._reduce(j, _group(pairs), out))

    def run_files(self, job: JobTarget, paths: Sequence[Union[str, "os.PathLike[str]"]]) -> Output:
        """Reads text files (or directories, recursively, hidden files skipped) as ``mr-host run
        --input`` does, one record per line keyed ``path:line``, and runs the job's phases over
        them as its component would: map in 4 MiB batches (with the in-batch combine and the
        combiner again over each batch's output when the job has ``combine``), then reduce.
        The records are what ``mr-host run --reducers 1`` writes: sorted by key (in input order
        for a map-only job). Gzip, zip, JSONL and CSV inputs are read as plain lines."""
        records = read_line_records(paths)  # an unreadable file raises its OSError

        def run(j: LoadedJob, out: Output) -> None:
            if not j.has_reduce:
                self._map(j, records, out)
            elif j.has_combine:
                self._combined(j, records, FILE_BATCH_BYTES, out)
            else:
                self._reduce(j, _group(self._map(j, records, out)), out)

        return self._run(job, records, run)

    def _run(self, job: JobTarget, records: Records, run: Callable[[LoadedJob, Output], None]) -> Output:
        loaded = load_job(job)
        params = _resolve_params(loaded, self.params)
        output = Output()
        previous = _context.backend
        _context.discard_counters()
        _context.backend = _NativeBackend(params, output)
        try:
            run(loaded, output)
        except _glue.Failure as f:
            index = f.record_index
            record = _glue._decode(records[index][0]) if index is not None and index < len(records) else None
            raise JobFailed(f.message, index, record) from None
        finally:
            _context.flush_counters()
            _context.backend = previous
        return output

    def _map(self, job: LoadedJob, records: Records, out: Output) -> Records:
        mapped = _glue.map_batch(job, _kv_batch(records))
        pairs = list(_codec.kvs(mapped))
        if not job.has_reduce:
            out.records.extend(pairs)
        return pairs

    def _combined(self, job: LoadedJob, records: Records, batch_bytes: int, out: Output) -> None:
        """Map with the in-batch combine per batch of about ``batch_bytes`` (0: one record per
        batch), the combiner again over each batch's output (as on a spill), then reduce."""
        if not job.has_combine:
            raise TypeError("run_mapreduce_combined needs a job with combine()")
        pairs: Records = []
        for first, batch in _batches(records, batch_bytes):
            try:
                mapped = _glue.map_and_combine(job, _kv_batch(batch))
            except _glue.Failure as f:
                # The component reports the index within its batch; the host (and this harness)
                # turn it into the record's place in the whole input.
                if f.record_index is not None:
                    f.record_index += first
                raise
            groups = _group(list(_codec.kvs(mapped)))
            grouped = bytearray()
            for key, vals in groups:
                _codec.put_group(grouped, key, vals)
            combined = _glue.combine_batch(job, bytes(grouped))
            for (key, _), vals in zip(groups, _codec.counted_values(combined)):
                pairs.extend((key, v) for v in vals)
        self._reduce(job, _group(pairs), out)

    def _reduce(self, job: LoadedJob, groups: list[tuple[bytes, list[bytes]]], out: Output) -> None:
        # One group per call, its first value in the batch and the rest through the stream:
        # every reducer sees the same lazy value path as a hot key under mr-host.
        for key, vals in groups:
            batch = bytearray()
            _codec.put_group(batch, key, vals[:1], more=len(vals) > 1)
            reduced = _glue.reduce_batch(job, bytes(batch), _Stream(vals[1:], out))
            out.records.extend(_codec.kvs(reduced))


def _resolve_params(job: LoadedJob, given: Mapping[str, str]) -> dict[str, str]:
    """The parameters the job sees, with the host's checks and messages."""
    info = job.info
    names = [p.name for p in info.params]
    for name in given:
        if name not in names:
            declared = f"it declares: {', '.join(names)}" if names else "it declares no parameters"
            raise JobFailed(f"job `{info.name}` has no parameter `{name}`; {declared}", None)
    params = {}
    for p in info.params:
        value = given.get(p.name, p.default)
        if value is not None:
            try:
                p.check(value)
            except ValueError as e:
                raise JobFailed(f"parameter `{p.name}` of job `{info.name}` {e} (--param {p.name}=VALUE)", None) from None
            params[p.name] = value
        elif p.required:
            raise JobFailed(
                f"job `{info.name}` requires parameter `{p.name}` ({p.description}); "
                f"pass --param {p.name}=VALUE",
                None,
            )
    return params


def read_line_records(paths: Sequence[Union[str, "os.PathLike[str]"]]) -> Records:
    """The lines of text files as ``(key, value)`` records, keyed ``path:line`` (1-based) as
    ``mr-host run`` keys them: the path as given (joined with the file's path inside a given
    directory), lines without ``\\n`` or ``\\r\\n``, a last line without a newline included."""
    files: list[str] = []
    for path in paths:
        path = os.fspath(path)
        matched = sorted(_walk(path)) if os.path.isdir(path) else [path]
        files.extend(f for f in matched if f not in files)
    records: Records = []
    for file in files:
        data = Path(file).read_bytes()
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        for i, line in enumerate(lines, start=1):
            if line.endswith(b"\r"):
                line = line[:-1]
            records.append((f"{file}:{i}".encode("utf-8", "surrogateescape"), line))
    return records


def _walk(directory: str) -> Iterable[str]:
    for entry in os.scandir(directory):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            yield from _walk(entry.path)
        elif entry.is_file():
            yield entry.path


def _inline_records(lines: Iterable[str]) -> Records:
    return [
        (f"input:{i}".encode(), line.encode("utf-8", "surrogateescape"))
        for i, line in enumerate(lines, start=1)
    ]


def _kv_batch(records: Records) -> bytes:
    batch = bytearray()
    for key, value in records:
        _codec.put_kv(batch, key, value)
    return bytes(batch)


def _batches(records: Records, max_bytes: int) -> Iterable[tuple[int, Records]]:
    """Consecutive runs of records of about ``max_bytes`` of values each (at least one record
    per batch; 0 puts every record in its own), with the index of each run's first record."""
    start, size = 0, 0
    for i, (_, value) in enumerate(records):
        if i > start and size + len(value) > max_bytes:
            yield start, records[start:i]
            start, size = i, 0
        size += len(value) + 1
    if start < len(records):
        yield start, records[start:]


def _group(pairs: list[tuple[bytes, bytes]]) -> list[tuple[bytes, list[bytes]]]:
    """Groups pairs by key in key-byte order, each key's values in input order."""
    groups: dict[bytes, list[bytes]] = {}
    for k, v in pairs:
        groups.setdefault(k, []).append(v)
    return sorted(groups.items())
