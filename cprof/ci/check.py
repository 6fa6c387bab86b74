"""check: performance budgets and regressions, for CI.

``cprof.check(profile, max_share={r"json\\.": "5%"})`` says whether a
profile keeps its budgets: shares of the default sample type (pprof's cum
%, which machines' speed does not change), totals of a sample type, and a
regression against a baseline, called real only when the Mann-Whitney U
test says the new runs are slower than chance allows (cprof.stats).

``cprof check`` (cli.py), the pytest marker (pytest_plugin.py) and the
Python API share this module; ``CheckResult`` prints as text, as JUnit XML
and as GitHub Actions annotations.
"""

from __future__ import annotations

import math
import os
import re
import statistics
from dataclasses import dataclass, field
from xml.etree import ElementTree

from ..pprof.model import Sample
from ..pprof.profile import Profile, load
from ..pprof.units import format_value
from .stats import mann_whitney_greater, smallest_p_value

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Mapping, Sequence

Amount = int | float | str
RUN_LABEL = "run"
DEFAULT_ALPHA = 0.05

_NUMBER = r"([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)"
_FRACTION = re.compile(_NUMBER + r"\s*(%?)\Z")
_QUANTITY = re.compile(_NUMBER + r"\s*([a-zA-Z]*)\Z")
# Units a budget may be written in, by the sample type's unit; binary sizes
# as pprof prints them (kB = 1024 B), with the IEC names as synonyms.
_UNITS: dict[str, dict[str, float]] = {
    "nanoseconds": {"": 1e9, "ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "min": 60e9,
                    "h": 3600e9},
    "bytes": {"": 1, "b": 1, "kb": 1024, "kib": 1024, "mb": 1024**2, "mib": 1024**2,
              "gb": 1024**3, "gib": 1024**3, "tb": 1024**4, "tib": 1024**4},
}


class BudgetError(ValueError):
    """A budget or an option of a check that cannot be understood."""


