"""Words by length: reads ``word<TAB>count`` lines (the output of plugins/wordcount) and writes,
for each word length, ``length<TAB>words<TAB>occurrences``: how many distinct words have that
length and how often they occur in all, counting only words seen at least ``min`` times.

Lengths are in characters (wordcount's words are ASCII, so also in bytes) and the output is in
key byte order (``10`` before ``2``). A line without a tab, or whose count is not an integer,
fails the job with an error naming the record. Map emits ``words,occurrences`` pairs (``1,N``
per word), which the combiner and reduce add up."""

import mr_sdk as mr

INFO = mr.JobInfo(
    "word-lengths",
    "0.1.0",
    description="Distinct words and occurrences per word length, from word<TAB>count lines.",
    params=[mr.Param("min", "smallest count a word needs to be counted", default="1", type="integer")],
)


def parse(line):
    """``(word, count)`` of a ``word<TAB>count`` line (split at its last tab)."""
    word, tab, count = line.rpartition("\t")
    if not tab:
        raise ValueError(f"expected a `word<TAB>count` line, found {line!r}")
    try:
        return word, int(count)
    except ValueError:
        raise ValueError(f"the count {count!r} is not an integer in {line!r}") from None


def map(record, emit):
    word, count = parse(record.value)
    if count >= int(mr.param("min")):
        emit(str(len(word)), f"1,{count}")


def add_up(values):
    words = occurrences = 0
    for value in values:
        w, n = value.split(",")
        words += int(w)
        occurrences += int(n)
    return words, occurrences


def combine(key, values, emit):
    words, occurrences = add_up(values)
    emit(f"{words},{occurrences}")


def reduce(key, values, emit):
    words, occurrences = add_up(values)
    emit(key, f"{words}\t{occurrences}")
