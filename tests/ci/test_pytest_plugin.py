"""The pytest plugin, run by pytest itself (pytester): budgets on marked
tests, --cprof-dir and --cprof, and pytest's own reporting of a failure."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest

import cprof

TESTS = '''
import json, time
import pytest

def spins(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        sum(i * i for i in range(500))

DOCUMENT = {"k": list(range(2000))}  # large enough that json's own time dominates

def encodes(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        json.dumps(DOCUMENT)

KEPT = []

@pytest.mark.cprof(max_share={r"json\\.": "5%"})
def test_json_over_budget():
    encodes(0.4)
    spins(0.1)

@pytest.mark.cprof(max_share={r"json\\.": "5%"}, max_cpu="5s")
def test_within_budget():
    spins(0.3)

@pytest.mark.cprof(max_cpu="50ms")
def test_cpu_over_budget():
    spins(0.3)

@pytest.mark.cprof(max_inuse="1MB", max_alloc="1GB")
def test_keeps_too_much():
    KEPT.append([bytes(1024) for _ in range(32 * 1024)])

@pytest.mark.cprof(max_alloc="64MB", max_share={"main": "5%"})
def test_allocates_within_budget():
    for _ in range(10):
        [bytes(1024) for _ in range(1024)]

def test_unmarked():
    spins(0.05)

@pytest.mark.cprof(max_alloc="1MB")
def test_allocates_too_much():
    for _ in range(50):
        bytearray(1 << 20)
'''


def plugin_args() -> list[str]:
    """Where cprof is installed, pytest loads the plugin by its entry point;
    from a checkout (PYTHONPATH), it is named."""
    registered = any(ep.name == "cprof" and ep.value == "cprof.ci.pytest_plugin"
                     for ep in importlib.metadata.entry_points(group="pytest11"))
    return [] if registered else ["-p", "cprof.ci.pytest_plugin"]


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_budgets=TESTS)
    return pytester.runpytest_subprocess(*plugin_args(), "-p", "no:cacheprovider", *args,
                                         timeout=300)


def test_budgets_pass_and_fail_with_pytests_own_report(pytester: pytest.Pytester) -> None:
    result = run(pytester)
    result.assert_outcomes(passed=3, failed=4)
    out = result.stdout.str()
    assert re.search(r"FAILED test_budgets.py::test_json_over_budget", out)
    m = re.search(r"share of 'json\\\.' is (\d+\.\d)% of cpu, budget 5\.0%", out)
    assert m and float(m.group(1)) > 50, out
    assert "top of its cpu profile:" in out and "json.encoder" in out
    # (Under CI=true pytest repeats whole messages in its short summary.)
    flames = set(re.findall(r"flame graph: (\S+\.html)", out))
    assert len(flames) == 4 and all(Path(f).exists() for f in flames)
    # An allocation budget shows what was allocated, not what is in use.
    assert re.search(r"total alloc_space is \d+(\.\d+)?MB, budget 1MB", out)
    assert "top of its alloc_space profile:" in out
    # Tops speak of the test, not of pytest's frames.
    assert "_pytest.main" not in out
    assert re.search(r"total cpu is \d+(\.\d+)?ms, budget 50ms", out)
    assert re.search(r"total inuse_space is \d+(\.\d+)?MB, budget 1MB", out)
    assert "top of its inuse_space profile:" in out and "test_keeps_too_much" in out
    for passing in ("test_within_budget", "test_allocates_within_budget", "test_unmarked"):
        assert f"FAILED test_budgets.py::{passing}" not in out


def kept_file(directory: Path, test: str, suffix: str) -> Path:
    """The file --cprof-dir keeps for a test: its id made a file name, a
    short hash of the id, the suffix."""
    found = list(directory.glob(f"test_budgets.py_{test}-*{suffix}"))
    assert len(found) == 1, sorted(p.name for p in directory.iterdir())
    return found[0]


def test_cprof_dir_keeps_every_marked_tests_profiles(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--cprof-dir", "profiles")
    result.assert_outcomes(passed=3, failed=4)
    d = pytester.path / "profiles"
    kept_file(d, "test_within_budget", ".cpu.prof")
    kept_file(d, "test_json_over_budget", ".cpu.html")
    assert not any("unmarked" in p.name for p in d.iterdir())
    p = cprof.load(kept_file(d, "test_json_over_budget", ".cpu.prof"))
    assert p.share(r"json\.") > 0.5
    heap = cprof.load(kept_file(d, "test_keeps_too_much", ".heap.prof"))
    assert heap.total("inuse_space") > 16 * 2**20


def test_cprof_profiles_the_whole_session(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--cprof", "-k", "not over_budget and not keeps and not too_much")
    result.assert_outcomes(passed=3)
    out = result.stdout.str()
    assert "session CPU profile: ./cprof-session.prof" in out
    session = cprof.load(pytester.path / "cprof-session.prof")
    # The marked test ran its own profile; the session's holds it as well.
    assert session.share("test_within_budget") > 0.3
    assert session.share("test_unmarked") > 0.02


def test_a_malformed_marker_fails_the_test_saying_why(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bad='''
import pytest

@pytest.mark.cprof(max_shares={"x": "5%"})
def test_typo():
    pass

@pytest.mark.cprof(max_cpu="fast")
def test_bad_amount():
    pass

@pytest.mark.cprof(max_share="5%")
def test_share_not_a_dict():
    pass

@pytest.mark.cprof(max_share={"json": 5})
def test_share_over_100_percent():
    pass

@pytest.mark.cprof(hz=0)
def test_bad_rate():
    pass
''')
    result = pytester.runpytest_subprocess(*plugin_args(), "-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(failed=5)
    out = result.stdout.str()
    assert "@pytest.mark.cprof has no max_shares" in out
    assert "'fast' is not an amount of nanoseconds" in out
    assert "max_share must be a dict of regex to budget" in out
    assert "is 500%, over 100%" in out
    assert "hz must be a number from 1 to 100000, not 0" in out
    assert "Traceback" not in out
