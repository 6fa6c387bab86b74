"""cprof.pprof.filter.filter on hand-built profiles: which samples and frames each
of pprof's filters keeps, with exact stacks and values.

Stacks are written root first in the comments (``main > work > leaf``) and
leaf first in the code, as Sample.locations holds them."""

from __future__ import annotations

import re

import pytest

import cprof
from cprof import Function, Line, Location, Mapping, Profile, Sample
from cprof.pprof.filter import filter, num_label_units, parse_range

EXE = Mapping(1, 0x400000, 0x500000, filename="/usr/bin/app", has_functions=True)
LIB = Mapping(2, 0x7F0000, 0x7F8000, filename="/usr/lib/libz.so", has_functions=True)


def fn(i: int, name: str, filename: str = "/src/app.py") -> Function:
    return Function(i, name, name, filename, 1)


F = {name: fn(i + 1, name) for i, name in enumerate(
    ["main", "A", "B", "C", "D", "work", "inner", "mid", "outer", "sync.(*Mutex).Lock"])}
F["util"] = fn(20, "helper", "/src/util.py")
LOC = {name: Location(i + 1, 0x401000 + i, EXE, (Line(f, 10 + i),))
       for i, (name, f) in enumerate(F.items())}
# inner inlined into mid, inlined into outer (last line: the caller).
INLINED = Location(50, 0x402000, EXE, (Line(F["inner"], 3), Line(F["mid"], 7),
                                       Line(F["outer"], 9)))
ZLIB = Location(60, 0x7F1000, LIB, ())  # an address in a library, no symbols


def stack(*frames: str | Location) -> tuple[Location, ...]:
    """Locations leaf first, by name or given."""
    return tuple(LOC[f] if isinstance(f, str) else f for f in frames)


def profile(*samples: Sample) -> Profile:
    return Profile([("samples", "count"), ("cpu", "nanoseconds")], samples,
                   period_type=("cpu", "nanoseconds"), period=10, mappings=[EXE, LIB])


def names(p: Profile) -> list[tuple[list[str], int]]:
    """Each sample's frames (every line, leaf first) with its first value."""
    return [([ln.function.name if ln.function else f"0x{loc.address:x}"
              for loc in s.locations for ln in (loc.lines or (Line(None),))], s.values[0])
            for s in p.samples]


BASIC = profile(
    Sample([1, 10], stack("A", "work", "main")),         # main > work > A
    Sample([2, 20], stack("B", "work", "main")),         # main > work > B
    Sample([4, 40], stack("util", "C", "main")),         # main > C > helper (util.py)
    Sample([8, 80], stack(ZLIB, "D", "main")),           # main > D > libz
)


# --- focus, ignore, hide, show -------------------------------------------------------------


def test_focus_keeps_samples_with_a_matching_function_file_or_mapping() -> None:
    assert names(filter(BASIC, focus="^work$")) == [
        (["A", "work", "main"], 1), (["B", "work", "main"], 2)]
    assert names(filter(BASIC, focus=r"util\.py")) == [(["helper", "C", "main"], 4)]
    assert names(filter(BASIC, focus="libz")) == [(["0x7f1000", "D", "main"], 8)]
    assert filter(BASIC, focus="nothing").samples == ()


def test_ignore_drops_samples_with_a_matching_frame_and_wins_over_focus() -> None:
    assert [v for _, v in names(filter(BASIC, ignore="^A$|libz"))] == [2, 4]
    assert [v for _, v in names(filter(BASIC, focus="work", ignore="^B$"))] == [1]


def test_hide_removes_frames_and_samples_left_empty() -> None:
    assert names(filter(BASIC, hide="^(work|main)$")) == [
        (["A"], 1), (["B"], 2), (["helper", "C"], 4), (["0x7f1000", "D"], 8)]
    hidden = profile(Sample([1, 10], stack("A")), Sample([2, 20], stack("B", "A")))
    assert names(filter(hidden, hide="^A$")) == [(["B"], 2)]


