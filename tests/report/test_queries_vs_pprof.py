"""cprof's queries against `go tool pprof`: each filter, merge, diff, base
subtraction, sample type choice and granularity, followed by cprof's top
report, prints what pprof prints with the corresponding flags, on Go-written
profiles (tests/testdata/go) and on a CPU profile cprof recorded.

pprof takes percentages of the unfiltered profile unless told
-relative_percentages, and lists the filters above the table ("Active
filters:"); a filtered cprof profile is a profile of its own, so the
comparisons use -relative_percentages and leave out that legend.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import pytest

import cprof
from cprof import Line, Location, Profile, Sample, ValueType
from cprof.pprof.filter import filter as filter_profile
from cprof.pprof.ops import (DIFF_BASE_LABEL, aggregate, diff, merge, scale, select, share,
                       subtract, with_samples)
from cprof.report.top import top
from gotools import in_base_units, parse_top, require_go

GO = Path(__file__).resolve().parents[1] / "testdata" / "go"

Pprof = Callable[..., str]


@pytest.fixture(scope="module")
def pprof(tmp_path_factory: pytest.TempPathFactory) -> Pprof:
    """`go tool pprof -symbolize=none ARGS...`'s output, with HOME in a
    scratch directory and times in UTC."""
    go = require_go()
    home = tmp_path_factory.mktemp("home")
    env = {k: v for k, v in os.environ.items() if k != "GOFLAGS"}
    env.update(HOME=str(home), PPROF_TMPDIR=str(home), PPROF_BINARY_PATH=str(home), TZ="UTC",
               GOENV="off", GOTOOLCHAIN="local")

    def run(*args: str | os.PathLike[str]) -> str:
        cmd = [go, "tool", "pprof", "-symbolize=none", *[os.fspath(a) for a in args]]
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stderr}"
        return r.stdout

    return run


pytestmark = pytest.mark.usefixtures("utc")  # tests/conftest.py


# --- a CPU profile recorded by cprof -------------------------------------------------------


def burn(seconds: float) -> int:
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        for i in range(300):
            x += i * i % 7
    return x


def hot_a(seconds: float) -> int:
    return burn(seconds)


def hot_b(seconds: float) -> int:
    return burn(seconds)


def helper(seconds: float) -> int:
    return hot_b(seconds)


def workload(a: float, b: float) -> None:
    with cprof.labels(phase="a"):
        hot_a(a)
    with cprof.labels(phase="b"):
        helper(b)


def record(path: Path, a: float, b: float) -> Path:
    with cprof.cpu(hz=1000) as c:
        workload(a, b)
    assert c.profile is not None
    c.profile.write(path)
    p = cprof.load(path)
    assert share(p, r"\.hot_a$") > 0.2 and share(p, r"\.hot_b$") > 0.1  # enough to compare
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, pprof: Pprof) -> dict[str, Path]:
    """The profiles by name: Go's, two recorded by cprof (py, py2), and
    bases written by pprof itself (cpu.prof focused on main.hotA, heap.prof
    on its 16 KiB allocations)."""
    out = {p.name: p for p in GO.glob("*.prof")}
    tmp = tmp_path_factory.mktemp("profiles")
    out["py.prof"] = record(tmp / "py.prof", 0.2, 0.1)
    out["py2.prof"] = record(tmp / "py2.prof", 0.1, 0.15)
    base = tmp / "hotA.prof"
    pprof("-proto", "-focus=hotA", f"-output={base}", out["cpu.prof"])
    out["hotA.prof"] = base
    base = tmp / "heap16k.prof"
    pprof("-proto", "-tagfocus=bytes=16kb", f"-output={base}", out["heap.prof"])
    out["heap16k.prof"] = base
    return out


def rows(text: str) -> list[list[str]]:
    """The table of a -top text, each row split into its columns."""
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.split() == ["flat", "flat%", "sum%",
                                                                      "cum", "cum%"])
    return [line.split() for line in lines[at + 1:]]


# --- filters ----------------------------------------------------------------------------------

# (profile, filter keywords, sample type): pprof's flags are -KEYWORD=VALUE.
FILTERS: list[tuple[str, dict[str, str], str | None]] = [
    ("cpu.prof", {"focus": "hotB"}, None),
    ("cpu.prof", {"ignore": "hotA"}, None),
    ("cpu.prof", {"hide": r"main\.main"}, None),
    ("cpu.prof", {"hide": r"proc\.go"}, None),  # a file name: runtime.main's
    ("cpu.prof", {"show": "hot|cpuWork"}, None),
    ("cpu.prof", {"show_from": "cpuWork"}, None),
    ("cpu.prof", {"prune_from": "cpuWork"}, None),
    ("cpu.prof", {"ignore": "genprofiles$"}, None),  # the mapping's file: every frame
    ("cpu.prof", {"focus": "cpuWork", "hide": "runtime", "show_from": r"main\.main$"}, None),
    ("cpu.prof", {"tagfocus": "worker=b"}, None),
    ("cpu.prof", {"tagfocus": "worker=b,a"}, None),  # with a key: any regex
    ("cpu.prof", {"tagfocus": "a,b"}, None),  # without a key: every regex
    ("cpu.prof", {"tagignore": "worker:a"}, None),
    ("mutex.prof", {"hide": "Mutex"}, None),  # an inlined line
    ("mutex.prof", {"show": "Mutex"}, None),
    ("mutex.prof", {"show_from": "Unlock"}, None),
    ("mutex.prof", {"prune_from": "lockContender"}, None),
    ("block.prof", {"prune_from": "mutexWork"}, None),
    ("block.prof", {"focus": "Mutex", "ignore": "mutexWork"}, None),
    ("block.prof", {"show_from": r"main\.main$"}, None),
    ("goroutine.prof", {"prune_from": r"pprof\."}, None),
    # pprof reads "runtime/pprof.(*Profile).WriteTo" as "runtime/pprof.": no match
    ("goroutine.prof", {"prune_from": "WriteTo"}, None),
    ("heap.prof", {"tagfocus": "bytes=1kb:16kb"}, "alloc_space"),
    ("heap.prof", {"tagfocus": "bytes=16kb"}, "alloc_space"),
    ("heap.prof", {"tagfocus": "bytes=8kb:"}, "alloc_objects"),
    ("heap.prof", {"tagignore": "bytes=:32kb"}, "alloc_space"),
    ("heap.prof", {"tagfocus": "bytes=:512"}, "alloc_space"),  # no unit: never bytes
    ("heap.prof", {"tagfocus": "16384"}, "alloc_space"),
    ("goroutine.prof", {"tagfocus": "worker=parked"}, None),
    ("goroutine.prof", {"tagfocus": "worker:park"}, None),
    ("goroutine.prof", {"focus": "gopark", "tagignore": "worker=x"}, None),
    ("py.prof", {"focus": "hot_a"}, None),
    ("py.prof", {"ignore": "hot_a"}, "samples"),
    ("py.prof", {"hide": r"\.burn$"}, None),
    ("py.prof", {"show": "hot_|helper"}, None),
    ("py.prof", {"show_from": "helper"}, None),
    ("py.prof", {"prune_from": "hot_"}, None),
    ("py.prof", {"focus": "test_queries_vs_pprof", "hide": "pytest|pluggy"}, None),
    ("py.prof", {"tagfocus": "phase=b"}, None),
    ("py.prof", {"tagignore": "phase=a", "show": "test_queries"}, None),
]

# Cases where pprof keeps every sample, each the counterpart of one that does not.
KEEP_ALL = [("cpu.prof", {"tagfocus": "worker=b,a"}),
            ("goroutine.prof", {"prune_from": "WriteTo"})]


@pytest.mark.parametrize("name,options,sample_type", FILTERS,
                         ids=[f"{n}-{o}-{t}" for n, o, t in FILTERS])
def test_filter_then_top_prints_what_pprof_prints(files: dict[str, Path], pprof: Pprof,
                                                  name: str, options: dict[str, str],
                                                  sample_type: str | None) -> None:
    path = files[name]
    index = [f"-sample_index={sample_type}"] if sample_type else []
    flags = [f"-{k}={v}" for k, v in options.items()]
    # A filtered profile's report takes percentages of the total before the
    # filters and lists them, as pprof's does.
    expected = pprof("-top", *index, *flags, path)
    got = top(filter_profile(cprof.load(path), **options), sample_type=sample_type)
    assert str(got) == expected
    # The comparison is not of two copies of the profile: the filter changed
    # what pprof shows (all but the cases that keep everything on purpose).
    keeps_all = (name, options) in KEEP_ALL
    assert (rows(expected) == rows(pprof("-top", *index, path))) == keeps_all


def test_tag_range_with_key_finds_numeric_labels_in_their_unit(files: dict[str, Path]) -> None:
    heap = cprof.load(files["heap.prof"])
    kept = filter_profile(heap, tagfocus="bytes=1kb:16kb")
    sizes = sorted({s.labels["bytes"] for s in kept.samples})
    assert sizes and sizes[0] >= 1024 and sizes[-1] == 16384  # type: ignore[operator]
    assert filter_profile(heap, tagfocus="bytes=:512").samples == ()


def test_thread_id_range_selects_one_thread(files: dict[str, Path], pprof: Pprof) -> None:
    p = cprof.load(files["py.prof"])
    tid = p.samples[0].labels["thread_id"]
    kept = filter_profile(p, tagfocus=f"thread_id={tid}")
    assert kept.total() == sum(s.values[1] for s in p.samples if s.labels["thread_id"] == tid)
    assert str(top(kept)) == pprof("-top", f"-tagfocus=thread_id={tid}", files["py.prof"])


# --- share -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,regex", [("cpu.prof", "hotA"), ("block.prof", "Mutex"),
                                        ("py.prof", r"\.hot_b$"), ("py.prof", "helper")])
def test_share_is_what_pprof_focus_keeps(files: dict[str, Path], pprof: Pprof, name: str,
                                         regex: str) -> None:
    p = cprof.load(files[name])
    head = parse_top(pprof("-top", "-nodefraction=0", f"-focus={regex}", files[name]))
    unit = p.sample_types[p.sample_index()].unit
    matched = filter_profile(p, focus=regex).total()
    assert head.shown.matches(in_base_units(matched, unit)), (head.shown, matched)
    assert head.total.matches(in_base_units(p.total(), unit)), (head.total, p.total())
    assert 0 < share(p, regex) == matched / p.total() < 1


# --- choosing a sample type, granularity -----------------------------------------------------


@pytest.mark.parametrize("name,sample_type", [("heap.prof", "alloc_space"),
                                              ("heap.prof", "inuse_objects"),
                                              ("cpu.prof", "samples"), ("py.prof", "samples")])
def test_select_prints_as_sample_index(files: dict[str, Path], pprof: Pprof, name: str,
                                       sample_type: str) -> None:
    one = select(cprof.load(files[name]), sample_type)
    assert [t.type for t in one.sample_types] == [sample_type]
    assert one.default_sample_type == sample_type
    assert str(top(one)) == pprof("-top", f"-sample_index={sample_type}", files[name])


def strip_start_lines(p: Profile) -> Profile:
    """The profile with every function's start line 0: pprof's -files keeps
    functions of one file apart by their start lines."""
    locs = {id(loc): Location(loc.id, loc.address, loc.mapping,
                              tuple(Line(ln.function.replace(start_line=0)
                                         if ln.function else None, ln.line) for ln in loc.lines))
            for loc in p.locations}
    return with_samples(p, [Sample._raw(s.values, tuple(locs[id(loc)] for loc in s.locations),
                                        s.label_items) for s in p.samples])


@pytest.mark.parametrize("name,by,flag", [
    ("cpu.prof", "file", "-files"), ("block.prof", "file", "-files"),
    ("heap.prof", "file", "-files"), ("cpu.prof", "function", "-functions"),
    ("mutex.prof", "function", "-functions"), ("py.prof", "function", "-functions")])
def test_aggregate_then_top_prints_what_pprof_prints(files: dict[str, Path], pprof: Pprof,
                                                     name: str, by: Any, flag: str) -> None:
    p = cprof.load(files[name])
    got = aggregate(p, by)
    assert all(loc.address == 0 and all(ln.line == 0 for ln in loc.lines)
               for loc in got.locations)
    assert str(top(got)) == pprof("-top", flag, files[name])


def test_aggregate_by_file_of_a_python_profile(files: dict[str, Path], pprof: Pprof,
                                               tmp_path: Path) -> None:
    p = strip_start_lines(cprof.load(files["py.prof"]))
    p.write(tmp_path / "py.prof")
    got = aggregate(cprof.load(files["py.prof"]), "file")
    assert str(top(got)) == pprof("-top", "-files", tmp_path / "py.prof")
    assert {f.name for f in got.functions} == {f.filename for f in p.functions}


def line_key(name: str, filename: str, line: int) -> str:
    """pprof's -lines name: "function file:line"; a synthetic frame with
    neither file nor line (e.g. "<unsampled>") is its name alone."""
    if line:
        return f"{name} {filename}:{line}"
    return f"{name} {filename}" if filename else name


def line_rows(p: Profile) -> dict[str, tuple[int, int]]:
    """flat and cum per line of code ("function file:line"), as pprof's -lines."""
    flat: dict[str, int] = defaultdict(int)
    cum: dict[str, int] = defaultdict(int)
    for s in p.samples:
        w = s.values[p.sample_index()]
        keys = [line_key(ln.function.name, ln.function.filename, ln.line)
                for loc in s.locations for ln in loc.lines if ln.function]
        flat[keys[0]] += w
        for k in set(keys):
            cum[k] += w
    return {k: (flat[k], cum[k]) for k in cum}


