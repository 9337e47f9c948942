"""Native tests: the job's functions in CPython, no wasm (``pytest plugins/word-lengths-python``)."""

import pytest
import word_lengths
from mr_sdk.testing import Harness, JobFailed

COUNTS = ["a\t5", "an\t1", "be\t3", "cat\t2", "dog\t7", "mouse\t1", "elephant\t2", "the\t9"]


def test_distinct_words_and_occurrences_per_length():
    for run in (Harness().run_mapreduce, Harness().run_mapreduce_combined):
        out = run(word_lengths, COUNTS)
        assert out.lines() == ["1\t1\t5", "2\t2\t4", "3\t3\t18", "5\t1\t1", "8\t1\t2"]


def test_min_leaves_out_rare_words():
    out = Harness({"min": "3"}).run_mapreduce(word_lengths, COUNTS)
    assert out.lines() == ["1\t1\t5", "2\t1\t3", "3\t2\t16"]


def test_a_bad_line_names_the_record():
    with pytest.raises(JobFailed) as failed:
        Harness().run_mapreduce(word_lengths, ["a\t1", "no count here"])
    assert failed.value.record_index == 1
    assert "expected a `word<TAB>count` line, found 'no count here'" in failed.value.message
    with pytest.raises(JobFailed) as failed:
        Harness().run_mapreduce(word_lengths, ["a\tmany"])
    assert "the count 'many' is not an integer" in failed.value.message