def test_show_keeps_only_matching_frames() -> None:
    assert names(filter(BASIC, show="^(A|B|C)$")) == [(["A"], 1), (["B"], 2), (["C"], 4)]
    # A location matched through its mapping keeps every line it has; with
    # none (an unsymbolized address) it has nothing to show, as in pprof.
    assert names(filter(BASIC, show="libz|^D$")) == [(["D"], 8)]
    assert names(filter(BASIC, hide="libz")) == [(["A", "work", "main"], 1),
                                                 (["B", "work", "main"], 2),
                                                 (["helper", "C", "main"], 4), (["D", "main"], 8)]


def test_focus_sees_frames_before_hide_removes_them() -> None:
    assert names(filter(BASIC, focus="^A$", hide="^A$")) == [(["work", "main"], 1)]


def test_hide_and_show_work_line_by_line_in_inlined_locations() -> None:
    p = profile(Sample([3, 30], stack(INLINED, "main")))
    assert names(filter(p, hide="^mid$")) == [(["inner", "outer", "main"], 3)]
    assert names(filter(p, show="^(mid|main)$")) == [(["mid", "main"], 3)]
    assert names(filter(p, focus="^mid$")) == [(["inner", "mid", "outer", "main"], 3)]


def test_name_filters_drop_samples_without_locations_tag_filters_do_not() -> None:
    p = profile(Sample([5, 50], (), {"k": "v"}), Sample([1, 10], stack("A")))
    assert [s.values for s in filter(p, ignore="nothing").samples] == [(1, 10)]
    assert [s.values for s in filter(p, tagfocus="k=v").samples] == [(5, 50)]


# --- show_from and prune_from ----------------------------------------------------------------


def test_show_from_keeps_frames_from_the_outermost_match() -> None:
    # pprof's example: frames [A, B, C, B] with A the root.
    p = profile(Sample([1, 10], stack("B", "C", "B", "A")))
    assert names(filter(p, show_from="^A$")) == [(["B", "C", "B", "A"], 1)]
    assert names(filter(p, show_from="^B$")) == [(["B", "C", "B"], 1)]
    assert names(filter(p, show_from="^C$")) == [(["B", "C"], 1)]
    assert filter(p, show_from="^D$").samples == ()


def test_show_from_cuts_the_callers_inside_an_inlined_location() -> None:
    p = profile(Sample([1, 10], stack(INLINED, "main")))
    assert names(filter(p, show_from="^mid$")) == [(["inner", "mid"], 1)]
    # Every matching location is cut at its own outermost match, even below
    # the frame the sample is cut at.
    assert names(filter(p, show_from=r"^(inner|main)$")) == [(["inner", "main"], 1)]


def test_prune_from_drops_the_callees_of_the_innermost_match() -> None:
    # pprof's example: [A, B, C, B, D] with A the leaf.
    p = profile(Sample([1, 10], stack("A", "B", "C", "B", "D")))
    assert names(filter(p, prune_from="^A$")) == [(["A", "B", "C", "B", "D"], 1)]
    assert names(filter(p, prune_from="^B$")) == [(["B", "C", "B", "D"], 1)]
    assert names(filter(p, prune_from="^D$")) == [(["D"], 1)]
    assert names(filter(p, prune_from="^E$")) == [(["A", "B", "C", "B", "D"], 1)]


def test_prune_from_cuts_inlined_callees_and_reads_names_as_pprof() -> None:
    p = profile(Sample([1, 10], stack(INLINED, "main")),
                Sample([2, 20], stack("sync.(*Mutex).Lock", "work", "main")))
    assert names(filter(p, prune_from="^mid$")) == [
        (["mid", "outer", "main"], 1), (["sync.(*Mutex).Lock", "work", "main"], 2)]
    # "sync.(*Mutex).Lock" is read up to its first "(": "sync."
    assert names(filter(p, prune_from=r"^sync\.$")) == names(p)
    assert names(filter(p, prune_from="^work$"))[1] == (["work", "main"], 2)
    assert names(filter(p, prune_from="Lock")) == names(p)
    # prune_from looks at function names only, not files
    assert names(filter(p, prune_from="app.py")) == names(p)


# --- tags ---------------------------------------------------------------------------------

