"""Native tests: the job's functions in CPython, no wasm."""

import inverted_index
from mr_sdk.testing import Harness


def test_lists_sorted_unique_locations():
    out = Harness().run_mapreduce(inverted_index, ["b a b", "x", "A"] * 4)
    a = next(line for line in out.lines() if line.startswith("a\t"))
    # Line 10 sorts after line 9: numeric, not textual, order.
    assert a == "a\tinput:1,input:3,input:4,input:6,input:7,input:9,input:10,input:12"
    assert len(out.lines()) == 3
    # Every group's values past the first came through the (stand-in) value stream.
    assert out.stream_pulls > 0
