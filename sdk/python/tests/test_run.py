"""``python -m mr_sdk run``: a job over real files, natively, printed as the host writes it."""

import subprocess
import sys
import textwrap

import pytest

from mr_sdk.testing import Harness, JobFailed

JOB = textwrap.dedent(
    '''
    import mr_sdk as mr

    INFO = mr.JobInfo("words", params=[mr.Param("refuse", default="")])

    def map(record, emit):
        if mr.param("refuse") and mr.param("refuse") in record.value:
            raise ValueError(f"refusing {record.value!r}")
        mr.counter("lines")
        for word in record.value.split():
            emit(word, record.key)

    def combine(key, values, emit):
        emit(",".join(values))

    def reduce(key, values, emit):
        emit(key, ",".join(values))
    '''
)


def run(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "mr_sdk", "run", *args], cwd=cwd, capture_output=True, text=True
    )


@pytest.fixture
def project(tmp_path):
    (tmp_path / "words.py").write_text(JOB)
    (tmp_path / "a.txt").write_bytes(b"b a\r\n\nlast b")
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "sub" / "c.txt").write_text("a\n")
    (tmp_path / "d" / ".hidden").write_text("hidden\n")
    return tmp_path


def test_prints_the_output_sorted_with_path_line_keys(project):
    done = run("words.py", "-i", "a.txt", "-i", "d", cwd=project)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "a\ta.txt:1,d/sub/c.txt:1",
        "b\ta.txt:1,a.txt:3",
        "last\ta.txt:3",
    ]
    assert "counter job.lines = 4" in done.stderr


def test_a_failing_record_is_named_by_path_and_line(project):
    done = run("words.py", "-i", "a.txt", "--param", "refuse=last", cwd=project)
    assert done.returncode == 1
    assert done.stderr.startswith("error: job words.py failed at a.txt:3: ValueError: refusing 'last b'")
    assert "Traceback" in done.stderr
    done = run("words.py", "-i", "missing.txt", cwd=project)
    assert done.returncode == 1
    assert done.stderr == "error: cannot read missing.txt: No such file or directory\n"
    done = run("nope.txt", "-i", "a.txt", cwd=project)
    assert done.returncode == 1 and "give the job's module file" in done.stderr


def test_run_files_batches_and_names_records_in_the_whole_input(project, monkeypatch):
    monkeypatch.syspath_prepend(str(project))
    big = project / "big.txt"
    lines = [f"w{i % 3} and some padding" for i in range(300_000)]  # 6 MB: several batches
    lines[250_000] = "bad"
    big.write_text("\n".join(lines))
    with pytest.raises(JobFailed) as failed:
        Harness({"refuse": "bad"}).run_files("words", [str(project / "a.txt"), str(big)])
    assert failed.value.record_index == 3 + 250_000
    assert failed.value.record == f"{big}:250001"