@pytest.mark.parametrize("name", ["cpu.prof", "block.prof", "py.prof"])
def test_aggregate_by_line_has_pprof_lines_rows(files: dict[str, Path], pprof: Pprof,
                                                name: str) -> None:
    p = cprof.load(files[name])
    got = aggregate(p, "line")
    assert all(loc.address == 0 for loc in got.locations)
    expected = parse_top(pprof("-top", "-lines", "-nodefraction=0", files[name]))
    mine = line_rows(got)
    unit = got.sample_types[got.sample_index()].unit
    assert sorted(r.name for r in expected.rows) == sorted(mine)
    for r in expected.rows:
        flat, cum = mine[r.name]
        assert r.flat.matches(in_base_units(flat, unit)), (r, flat)
        assert r.cum.matches(in_base_units(cum, unit)), (r, cum)


def test_aggregate_without_inlines_prints_as_noinlines(files: dict[str, Path],
                                                      pprof: Pprof) -> None:
    got = aggregate(cprof.load(files["block.prof"]), "function", inlines=False)
    assert all(len(loc.lines) == 1 for loc in got.locations)
    text = pprof("-top", "-noinlines", files["block.prof"])
    assert "(inline)" not in text
    assert str(top(got)) == text


# --- merge, diff, base -------------------------------------------------------------------------


