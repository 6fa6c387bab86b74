"""Reports on the big profile against go tool pprof's: benchmarks/large_profile.py's
300,000-sample profile (80,000 locations, 65,729 distinct stacks, labels on every
sample; made into benchmarks/.cache/ on first use, ~5 s), where the C engine's
paths, graph, filters, total and label boxes all do real work. Each pprof run
takes 15-20 s on the CI machine, so two are made: top with -nodecount=10, and
DOT with -focus (the filters, the total before them, the legend, the label
boxes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import cprof
from cprof.export.dot import to_dot
from cprof.report.listing import list_source
from gotools import _env, require_go

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import large_profile  # noqa: E402


@pytest.fixture(scope="module")
def big() -> str:
    return large_profile.cached()


def pprof(*args: str) -> str:
    r = subprocess.run([require_go(), "tool", "pprof", "-symbolize=none", *args],
                       capture_output=True, text=True, env=_env(), timeout=600)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_top_of_the_big_profile_prints_what_pprof_prints(big: str, utc: None) -> None:
    assert str(cprof.load(big).top(10)) == pprof("-top", "-nodecount=10", big)


def test_focused_dot_of_the_big_profile_prints_what_pprof_prints(big: str, utc: None) -> None:
    got = to_dot(cprof.load(big).filter(focus="decode"))
    assert "Active filters:" in got and "shape=box3d" in got  # the legend and label boxes
    assert got == pprof("-dot", "-focus=decode", big)


def test_list_of_the_big_profile_prints_what_pprof_prints(big: str) -> None:
    got = str(list_source(cprof.load(big), "^write_metric$"))
    assert got.count("ROUTINE") == 14
    assert got == pprof("-list", "^write_metric$", big)
