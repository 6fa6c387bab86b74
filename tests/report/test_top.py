"""cprof.report.top against `go tool pprof -top`: the same rows, numbers and text.

The golden files tests/testdata/go/*.top.txt are what go1.19's pprof printed
for the Go runtime/pprof profiles next to them, with TZ=UTC; remake one with
`TZ=UTC go tool pprof -top -symbolize=none [FLAGS] KIND.prof > KIND[.FLAGS].top.txt`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import pytest

import cprof
from cprof import Function, Line, Location, Mapping, Profile, Sample
from cprof.pprof.units import scaled_label
from cprof.report.top import top
from cprof.report.text import percentage

GO = Path(__file__).resolve().parents[1] / "testdata" / "go"

# golden file -> (profile, top()'s arguments)
GOLDEN: dict[str, tuple[str, dict[str, Any]]] = {
    "cpu.top.txt": ("cpu.prof", {}),
    "heap.top.txt": ("heap.prof", {}),
    "allocs.top.txt": ("allocs.prof", {}),
    "mutex.top.txt": ("mutex.prof", {}),
    "block.top.txt": ("block.prof", {}),
    "goroutine.top.txt": ("goroutine.prof", {}),
    "threadcreate.top.txt": ("threadcreate.prof", {}),
    "allocs.cum.nodecount=5.top.txt": ("allocs.prof", {"n": 5, "cum": True}),
    "heap.sample_index=alloc_objects.top.txt": ("heap.prof", {"sample_type": "alloc_objects"}),
    "block.nodefraction=0.top.txt": ("block.prof", {"node_fraction": 0}),
    "cpu.sample_index=samples.cum.top.txt": ("cpu.prof", {"sample_type": "samples",
                                                          "cum": True}),
}


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """pprof prints the profile's time in the local zone: make it UTC, as
    the golden files were made."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("golden", sorted(GOLDEN))
def test_top_prints_what_go_tool_pprof_prints(golden: str, utc: None) -> None:
    name, options = GOLDEN[golden]
    report = top(cprof.load(GO / name), **options)
    assert str(report) == (GO / golden).read_text()


def test_rows_carry_the_numbers() -> None:
    rows = cprof.load(GO / "cpu.prof").top(3)
    assert [(r.name, r.flat, r.cum) for r in rows] == [
        ("main.hotA", 1_000_000_000, 1_000_000_000),
        ("main.hotB", 490_000_000, 490_000_000),
        ("main.cpuWork", 0, 1_490_000_000)]
    assert rows[0].flat_pct == pytest.approx(100 * 1000 / 1490)
    assert rows[1].sum_pct == pytest.approx(100.0)
    assert rows[2].cum_pct == pytest.approx(100.0)
    assert (rows.total, rows.shown, rows.candidates) == (1_490_000_000, 1_490_000_000, 9)
    assert "Showing top 3 nodes out of 9" in str(rows).splitlines()


def test_inlined_functions_are_marked_and_counted_as_functions() -> None:
    block = top(cprof.load(GO / "block.prof"))
    lock = next(r for r in block if r.name == "sync.(*Mutex).Lock")
    assert lock.inline == "(inline)"
    assert lock.flat == lock.cum > 0
    assert next(r for r in block if r.name == "main.lockContender").inline == ""


# --- profiles built here, with known answers ---------------------------------------

M = Mapping(1, filename="/usr/bin/python3", has_functions=True)
F = {n: Function(i + 1, n, n, "/src/app.py", 1) for i, n in enumerate(
    ["main", "work", "fib", "helper", "inlined", "b_tie", "a_tie"])}
LOC = {n: Location(i + 1, 0, M, (Line(f, 10),)) for i, (n, f) in enumerate(F.items())}


def stack(*names: str) -> tuple[Location, ...]:
    return tuple(LOC[n] for n in names)


def profile(*samples: Sample) -> Profile:
    return Profile([("samples", "count"), ("cpu", "nanoseconds")], samples,
                   period_type=("cpu", "nanoseconds"), period=10_000_000)