def in_microseconds(path: Path, out: Path) -> Path:
    """The profile with its CPU values and period in microseconds."""
    p = cprof.load(path)
    scaled = scale(p, [1, 1 / 1000])
    scaled.sample_types[1] = ValueType("cpu", "microseconds")
    scaled.period_type = ValueType("cpu", "microseconds")
    scaled.period = p.period // 1000
    scaled.write(out)
    return out


@pytest.mark.parametrize("names", [("heap.prof", "allocs.prof"), ("cpu.prof", "hotA.prof"),
                                   ("py.prof", "py2.prof"), ("py.prof", "py2.prof", "py.prof"),
                                   ("py.prof", "py-us.prof")])
def test_merge_is_pprofs_merge_of_several_sources(files: dict[str, Path], pprof: Pprof,
                                                  tmp_path: Path, names: tuple[str, ...]) -> None:
    paths = [files[n] if n in files else in_microseconds(files["py2.prof"], tmp_path / n)
             for n in names]
    merged = merge([cprof.load(p) for p in paths])
    out = tmp_path / "merged.prof"
    merged.write(out)
    assert pprof("-raw", out) == pprof("-raw", *paths)
    assert str(top(merged)) == pprof("-top", *paths)
    assert merged.duration_ns == sum(cprof.load(p).duration_ns for p in paths)


