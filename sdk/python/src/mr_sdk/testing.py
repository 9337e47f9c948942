"""Run a job's functions natively in CPython, without wasm, for fast unit tests with inline data.

:class:`Harness` runs the same map / combine / reduce loops as the component, over the same flat
encoding, with the host's grouping rules: groups in key-byte order, values in input order. It
streams every group's values beyond the first through a stand-in for the host's value stream, so
the large-group path is exercised too. Counters, parameters and logs work as under ``mr-host``::

    from mr_sdk.testing import Harness
    import wordcount

    out = Harness().run_mapreduce_combined(wordcount, ["a b", "b"])
    assert out.lines() == ["a\\t1", "b\\t2"]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional

from . import _codec, _context, _glue
from ._context import Task
from ._job import JobTarget, LoadedJob, load_job


class JobFailed(Exception):
    """The job failed: its message (with the traceback) and, for map, the record's index."""

    def __init__(self, message: str, record_index: Optional[int]) -> None:
        super().__init__(message)
        self.message = message
        self.record_index = record_index


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
    """Runs jobs natively. ``params`` are the job's ``--param`` values (declared defaults are
    filled in as the host does)."""

    def __init__(self, params: Optional[Mapping[str, str]] = None) -> None:
        self.params = dict(params or {})

    def run_map(self, job: JobTarget, lines: Iterable[str]) -> Output:
        """Runs only the map phase over text lines (keys ``input:1``, ``input:2``, …)."""
        return self._run(job, lambda j, out: self._map(j, lines, out))

    def run_mapreduce(self, job: JobTarget, lines: Iterable[str]) -> Output:
        """Runs map, then reduce over the groups (no combiner)."""

        def run(j: LoadedJob, out: Output) -> None:
            self._reduce(j, _group(self._map(j, lines, out)), out)

        return self._run(job, run)

    def run_mapreduce_combined(self, job: JobTarget, lines: Iterable[str]) -> Output:
        """Runs map with the in-batch combine the component uses, the combiner again over each
        line's output as the host would on a spill (every record its own batch, the harshest
        split), then reduce."""

        def run(j: LoadedJob, out: Output) -> None:
            if not j.has_combine:
                raise TypeError("run_mapreduce_combined needs a job with combine()")
            pairs: list[tuple[bytes, bytes]] = []
            for i, line in enumerate(lines):
                mapped = _glue.map_and_combine(j, _input_batch([line], first=i + 1))
                groups = _group(list(_codec.kvs(mapped)))
                batch = bytearray()
                for key, vals in groups:
                    _codec.put_group(batch, key, vals)
                combined = _glue.combine_batch(j, bytes(batch))
                for (key, _), vals in zip(groups, _codec.counted_values(combined)):
                    pairs.extend((key, v) for v in vals)
            self._reduce(j, _group(pairs), out)

        return self._run(job, run)

    def run_reduce(self, job: JobTarget, groups: Mapping[str, Iterable[str]]) -> Output:
        """Runs only reduce, over the given groups (sorted by key as the host does)."""
        pairs = [(k.encode(), v.encode()) for k, vs in groups.items() for v in vs]
        return self._run(job, lambda j, out: self._reduce(j, _group(pairs), out))

    def _run(self, job: JobTarget, run) -> Output:  # type: ignore[no-untyped-def]
        loaded = load_job(job)
        params = {p.name: p.default for p in loaded.info.params if p.default is not None}
        params.update(self.params)
        output = Output()
        previous = _context.backend
        _context.discard_counters()
        _context.backend = _NativeBackend(params, output)
        try:
            run(loaded, output)
        except _glue.Failure as f:
            raise JobFailed(f.message, f.record_index) from None
        finally:
            _context.flush_counters()
            _context.backend = previous
        return output

    def _map(self, job: LoadedJob, lines: Iterable[str], out: Output) -> list[tuple[bytes, bytes]]:
        mapped = _glue.map_batch(job, _input_batch(lines))
        pairs = list(_codec.kvs(mapped))
        if not job.has_reduce:
            out.records.extend(pairs)
        return pairs

    def _reduce(self, job: LoadedJob, groups: list[tuple[bytes, list[bytes]]], out: Output) -> None:
        # One group per call, its first value in the batch and the rest through the stream:
        # every reducer sees the same lazy value path as a hot key under mr-host.
        for key, vals in groups:
            batch = bytearray()
            _codec.put_group(batch, key, vals[:1], more=len(vals) > 1)
            reduced = _glue.reduce_batch(job, bytes(batch), _Stream(vals[1:], out))
            out.records.extend(_codec.kvs(reduced))


def _input_batch(lines: Iterable[str], first: int = 1) -> bytes:
    batch = bytearray()
    for i, line in enumerate(lines, start=first):
        _codec.put_kv(batch, f"input:{i}".encode(), line.encode("utf-8", "surrogateescape"))
    return bytes(batch)


def _group(pairs: list[tuple[bytes, bytes]]) -> list[tuple[bytes, list[bytes]]]:
    """Groups pairs by key in key-byte order, each key's values in input order."""
    groups: dict[bytes, list[bytes]] = {}
    for k, v in pairs:
        groups.setdefault(k, []).append(v)
    return sorted(groups.items())
