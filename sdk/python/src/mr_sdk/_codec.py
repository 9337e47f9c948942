"""The flat batch framing of ``wit/job.wit``, in pure Python.

Records cross the wasm boundary as one ``bytes`` buffer per call, never as a list of records:

- kv batch: ``u32 key-len, key, u32 value-len, value``, repeated;
- group batch: ``u32 key-len, key, u32 value-count, u8 flags, (u32 len, value) * count``, repeated;
  flag bit 0 (``more``) says the group's remaining values follow in the value stream;
- value batch: ``u32 len, value``, repeated (combiner output prefixes each group's values with a
  ``u32`` count).

All integers are little-endian. A malformed buffer raises :class:`MalformedBatch` naming the byte
offset, never a silent truncation. This mirrors ``mr-codec`` (``sdk/codec``), the Rust
implementation the host uses: the SDK's tests spell out the framing's bytes, and the end-to-end
tests (``tests/languages.rs``) run it against the host.
"""

from __future__ import annotations

import struct
from typing import Iterator

_U32 = struct.Struct("<I")
pack_u32 = _U32.pack
unpack_u32 = _U32.unpack_from

#: Group flag: more values of this group follow in the reducer's value stream.
GROUP_MORE = 1


class MalformedBatch(ValueError):
    """A buffer that does not follow the framing."""

    def __init__(self, offset: int, expected: str) -> None:
        super().__init__(f"malformed batch at byte {offset}: expected {expected}")
        self.offset = offset
        self.expected = expected


def read_bytes(buf: bytes, pos: int, expected: str) -> tuple[bytes, int]:
    """Reads ``u32 len`` then that many bytes at ``pos``; returns them and the new position."""
    if pos + 4 > len(buf):
        raise MalformedBatch(pos, expected)
    (n,) = unpack_u32(buf, pos)
    end = pos + 4 + n
    if end > len(buf):
        raise MalformedBatch(pos, expected)
    return buf[pos + 4 : end], end


def put_kv(out: bytearray, key: bytes, value: bytes) -> None:
    """Appends one kv entry."""
    out += pack_u32(len(key))
    out += key
    out += pack_u32(len(value))
    out += value


def put_value(out: bytearray, value: bytes) -> None:
    """Appends one length-prefixed value."""
    out += pack_u32(len(value))
    out += value


def kvs(buf: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Iterates the entries of a kv batch."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = read_bytes(buf, pos, "a key")
        value, pos = read_bytes(buf, pos, "a value")
        yield key, value


def values(buf: bytes) -> Iterator[bytes]:
    """Iterates a value batch to its end."""
    pos, end = 0, len(buf)
    while pos < end:
        value, pos = read_bytes(buf, pos, "a value")
        yield value


def group_header(buf: bytes, pos: int) -> tuple[bytes, int, bool, int, int]:
    """Reads the group at ``pos``: returns its key, value count, ``more`` flag, the position of
    its first value and the position just past its last value (the framing of every value is
    checked, so a reducer that stops early never leaves the next group misaligned)."""
    key, pos = read_bytes(buf, pos, "a group key")
    if pos + 5 > len(buf):
        raise MalformedBatch(pos, "a group value count and flags")
    (count,) = unpack_u32(buf, pos)
    more = bool(buf[pos + 4] & GROUP_MORE)
    start = end = pos + 5
    for _ in range(count):
        _, end = read_bytes(buf, end, "a group value")
    if more and end != len(buf):
        raise MalformedBatch(end, "the end of the batch after a group flagged `more`")
    return key, count, more, start, end


def groups(buf: bytes) -> Iterator[tuple[bytes, list[bytes], bool]]:
    """Iterates a group batch as ``(key, values in the batch, more)``."""
    pos = 0
    while pos < len(buf):
        key, count, more, start, pos = group_header(buf, pos)
        yield key, list(values(buf[start:pos])), more


def put_group(out: bytearray, key: bytes, vals: list[bytes], more: bool = False) -> None:
    """Appends one group."""
    out += pack_u32(len(key))
    out += key
    out += pack_u32(len(vals))
    out.append(GROUP_MORE if more else 0)
    for v in vals:
        put_value(out, v)


def counted_values(buf: bytes) -> Iterator[list[bytes]]:
    """Reads combiner output: for each group, ``u32 count`` then that many values."""
    pos = 0
    while pos < len(buf):
        if pos + 4 > len(buf):
            raise MalformedBatch(pos, "a combined value count")
        (count,) = unpack_u32(buf, pos)
        pos += 4
        group = []
        for _ in range(count):
            value, pos = read_bytes(buf, pos, "a combined value")
            group.append(value)
        yield group