@pytest.mark.parametrize("new,base", [("cpu.prof", "hotA.prof"), ("py.prof", "py2.prof"),
                                      ("py2.prof", "py.prof"), ("allocs.prof", "heap16k.prof")])
def test_subtract_is_pprofs_base(files: dict[str, Path], pprof: Pprof, tmp_path: Path,
                                 new: str, base: str) -> None:
    got = subtract(cprof.load(files[new]), cprof.load(files[base]))
    got.write(tmp_path / "sub.prof")
    flag = f"-base={files[base]}"
    assert pprof("-raw", tmp_path / "sub.prof") == pprof("-raw", flag, files[new])
    assert str(top(got)) == pprof("-top", flag, files[new])


@pytest.mark.parametrize("new,base", [("cpu.prof", "hotA.prof"), ("py.prof", "py2.prof"),
                                      ("heap.prof", "heap16k.prof"),
                                      ("heap.prof", "allocs.prof")])
def test_diff_is_pprofs_diff_base(files: dict[str, Path], pprof: Pprof, tmp_path: Path,
                                  new: str, base: str) -> None:
    got = diff(cprof.load(files[new]), cprof.load(files[base]))
    got.write(tmp_path / "diff.prof")
    flag = f"-diff_base={files[base]}"
    assert pprof("-raw", tmp_path / "diff.prof") == pprof("-raw", flag, files[new])
    marked = [s for s in got.samples if s.labels.get(DIFF_BASE_LABEL) == "true"]
    assert marked and all(v <= 0 for s in marked for v in s.values)
    # pprof's report of a diff: each function's change, as percentages of the
    # base's total (the marked samples).
    expected = parse_top(pprof("-top", "-nodefraction=0", flag, files[new]))
    index = got.sample_index()
    unit = got.sample_types[index].unit
    assert expected.total.matches(in_base_units(sum(abs(s.values[index]) for s in marked), unit))
    mine = {r.name: (r.flat, r.cum) for r in top(got, node_fraction=0)}
    assert sorted(r.name for r in expected.rows) == sorted(mine)
    for r in expected.rows:
        flat, cum = mine[r.name]
        assert r.flat.matches(in_base_units(flat, unit)), (r, flat)
        assert r.cum.matches(in_base_units(cum, unit)), (r, cum)


