"""cprof.ops on hand-built profiles: merge, diff, subtract, scale, select,
aggregate, total and share, with exact values."""

from __future__ import annotations

import pytest

import cprof
from cprof import Function, Line, Location, Mapping, Profile, ProfileBuilder, Sample, ValueType
from cprof.pprof.ops import (DIFF_BASE_LABEL, aggregate, diff, merge, scale, select, share, subtract,
                       total, with_labels)

CPU = [("samples", "count"), ("cpu", "nanoseconds")]
MAIN = ("app.main", "/app/main.py", 5, 1)
WORK = ("app.work", "/app/work.py", 12, 10)
WORK2 = ("app.work", "/app/work.py", 14, 10)  # same function, another line
PARSE = ("app.parse", "/app/parse.py", 3, 1)


def cpu(*samples: tuple[list[int], list[tuple[object, ...]], dict[str, object]],
        **header: object) -> Profile:
    b = ProfileBuilder(CPU, period_type=("cpu", "nanoseconds"), period=10,
                       default_sample_type="cpu")
    for values, frames, labels in samples:
        b.add(values, frames, labels)  # type: ignore[arg-type]
    return b.build(**header)


def rows(p: Profile) -> list[tuple[tuple[int, ...], list[str], dict[str, str | int]]]:
    """Each sample: values, frames as "function:line" leaf first, labels."""
    return [(s.values, [f"{ln.function.name}:{ln.line}" for loc in s.locations
                        for ln in loc.lines if ln.function], s.labels) for s in p.samples]


# --- with_labels ------------------------------------------------------------------------------


def test_with_labels_labels_every_sample_in_place_of_the_same_keys() -> None:
    p = cpu(([1, 10], [WORK, MAIN], {"pid": 7, "t": "x"}), ([2, 20], [PARSE, MAIN], {}))
    labelled = with_labels(p, {"pid": 42, "process": "worker.py"})
    assert rows(labelled) == [
        ((1, 10), ["app.work:12", "app.main:5"], {"t": "x", "pid": 42, "process": "worker.py"}),
        ((2, 20), ["app.parse:3", "app.main:5"], {"pid": 42, "process": "worker.py"})]
    assert rows(cprof.load(labelled.to_bytes())) == rows(labelled)
    assert rows(p)[0][2] == {"pid": 7, "t": "x"}  # the input is unchanged


# --- merge ------------------------------------------------------------------------------------


def test_merge_sums_equal_samples_and_keeps_the_rest_apart() -> None:
    # Built separately: equal places are different objects with the same ids.
    a = cpu(([1, 10], [WORK, MAIN], {}), ([2, 20], [PARSE, MAIN], {"t": "x"}),
            time_ns=2000, duration_ns=100, comments=["a", "shared"])
    b = cpu(([4, 40], [WORK, MAIN], {}), ([8, 80], [PARSE, MAIN], {"t": "y"}),
            ([16, 160], [WORK2, MAIN], {}),
            time_ns=1000, duration_ns=50, comments=["shared", "b"])
    m = merge([a, b])
    assert rows(m) == [
        ((5, 50), ["app.work:12", "app.main:5"], {}),
        ((2, 20), ["app.parse:3", "app.main:5"], {"t": "x"}),
        ((8, 80), ["app.parse:3", "app.main:5"], {"t": "y"}),
        ((16, 160), ["app.work:14", "app.main:5"], {}),
    ]
    assert (m.time_ns, m.duration_ns, m.comments) == (1000, 150, ["a", "shared", "b"])
    assert (m.period, m.default_sample_type) == (10, "cpu")
    # One object per place, numbered afresh: 4 locations, 3 functions, 1 mapping.
    assert sorted(loc.id for loc in m.locations) == [1, 2, 3, 4]
    assert sorted(f.id for f in m.functions) == [1, 2, 3]
    assert len(m.mappings) == 1
    assert rows(cprof.load(m.to_bytes())) == rows(m)
    assert rows(a)[0][0] == (1, 10)  # the inputs are unchanged


def test_merge_takes_the_largest_period_and_the_earliest_time() -> None:
    a = cpu(([1, 1], [MAIN], {}), time_ns=0)
    a.period = 30
    b = cpu(([1, 1], [MAIN], {}), time_ns=700)
    c = cpu(([1, 1], [MAIN], {}), time_ns=500)
    m = merge([a, b, c])
    assert (m.period, m.time_ns, rows(m)[0][0]) == (30, 500, (3, 3))


def test_merge_drops_samples_that_sum_to_zero() -> None:
    a = cpu(([1, 10], [WORK, MAIN], {}), ([0, 0], [PARSE, MAIN], {}))
    b = cpu(([-1, -10], [WORK, MAIN], {}), ([3, 30], [MAIN], {}))
    assert rows(merge([a, b])) == [((3, 30), ["app.main:5"], {})]


