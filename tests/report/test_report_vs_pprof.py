"""cprof.report's tree, peek, list and traces print what `go tool pprof` prints
for the same file: a Python CPU profile recorded here (pprof reads the
Python source through the absolute file names cprof records), and fresh Go
runtime/pprof profiles."""

from __future__ import annotations

import atexit
import functools
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import pytest

import cprof
from cprof.report.listing import list_source
from cprof.report.top import top
from cprof.report.traces import traces
from cprof.report.tree import peek, tree
from gotools import ROOT, go_profiles_dir, require_go

WORKLOAD = '''\
import time


def leaf(n):
    total = 0
    for i in range(n):
        total += i * i
    return total


def other_leaf(n):
    return sum(i * 3 for i in range(n))


def middle(n):
    a = leaf(n)
    b = other_leaf(n // 2)
    return a + b


def recurse(depth, n):
    if depth == 0:
        return middle(n)
    return recurse(depth - 1, n)


class Runner:
    def run(self, seconds):
        end = time.process_time() + seconds
        out = 0
        while time.process_time() < end:
            out += middle(5_000)
            out += recurse(4, 3_000)
            out += leaf(2_000)
        return out
'''


@functools.cache
def _home() -> Path:
    home = Path(tempfile.mkdtemp(prefix="cprof-report-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    return home


def go_pprof(args: list[str], path: Path, *, symbolize: bool = False) -> str:
    """What `go tool pprof ARGS PATH` prints, run in this directory with
    TZ=UTC and a private HOME."""
    go = require_go()
    home = _home()
    env = {**os.environ, "HOME": str(home), "PPROF_TMPDIR": str(home), "TZ": "UTC",
           "GOTOOLCHAIN": "local"}
    cmd = [go, "tool", "pprof", *args, *([] if symbolize else ["-symbolize=none"]), str(path)]
    r = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", env=env,
                       timeout=120)
    assert r.returncode == 0, f"{' '.join(cmd)} failed: {r.stderr}"
    return r.stdout


@pytest.fixture(scope="module")
def python_profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CPU profile of WORKLOAD, imported from a file as the module
    ``reportwork`` and run for 0.6 s of CPU time at 1000 Hz."""
    directory = tmp_path_factory.mktemp("report")
    source = directory / "reportwork.py"
    source.write_text(WORKLOAD)
    spec = importlib.util.spec_from_file_location("reportwork", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["reportwork"] = module
    try:
        spec.loader.exec_module(module)
        with cprof.cpu(hz=1000) as c:
            module.Runner().run(0.6)
    finally:
        del sys.modules["reportwork"]
    path = directory / "cpu.prof"
    c.profile.write(path)
    return path


Report = Callable[[cprof.Profile], Any]

PYTHON_REPORTS: dict[str, tuple[list[str], Report]] = {
    "tree": (["-tree"], lambda p: tree(p)),
    "tree samples": (["-tree", "-sample_index=samples"], lambda p: tree(p, sample_type="samples")),
    "tree focus": (["-tree", "-focus=recurse"], lambda p: tree(p, focus="recurse")),
    "tree all": (["-tree", "-nodefraction=0", "-edgefraction=0", "-nodecount=0"],
                 lambda p: tree(p, node_fraction=0, edge_fraction=0, node_count=0)),
    "peek": (["-peek", r"middle|Runner\.run"], lambda p: peek(p, r"middle|Runner\.run")),
    "list": (["-list", r"reportwork\.(leaf|middle|recurse|Runner)"],
             lambda p: list_source(p, r"reportwork\.(leaf|middle|recurse|Runner)")),
    "list samples": (["-list", "leaf", "-sample_index=samples"],
                     lambda p: list_source(p, "leaf", sample_type="samples")),
    "traces": (["-traces"], lambda p: traces(p)),
    "top": (["-top"], lambda p: top(p)),
}


@pytest.mark.parametrize("name", sorted(PYTHON_REPORTS))
def test_python_cpu_profile_reports_as_pprof(python_profile: Path, name: str, utc: None) -> None:
    args, report = PYTHON_REPORTS[name]
    p = cprof.load(python_profile)
    assert sum(1 for s in p.samples
               for loc in s.locations for ln in loc.lines
               if ln.function is not None and ln.function.name == "reportwork.leaf") > 0
    assert str(report(p)) == go_pprof(args, python_profile)


def test_listing_reads_the_recorded_source(python_profile: Path) -> None:
    routine = next(iter(list_source(cprof.load(python_profile), r"^reportwork\.leaf$")))
    assert routine.filename == str(python_profile.parent / "reportwork.py")
    assert routine.error is None
    loop = next(ln for ln in routine.lines if "total += i * i" in ln.text)
    assert loop.flat > 0 and routine.cum >= routine.flat > 0


def test_names_agree_with_pprof_symbolizing_too(python_profile: Path, utc: None) -> None:
    # Qualified names are left alone by pprof's demangling heuristics.
    assert str(tree(cprof.load(python_profile))) == go_pprof(["-tree"], python_profile,
                                                           symbolize=True)


GO_KINDS = ["cpu", "heap", "allocs", "mutex", "block", "goroutine"]
GO_REPORTS: dict[str, tuple[list[str], Report]] = {
    "tree": (["-tree"], lambda p: tree(p)),
    "tree cum": (["-tree", "-cum", "-nodecount=6"], lambda p: tree(p, cum=True, node_count=6)),
    "peek": (["-peek", "main"], lambda p: peek(p, "main")),
    "traces": (["-traces"], lambda p: traces(p)),
    "list": (["-list", r"main\.", f"-source_path={ROOT / 'tests' / 'go'}"],
             lambda p: list_source(p, r"main\.", source_path=str(ROOT / "tests" / "go"))),
}


@pytest.mark.parametrize("kind", GO_KINDS)
@pytest.mark.parametrize("name", sorted(GO_REPORTS))
def test_go_profile_reports_as_pprof(kind: str, name: str, utc: None) -> None:
    path = go_profiles_dir() / f"{kind}.prof"
    args, report = GO_REPORTS[name]
    assert str(report(cprof.load(path))) == go_pprof(args, path)
