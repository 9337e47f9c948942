"""Native tests of the job: plain CPython, no wasm (``python -m pytest``)."""

import {{module}}
from mr_sdk.testing import Harness


def test_counts_words():
    out = Harness().run_mapreduce_combined({{module}}, ["The cat", "the hat"])
    assert out.lines() == ["cat\t1", "hat\t1", "the\t2"]
