"""The batch glue, job loading, context and harness, natively."""

import sys
import types
from pathlib import Path

import pytest

import mr_sdk as mr
from mr_sdk import _codec, _context, _glue, build
from mr_sdk.testing import Harness, JobFailed

sys.path.insert(0, str(Path(__file__).parent))
import jobs  # noqa: E402


def test_module_job_with_params_counters_and_logs():
    out = Harness().run_mapreduce_combined(jobs, ["b a", "a"])
    assert out.lines() == ["a!\t2", "b!\t1"]
    assert out.counters == {"records": 2, "chars": 4}
    assert out.logs == [("info", "reducing a!"), ("info", "reducing b!")]
    assert Harness({"suffix": "?"}).run_mapreduce(jobs, ["x"]).lines() == ["x?\t1"]


def test_describe_metadata():
    job = mr.load_job(jobs)
    assert (job.info.name, job.info.version, job.world) == ("sample", "1.2.3", "mapreduce-job")
    assert job.has_combine and job.has_reduce
    assert [p.name for p in job.info.params] == ["suffix", "fail-on"]


def test_class_job_is_created_lazily_and_once():
    jobs.Lengths.created = 0
    job = mr.load_job("jobs:Lengths")
    assert jobs.Lengths.created == 0
    assert (job.world, job.info.name) == ("mapper-job", "lengths")
    assert job.info.description == "Line lengths, map only."
    batch = bytearray()
    _codec.put_kv(batch, b"f:1", b"abc")
    _codec.put_kv(batch, b"f:2", "é".encode())
    assert list(_codec.kvs(_glue.map_batch(job, bytes(batch)))) == [(b"", b"3"), (b"", b"2")]
    _glue.map_batch(job, bytes(batch))
    assert jobs.Lengths.created == 1


def test_an_exception_names_the_record_and_keeps_the_traceback():
    with pytest.raises(JobFailed) as failed:
        Harness({"fail-on": "BAD"}).run_map(jobs, ["fine", "also fine", "a BAD line"])
    assert failed.value.record_index == 2
    message = failed.value.message
    assert message.startswith("ValueError: cannot take 'a BAD line'\nTraceback (most recent call last):")
    assert 'jobs.py", line' in message and "in explode" in message
    # The SDK's own frames are left out: the traceback starts in the job.
    assert "_glue.py" not in message


def test_reduce_and_combine_failures_name_the_key():
    with pytest.raises(JobFailed, match=r"in reduce of key 'k': ValueError: invalid literal"):
        Harness().run_reduce(jobs, {"k": ["1", "x"]})
    job = mr.load_job(jobs)
    batch = bytearray()
    _codec.put_group(batch, b"w", [b"1", b"nope"])
    with pytest.raises(_glue.Failure, match=r"in combine of key 'w'"):
        _glue.combine_batch(job, bytes(batch))


class CountingStream:
    def __init__(self, values, per_batch):
        self.values, self.per_batch, self.pulls = list(values), per_batch, 0

    def next_batch(self, max_bytes):
        self.pulls += 1
        out = bytearray()
        for v in self.values[: self.per_batch]:
            _codec.put_value(out, v)
        del self.values[: self.per_batch]
        return bytes(out)


def test_reduce_values_are_pulled_lazily_from_the_stream():
    seen = []

    def reduce(key, values, emit):
        for i, v in enumerate(values):
            seen.append(v)
            if i == 2:
                break
        emit(key, ",".join(seen))

    job = mr.load_job(types.SimpleNamespace(map=lambda r, e: None, reduce=reduce, INFO=mr.JobInfo("lazy")))
    batch = bytearray()
    _codec.put_group(batch, b"a", [b"0"])
    _codec.put_group(batch, b"hot", [b"1"], more=True)
    stream = CountingStream([str(i).encode() for i in range(2, 100_000)], per_batch=1)
    out = list(_codec.kvs(_glue.reduce_batch(job, bytes(batch), stream)))
    # Group "a" never touches the stream; "hot" pulls one batch per value it actually reads.
    assert out == [(b"a", b"0"), (b"hot", b"0,1,2,3")]
    assert stream.pulls == 2


def test_whole_stream_is_read_when_consumed():
    out = Harness().run_reduce(jobs, {"k": [str(i) for i in range(1000)]})
    assert out.lines() == [f"k\t{sum(range(1000))}"]
    assert out.stream_pulls == 500  # 999 streamed values, 2 per stand-in batch


def test_text_that_is_not_utf8_round_trips_byte_for_byte():
    job = mr.load_job(types.SimpleNamespace(map=lambda r, e: e(r.value, r.value_bytes), INFO=mr.JobInfo("echo")))
    batch = bytearray()
    _codec.put_kv(batch, b"k", b"caf\xe9 \xff")
    assert list(_codec.kvs(_glue.map_batch(job, bytes(batch)))) == [(b"caf\xe9 \xff", b"caf\xe9 \xff")]


