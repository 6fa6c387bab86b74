"""The API and the CLI print the same reports: ``Profile.top`` with pprof's
options, ``Profile.filter(...).top()``, and ``cprof top`` with the same flags
(one driver, cprof/report/driver.py, behind all three), on Go's profiles and
on one cprof recorded; and, for the filters, what ``go tool pprof -top``
prints."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import cprof
from cprof.report.tree import peek, tree

GO = Path(__file__).resolve().parents[1] / "testdata" / "go"

pytestmark = pytest.mark.usefixtures("utc")  # tests/conftest.py


def spin(seconds: float) -> int:
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        x += sum(i * i for i in range(200))
    return x


def left(seconds: float) -> int:
    return spin(seconds)


def right(seconds: float) -> int:
    return spin(seconds)


@pytest.fixture(scope="module")
def py_prof(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with cprof.cpu(hz=1000) as c:
        with cprof.labels(side="left"):
            left(0.15)
        with cprof.labels(side="right"):
            right(0.1)
    assert c.profile is not None
    path = tmp_path_factory.mktemp("api") / "py.prof"
    c.profile.write(path)
    return path


def run_cli(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cprof", *map(os.fspath, args)],
                          capture_output=True, text=True, timeout=120, cwd="/",
                          env={**os.environ, "TZ": "UTC"})


def cli(*args: str | os.PathLike[str]) -> str:
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    return r.stdout


# (profile, options by pprof's names): the CLI's flags are -NAME=VALUE.
CASES: list[tuple[str, dict[str, Any]]] = [
    ("cpu.prof", {}),
    ("cpu.prof", {"focus": "hotB"}),
    ("cpu.prof", {"ignore": "hotA"}),
    ("cpu.prof", {"hide": r"main\.main"}),
    ("cpu.prof", {"show": "hot|cpuWork"}),
    ("cpu.prof", {"show_from": "cpuWork"}),
    ("cpu.prof", {"prune_from": "cpuWork"}),
    ("cpu.prof", {"tagfocus": "worker=b"}),
    ("cpu.prof", {"tagignore": "worker:a"}),
    ("cpu.prof", {"focus": "cpuWork", "hide": "runtime", "show_from": r"main\.main$"}),
    ("cpu.prof", {"focus": "hotB", "granularity": "line"}),
    ("cpu.prof", {"ignore": "hotA", "granularity": "file"}),
    ("heap.prof", {"tagfocus": "bytes=1kb:16kb", "sample_type": "alloc_space"}),
    ("heap.prof", {"sample_type": "inuse_objects", "cum": True}),
    ("mutex.prof", {"hide": "Mutex", "node_fraction": 0.2}),
    ("block.prof", {"focus": "Mutex", "ignore": "mutexWork", "n": 2}),
    ("py.prof", {"focus": "left"}),
    ("py.prof", {"tagfocus": "side=right", "cum": True}),
    ("py.prof", {"show_from": "spin", "sample_type": "samples"}),
    ("py.prof", {"hide": "spin", "granularity": "line", "n": 3}),
]

FILTER_NAMES = ("focus", "ignore", "hide", "show", "show_from", "prune_from", "tagfocus",
                "tagignore")


def flags(options: dict[str, Any]) -> list[str]:
    out = []
    for k, v in options.items():
        if k == "sample_type":
            out.append(f"-sample_index={v}")
        elif k == "granularity":
            out.append({"line": "-lines", "file": "-files", "function": "-functions"}[v])
        elif k == "cum":
            out.append("-cum")
        elif k == "n":
            out.append(f"-nodecount={v}")
        elif k == "node_fraction":
            out.append(f"-nodefraction={v}")
        else:
            out.append(f"-{k}={v}")
    return out


@pytest.mark.parametrize("name,options", CASES, ids=[f"{n}-{o}" for n, o in CASES])
def test_profile_top_prints_what_cprof_top_prints(py_prof: Path, name: str,
                                                  options: dict[str, Any]) -> None:
    path = py_prof if name == "py.prof" else GO / name
    p = cprof.load(path)
    kw = dict(options)
    n = kw.pop("n", None)
    expected = cli("top", *flags(options), path)
    assert str(p.top(n, **kw)) == expected
    # The same through filter, then top: the filtered profile keeps the
    # total from before its filters and their legend.
    filters = {k: kw.pop(k) for k in FILTER_NAMES if k in kw}
    filtered = p.filter(**filters) if filters else p
    assert str(filtered.top(n, **kw)) == expected
    if filters:
        assert filtered.report_total(kw.get("sample_type")) == p.report_total(
            kw.get("sample_type"))
        # pprof lists every filter but prune_from.
        assert ("Active filters:" in expected) == (filters.keys() != {"prune_from"})


@pytest.mark.parametrize("name,options", [c for c in CASES if "granularity" not in c[1]
                                          and "n" not in c[1] and "node_fraction" not in c[1]],
                         ids=lambda c: str(c))
def test_tree_and_peek_of_a_filtered_profile_print_what_the_cli_prints(
        py_prof: Path, name: str, options: dict[str, Any]) -> None:
    path = py_prof if name == "py.prof" else GO / name
    kw = dict(options)
    sample_type = kw.pop("sample_type", None)
    cum = kw.pop("cum", False)
    filtered = cprof.load(path).filter(**kw)
    assert str(tree(filtered, sample_type=sample_type, cum=cum)) == cli(
        "tree", *flags(options), path)
    regex = "hot|Mutex|spin|left|right|main"
    peek_flags = flags({k: v for k, v in options.items() if k != "cum"})
    if not filtered.samples:  # the filter kept nothing: both say so
        with pytest.raises(ValueError, match="no matches found for regexp"):
            peek(filtered, regex, sample_type=sample_type)
        r = run_cli("peek", *peek_flags, regex, path)
        assert r.returncode != 0 and "no matches found for regexp" in r.stderr
        return
    assert str(peek(filtered, regex, sample_type=sample_type)) == cli(
        "peek", *peek_flags, regex, path)


def test_filters_chained_list_every_filter_once_in_pprofs_order() -> None:
    p = cprof.load(GO / "cpu.prof")
    chained = p.filter(hide="runtime").filter(focus="cpuWork")
    assert chained.active_filters == ["hide=runtime", "focus=cpuWork"]
    assert chained.report_total() == p.report_total()
    # Changing the values starts afresh: a scaled profile is a new one.
    assert chained.scale(2).active_filters == []
    assert chained.scale(2).report_total() == 2 * chained.total()


def test_share_is_cum_percent_of_the_total_before_the_filters() -> None:
    p = cprof.load(GO / "cpu.prof")
    kept = p.filter(focus="hotB")
    assert kept.share("hotB") == pytest.approx(p.share("hotB"))
    assert kept.share("hotB") < 1


def test_unknown_top_option_is_named() -> None:
    with pytest.raises(TypeError, match="unknown option 'focsu'"):
        cprof.load(GO / "cpu.prof").top(focsu="x")