def test_recursion_counts_once_and_flat_is_the_leaf() -> None:
    p = profile(Sample([1, 30], stack("fib", "fib", "fib", "main")),
                Sample([1, 10], stack("helper", "fib", "main")),
                Sample([1, 60], stack("work", "main")))
    rows = {r.name: r for r in top(p)}
    assert (rows["fib"].flat, rows["fib"].cum) == (30, 40)
    assert (rows["main"].flat, rows["main"].cum) == (0, 100)
    assert (rows["helper"].flat, rows["work"].flat) == (10, 60)
    assert [r.name for r in top(p)] == ["work", "fib", "helper", "main"]
    assert [r.name for r in top(p, cum=True)] == ["main", "work", "fib", "helper"]


def test_an_inlined_line_is_a_function_and_takes_the_flat() -> None:
    both = Location(100, 0, M, (Line(F["inlined"], 3), Line(F["work"], 20)))
    p = profile(Sample([1, 50], (both, LOC["main"])), Sample([1, 50], stack("work", "main")))
    rows = {r.name: r for r in top(p)}
    assert (rows["inlined"].flat, rows["inlined"].cum, rows["inlined"].inline) == (
        50, 50, "(inline)")
    assert (rows["work"].flat, rows["work"].cum, rows["work"].inline) == (50, 100, "")


def test_equal_flat_sorts_by_name_and_percentages_use_the_chosen_type() -> None:
    p = profile(Sample([3, 50], stack("b_tie", "main")), Sample([1, 50], stack("a_tie", "main")))
    assert [r.name for r in top(p)] == ["a_tie", "b_tie", "main"]
    by_count = top(p, sample_type="samples")
    assert [(r.name, r.flat_pct) for r in by_count][:2] == [("b_tie", 75.0), ("a_tie", 25.0)]
    assert by_count.sample_type == "samples"


def test_small_functions_are_dropped_under_the_node_fraction() -> None:
    p = profile(Sample([1, 10_000], stack("work", "main")), Sample([1, 49], stack("helper")))
    report = top(p)
    assert [r.name for r in report] == ["work", "main"]
    assert report.dropped == 1
    assert "Dropped 1 node (cum <= 0.05us)" in str(report).splitlines()
    assert [r.name for r in top(p, node_fraction=0)] == ["work", "helper", "main"]


@pytest.mark.parametrize("small, rows", [
    # The smallest value is in ms, the total in s, and 100 times the smallest
    # is still under the total: every value in ms.
    (1_500_000, ["    2000ms 99.93% 99.93%     2000ms 99.93%  work",
                 "    1.50ms 0.075%   100%     1.50ms 0.075%  helper",
                 "         0     0%   100%  2001.50ms   100%  main"]),
    # 100 times the smallest reaches the total's unit: every value in s.
    (15_000_000, ["        2s 99.26% 99.26%         2s 99.26%  work",
                  "     0.01s  0.74%   100%      0.01s  0.74%  helper",
                  "         0     0%   100%      2.02s   100%  main"]),
    (1, ["2000000000ns   100%   100% 2000000000ns   100%  work",
         "       1ns 5e-08%   100%        1ns 5e-08%  helper",
         "         0     0%   100% 2000000001ns   100%  main"]),
])
def test_one_unit_for_every_row_as_pprof_chooses_it(small: int, rows: list[str]) -> None:
    # What go tool pprof -top -nodefraction=0 printed for these profiles.
    p = profile(Sample([1, 2_000_000_000], stack("work", "main")),
                Sample([1, small], stack("helper", "main")))
    assert str(top(p, node_fraction=0)).splitlines()[-3:] == rows


@pytest.mark.parametrize("value, unit, to, text", [
    (1_490_000_000, "nanoseconds", "ms", "1490ms"),
    (1_490_000_000, "nanoseconds", "minimum", "1.49s"),
    (842_480, "bytes", "kB", "822.73kB"),
    (0, "nanoseconds", "s", "0"),
    (17, "count", "count", "17"),
    (-2048, "bytes", "minimum", "-2kB"),
])
def test_values_scale_as_pprof_scales_them(value: int, unit: str, to: str, text: str) -> None:
    assert scaled_label(value, unit, to) == text


@pytest.mark.parametrize("value, total, text", [
    (1, 1, "  100%"), (6711, 10000, "67.11%"), (29, 1_000_000, "0.0029%"), (0, 5, "    0%"),
    (1, 0, "    0%"),
])
def test_percentages_print_as_pprof_prints_them(value: int, total: int, text: str) -> None:
    assert percentage(value, total) == text
