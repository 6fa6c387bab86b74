"""cprof check: a profile against budgets and a baseline, for CI (exit 1 when over)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..ci.check import BudgetError, CheckResult, as_runs, check
from ..pprof.profile import load
from .analysis import output_stem

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Sequence


def _budgets(values: Sequence[str], option: str) -> dict[str, str]:
    """``--max-share 'REGEX=5%'`` (repeatable) as {REGEX: "5%"}; the budget
    follows the last '=', so the regex may hold '=' itself."""
    budgets: dict[str, str] = {}
    for value in values:
        key, sep, budget = value.rpartition("=")
        if not sep or not key or not budget:
            raise BudgetError(f"{option} {value!r}: write it as 'NAME=BUDGET', e.g. "
                              f"{option} 'json\\.=5%'")
        if key in budgets:
            raise BudgetError(f"{option} {key!r} is given twice ({budgets[key]} and {budget})")
        budgets[key] = budget
    return budgets


def _writable(path: str, option: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
        raise BudgetError(f"{option} {path}: {directory} is not a writable directory")


def _failing_type(result: CheckResult) -> str:
    """The sample type a failure's flame graph shows: a failing total's own,
    else the one shares and regressions are of."""
    return next((f.subject for f in result.failures if f.kind == "total"), result.sample_type)


def cmd_check(args: argparse.Namespace) -> int:
    """Exit 0 when every budget holds, 1 when one does not, 2 when the
    command cannot be carried out (a bad option, an unreadable profile)."""
    first = args.profile[0]
    flame = args.flame or os.path.join(os.path.dirname(first), output_stem(first) + (
        ".diff.html" if args.baseline else ".html"))
    try:
        if args.max_regression is not None and args.baseline is None:
            raise BudgetError("--max-regression needs --baseline")
        if not flame.lower().endswith((".html", ".svg")):
            raise BudgetError(f"--flame {flame}: the flame graph is .html or .svg")
        _writable(flame, "--flame")
        if args.junit:
            _writable(args.junit, "--junit")
        profile = as_runs([load(p) for p in args.profile])
        baseline = as_runs([load(p) for p in args.baseline]) if args.baseline else None
        source = first if len(args.profile) == 1 else f"{first} (+{len(args.profile) - 1} runs)"
        result = check(profile, max_share=_budgets(args.max_share, "--max-share"),
                       max_total=_budgets(args.max_total, "--max-total"),
                       sample_type=args.sample_index, baseline=baseline,
                       max_regression=args.max_regression, focus=args.focus, alpha=args.alpha,
                       source=source)
    except (BudgetError, OSError, ValueError) as e:  # ProfileError is a ValueError
        print(f"cprof check: {e}", file=sys.stderr)
        return 2
    if not result.passed:
        shown = profile.diff(baseline) if baseline is not None else profile
        what = f"{args.baseline[0]} -> {first}" if baseline is not None else first
        shown.flamegraph(flame, sample_type=_failing_type(result), title=f"cprof check: {what}")
        result.flamegraph = flame
    print(result.report(), end="")
    if args.junit:
        Path(args.junit).write_text(result.junit(), encoding="utf-8")
    if os.environ.get("GITHUB_ACTIONS") == "true":
        print(result.github_annotations(), end="")
    return 0 if result.passed else 1