def parse_fraction(value: Amount, what: str = "budget", most: float | None = None) -> float:
    """0.05, "0.05" or "5%" -> 0.05 (at most ``most``, if given)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        fraction = float(value)
    else:
        m = _FRACTION.match(str(value).strip())
        if m is None:
            raise BudgetError(f"{what} {value!r} is not a fraction (0.05) or a percentage (5%)")
        fraction = float(m.group(1)) / (100 if m.group(2) else 1)
    if not 0 <= fraction or math.isnan(fraction):
        raise BudgetError(f"{what} {value!r} is negative")
    if most is not None and fraction > most:
        raise BudgetError(f"{what} {value!r} is {100 * fraction:g}%, over {100 * most:g}%: "
                          f"write a percentage ('5%') or a fraction (0.05)")
    return fraction


def parse_amount(value: Amount, unit: str, what: str = "budget") -> float:
    """A budget in a sample type's unit: a number (seconds for time, bytes
    for memory, the unit itself otherwise) or a string with a unit ("500ms",
    "2s", "64MB", "1.5GiB")."""
    units = _UNITS.get(unit, {"": 1})
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        amount, name = float(value), ""
    else:
        m = _QUANTITY.match(str(value).strip())
        if m is None or m.group(2).lower() not in units:
            known = ", ".join(u for u in units if u) or "none"
            raise BudgetError(f"{what} {value!r} is not an amount of {unit} (units: {known})")
        amount, name = float(m.group(1)), m.group(2).lower()
    if amount < 0 or math.isnan(amount):
        raise BudgetError(f"{what} {value!r} is negative")
    return amount * units[name]


def _pattern(regex: str) -> re.Pattern[str]:
    try:
        return re.compile(regex)
    except re.error as e:
        raise BudgetError(f"{regex!r} is not a regular expression: {e}") from None


@dataclass(frozen=True)
class Finding:
    """One budget checked: what (``kind``: share, total or regression, of
    ``subject``), the value measured, the budget, and whether it held."""

    kind: str
    subject: str
    measured: float
    budget: float
    passed: bool
    message: str

    def __str__(self) -> str:
        return f"{'ok  ' if self.passed else 'FAIL'}  {self.message}"


@dataclass
class CheckResult:
    """The findings of one check; true when every budget held."""

    source: str
    sample_type: str
    findings: list[Finding] = field(default_factory=list)
    flamegraph: str | None = None  # written for a failure by the CLI and the pytest plugin

    @property
    def passed(self) -> bool:
        return all(f.passed for f in self.findings)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if not f.passed]

    def report(self) -> str:
        verdict = "passed" if self.passed else f"FAILED ({len(self.failures)} over budget)"
        lines = [f"cprof check {self.source} ({self.sample_type}): {verdict}"]
        lines += [f"  {f}" for f in self.findings]
        if self.flamegraph:
            lines.append(f"  flame graph: {self.flamegraph}")
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.report()

    def junit(self) -> str:
        """JUnit XML: a test case per budget, a failure for each one over."""
        suite = ElementTree.Element("testsuite", name="cprof check", tests=str(len(self.findings)),
                                    failures=str(len(self.failures)), errors="0")
        for f in self.findings:
            case = ElementTree.SubElement(suite, "testcase", classname=f"cprof.{f.kind}",
                                          name=f"{f.kind} of {f.subject} in {self.source}")
            if not f.passed:
                failure = ElementTree.SubElement(case, "failure", message=f.message,
                                                 type="budget")
                failure.text = f.message + (f"\nflame graph: {self.flamegraph}"
                                            if self.flamegraph else "")
        return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"

    def github_annotations(self) -> str:
        """GitHub Actions workflow commands: an error per budget over."""
        def data(text: str) -> str:
            return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

        def prop(text: str) -> str:  # a property's value also escapes ':' and ','
            return data(text).replace(":", "%3A").replace(",", "%2C")
        return "".join(f"::error title={prop('cprof check: ' + f.kind)}::"
                       f"{data(f.message + ' (' + self.source + ')')}\n"
                       for f in self.failures)


def _percent(x: float) -> str:
    return f"{100 * x:.1f}%"


def runs_of(profile: Profile) -> list[object]:
    """The runs a profile holds: the values of its ``run`` label (cprof
    record --repeat), or [None] for a profile of one run."""
    runs = {s.labels.get(RUN_LABEL) for s in profile.samples}
    if runs and None not in runs:
        return sorted(runs, key=str)
    return [None]


def run_values(profile: Profile, index: int, runs: list[object] | None = None) -> list[float]:
    """Per-run totals of sample type ``index``, for each of ``runs`` (by
    default the profile's own: runs_of); a run without samples counts 0."""
    wanted = runs if runs is not None else runs_of(profile)
    totals: dict[object, float] = {run: 0.0 for run in wanted}
    for s in profile.samples:
        run = s.labels.get(RUN_LABEL) if wanted != [None] else None
        if run in totals:
            totals[run] += s.values[index]
    return [totals[run] for run in wanted]


def as_runs(profiles: Sequence[Profile]) -> Profile:
    """Several profiles of the same work as one profile of runs: each
    profile's samples labelled run=1, 2, ... (a profile that holds runs
    already keeps them apart: its run r of profile i becomes i*1000 + r)."""
    from ..pprof.ops import merge, with_samples
    if len(profiles) == 1:
        return profiles[0]
    labelled = []
    for i, p in enumerate(profiles, start=1):
        samples = []
        for s in p.samples:
            labels: dict[str, list[str | int]] = {}
            for key, value, _ in s.label_items:
                labels.setdefault(key, []).append(value)
            inner = s.labels.get(RUN_LABEL)
            labels[RUN_LABEL] = [i * 1000 + inner if isinstance(inner, int) else i]
            units = {key: unit for key, _, unit in s.label_items if unit}
            samples.append(Sample(s.values, s.locations, labels, num_units=units))
        labelled.append(with_samples(p, samples))
    return merge(labelled)


def _regression(profile: Profile, baseline: Profile, budget: float, sample_type: str,
                focus: str | None, alpha: float) -> Finding:
    new_runs, old_runs = runs_of(profile), runs_of(baseline)
    if focus is not None:
        _pattern(focus)
        profile, baseline = profile.filter(focus=focus), baseline.filter(focus=focus)
        if not profile.samples and not baseline.samples:
            raise BudgetError(f"--focus {focus!r} matches no function in either profile")
    try:
        base_index = baseline.sample_index(sample_type)
    except ValueError:
        raise BudgetError(f"the baseline has no sample type {sample_type!r}") from None
    unit = baseline.sample_types[base_index].unit
    new = run_values(profile, profile.sample_index(sample_type), new_runs)
    old = run_values(baseline, base_index, old_runs)
    subject = f"{sample_type}" + (f" in '{focus}'" if focus else "")
    old_median, new_median = statistics.median(old), statistics.median(new)
    change = (new_median - old_median) / old_median if old_median else (
        math.inf if new_median > 0 else 0.0)
    medians = (f"median of {len(old)} run{'s' * (len(old) != 1)} "
               f"{format_value(int(old_median), unit)} -> of {len(new)} "
               f"{format_value(int(new_median), unit)}")
    head = f"regression of {subject}: {'+' if change >= 0 else ''}{_percent(change)} ({medians})"
    if len(old) < 2 or len(new) < 2:
        passed = change <= budget
        note = ("single runs: no statistical test; record with --repeat 5 or more for one")
    else:
        test = mann_whitney_greater(old, new)
        floor = smallest_p_value(len(old), len(new))
        significant = test.p_value < alpha
        passed = change <= budget or not significant
        note = f"Mann-Whitney p={test.p_value:.3g}"
        if change > budget and not significant:
            note += f" >= {alpha:g}: within the noise"
        if floor >= alpha:
            note += (f"; {len(old)} and {len(new)} runs can never reach p < {alpha:g}: "
                     f"use 5 or more of each")
    return Finding("regression", subject, change, budget, passed,
                   f"{head}, budget +{_percent(budget)}; {note}")


def check(profile: Profile | str | os.PathLike[str], *,
          max_share: Mapping[str, Amount] | None = None,
          max_total: Mapping[str, Amount] | None = None, sample_type: str | None = None,
          baseline: Profile | str | os.PathLike[str] | None = None,
          max_regression: Amount | None = None, focus: str | None = None,
          alpha: float = DEFAULT_ALPHA, source: str | None = None) -> CheckResult:
    """Check ``profile`` against budgets and return the findings.

    - ``max_share``: regex -> largest share (0.05 or "5%") of ``sample_type``
      (default: the profile's default) in samples with a matching function
      anywhere on their stack (``Profile.share``, pprof's cum %).
    - ``max_total``: sample type -> largest total, in its unit or with one
      ("2s", "500ms", "64MB"; a bare number is seconds or bytes); of each
      run (the median) for a profile of several runs.
    - ``baseline`` and ``max_regression`` ("10%"): the largest rise of
      ``sample_type``'s total (within ``focus``, a regex, if given) over the
      baseline's. With several runs a side (the ``run`` label of ``cprof
      record --repeat``), the rise counts only when the Mann-Whitney U test
      finds the new runs larger at level ``alpha``; single runs are compared
      directly.
    """
    if max_regression is not None and baseline is None:
        raise BudgetError("max_regression needs a baseline to compare with")
    if not (max_share or max_total or baseline is not None):
        raise BudgetError("nothing to check: give max_share, max_total or a baseline")
    if not 0 < alpha < 1:
        raise BudgetError(f"alpha must lie between 0 and 1, not {alpha!r}")
    if not isinstance(profile, Profile):
        source = source or os.fspath(profile)
        profile = load(profile)
    if baseline is not None and not isinstance(baseline, Profile):
        baseline = load(baseline)
    source = source or "profile"
    try:
        index = profile.sample_index(sample_type)
    except ValueError:
        types = ", ".join(t.type for t in profile.sample_types)
        raise BudgetError(f"no sample type {sample_type!r} in {source} (it has {types})") from None
    stype = profile.sample_types[index]
    result = CheckResult(source, stype.type)
    for regex, budget in (max_share or {}).items():
        rx = _pattern(regex)
        limit = parse_fraction(budget, f"share budget for {regex!r}", most=1.0)
        share = profile.share(regex, index)
        matched = share > 0 or any(rx.search(f.name) for f in profile.functions)
        result.findings.append(Finding(
            "share", regex, share, limit, share <= limit,
            f"share of '{regex}' is {_percent(share)} of {stype.type}, budget {_percent(limit)}"
            + ("" if matched else " (no function matches: a typo?)")))
    for name, budget in (max_total or {}).items():
        try:
            t = profile.sample_index(name)
        except ValueError:
            raise BudgetError(f"no sample type {name!r} in {source} for a total budget") from None
        unit = profile.sample_types[t].unit
        limit = parse_amount(budget, unit, f"{name} budget")
        runs = run_values(profile, t)
        total = statistics.median(runs)
        what = f"total {name}" if len(runs) == 1 else f"{name} per run (median of {len(runs)})"
        result.findings.append(Finding(
            "total", name, total, limit, total <= limit,
            f"{what} is {format_value(int(total), unit)}, budget "
            f"{format_value(int(limit), unit)}"))
    if baseline is not None:
        budget = parse_fraction(max_regression if max_regression is not None else "10%",
                                "max_regression")
        result.findings.append(_regression(profile, baseline, budget, stype.type, focus, alpha))
    return result
