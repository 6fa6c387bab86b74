"""Budgets and regressions (cprof.check): shares, totals, a baseline judged
by Mann-Whitney U, and the reports CI reads."""

from __future__ import annotations

import random
from pathlib import Path
import xml.etree.ElementTree as ET
from typing import Sequence

import pytest

import cprof
from cprof.ci.check import BudgetError, parse_amount, parse_fraction

MS = 1_000_000


def cpu_profile(work: dict[str, int], runs: Sequence[dict[str, int]] | None = None) -> cprof.Profile:
    """A CPU profile: ``work`` maps a function (called from main) to its
    milliseconds; with ``runs``, one such map per run, labelled run=1..N."""
    b = cprof.ProfileBuilder([("samples", "count"), ("cpu", "nanoseconds")],
                             period_type=("cpu", "nanoseconds"), period=10 * MS)
    for i, each in enumerate(runs or [work], start=1):
        for name, ms in each.items():
            labels = {"run": i} if runs else {}
            b.add([ms // 10, ms * MS], [(name, "/src/app.py", 10), ("app.main", "/src/app.py", 1)],
                  labels=labels)
    return b.build()


def test_shares_over_and_under_budget() -> None:
    p = cpu_profile({"json.dumps": 70, "app.compute": 930})
    result = cprof.check(p, max_share={r"json\.": "5%", "compute": 0.99})
    assert not result and not result.passed
    over, under = result.findings
    assert (over.passed, over.subject, over.budget) == (False, r"json\.", 0.05)
    assert over.measured == pytest.approx(0.07)
    assert over.message == r"share of 'json\.' is 7.0% of cpu, budget 5.0%"
    assert under.passed and under.measured == pytest.approx(0.93)
    assert result.failures == [over]
    assert "FAIL  share of 'json\\.' is 7.0%" in result.report()


def test_totals_in_units() -> None:
    p = cpu_profile({"app.compute": 1500})
    assert cprof.check(p, max_total={"cpu": "2s"}).passed
    result = cprof.check(p, max_total={"cpu": "1200ms"})
    assert not result and result.findings[0].message == "total cpu is 1.5s, budget 1.2s"
    assert cprof.check(p, max_total={"cpu": 1.4}).passed is False  # a bare number: seconds
    runs = cpu_profile({}, runs=[{"app.compute": 900}, {"app.compute": 1000},
                                 {"app.compute": 5000}])
    per_run = cprof.check(runs, max_total={"cpu": "2s"}).findings[0]
    assert per_run.passed and per_run.measured == 1000 * MS  # the median run
    assert "per run (median of 3)" in per_run.message


def test_parsing_budgets() -> None:
    assert parse_fraction("5%") == 0.05 and parse_fraction(0.2) == 0.2
    assert parse_fraction("0.5") == 0.5 and parse_fraction("12.5 %") == 0.125
    assert parse_amount("64MB", "bytes") == 64 * 2**20 == parse_amount("64MiB", "bytes")
    assert parse_amount("1.5kB", "bytes") == 1536
    assert parse_amount("250ms", "nanoseconds") == 250 * MS
    assert parse_amount(2, "nanoseconds") == 2e9 and parse_amount(100, "bytes") == 100
    for bad, call in (("five", lambda v: parse_fraction(v)), ("-5%", lambda v: parse_fraction(v)),
                      ("3 parsecs", lambda v: parse_amount(v, "nanoseconds")),
                      ("12XB", lambda v: parse_amount(v, "bytes"))):
        with pytest.raises(BudgetError):
            call(bad)
    p = cpu_profile({"app.compute": 10})
    with pytest.raises(BudgetError, match="not a regular expression"):
        cprof.check(p, max_share={"json(": "5%"})
    with pytest.raises(BudgetError, match="no sample type 'alloc_space'"):
        cprof.check(p, max_total={"alloc_space": "1MB"})
    with pytest.raises(BudgetError, match="needs a baseline"):
        cprof.check(p, max_regression="10%")


def noisy_runs(rng: random.Random, ms: float, n: int, noise: float) -> list[dict[str, int]]:
    return [{"app.handle": int(ms * rng.uniform(1 - noise, 1 + noise)), "app.other": 100}
            for _ in range(n)]


def test_a_real_regression_is_found() -> None:
    rng = random.Random(3)
    base = cpu_profile({}, runs=noisy_runs(rng, 1000, 7, 0.05))
    new = cpu_profile({}, runs=noisy_runs(rng, 1300, 7, 0.05))
    result = cprof.check(new, baseline=base, max_regression="10%", focus=r"handle")
    finding = result.findings[0]
    assert not result and finding.kind == "regression"
    assert 0.2 < finding.measured < 0.4
    assert "median of 7 runs" in finding.message and "Mann-Whitney p=" in finding.message
    assert "'handle'" in finding.message


def test_no_regression_when_nothing_changed() -> None:
    rng = random.Random(4)
    base = cpu_profile({}, runs=noisy_runs(rng, 1000, 7, 0.05))
    new = cpu_profile({}, runs=noisy_runs(rng, 1000, 7, 0.05))
    assert cprof.check(new, baseline=base, max_regression="10%").passed


def test_the_noise_guard_keeps_a_noisy_rise_from_failing() -> None:
    """Medians 15% apart, but the runs overlap so much that Mann-Whitney
    cannot tell them apart: within the noise, passed."""
    base = cpu_profile({}, runs=[{"app.handle": ms} for ms in (600, 900, 1000, 1400, 1700)])
    new = cpu_profile({}, runs=[{"app.handle": ms} for ms in (500, 950, 1150, 1300, 1800)])
    finding = cprof.check(new, baseline=base, max_regression="10%").findings[0]
    assert finding.measured == pytest.approx(0.15)
    assert finding.passed and "within the noise" in finding.message


def test_too_few_runs_are_said_to_be_too_few() -> None:
    base = cpu_profile({}, runs=[{"app.handle": ms} for ms in (100, 101, 102)])
    new = cpu_profile({}, runs=[{"app.handle": ms} for ms in (200, 201, 202)])
    finding = cprof.check(new, baseline=base).findings[0]
    # 3 and 3 runs: p can be no smaller than 0.05, so the change is not called real.
    assert finding.passed and "can never reach p < 0.05" in finding.message


def test_single_runs_compare_directly() -> None:
    base, new = cpu_profile({"app.handle": 1000}), cpu_profile({"app.handle": 1200})
    finding = cprof.check(new, baseline=base, max_regression="10%").findings[0]
    assert not finding.passed and "single runs: no statistical test" in finding.message
    assert cprof.check(new, baseline=base, max_regression="25%").passed


def test_junit_and_github_annotations() -> None:
    p = cpu_profile({"json.dumps": 70, "app.compute": 930})
    result = cprof.check(p, max_share={r"json\.": "5%", "compute": "99%"}, source="app.prof")
    suite = ET.fromstring(result.junit())
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    cases = suite.findall("testcase")
    assert [c.find("failure") is not None for c in cases] == [True, False]
    failure = cases[0].find("failure")
    assert failure is not None and "7.0%" in (failure.get("message") or "")
    annotations = result.github_annotations()
    assert annotations == ("::error title=cprof check%3A share::share of 'json\\.' is 7.0%25 "
                           "of cpu, budget 5.0%25 (app.prof)\n")


def test_a_run_without_samples_in_focus_counts_zero() -> None:
    """--focus keeps every run of the unfocused profile: a run where the
    focused code took no sample is a 0, not a run fewer."""
    base = cpu_profile({}, runs=[{"app.handle": ms, "app.other": 100}
                                 for ms in (100, 110, 120, 130, 140)])
    new = cpu_profile({}, runs=[{"app.other": 100}] + [{"app.handle": 200, "app.other": 100}] * 4)
    finding = cprof.check(new, baseline=base, focus="handle").findings[0]
    assert "median of 5 runs" in finding.message and "of 5 " in finding.message
    with pytest.raises(BudgetError, match="matches no function in either profile"):
        cprof.check(new, baseline=base, focus="nothing_like_this")


def test_budgets_that_cannot_be_meant_are_refused() -> None:
    p = cpu_profile({"app.compute": 100})
    with pytest.raises(BudgetError, match="is 500%, over 100%"):
        cprof.check(p, max_share={"compute": 5})
    with pytest.raises(BudgetError, match="alpha must lie between 0 and 1"):
        cprof.check(p, baseline=p, alpha=2)
    with pytest.raises(BudgetError, match="nothing to check"):
        cprof.check(p)
    typo = cprof.check(p, max_share={"compuet": "5%"}).findings[0]
    assert typo.passed and "no function matches: a typo?" in typo.message


def test_a_path_is_checked_as_the_profile_it_holds(tmp_path: Path) -> None:
    p = cpu_profile({"json.dumps": 70, "app.compute": 930})
    p.write(tmp_path / "app.prof")
    result = cprof.check(tmp_path / "app.prof", max_share={r"json\.": "5%"})
    assert not result.passed and result.source == str(tmp_path / "app.prof")


def test_profiles_of_single_runs_are_runs_together() -> None:
    from cprof.ci.check import as_runs
    base = as_runs([cpu_profile({"app.handle": ms}) for ms in (100, 102, 98, 101, 99)])
    new = as_runs([cpu_profile({"app.handle": ms}) for ms in (150, 149, 152, 151, 148)])
    finding = cprof.check(new, baseline=base).findings[0]
    assert not finding.passed and "median of 5 runs" in finding.message
