"""`cprof check` and `cprof record --repeat`, as a CI job runs them: exit
statuses, the text, JUnit XML, GitHub annotations and the flame graph."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import cprof

WORK = """\
import json, sys, time

def encode(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        json.dumps({"k": list(range(100))})

def compute(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        sum(i * i for i in range(500))

encode(float(sys.argv[1]))
compute(0.15)
"""


def cprof_cmd(*args: str, cwd: Path, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "GITHUB_ACTIONS"}
    return subprocess.run([sys.executable, "-m", "cprof", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env={**environ, **(env or {})})


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """base.prof: 5 runs with 0.05 s of JSON; slower.prof: 5 runs with 0.25 s."""
    d = tmp_path_factory.mktemp("check")
    (d / "work.py").write_text(WORK)
    for name, seconds in (("base", "0.05"), ("slower", "0.25")):
        r = cprof_cmd("record", "--repeat", "5", "-o", f"{name}.prof", "--", "work.py", seconds,
                      cwd=d)
        assert r.returncode == 0, r.stderr
        assert f"wrote {name}.prof (5 runs" in r.stderr
    return d


def test_record_repeat_labels_each_run(recorded: Path) -> None:
    p = cprof.load(recorded / "base.prof")
    assert sorted({s.labels["run"] for s in p.samples}) == [1, 2, 3, 4, 5]
    assert any("--repeat 5" in c for c in p.comments)


def test_within_and_over_budget_exit_0_and_1(recorded: Path) -> None:
    ok = cprof_cmd("check", "base.prof", "--max-share", r"json\.=60%", "--max-total", "cpu=5s",
                   cwd=recorded)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("cprof check base.prof (cpu): passed\n")
    assert not (recorded / "base.html").exists()
    over = cprof_cmd("check", "slower.prof", "--max-share", r"json\.=20%", cwd=recorded)
    assert over.returncode == 1
    assert "FAIL  share of 'json\\.' is" in over.stdout and "budget 20.0%" in over.stdout
    assert (recorded / "slower.html").exists()


def test_a_regression_against_the_baseline_fails_with_a_diff_flame_graph(recorded: Path) -> None:
    r = cprof_cmd("check", "slower.prof", "--baseline", "base.prof", "--max-regression", "10%",
                  "--focus", "encode", "--junit", "report.xml", cwd=recorded)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAIL  regression of cpu in 'encode'" in r.stdout
    assert "median of 5 runs" in r.stdout and "Mann-Whitney p=0.00397" in r.stdout
    diff = recorded / "slower.diff.html"
    assert diff.exists() and "base.prof -&gt; slower.prof" in diff.read_text()
    suite = ET.parse(recorded / "report.xml").getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("1", "1")


def test_no_regression_against_itself(recorded: Path) -> None:
    r = cprof_cmd("check", "base.prof", "--baseline", "base.prof", cwd=recorded)
    assert r.returncode == 0, r.stdout
    assert "ok    regression of cpu: +0.0%" in r.stdout


def test_github_annotations_when_running_in_github_actions(recorded: Path) -> None:
    r = cprof_cmd("check", "slower.prof", "--max-share", "json=1%", "--max-share", "compute=90%",
                  cwd=recorded, env={"GITHUB_ACTIONS": "true"})
    assert r.returncode == 1
    errors = [line for line in r.stdout.splitlines() if line.startswith("::error ")]
    assert len(errors) == 1 and "share of 'json' is" in errors[0] and "%25" in errors[0]
    quiet = cprof_cmd("check", "slower.prof", "--max-share", "json=1%", cwd=recorded)
    assert "::error" not in quiet.stdout


@pytest.mark.parametrize("args, message", [
    ([], "nothing to check"),
    (["--max-share", "json"], "write it as 'NAME=BUDGET'"),
    (["--max-share", "json=lots"], "is not a fraction"),
    (["--max-share", "json(=5%"], "is not a regular expression"),
    (["--max-total", "alloc_space=1MB"], "no sample type 'alloc_space'"),
    (["--max-regression", "10%"], "--max-regression needs --baseline"),
    (["--max-share", "x=5%", "--sample-index", "bytes"], "no sample type 'bytes'"),
    (["--baseline", "missing.prof"], "missing.prof"),
    (["--baseline", "base.prof", "--focus", "no_such_function"], "matches no function"),
    (["--max-share", "json=200%"], "over 100%"),
    (["--max-total", "cpu=2s", "--max-total", "cpu=50ms"], "'cpu' is given twice"),
    (["--max-share", "x=5%", "--junit", "/no/such/dir/r.xml"], "not a writable directory"),
    (["--max-share", "x=5%", "--flame", "f.txt"], "is .html or .svg"),
])
def test_usage_errors_exit_2(recorded: Path, args: list[str], message: str) -> None:
    r = cprof_cmd("check", "base.prof", *args, cwd=recorded)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.startswith("cprof check: ") and message in r.stderr


def test_a_profile_that_is_not_one_exits_2(tmp_path: Path) -> None:
    (tmp_path / "junk.prof").write_bytes(b"not a profile")
    r = cprof_cmd("check", "junk.prof", "--max-share", "x=5%", cwd=tmp_path)
    assert r.returncode == 2 and "cprof check: " in r.stderr


def test_interleaved_single_runs_are_compared_as_runs(recorded: Path) -> None:
    """Base and new recorded in turn, one file a run: both meet the same load."""
    for i in range(5):
        for name, seconds in (("b", "0.05"), ("n", "0.25")):
            r = cprof_cmd("record", "--quiet", "-o", f"{name}{i}.prof", "--", "work.py", seconds,
                          cwd=recorded)
            assert r.returncode == 0 and r.stderr == "", r.stderr
    news = [f"n{i}.prof" for i in range(5)]
    bases = [arg for i in range(5) for arg in ("--baseline", f"b{i}.prof")]
    r = cprof_cmd("check", *news, *bases, "--focus", "encode", cwd=recorded)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "median of 5 runs" in r.stdout and "Mann-Whitney p=0.00397" in r.stdout
