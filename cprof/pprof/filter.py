"""filter: pprof's sample and frame filters (-focus, -ignore, -hide, -show,
-show_from, -prune_from, -tagfocus, -tagignore) as one pure function.

The semantics are google/pprof's (profile/filter.go, profile/prune.go,
internal/driver/driver_focus.go), applied in pprof's order: focus, ignore,
hide and show; then show_from; then the tag filters; then prune_from.
Regular expressions are searched (``re.search``) in the function name and the
file name of every line of a location (inlined lines included), and in the
file name of its mapping; prune_from looks at function names only.
"""

from __future__ import annotations

import itertools

from .ops import bulk, compile_pattern
from .profile import HEADER_FIELDS, Profile, label_items
from .units import scale

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Callable, Iterable

    from .. import _core
    from .model import LabelValue
    from .ops import Pattern

    LabelItems = tuple[tuple[str, LabelValue, str], ...]
    TagFilter = Callable[[LabelItems], bool]
    NumFilter = Callable[[int, str], bool]

# Each filter's bit in csrc/analysis/filter.h's cprof_filter_t.
_BITS = {"focus": 1, "ignore": 2, "hide": 4, "show": 8, "show_from": 16, "prune_from": 32}


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
    without locations, and the samples all of whose frames were hidden.

    The expressions are matched here, once per function and mapping (the tag
    filters once per distinct set of labels); the samples and locations are
    filtered in C (csrc/analysis/filter.c), so a loaded profile's samples
    never become Python objects. A location that loses lines becomes a new
    location with an id of its own."""
    rx = {name: compile_pattern(name, value) for name, value in (
        ("focus", focus), ("ignore", ignore), ("hide", hide), ("show", show),
        ("show_from", show_from), ("prune_from", prune_from)) if value not in (None, "")}
    data = profile._analysis_data()
    keep = _tag_verdicts(data, tagfocus, tagignore) if tagfocus or tagignore else None
    _, _, n_functions, n_mappings, _ = data.counts()
    function_bits = bytearray(n_functions)
    mapping_bits = bytearray(n_mappings)
    for i in range(n_functions):
        _, name, _, filename, _ = data.function(i)
        bits = 0
        for option, r in rx.items():
            if option == "prune_from":
                if name and r.search(_simplify(name)) is not None:
                    bits |= _BITS[option]
            elif r.search(name) is not None or r.search(filename) is not None:
                bits |= _BITS[option]
        function_bits[i] = bits
    for i in range(n_mappings):
        filename = data.mapping(i)[4]
        for option, r in rx.items():
            if option != "prune_from" and r.search(filename) is not None:
                mapping_bits[i] |= _BITS[option]
    active = sum(_BITS[option] for option in rx)
    out = Profile._from_data(data.filtered(active, function_bits, mapping_bits, keep))
    if profile._header() != out._header():  # fields changed since the profile was made
        for field, value in zip(HEADER_FIELDS, profile._header()):
            setattr(out, field, list(value) if isinstance(value, tuple) else value)
    # Reports of the result take percentages of the total before the filters
    # and list them, as pprof's do (Profile.report_total, active_filters).
    given: dict[str, Pattern | None] = {
        "focus": focus, "ignore": ignore, "hide": hide, "show": show, "show_from": show_from,
        "tagfocus": tagfocus, "tagignore": tagignore}
    legend = tuple(f"{k}={_text(v)}" for k in LEGEND if (v := given[k]) is not None and v != "")
    totals = tuple(profile.report_total(i) for i in range(len(profile.sample_types)))
    out._scope = (totals, tuple(profile.active_filters) + legend)
    return out


# pprof's filters in the order of its "Active filters:" legend (prune_from,
# applied last, is not listed there).
LEGEND = ("focus", "ignore", "hide", "show", "show_from", "tagfocus", "tagignore")


def _text(pattern: Pattern) -> str:
    return pattern if isinstance(pattern, str) else pattern.pattern


# Imported where used, not at the top: cprof top without a filter has no use for re.
_BRACKETS = r"\(anonymous namespace\)|operator\(\)|\("


def _simplify(name: str) -> str:
    """pprof's simplifyFunc: C++ argument lists cut off."""
    name = name.removeprefix(".")
    import re
    for m in re.finditer(_BRACKETS, name):
        if m.group() == "(":
            return name[:m.start()]
    return name


def _tag_verdicts(data: _core.ProfileData, tagfocus: str | None,
                  tagignore: str | None) -> bytes:
    """Per sample, whether the tag filters keep it: decided once per
    distinct set of labels."""
    raw_sets, set_of_sample = data.label_sets()
    sets = [label_items(raw) for raw in raw_sets]
    units = label_units(sets)
    focus = tag_filter("tagfocus", tagfocus, units) if tagfocus else None
    ignore = tag_filter("tagignore", tagignore, units) if tagignore else None
    verdict = [(focus is None or focus(items)) and (ignore is None or not ignore(items))
               for items in sets]
    return bytes(map(verdict.__getitem__, set_of_sample))


# --- tags ------------------------------------------------------------------------------


def label_units(label_sets: Iterable[LabelItems]) -> dict[str, str]:
    """pprof's NumLabelUnits over samples' labels: each numeric label key's
    unit, the first one given, else "bytes" for "alignment" and "request",
    else the key itself."""
    units: dict[str, str] = {}
    for items in label_sets:
        for key, value, unit in items:
            if isinstance(value, int) and not units.get(key):
                units[key] = unit
    for key, unit in units.items():
        if not unit:
            units[key] = "bytes" if key in ("alignment", "request") else key
    return units


def num_label_units(profile: Profile) -> dict[str, str]:
    """label_units of a profile's samples."""
    return label_units(s.label_items for s in profile.samples)


_RANGE = r"([+-]?[0-9]+)([A-Za-z]+)?"


def parse_range(text: str) -> NumFilter | None:
    """pprof's tag range: ``32kb`` (equal), ``:64kb`` (at most), ``4mb:`` (at
    least) or ``12kb:64mb`` (between, inclusive), as a test of a value in a
    unit; None when ``text`` is not a range (it is then a regular expression)."""
    import re
    found = list(itertools.islice(re.finditer(_RANGE, text), 2))
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


def tag_filter(option: str, spec: str, units: dict[str, str]) -> TagFilter:
    """The test of a sample's labels (``Sample.label_items``) for a
    -tagfocus / -tagignore value ``[KEY=]VALUES``; numeric labels are read in
    ``units`` (label_units)."""
    if not isinstance(spec, str):
        raise TypeError(f"{option}: expected 'key=regex' or 'key=range', "
                        f"not {type(spec).__name__}")
    key, sep, values = spec.partition("=")
    if not sep:
        key, values = "", spec
    numeric = parse_range(values)
    if numeric is not None:
        test = numeric
        if not key:
            return lambda items: any(isinstance(v, int) and test(v, units.get(k, k))
                                     for k, v, _ in items)
        unit = units.get(key, key)
        return lambda items: any(k == key and isinstance(v, int) and test(v, unit)
                                 for k, v, _ in items)
    patterns = [compile_pattern(option, p) for p in values.split(",")]
    if not key:
        return lambda items: all(
            any(isinstance(v, str) and rx.search(f"{k}:{v}") is not None
                for k, v, _ in items)
            for rx in patterns)
    return lambda items: any(
        k == key and isinstance(v, str) and rx.search(v) is not None
        for rx in patterns for k, v, _ in items)


__all__ = ["LEGEND", "filter", "label_units", "num_label_units", "parse_range", "tag_filter"]
