"""``python -m mr_sdk``: the SDK's command line.

- ``python -m mr_sdk build DIR [-o OUT]`` compiles a job project to a component
  (:mod:`mr_sdk.build`; ``mr-host build DIR`` runs it).
- ``python -m mr_sdk run JOB -i FILE [-i FILE...] [--param K=V...]`` runs a job natively over
  real files, as :meth:`mr_sdk.testing.Harness.run_files` does, and prints its output as
  ``mr-host run --reducers 1`` writes it (``key<TAB>value`` lines sorted by key) and its
  counters on stderr. JOB is a module file (``job.py``, or ``job.py:Class`` for a class-style
  job) or a project directory (its ``[tool.mr] job``).
- ``python -m mr_sdk wit`` prints the path of the WIT contract this SDK ships.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from . import build as _build
from . import testing


def _job_target(spec: str) -> str:
    """``job.py[:Class]`` or a project directory → an importable ``module[:attr]``, with the
    module's directory put first on ``sys.path``."""
    path, _, attr = spec.partition(":") if not Path(spec).exists() else (spec, "", "")
    p = Path(path)
    if p.is_dir():
        target = _build.job_target(p)
        directory = p
    elif p.suffix == ".py" and p.is_file():
        target = p.stem + (f":{attr}" if attr else "")
        directory = p.parent
    else:
        raise _build.BuildError(
            f"{spec}: give the job's module file (job.py, or job.py:Class) or its project directory"
        )
    sys.path.insert(0, str(directory.resolve()))
    importlib.invalidate_caches()
    return target


def _run(args: argparse.Namespace) -> int:
    params = {}
    for p in args.param:
        key, sep, value = p.partition("=")
        if not sep:
            print(f"error: --param {p!r} must have the form KEY=VALUE", file=sys.stderr)
            return 2
        params[key] = value
    try:
        target = _job_target(args.job)
        out = testing.Harness(params).run_files(target, args.input)
    except _build.BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: cannot read {e.filename}: {e.strerror}", file=sys.stderr)
        return 1
    except testing.JobFailed as e:
        where = f" at {e.record}" if e.record else ""
        print(f"error: job {args.job} failed{where}: {e.message}", file=sys.stderr)
        return 1
    write = sys.stdout.buffer.write
    for key, value in out.records:
        write(key + b"\t" + value + b"\n" if key else value + b"\n")
    sys.stdout.flush()
    for name, value in sorted(out.counters.items()):
        print(f"counter job.{name} = {value}", file=sys.stderr)
    for level, message in out.logs:
        print(f"log {level}: {message}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mr_sdk", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="compile a job project to a WebAssembly component")
    b.add_argument("dir", type=Path, help="the project directory (holding pyproject.toml)")
    b.add_argument("-o", "--output", type=Path, help="where to write the component")
    r = sub.add_parser("run", help="run a job natively over text files and print its output")
    r.add_argument("job", help="the job module (job.py, job.py:Class) or project directory")
    r.add_argument("-i", "--input", action="append", required=True, help="a text file or directory; repeatable")
    r.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="a job parameter; repeatable")
    sub.add_parser("wit", help="print the path of the WIT contract this SDK ships")
    args = parser.parse_args(argv)
    if args.command == "wit":
        print(_build.WIT_DIR / "job.wit")
        return 0
    if args.command == "run":
        return _run(args)
    try:
        path = _build.build(args.dir, args.output)
    except _build.BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
