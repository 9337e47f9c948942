"""Native tests: the job's functions in CPython, no wasm (``pytest plugins/wordcount-python``)."""

import pytest
import wordcount
from mr_sdk.testing import Harness, JobFailed


def test_counts_words_case_insensitively():
    out = Harness().run_mapreduce_combined(wordcount, ["The cat, the HAT.", "", "r2d2 café"])
    assert out.lines() == ["caf\t1", "cat\t1", "hat\t1", "r2d2\t1", "the\t2"]


def test_a_bad_count_names_the_key():
    with pytest.raises(JobFailed) as failed:
        Harness().run_reduce(wordcount, {"word": ["1", "two"]})
    assert "in reduce of key 'word': ValueError: invalid literal for int()" in failed.value.message
    assert 'wordcount.py", line' in failed.value.message
