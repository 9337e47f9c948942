"""Counts words (runs of ASCII letters and digits, lowercased)."""

import re

import mr_sdk as mr

INFO = mr.JobInfo(
    "wordcount",
    "0.1.0",
    description="Counts words (runs of ASCII letters and digits, lowercased).",
)

# The same word as the Rust plugin: a maximal run of ASCII letters and digits. Everything else,
# including non-ASCII letters, separates words.
WORD = re.compile(r"[A-Za-z0-9]+")


def map(record, emit):
    for word in WORD.findall(record.value):
        emit(word.lower(), 1)


def combine(key, values, emit):
    emit(sum(int(v) for v in values))


def reduce(key, values, emit):
    emit(key, sum(int(v) for v in values))