def test_merge_joins_one_binary_loaded_at_two_addresses() -> None:
    f = Function(1, "native", "native", "lib.c", 1)

    def native(start: int) -> Profile:
        lib = Mapping(1, start, start + 0x1800, filename="/lib/libx.so")
        loc = Location(1, start + 0x10, lib, (Line(f, 3),))
        return Profile([("samples", "count")], [Sample([1], [loc])])

    m = merge([native(0x10000), native(0x90000)])
    assert [s.values for s in m.samples] == [(2,)]
    assert m.samples[0].locations[0].address == 0x10010
    assert [(x.start, x.limit) for x in m.mappings] == [(0x10000, 0x11800)]


def test_merge_converts_compatible_units_to_the_finest() -> None:
    ns = cpu(([1, 10_000], [MAIN], {}))
    us = Profile([("samples", "count"), ("cpu", "microseconds")],
                 [Sample([2, 30], ns.samples[0].locations)],
                 period_type=("cpu", "microseconds"), period=1)
    m = merge([ns, us])
    assert m.sample_types == [ValueType("samples", "count"), ValueType("cpu", "nanoseconds")]
    assert m.period_type == ValueType("cpu", "nanoseconds")
    assert (m.period, [s.values for s in m.samples]) == (1000, [(3, 40_000)])


def test_merge_refuses_what_pprof_refuses_and_says_what_differs() -> None:
    heap = Profile([("alloc_objects", "count"), ("alloc_space", "bytes")], [],
                   period_type=("space", "bytes"), period=1)
    with pytest.raises(ValueError, match=r"period types cpu/nanoseconds and space/bytes"):
        merge([cpu(), heap])
    one = Profile([("samples", "count")], [], period_type=("cpu", "nanoseconds"))
    with pytest.raises(ValueError, match=r"profile 0 has \[samples/count cpu/nanoseconds\]; "
                                         r"profile 1 has \[samples/count\]"):
        merge([cpu(), one])
    wall = Profile([("samples", "count"), ("wall", "nanoseconds")], [],
                   period_type=("cpu", "nanoseconds"))
    with pytest.raises(ValueError, match="sample types cpu/nanoseconds and wall/nanoseconds"):
        merge([cpu(), wall])
    with pytest.raises(ValueError, match="no profiles"):
        merge([])


# --- diff and subtract -----------------------------------------------------------------------

NEW = cpu(([3, 30], [WORK, MAIN], {}), ([5, 50], [PARSE, MAIN], {}))
OLD = cpu(([1, 10], [WORK, MAIN], {}), ([5, 50], [PARSE, MAIN], {DIFF_BASE_LABEL: "no"}))


def test_diff_marks_the_negated_base() -> None:
    d = diff(NEW, OLD)
    assert rows(d) == [
        ((3, 30), ["app.work:12", "app.main:5"], {}),
        ((5, 50), ["app.parse:3", "app.main:5"], {}),
        ((-1, -10), ["app.work:12", "app.main:5"], {DIFF_BASE_LABEL: "true"}),
        ((-5, -50), ["app.parse:3", "app.main:5"], {DIFF_BASE_LABEL: "true"}),
    ]
    assert d.total() == 20
    assert [s.label_items for s in d.samples[2:]] == [((DIFF_BASE_LABEL, "true", ""),)] * 2


def test_subtract_cancels_equal_samples() -> None:
    assert rows(subtract(NEW, OLD)) == [
        ((2, 20), ["app.work:12", "app.main:5"], {}),
        ((5, 50), ["app.parse:3", "app.main:5"], {}),
        ((-5, -50), ["app.parse:3", "app.main:5"], {DIFF_BASE_LABEL: "no"}),
    ]
    assert subtract(NEW, NEW).samples == ()


# --- scale and select -------------------------------------------------------------------------


def test_scale_rounds_half_away_from_zero_and_drops_zeros() -> None:
    p = cpu(([1, 5], [MAIN], {"i": "1"}), ([3, -5], [MAIN], {"i": "2"}),
            ([2, 7], [MAIN], {"i": "3"}), ([0, 1], [MAIN], {"i": "4"}))
    assert [s.values for s in scale(p, 0.5).samples] == [(1, 3), (2, -3), (1, 4), (0, 1)]
    assert [s.values for s in scale(p, 0.1).samples] == [(0, 1), (0, -1), (0, 1)]
    assert [s.values for s in scale(p, [1, 0]).samples] == []
    assert [s.values for s in scale(p, [2, 1]).samples] == [(2, 5), (6, -5), (4, 7)]
    assert [s.values for s in scale(p, 1).samples] == [s.values for s in p.samples]
    assert [s.values for s in scale(p, -1).samples][0] == (-1, -5)
    with pytest.raises(ValueError, match="3 factors for 2 sample types"):
        scale(p, [1, 2, 3])


