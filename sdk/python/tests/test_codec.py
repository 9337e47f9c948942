"""The flat framing: round trips, and malformed buffers named by byte offset."""

import pytest
from mr_sdk import _codec


def test_kv_round_trip_and_exact_bytes():
    out = bytearray()
    _codec.put_kv(out, b"alpha", b"1")
    _codec.put_kv(out, b"", b"")
    # The framing of wit/job.wit, spelled out: u32 LE length, bytes, u32 LE length, bytes.
    assert bytes(out) == b"\x05\x00\x00\x00alpha\x01\x00\x00\x001" + b"\x00" * 8
    assert list(_codec.kvs(bytes(out))) == [(b"alpha", b"1"), (b"", b"")]


def test_truncated_kv_names_the_offset():
    out = bytearray()
    _codec.put_kv(out, b"alpha", b"value")
    _codec.put_kv(out, b"beta", b"value")
    with pytest.raises(_codec.MalformedBatch) as e:
        list(_codec.kvs(bytes(out[:-2])))
    assert e.value.offset == 26 and e.value.expected == "a value"
    assert "byte 26" in str(e.value)


def test_groups_with_more_flag_and_counted_values():
    out = bytearray()
    _codec.put_group(out, b"a", [b"1", b"22"])
    _codec.put_group(out, b"b", [b"333"], more=True)
    assert list(_codec.groups(bytes(out))) == [(b"a", [b"1", b"22"], False), (b"b", [b"333"], True)]
    combined = b"\x02\x00\x00\x00" + b"\x01\x00\x00\x00x" + b"\x01\x00\x00\x00y" + b"\x00\x00\x00\x00"
    assert list(_codec.counted_values(combined)) == [[b"x", b"y"], []]


def test_more_flag_must_be_last():
    out = bytearray()
    _codec.put_group(out, b"a", [], more=True)
    _codec.put_group(out, b"b", [])
    with pytest.raises(_codec.MalformedBatch, match="more"):
        list(_codec.groups(bytes(out)))


def test_group_count_larger_than_buffer():
    out = bytearray()
    _codec.put_group(out, b"a", [b"x"])
    out[5:9] = (5).to_bytes(4, "little")
    with pytest.raises(_codec.MalformedBatch):
        list(_codec.groups(bytes(out)))
