"""The loops between flat batches and a job's functions, shared by the component exports
(``_guest``) and the native harness (``testing``) so both run exactly the same code.

Every exception a job raises becomes a :class:`Failure` carrying the Python traceback (the SDK's
own frames removed) and, in map, the index of the record in the batch, which the host turns
into the record's ``file:line``.
"""

from __future__ import annotations

import traceback
from typing import Any, Callable, Iterable, Iterator, Optional, Protocol

from . import _codec
from ._job import LoadedJob

_pack = _codec.pack_u32
_unpack = _codec.unpack_u32

#: How many bytes of values to pull from the host's value stream per call.
STREAM_BATCH_BYTES = 256 * 1024


class Failure(Exception):
    """A failure to report to the host as a ``job-error``."""

    def __init__(self, message: str, record_index: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        self.record_index = record_index


class ValueSource(Protocol):
    """The host's ``value-stream`` (or the harness's stand-in for it)."""

    def next_batch(self, max_bytes: int) -> bytes: ...


def _encode(x: Any) -> bytes:
    """Output keys and values: ``str`` (UTF-8; lone surrogates from undecodable input bytes
    turn back into those bytes), ``bytes``-like, or ``int``."""
    t = type(x)
    if t is str:
        return x.encode("utf-8", "surrogateescape")
    if t is bytes:
        return x
    if t is int:
        return str(x).encode()
    if isinstance(x, (bytes, bytearray, memoryview)):
        return bytes(x)
    if isinstance(x, int) and not isinstance(x, bool):
        return str(int(x)).encode()
    raise TypeError(f"emit() takes str, bytes or int keys and values, not {t.__name__}")


def _decode(b: bytes) -> str:
    # surrogateescape: input that is not UTF-8 still round-trips byte for byte through str.
    return b.decode("utf-8", "surrogateescape")


class Record:
    """One input record: ``key`` is where it came from (``path:line`` for text input) and
    ``value`` is the record itself (a line without its terminator), both as ``str``;
    ``key_bytes`` / ``value_bytes`` are the raw bytes."""

    __slots__ = ("key_bytes", "value_bytes")

    def __init__(self, key_bytes: bytes, value_bytes: bytes) -> None:
        self.key_bytes = key_bytes
        self.value_bytes = value_bytes

    @property
    def key(self) -> str:
        return _decode(self.key_bytes)

    @property
    def value(self) -> str:
        return _decode(self.value_bytes)

    def __repr__(self) -> str:
        return f"Record(key={self.key!r}, value={self.value!r})"


class Values:
    """The values of one group, in input order, as ``str``: an iterator that pulls them from
    the batch and then, for a large group, from the host's value stream in batches, so a group
    never has to fit in memory. ``values.bytes()`` iterates the same values as raw ``bytes``."""

    __slots__ = ("_raw",)

    def __init__(self, raw: Iterator[bytes]) -> None:
        self._raw = raw

    def __iter__(self) -> "Values":
        return self

    def __next__(self) -> str:
        return _decode(next(self._raw))

    def bytes(self) -> Iterator[bytes]:
        """The remaining values as raw bytes (shares the position with this iterator)."""
        return self._raw


def _streamed(buf: bytes, pos: int, count: int, rest: Optional[ValueSource]) -> Iterator[bytes]:
    """The raw values of a group: ``count`` values at ``pos`` in the batch, then (when the group
    is flagged ``more``) the value batches pulled from ``rest`` until it returns an empty one."""
    for _ in range(count):
        (n,) = _unpack(buf, pos)
        pos += 4
        yield buf[pos : pos + n]
        pos += n
    if rest is None:
        return
    while True:
        batch = rest.next_batch(STREAM_BATCH_BYTES)
        if not batch:
            return
        yield from _codec.values(batch)


#: Inside a component, file names are as componentize-py mapped the Python path (``/1/job.py``);
#: ``_guest`` installs a function that shows them relative to the project again.
display_path: Callable[[str], str] = lambda filename: filename


def _failure(err: BaseException, record_index: Optional[int] = None, context: str = "") -> Failure:
    """The exception's type, message and traceback, without the SDK's own frames."""
    tb = traceback.TracebackException.from_exception(err)
    for exc in _chain(tb):
        frames = []
        for f in exc.stack:
            if not _is_sdk_frame(f.filename):
                f.filename = display_path(f.filename)
                frames.append(f)
        exc.stack = traceback.StackSummary.from_list(frames)
    text = "".join(tb.format()).rstrip()
    head = "".join(traceback.format_exception_only(type(err), err)).strip()
    return Failure(f"{context}{head}\n{text}", record_index)


def _chain(tb: traceback.TracebackException) -> Iterable[traceback.TracebackException]:
    seen = set()
    while tb is not None and id(tb) not in seen:
        seen.add(id(tb))
        yield tb
        tb = tb.__cause__ or tb.__context__  # type: ignore[assignment]


def _is_sdk_frame(filename: str) -> bool:
    return filename.replace("\\", "/").rpartition("/")[0].endswith("mr_sdk")


def _short(key: bytes) -> str:
    text = _decode(key)
    return repr(text if len(text) <= 80 else text[:77] + "...")


def map_batch(job: LoadedJob, batch: bytes) -> bytes:
    """Maps every record of a kv batch; returns the output kv batch."""
    out = bytearray()

    def emit(key: Any, value: Any) -> None:
        k = _encode(key)
        v = _encode(value)
        out.extend(_pack(len(k)) + k + _pack(len(v)) + v)

    _map_records(job, batch, emit)
    return bytes(out)


def _map_records(job: LoadedJob, batch: bytes, emit: Callable[[Any, Any], None]) -> None:
    map_fn = job.bound().map
    pos, end, index = 0, len(batch), 0
    try:
        while pos < end:
            key, pos = _codec.read_bytes(batch, pos, "a key")
            value, pos = _codec.read_bytes(batch, pos, "a value")
            map_fn(Record(key, value), emit)
            index += 1
    except _codec.MalformedBatch as e:
        raise Failure(f"the host sent a malformed map batch: {e}") from None
    except Exception as e:
        raise _failure(e, index) from None


def map_and_combine(job: LoadedJob, batch: bytes) -> bytes:
    """Maps a batch and runs the combiner over its output before returning it, so the host's
    shuffle sees one combined value per key per batch instead of every emitted pair (the
    contract allows a combiner on any subset of a key's values). The pairs are grouped in a
    dict as they are emitted: no flat group batch is built and parsed back."""
    grouped: dict[bytes, list[bytes]] = {}

    def emit(key: Any, value: Any) -> None:
        k = _encode(key)
        vals = grouped.get(k)
        if vals is None:
            grouped[k] = [_encode(value)]
        else:
            vals.append(_encode(value))

    _map_records(job, batch, emit)
    out = bytearray()
    combine_fn = job.bound().combine
    for key, vals in grouped.items():
        for v in _combine_group(combine_fn, key, iter(vals)):
            out += _pack(len(key))
            out += key
            out += _pack(len(v))
            out += v
    return bytes(out)


def _combine_group(combine_fn: Callable[..., Any], key: bytes, raw: Iterator[bytes]) -> list[bytes]:
    combined: list[bytes] = []

    def emit(value: Any) -> None:
        combined.append(_encode(value))

    try:
        combine_fn(_decode(key), Values(raw), emit)
    except Exception as e:
        raise _failure(e, None, f"in combine of key {_short(key)}: ") from None
    return combined


def combine_batch(job: LoadedJob, groups: bytes) -> bytes:
    """Combines every group of a group batch; returns ``u32 count`` + values per group."""
    combine_fn = job.bound().combine
    out = bytearray()
    pos = 0
    while pos < len(groups):
        try:
            key, count, _more, start, pos = _codec.group_header(groups, pos)
        except _codec.MalformedBatch as e:
            raise Failure(f"the host sent a malformed combine batch: {e}") from None
        combined = _combine_group(combine_fn, key, _streamed(groups, start, count, None))
        out += _pack(len(combined))
        for v in combined:
            out += _pack(len(v))
            out += v
    return bytes(out)


def reduce_batch(job: LoadedJob, groups: bytes, rest: ValueSource) -> bytes:
    """Reduces every group of a group batch; the last group's remaining values, when it is
    flagged ``more``, come from ``rest``."""
    reduce_fn = job.bound().reduce
    out = bytearray()

    def emit(key: Any, value: Any) -> None:
        k = _encode(key)
        v = _encode(value)
        out.extend(_pack(len(k)) + k + _pack(len(v)) + v)

    pos = 0
    while pos < len(groups):
        try:
            key, count, more, start, pos = _codec.group_header(groups, pos)
        except _codec.MalformedBatch as e:
            raise Failure(f"the host sent a malformed reduce batch: {e}") from None
        values = Values(_streamed(groups, start, count, rest if more else None))
        try:
            reduce_fn(_decode(key), values, emit)
        except _codec.MalformedBatch as e:
            raise Failure(f"the host sent a malformed value batch: {e}") from None
        except Exception as e:
            raise _failure(e, None, f"in reduce of key {_short(key)}: ") from None
    return bytes(out)