TAGGED = profile(
    Sample([1, 10], stack("A"), {"worker": "a", "bytes": 512}, num_units={"bytes": "bytes"}),
    Sample([2, 20], stack("B"), {"worker": "b", "bytes": 2048}, num_units={"bytes": "bytes"}),
    Sample([4, 40], stack("C"), {"worker": ["a", "c"], "bytes": 1 << 20},
           num_units={"bytes": "bytes"}),
    Sample([8, 80], stack("D"), {"request": 4096, "delay": 1_500_000, "count": 7},
           num_units={"delay": "nanoseconds"}),
)


def kept(spec: str, option: str = "tagfocus") -> list[int]:
    return [s.values[0] for s in filter(TAGGED, **{option: spec}).samples]


@pytest.mark.parametrize("spec,values", [
    ("worker=a", [1, 4]),
    ("worker=^c$", [4]),
    ("worker=b,c", [2, 4]),      # with a key, any of the expressions
    ("worker:a", [1, 4]),        # without a key: "key:value"
    ("a,c", [4]),                # without a key, every expression
    ("nokey=.", []),
    ("bytes=2kb", [2]),
    ("bytes=1kb:1mb", [2, 4]),
    ("bytes=1kb:", [2, 4]),
    ("bytes=:1kb", [1]),
    ("bytes=:512", []),          # no unit: pprof never matches a value in bytes
    ("bytes=:512b", [1]),
    ("request=4kb", [8]),        # request is in bytes when no unit is given
    ("delay=1ms:2ms", [8]),
    ("delay=2ms:", []),
    ("count=7", [8]),            # a key without unit is its own unit
    ("count=:6", []),
    ("1mb", [4]),                # without a key, any numeric label
])
def test_tagfocus(spec: str, values: list[int]) -> None:
    assert kept(spec) == values


def test_tagignore_drops_what_tagfocus_would_keep() -> None:
    assert kept("worker=a", "tagignore") == [2, 8]
    assert kept("bytes=1kb:", "tagignore") == [1, 8]
    both = filter(TAGGED, tagfocus="worker=.", tagignore="worker=b")
    assert [s.values[0] for s in both.samples] == [1, 4]


def test_ranges_are_read_as_pprof_reads_them() -> None:
    between = parse_range("1kb:2kb")
    assert between is not None
    assert [between(v, "bytes") for v in (1023, 1024, 2048, 2049)] == [False, True, True, False]
    assert between(1, "kilobytes") and not between(1, "seconds")
    for text in ("a1", "1kb:2ms", "1:2:3", "x:1", "worker"):
        assert parse_range(text) is None, text
    at_least = parse_range("-5:")
    assert at_least is not None and at_least(-5, "") and not at_least(-6, "")


def test_numeric_label_units_as_pprof_infers_them() -> None:
    assert num_label_units(TAGGED) == {"bytes": "bytes", "request": "bytes",
                                       "delay": "nanoseconds", "count": "count"}


# --- values -----------------------------------------------------------------------------------


def test_patterns_may_be_compiled_and_bad_ones_name_their_option() -> None:
    assert names(filter(BASIC, focus=re.compile("^WORK$", re.I))) == names(
        filter(BASIC, focus="^work$"))
    with pytest.raises(ValueError, match=r"hide: invalid regular expression '\('"):
        filter(BASIC, hide="(")
    with pytest.raises(ValueError, match="tagfocus: invalid regular expression"):
        filter(BASIC, tagfocus="worker=[")


def test_an_empty_expression_is_no_filter_as_pprofs_empty_flag() -> None:
    everything = names(BASIC)
    assert names(filter(BASIC, ignore="", hide="", show="", tagfocus="", tagignore="")) == \
        everything
    assert names(filter(BASIC, show_from="", prune_from="")) == everything
    assert filter(BASIC, ignore="(?:)").samples == ()  # an expression matching everything


def test_filtering_returns_a_new_profile_that_writes_and_reads_back() -> None:
    got = filter(BASIC, focus="work", hide="^main$")
    assert len(BASIC.samples) == 4 and names(BASIC)[0] == (["A", "work", "main"], 1)
    assert got.samples[0].locations[0] == LOC["A"]  # an unchanged location keeps its id
    assert (got.period, got.period_type, got.sample_types) == (
        BASIC.period, BASIC.period_type, BASIC.sample_types)
    again = cprof.load(got.to_bytes())
    assert names(again) == [(["A", "work"], 1), (["B", "work"], 2)]
    assert again.total() == 30
