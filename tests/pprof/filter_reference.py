"""The filters as cprof first wrote them in Python, sample by sample: the
reference the C filters (csrc/analysis/filter.c) are compared with on random
profiles (test_filter_engine.py). Kept as it was, apart from its imports."""


from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING, Callable, Sequence

from cprof.pprof.model import Line, Location, Sample
from cprof.pprof.ops import bulk, compile_pattern, unique_locations, with_samples
from cprof.pprof.profile import Profile
from cprof.pprof.units import scale

if TYPE_CHECKING:
    from cprof.pprof.ops import Pattern

TagFilter = Callable[[Sample], bool]


@bulk
def filter(
    profile: Profile, *,
    focus: Pattern | None = None,
    ignore: Pattern | None = None,
    hide: Pattern | None = None,
    show: Pattern | None = None,
    show_from: Pattern | None = None,
    prune_from: Pattern | None = None,
    tagfocus: str | None = None,
    tagignore: str | None = None,
) -> Profile:
    """A new profile with pprof's filters applied; each is a regular
    expression (text or compiled), or None (or "", as pprof's empty flag)
    for none:

    - ``focus``: keep the samples with a matching frame;
    - ``ignore``: drop the samples with a matching frame;
    - ``hide``: remove matching frames from the stacks;
    - ``show``: keep only the matching frames;
    - ``show_from``: drop the frames above (the callers of) the outermost
      matching frame, and the samples without one;
    - ``prune_from``: drop the frames below (the callees of) the innermost
      frame whose function name matches;
    - ``tagfocus`` / ``tagignore``: keep / drop the samples whose labels
      match ``[KEY=]VALUES``: VALUES is a numeric range with optional units
      (``16kb``, ``1kb:1mb``, ``:512b``, ``4mb:``, ``1ms:2ms``; the label is
      converted to the range's unit, so a range without a unit only matches
      labels whose unit pprof does not know: ``bytes=:512`` matches no label
      in bytes) or regular expressions separated by commas. With a KEY, any
      expression matching one of the key's values matches; without one,
      every expression must match some ``key:value`` of the sample.

    As pprof does, any of focus, ignore, hide or show drops the samples
    without locations, and the samples all of whose frames were hidden."""
    rx = {name: compile_pattern(name, value) for name, value in (
        ("focus", focus), ("ignore", ignore), ("hide", hide), ("show", show),
        ("show_from", show_from), ("prune_from", prune_from)) if value not in (None, "")}
    tag_focus = tag_filter("tagfocus", tagfocus, profile) if tagfocus else None
    tag_ignore = tag_filter("tagignore", tagignore, profile) if tagignore else None
    samples: Sequence[Sample] = profile.samples
    if rx.keys() & {"focus", "ignore", "hide", "show"}:
        samples = _by_name(samples, rx.get("focus"), rx.get("ignore"), rx.get("hide"),
                           rx.get("show"))
    if "show_from" in rx:
        samples = _show_from(samples, rx["show_from"])
    if tag_focus is not None or tag_ignore is not None:
        samples = [s for s in samples if (tag_focus is None or tag_focus(s))
                   and (tag_ignore is None or not tag_ignore(s))]
    if "prune_from" in rx:
        samples = _prune_from(samples, rx["prune_from"])
    return with_samples(profile, samples)


# --- frames -------------------------------------------------------------------------


def _line_matches(rx: re.Pattern[str], ln: Line) -> bool:
    fn = ln.function
    return fn is not None and (rx.search(fn.name) is not None
                               or rx.search(fn.filename) is not None)


def _mapping_matches(rx: re.Pattern[str], loc: Location) -> bool:
    return loc.mapping is not None and rx.search(loc.mapping.filename) is not None


def _matches(rx: re.Pattern[str], loc: Location) -> bool:
    return any(_line_matches(rx, ln) for ln in loc.lines) or _mapping_matches(rx, loc)


def _with_lines(loc: Location, lines: tuple[Line, ...]) -> Location:
    if lines == loc.lines:
        return loc
    return Location(loc.id, loc.address, loc.mapping, lines, loc.is_folded)


def _by_name(samples: Sequence[Sample], focus: re.Pattern[str] | None,
             ignore: re.Pattern[str] | None, hide: re.Pattern[str] | None,
             show: re.Pattern[str] | None) -> list[Sample]:
    focused: set[int] = set()
    ignored: set[int] = set()
    changed: dict[int, Location | None] = {}  # new lines, or None when hidden
    for i, loc in unique_locations(samples).items():
        if ignore is not None and _matches(ignore, loc):
            ignored.add(i)
        elif focus is None or _matches(focus, loc):
            focused.add(i)
        lines = loc.lines
        hidden = False
        if hide is not None and _matches(hide, loc):
            lines = () if _mapping_matches(hide, loc) else tuple(
                ln for ln in lines if not _line_matches(hide, ln))
            hidden = not lines
        if show is not None:
            if not _mapping_matches(show, loc):
                lines = tuple(ln for ln in lines if ln.function is None
                              or _line_matches(show, ln))
            hidden = not lines
        if hidden:
            changed[i] = None
        elif lines != loc.lines:
            changed[i] = _with_lines(loc, lines)
    out = []
    for s in samples:
        ids = list(map(id, s.locations))
        if focused.isdisjoint(ids) or not ignored.isdisjoint(ids):
            continue
        if changed.keys().isdisjoint(ids):
            out.append(s)
            continue
        kept = tuple(changed[i] if i in changed else loc
                     for i, loc in zip(ids, s.locations))
        stack = tuple(loc for loc in kept if loc is not None)
        if stack:
            out.append(Sample._raw(s.values, stack, s.label_items))
    return out


