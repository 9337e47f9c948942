"""Inverted index: word -> sorted, de-duplicated ``file:line`` locations, as
``word<TAB>file:line,file:line,...``. Words are defined as in word count; locations sort by file
name (bytes), then numerically by line. Works on raw bytes, like the Rust plugin, so file names
that are not UTF-8 sort the same way too."""

import re

import mr_sdk as mr

INFO = mr.JobInfo(
    "inverted-index",
    "0.1.0",
    description="Lists, for every word, the file:line locations where it occurs.",
)

WORD = re.compile(rb"[A-Za-z0-9]+")


def map(record, emit):
    seen = set()
    for word in WORD.findall(record.value_bytes):
        word = word.lower()
        if word not in seen:
            seen.add(word)
            emit(word, record.key_bytes)


def _order(location):
    """(file, line number), split at the last colon; locations without one sort first."""
    file, colon, line = location.rpartition(b":")
    if not colon or not line.isdigit():
        return (0, b"", 0)
    return (1, file, int(line))


def reduce(key, values, emit):
    # A word's locations must be sorted, so this reducer holds one group's values (as the Rust
    # plugin does); the values still arrive lazily from the host's stream.
    locations = sorted(values.bytes(), key=_order)
    unique = [loc for i, loc in enumerate(locations) if i == 0 or loc != locations[i - 1]]
    emit(key, b",".join(unique))