def test_select_keeps_one_sample_type_and_makes_it_the_default() -> None:
    p = Profile([("alloc_space", "bytes"), ("inuse_space", "bytes")],
                [Sample([10, 0], NEW.samples[0].locations),
                 Sample([20, 5], NEW.samples[1].locations)],
                period_type=("space", "bytes"), period=512, default_sample_type="alloc_space")
    inuse = select(p, "inuse_space")
    assert inuse.sample_types == [ValueType("inuse_space", "bytes")]
    assert inuse.default_sample_type == "inuse_space"
    assert [s.values for s in inuse.samples] == [(5,)]
    assert (inuse.period, inuse.period_type) == (512, p.period_type)
    assert [s.values for s in select(p, 0).samples] == [(10,), (20,)]
    assert [s.values for s in select(p).samples] == [(10,), (20,)]  # the default type
    with pytest.raises(ValueError, match="no sample type 'cpu'"):
        select(p, "cpu")


# --- aggregate ------------------------------------------------------------------------------

EXE = Mapping(1, 0x1000, 0x9000, filename="/bin/app", has_functions=True, has_filenames=True,
              has_line_numbers=True, has_inline_frames=True)
FN = {n: Function(i + 1, n, n, file, 1) for i, (n, file) in enumerate(
    [("inner", "/src/a.py"), ("outer", "/src/a.py"), ("main", "/src/m.py")])}


def loc(i: int, address: int, *lines: tuple[str, int]) -> Location:
    return Location(i, address, EXE, tuple(Line(FN[n], line) for n, line in lines))


INL1 = loc(1, 0x1100, ("inner", 3), ("outer", 10))    # inner inlined into outer
INL2 = loc(2, 0x1108, ("inner", 4), ("outer", 10))
OUT = loc(3, 0x1200, ("outer", 11))
MAIN_A = loc(4, 0x1300, ("main", 2))
MAIN_B = loc(5, 0x1310, ("main", 2))                   # same line, another address
CODE = Profile(CPU, [Sample([1, 10], [INL1, MAIN_A]), Sample([2, 20], [INL2, MAIN_A]),
                     Sample([4, 40], [OUT, MAIN_B]), Sample([8, 80], [INL1, MAIN_B])],
               period_type=("cpu", "nanoseconds"), period=10)


def frames(p: Profile) -> list[tuple[int, list[tuple[str, int]], int]]:
    return [(s.values[0], [(ln.function.name, ln.line) for lc in s.locations
                           for ln in lc.lines if ln.function], s.locations[0].address)
            for s in p.samples]


def test_aggregate_by_function_drops_lines_and_addresses() -> None:
    got = aggregate(CODE)
    assert frames(got) == [
        (11, [("inner", 0), ("outer", 0), ("main", 0)], 0),
        (4, [("outer", 0), ("main", 0)], 0),
    ]
    assert len(got.locations) == 3
    assert got.mappings[0].has_line_numbers is False and got.mappings[0].has_functions
    assert got.top().rows[0].name == "inner"


def test_aggregate_by_line_keeps_lines() -> None:
    assert frames(aggregate(CODE, "line")) == [
        (9, [("inner", 3), ("outer", 10), ("main", 2)], 0),
        (2, [("inner", 4), ("outer", 10), ("main", 2)], 0),
        (4, [("outer", 11), ("main", 2)], 0),
    ]


def test_aggregate_by_address_keeps_every_location() -> None:
    got = aggregate(CODE, "address")
    assert frames(got) == frames(CODE)
    assert len(got.locations) == 5


def test_aggregate_by_file_names_each_function_after_its_file() -> None:
    got = aggregate(CODE, "file")
    assert frames(got) == [(11, [("/src/a.py", 0), ("/src/a.py", 0), ("/src/m.py", 0)], 0),
                           (4, [("/src/a.py", 0), ("/src/m.py", 0)], 0)]
    assert sorted((f.name, f.filename) for f in got.functions) == [
        ("/src/a.py", "/src/a.py"), ("/src/m.py", "/src/m.py")]


def test_aggregate_without_inlines_keeps_the_outermost_function() -> None:
    got = aggregate(CODE, "line", inlines=False)
    assert frames(got) == [(11, [("outer", 10), ("main", 2)], 0),
                           (4, [("outer", 11), ("main", 2)], 0)]
    assert got.mappings[0].has_inline_frames is False
    with pytest.raises(ValueError, match="by must be"):
        aggregate(CODE, "module")  # type: ignore[arg-type]


# --- total and share ------------------------------------------------------------------------


def test_total_and_share() -> None:
    p = cpu(([1, 10], [WORK, MAIN], {}), ([2, 30], [PARSE, WORK, MAIN], {}),
            ([4, 60], [PARSE, MAIN], {}), ([1, 0], [WORK, WORK2, MAIN], {}))
    assert (total(p), total(p, "samples"), total(p, 0)) == (100, 8, 8)
    assert share(p, r"work$") == 0.4  # (10 + 30) / 100: each sample once
    assert share(p, r"work$", "samples") == 4 / 8
    assert share(p, "parse") == 0.9
    assert share(p, "main") == 1.0
    assert share(p, "nothing") == 0.0
    assert share(p, "work.py") == 0.0  # function names only
    assert share(cpu(), "main") == 0.0


def test_share_counts_inlined_frames() -> None:
    assert share(CODE, "^outer$") == 1.0
    assert share(CODE, "^inner$") == 110 / 150