def _cut(samples: Sequence[Sample], cut_at: dict[int, Location],
         from_root: bool) -> list[Sample]:
    """Each sample cut at its outermost (``from_root``) or innermost location
    in ``cut_at``, keeping the leaf side or the root side of it, with those
    locations replaced by their values in ``cut_at``; a sample with none is
    dropped (from_root) or kept as it is."""
    out = []
    for s in samples:
        ids = list(map(id, s.locations))
        if cut_at.keys().isdisjoint(ids):
            if not from_root:
                out.append(s)
            continue
        if from_root:
            at = next(i for i in range(len(ids) - 1, -1, -1) if ids[i] in cut_at)
            part = zip(ids[:at + 1], s.locations[:at + 1])
        else:
            at = next(i for i, x in enumerate(ids) if x in cut_at)
            part = zip(ids[at:], s.locations[at:])
        out.append(Sample._raw(s.values, tuple(cut_at.get(i, loc) for i, loc in part),
                               s.label_items))
    return out


def _show_from(samples: Sequence[Sample], rx: re.Pattern[str]) -> list[Sample]:
    # Each location with a match: its lines up to the outermost match.
    matched: dict[int, Location] = {}
    for i, loc in unique_locations(samples).items():
        if _mapping_matches(rx, loc):
            matched[i] = loc
            continue
        last = next((j for j in range(len(loc.lines) - 1, -1, -1)
                     if _line_matches(rx, loc.lines[j])), -1)
        if last >= 0:
            matched[i] = _with_lines(loc, loc.lines[:last + 1])
    return _cut(samples, matched, from_root=True)


_BRACKETS = re.compile(r"\(anonymous namespace\)|operator\(\)|\(")


def _simplify(name: str) -> str:
    """pprof's simplifyFunc: C++ argument lists cut off."""
    name = name.removeprefix(".")
    for m in _BRACKETS.finditer(name):
        if m.group() == "(":
            return name[:m.start()]
    return name


def _prune_from(samples: Sequence[Sample], rx: re.Pattern[str]) -> list[Sample]:
    # Each location with a matching function name: its lines from the innermost match.
    matched: dict[int, Location] = {}
    for i, loc in unique_locations(samples).items():
        for j, ln in enumerate(loc.lines):
            fn = ln.function
            if fn is not None and fn.name and rx.search(_simplify(fn.name)) is not None:
                matched[i] = _with_lines(loc, loc.lines[j:])
                break
    return _cut(samples, matched, from_root=False)


# --- tags ------------------------------------------------------------------------------


def num_label_units(profile: Profile) -> dict[str, str]:
    """pprof's NumLabelUnits: each numeric label key's unit, the first one
    given, else "bytes" for "alignment" and "request", else the key itself."""
    units: dict[str, str] = {}
    for s in profile.samples:
        for key, value, unit in s.label_items:
            if isinstance(value, int) and not units.get(key):
                units[key] = unit
    for key, unit in units.items():
        if not unit:
            units[key] = "bytes" if key in ("alignment", "request") else key
    return units


_RANGE = re.compile(r"([+-]?[0-9]+)([A-Za-z]+)?")

NumFilter = Callable[[int, str], bool]


def parse_range(text: str) -> NumFilter | None:
    """pprof's tag range: ``32kb`` (equal), ``:64kb`` (at most), ``4mb:`` (at
    least) or ``12kb:64mb`` (between, inclusive), as a test of a value in a
    unit; None when ``text`` is not a range (it is then a regular expression)."""
    found = list(itertools.islice(_RANGE.finditer(text), 2))
    if not found:
        return None
    low, low_unit = int(found[0].group(1)), found[0].group(2) or ""
    value, unit = scale(low, low_unit, low_unit)

    def scaled(v: int, u: str) -> float | None:
        sv, su = scale(v, u, unit)
        return sv if su == unit else None

    if len(found) == 1:
        match = found[0].group()
        if text == match:
            return lambda v, u: scaled(v, u) == value
        if text == match + ":":
            return lambda v, u: (sv := scaled(v, u)) is not None and sv >= value
        if text == ":" + match:
            return lambda v, u: (sv := scaled(v, u)) is not None and sv <= value
        return None
    if text != found[0].group() + ":" + found[1].group():
        return None
    high, high_unit = scale(int(found[1].group(1)), found[1].group(2) or "", unit)
    if high_unit != unit:
        return None
    return lambda v, u: (sv := scaled(v, u)) is not None and value <= sv <= high


def tag_filter(option: str, spec: str, profile: Profile) -> TagFilter:
    """The sample test of a -tagfocus / -tagignore value ``[KEY=]VALUES``;
    numeric labels are read in the units ``profile`` gives their keys."""
    if not isinstance(spec, str):
        raise TypeError(f"{option}: expected 'key=regex' or 'key=range', "
                        f"not {type(spec).__name__}")
    key, sep, values = spec.partition("=")
    if not sep:
        key, values = "", spec
    numeric = parse_range(values)
    if numeric is not None:
        test = numeric
        units = num_label_units(profile)
        if not key:
            return lambda s: any(isinstance(v, int) and test(v, units.get(k, k))
                                 for k, v, _ in s.label_items)
        unit = units.get(key, key)
        return lambda s: any(k == key and isinstance(v, int) and test(v, unit)
                             for k, v, _ in s.label_items)
    patterns = [compile_pattern(option, p) for p in values.split(",")]
    if not key:
        return lambda s: all(
            any(isinstance(v, str) and rx.search(f"{k}:{v}") is not None
                for k, v, _ in s.label_items)
            for rx in patterns)
    return lambda s: any(
        k == key and isinstance(v, str) and rx.search(v) is not None
        for rx in patterns for k, v, _ in s.label_items)


__all__ = ["filter", "num_label_units", "parse_range", "tag_filter"]