def test_merge_refuses_profiles_of_different_kinds(files: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match=r"sample types .*cpu/nanoseconds.*alloc_objects/count"):
        merge([cprof.load(files["cpu.prof"]), cprof.load(files["heap.prof"])])
    with pytest.raises(ValueError, match=r"\[contentions/count delay/nanoseconds\]; "
                                         r"profile 1 has \[goroutine/count\]"):
        diff(cprof.load(files["mutex.prof"]), cprof.load(files["goroutine.prof"]))


# --- the total of samples that cancel --------------------------------------------------------


def test_equal_samples_cancel_in_the_total_as_pprof_merges_them(tmp_path: Path,
                                                                  pprof: Pprof) -> None:
    from cprof import Function
    a, b = Function(1, "a", "a", "a.py", 1), Function(2, "b", "b", "b.py", 1)
    la, lb = Location(1, 0, None, (Line(a, 1),)), Location(2, 0, None, (Line(b, 1),))
    p = Profile([("samples", "count")], [
        Sample([5], [la]), Sample([-5], [la]),               # cancel: pprof merges them
        Sample([3], [lb]), Sample([-2], [lb], {"k": "x"}),   # other labels: they stay apart
        Sample([4], [la, lb]), Sample([-1], [la, lb])])      # 3 left
    path = tmp_path / "cancel.prof"
    p.write(path)
    assert p.report_total() == cprof.load(path).report_total() == 3 + 2 + 3
    assert str(top(cprof.load(path))) == pprof("-top", path)
    assert str(top(p)) == pprof("-top", path)
