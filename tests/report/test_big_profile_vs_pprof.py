"""Reports on the big profile against go tool pprof's: benchmarks/large_profile.py's
300,000-sample profile (80,000 locations, 65,729 distinct stacks, labels on every
sample; made into benchmarks/.cache/ on first use, ~5 s), where the C engine's
paths, graph, filters, total and label boxes all do real work. Each pprof run
takes 30-45 s on the CI machine, so three are made: top with -nodecount=10, DOT
with -focus (the filters, the total before them, the legend, the label boxes)
and a list.

The profile and go are the same in every suite of a CI run, so go's output is
kept in benchmarks/.cache/pprof-output/, under a digest of the profile's bytes,
pprof's arguments and `go version`: the first suite to need it runs go, later
ones compare their own report with that output. Deleting the directory makes
the next run ask go again."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

import cprof
from cprof.export.dot import to_dot
from cprof.report.listing import list_source
from gotools import _run, require_go

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import large_profile  # noqa: E402


@pytest.fixture(scope="module")
def big() -> str:
    return large_profile.cached()


def pprof(*args: str) -> str:
    """go tool pprof's output for these arguments (the last one the profile)."""
    go = require_go()
    key = hashlib.sha256(Path(args[-1]).read_bytes())
    key.update("\0".join((_run([go, "version"], "go version"), *args[:-1])).encode())
    kept = Path(large_profile.CACHE) / "pprof-output" / key.hexdigest()
    if kept.exists():
        return kept.read_text(encoding="utf-8")
    out = _run([go, "tool", "pprof", "-symbolize=none", *args], "go tool pprof", timeout=600)
    kept.parent.mkdir(parents=True, exist_ok=True)
    partial = kept.with_name(f"{kept.name}.{os.getpid()}")
    partial.write_text(out, encoding="utf-8")
    os.replace(partial, kept)  # whole or absent, even if two runs race
    return out


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