def test_emit_types():
    job = mr.load_job(types.SimpleNamespace(map=lambda r, e: e(r.value, 1.5), INFO=mr.JobInfo("float")))
    batch = bytearray()
    _codec.put_kv(batch, b"k", b"v")
    with pytest.raises(_glue.Failure, match="emit\\(\\) takes str, bytes or int keys and values, not float"):
        _glue.map_batch(job, bytes(batch))


def test_counters_are_flushed_once_per_name_per_batch():
    calls = []

    class Backend:
        def counter_add(self, name, delta):
            calls.append((name, delta))

    previous, _context.backend = _context.backend, Backend()
    try:
        for _ in range(1000):
            mr.counter("n")
        mr.counter("zero", 0)
        _context.flush_counters()
    finally:
        _context.backend = previous
    assert calls == [("n", 1000)]


def test_context_outside_a_run_says_how_to_use_it():
    with pytest.raises(RuntimeError, match="not at import time"):
        mr.param("x")


def test_bad_jobs_are_refused_with_reasons():
    with pytest.raises(TypeError, match="has no map"):
        mr.load_job(types.SimpleNamespace(reduce=lambda k, v, e: None))
    with pytest.raises(TypeError, match="a combiner needs a reducer"):
        mr.load_job(types.SimpleNamespace(map=lambda r, e: None, combine=lambda k, v, e: None))
    with pytest.raises(ValueError, match="has no 'Nope'"):
        mr.load_job("jobs:Nope")


def test_build_needs_a_tool_mr_table(tmp_path):
    with pytest.raises(build.BuildError, match="has no pyproject.toml"):
        build.job_target(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    with pytest.raises(build.BuildError, match=r'has no \[tool.mr\] job = "MODULE"'):
        build.job_target(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.mr]\njob = "x:Y"\n')
    assert build.job_target(tmp_path) == "x:Y"


def test_a_combined_run_names_the_line_that_failed():
    # Every line is its own batch there; the index is still the line's among all lines given.
    with pytest.raises(JobFailed) as failed:
        Harness({"fail-on": "BAD"}).run_mapreduce_combined(jobs, ["fine", "also fine", "a BAD line"])
    assert failed.value.record_index == 2
    assert failed.value.record == "input:3"


def test_parameters_are_checked_and_defaulted_as_the_host_does():
    with pytest.raises(JobFailed, match=r"^job `sample` has no parameter `nope`; it declares: suffix, fail-on$"):
        Harness({"nope": "1"}).run_map(jobs, ["x"])
    needy = types.SimpleNamespace(
        INFO=mr.JobInfo("needy", params=[mr.Param("must", "a value", required=True)]),
        map=lambda record, emit: emit(mr.param("must"), 1),
    )
    with pytest.raises(JobFailed, match=r"requires parameter `must` \(a value\); pass --param must=VALUE"):
        Harness().run_map(needy, ["x"])
    assert Harness({"must": "m"}).run_map(needy, ["x"]).lines() == ["m\t1"]


def test_typed_parameters_are_checked_as_the_host_does():
    typed = types.SimpleNamespace(
        INFO=mr.JobInfo(
            "typed",
            params=[
                mr.Param("top", "how many", default="10", type="integer"),
                mr.Param("ratio", "a fraction", type="float"),
                mr.Param("strict", "fail early", type="bool"),
                mr.Param("mode", "how", default="fast", type="enum", choices=("fast", "exact")),
            ],
        ),
        map=lambda record, emit: [emit(n, mr.param(n) or "<unset>") for n in ("top", "ratio", "strict", "mode")],
    )
    ok = Harness({"top": "-3", "ratio": "1e-3", "strict": "true"}).run_map(typed, ["x"])
    assert ok.lines() == ["top\t-3", "ratio\t1e-3", "strict\ttrue", "mode\tfast"]
    for name, value, expected in [
        ("top", "three", 'must be an integer (e.g. 42 or -7), not "three"'),
        ("top", "1_000", 'must be an integer (e.g. 42 or -7), not "1_000"'),
        ("top", "99999999999999999999", "must be an integer"),
        ("ratio", "NaN", 'must be a number (e.g. 0.25, 3 or 1e-3), not "NaN"'),
        ("ratio", " 1", "must be a number"),
        ("strict", "yes", 'must be true or false, not "yes"'),
        ("mode", "slow", 'must be one of fast, exact, not "slow"'),
    ]:
        with pytest.raises(JobFailed) as failed:
            Harness({name: value}).run_map(typed, ["x"])
        assert str(failed.value.message).startswith(f"parameter `{name}` of job `typed` {expected}"), (name, value)
    with pytest.raises(ValueError, match="choices go with type 'enum'"):
        mr.Param("bad", type="enum")
    with pytest.raises(ValueError, match='must be an integer'):
        mr.Param("bad", default="x", type="integer")


def test_many_distinct_counters_in_one_call():
    names = [f"c{i}" for i in range(200_000)]
    job = types.SimpleNamespace(
        INFO=mr.JobInfo("counting"),
        map=lambda record, emit: [mr.counter(n) for n in record.value.split()],
    )
    out = Harness().run_map(job, [" ".join(names), "c7"])
    assert len(out.counters) == 200_000 and out.counters["c7"] == 2
