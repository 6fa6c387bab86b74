"""cprof.report's tree, peek, list_source and traces against `go tool pprof`: the same text.

The golden files are what go1.19's pprof printed, with TZ=UTC, for the Go
runtime/pprof profiles in tests/testdata/go (remake one there with
`TZ=UTC go tool pprof -symbolize=none -tree [FLAGS] KIND.prof > KIND[.FLAGS].tree.txt`,
-peek REGEX / -list REGEX / -traces alike; the list goldens were made with
-source_path=../../go) and for listdemo.prof in tests/testdata/cprof, a
cprof CPU profile of listdemo.py recorded by record.py there (remake them
there with `TZ=UTC go tool pprof [FLAGS] listdemo.prof`, the list goldens
with -trim_path=/cprof-testdata -source_path=.).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

import cprof
from cprof import Function, Line, Location, Mapping, Profile, Sample
from cprof.report.listing import list_source
from cprof.report.top import top
from cprof.report.traces import traces
from cprof.report.tree import peek, tree

TESTDATA = Path(__file__).resolve().parents[1] / "testdata"
GO = TESTDATA / "go"
DEMO = TESTDATA / "cprof"
GO_SOURCES = str(TESTDATA.parent / "go")  # genprofiles/main.go is under it

Report = Callable[..., Any]

# golden file -> (profile, report, its arguments)
GOLDEN: dict[str, tuple[Path, Report, dict[str, Any]]] = {
    "go/cpu.tree.txt": (GO / "cpu.prof", tree, {}),
    "go/heap.tree.txt": (GO / "heap.prof", tree, {}),
    "go/block.tree.txt": (GO / "block.prof", tree, {}),
    "go/allocs.cum.nodecount=5.tree.txt": (GO / "allocs.prof", tree,
                                           {"cum": True, "node_count": 5}),
    "go/mutex.focus=main.tree.txt": (GO / "mutex.prof", tree, {"focus": "main"}),
    "go/heap.sample_index=alloc_space.edgefraction=0.05.tree.txt": (
        GO / "heap.prof", tree, {"sample_type": "alloc_space", "edge_fraction": 0.05}),
    "go/heap.peek=main.txt": (GO / "heap.prof", peek, {"regex": "main"}),
    "go/block.peek=Lock.txt": (GO / "block.prof", peek, {"regex": "Lock"}),
    "go/cpu.traces.txt": (GO / "cpu.prof", traces, {}),
    "go/heap.traces.txt": (GO / "heap.prof", traces, {}),
    "go/goroutine.traces.txt": (GO / "goroutine.prof", traces, {}),
    "go/cpu.list=main.hot.txt": (GO / "cpu.prof", list_source,
                                 {"regex": "main.hot", "source_path": GO_SOURCES}),
    "go/cpu.list=cpuWork.source_path=nonexistent.txt": (
        GO / "cpu.prof", list_source, {"regex": "cpuWork", "source_path": "/nonexistent"}),
    "cprof/listdemo.tree.txt": (DEMO / "listdemo.prof", tree, {}),
    "cprof/listdemo.peek=descend.txt": (DEMO / "listdemo.prof", peek, {"regex": "descend"}),
    "cprof/listdemo.traces.txt": (DEMO / "listdemo.prof", traces, {}),
    "cprof/listdemo.list=_sum.txt": (DEMO / "listdemo.prof", list_source, {
        "regex": "_sum", "trim_path": "/cprof-testdata", "source_path": str(DEMO)}),
    "cprof/listdemo.list=descend.txt": (DEMO / "listdemo.prof", list_source, {
        "regex": "descend", "trim_path": "/cprof-testdata", "source_path": str(DEMO)}),
    "cprof/listdemo.list=square.source_path=nonexistent.txt": (
        DEMO / "listdemo.prof", list_source, {"regex": "square", "source_path": "/nonexistent"}),
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
def test_report_prints_what_go_tool_pprof_prints(golden: str, utc: None) -> None:
    path, report, options = GOLDEN[golden]
    assert str(report(cprof.load(path), **options)) == (TESTDATA / golden).read_text()


# --- profiles built here, with known answers ---------------------------------------

M = Mapping(1, filename="/usr/bin/python3", has_functions=True)
F = {n: Function(i + 1, n, n, "/src/app.py", 10 * (i + 1)) for i, n in enumerate(
    ["main", "work", "fib", "helper", "inlined", "a", "b"])}
LOC = {n: Location(i + 1, 0, M, (Line(f, f.start_line + 2),)) for i, (n, f) in enumerate(F.items())}


def stack(*names: str) -> tuple[Location, ...]:
    return tuple(LOC[n] for n in names)


def profile(*samples: Sample) -> Profile:
    return Profile([("samples", "count"), ("cpu", "nanoseconds")], samples,
                   period_type=("cpu", "nanoseconds"), period=10_000_000)


def entry(report: Any, name: str) -> Any:
    return next(e for e in report if e.name == name)


def test_callers_and_callees_carry_the_weight_of_their_calls() -> None:
    p = profile(Sample([1, 60], stack("helper", "work", "main")),
                Sample([1, 30], stack("work", "main")),
                Sample([1, 10], stack("helper", "main")))
    work = entry(tree(p), "work")
    assert (work.flat, work.cum) == (30, 90)
    assert [(c.name, c.value) for c in work.callers] == [("main", 90)]
    assert [(c.name, c.value) for c in work.callees] == [("helper", 60)]
    helper = entry(tree(p), "helper")
    assert [(c.name, c.value) for c in helper.callers] == [("work", 60), ("main", 10)]
    lines = str(tree(p)).splitlines()
    at = lines.index("      30ns 30.00%   100%       90ns 90.00%                | work")
    assert lines[at - 1] == f"{'90ns':>50}   100% |   main"
    assert lines[at + 1] == f"{'60ns':>50} 66.67% |   helper"


def test_recursion_counts_once_and_makes_no_edge_to_itself() -> None:
    p = profile(Sample([1, 40], stack("fib", "fib", "fib", "main")),
                Sample([1, 10], stack("helper", "fib", "fib", "main")))
    fib = entry(tree(p), "fib")
    assert (fib.flat, fib.cum) == (40, 50)
    assert [(c.name, c.value) for c in fib.callers] == [("main", 50)]
    assert [(c.name, c.value) for c in fib.callees] == [("helper", 10)]


def test_an_inlined_call_is_marked_on_both_sides() -> None:
    both = Location(100, 0, M, (Line(F["inlined"], 3), Line(F["work"], 20)))
    p = profile(Sample([1, 50], (both, LOC["main"])))
    report = tree(p)
    assert entry(report, "work").callees[0].inline
    assert "                                              50ns   100% |   work (inline)" in \
        str(report).splitlines()


def test_peek_shows_only_the_matching_functions_and_trims_nothing() -> None:
    p = profile(Sample([1, 10_000], stack("work", "main")), Sample([1, 1], stack("helper", "main")))
    assert [e.name for e in tree(p)] == ["work", "main"]  # helper is under the node fraction
    report = peek(p, "^(main|helper)$")
    assert [e.name for e in report] == ["helper", "main"]
    assert [(c.name, c.value) for c in entry(report, "main").callees] == [
        ("work", 10_000), ("helper", 1)]
    with pytest.raises(ValueError, match="no matches found for regexp: nothing"):
        peek(p, "nothing")


def test_tree_keeps_the_heaviest_nodes_and_drops_light_edges() -> None:
    p = profile(Sample([1, 500], stack("a", "work", "main")),
                Sample([1, 400], stack("b", "work", "main")),
                Sample([1, 100], stack("helper", "main")))
    report = tree(p, node_count=2)
    assert [e.name for e in report] == ["a", "b"]
    assert "Showing top 2 nodes out of 5" in str(report).splitlines()
    assert [c.name for c in entry(tree(p, edge_fraction=0.2), "main").callees] == ["work"]


def test_focus_keeps_the_samples_through_a_function_and_the_whole_total() -> None:
    p = profile(Sample([1, 70], stack("a", "work", "main")), Sample([1, 30], stack("b", "main")))
    report = tree(p, focus="work")
    assert [e.name for e in report] == ["a", "main", "work"]
    assert report.total == 100
    assert str(report).splitlines()[2:5] == [
        "Active filters:", "   focus=work",
        "Showing nodes accounting for 70ns, 70.00% of 100ns total"]


def test_top_and_tree_agree() -> None:
    p = profile(Sample([1, 60], stack("helper", "work", "main")),
                Sample([1, 30], stack("fib", "fib", "main")))
    assert [(r.name, r.flat, r.cum) for r in top(p)] == [
        (e.name, e.flat, e.cum) for e in tree(p)]


# --- traces ----------------------------------------------------------------------


def test_traces_merge_equal_samples_and_print_labels_sorted() -> None:
    p = profile(Sample([1, 20], stack("work", "main"), {"thread": "A", "bytes": 2048}),
                Sample([0, 0], stack("helper", "main")),
                Sample([1, 15_000_000], stack("work", "main"), {"bytes": 2048, "thread": "A"}),
                Sample([1, 5], stack("work", "main")))
    assert traces(p).splitlines() == [
        "File: python3",
        "Type: cpu",
        "-----------+-------------------------------------------------------",
        "    thread:  A",
        "     bytes:  2kB",
        "      15ms   work",
        "             main",
        "-----------+-------------------------------------------------------",
        "       5ns   work",
        "             main",
        "-----------+-------------------------------------------------------",
    ]


def test_traces_mark_inlined_frames_and_name_unknown_ones() -> None:
    both = Location(100, 0, M, (Line(F["inlined"], 3), Line(F["work"], 20)))
    bare = Location(101, 0x1234, M, ())
    p = profile(Sample([1, 7], (bare, both, LOC["main"])))
    assert traces(p, sample_type="samples").splitlines()[3:] == [
        "         1   [python3]", "             inlined (inline)", "             work",
        "             main",
        "-----------+-------------------------------------------------------"]


# --- list ------------------------------------------------------------------------


def source_profile(path: Path, start_line: int, *lines: int) -> Profile:
    fn = Function(1, "app.work", "work", str(path), start_line)
    main = Function(2, "app.main", "main", str(path), 1)
    return profile(*(Sample([1, 10 * (i + 1)], (Location(i + 1, 0, M, (Line(fn, n),)),
                                                  Location(99, 0, M, (Line(main, 2),))))
                     for i, n in enumerate(lines)))


def test_list_annotates_from_the_first_line_to_five_after_the_last(tmp_path: Path) -> None:
    src = tmp_path / "app.py"
    src.write_text("".join(f"line {n}\n" for n in range(1, 31)))
    report = list_source(source_profile(src, 4, 8, 10, 8), r"work$")
    assert str(report).splitlines() == [
        "Total: 60ns",
        f"ROUTINE ======================== app.work in {src}",
        "      60ns       60ns (flat, cum)   100% of Total",
        *(f"{'.':>10} {'.':>10} {n:6d}:line {n}" for n in range(4, 8)),
        "      40ns       40ns      8:line 8",
        "         .          .      9:line 9",
        "      20ns       20ns     10:line 10",
        *(f"{'.':>10} {'.':>10} {n:6d}:line {n}" for n in range(11, 16)),
    ]


def test_list_without_a_start_line_shows_five_lines_around(tmp_path: Path) -> None:
    src = tmp_path / "app.py"
    src.write_text("a\r\nb\n\tc\nd\n")  # CRLF and tabs as pprof reads them
    report = list_source(source_profile(src, 0, 3), "work")
    assert [(ln.lineno, ln.text, ln.flat) for ln in report[0].lines] == [
        (1, "a", 0), (2, "b", 0), (3, "\tc", 10), (4, "d", 0)]


def test_list_reports_a_missing_file_and_a_function_without_one(tmp_path: Path) -> None:
    report = list_source(source_profile(tmp_path / "gone.py", 1, 3), "work",
                         source_path="/elsewhere")
    assert report[0].error == f"open {tmp_path}/gone.py: no such file or directory"
    # A search directory's name in the path makes it relative to that directory.
    report = list_source(source_profile(tmp_path / "gone.py", 1, 3), "work",
                         source_path=str(tmp_path))
    assert report[0].error == f"could not find file gone.py on path {tmp_path}"
    nameless = Function(5, "native", "native", "", 0)
    p = profile(Sample([1, 5], (Location(1, 0, M, (Line(nameless, 0),)),)))
    assert str(list_source(p, "native")).splitlines() == [
        "Total: 5ns", "No source information for native"]
    with pytest.raises(ValueError, match="no matches found for regexp: absent"):
        list_source(p, "absent")


def test_list_finds_relative_paths_under_the_source_path_and_its_parents(
        tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "app.py").write_text("x\ny\nz\n")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    report = list_source(source_profile(Path("pkg/app.py"), 1, 2), "work",
                         source_path=str(deep))
    assert report[0].filename == "pkg/app.py"
    assert [ln.text for ln in report[0].lines] == ["x", "y", "z"]
    trimmed = list_source(source_profile(Path("/build/pkg/app.py"), 1, 2), "work",
                          source_path=str(tmp_path), trim_path="/build")
    assert (trimmed[0].filename, trimmed[0].error) == ("pkg/app.py", None)
