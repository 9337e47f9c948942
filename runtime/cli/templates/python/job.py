"""Counts words (runs of ASCII letters and digits, lowercased).

Replace the functions below with your own job: ``mr-host build .`` compiles it,
``python -m pytest`` runs the tests natively and
``python -m mr_sdk run {{module}}.py -i FILE`` the job over real files.
"""

import re

import mr_sdk as mr

INFO = mr.JobInfo(
    "{{name}}",
    "0.1.0",
    description="Counts words (runs of ASCII letters and digits, lowercased).",
)

WORD = re.compile(r"[A-Za-z0-9]+")


def map(record, emit):
    for word in WORD.findall(record.value):
        emit(word.lower(), 1)


def combine(key, values, emit):
    emit(sum(int(v) for v in values))


def reduce(key, values, emit):
    emit(key, sum(int(v) for v in values))
