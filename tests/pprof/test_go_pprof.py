"""cprof and Go's pprof agree: cprof reads fresh runtime/pprof profiles as
`go tool pprof` reads them, writes them back so that pprof prints the same
text, and `go tool pprof` reads profiles built in Python with every value,
label, name and comment intact."""

from __future__ import annotations

import functools
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

import cprof
from cprof import Function, Line, Location, Mapping, Profile, ProfileBuilder, Sample
from gotools import (GO_PACKAGE, RawProfile, Top, go_profiles_dir, in_base_units, pprof_raw,
                     pprof_raw_text, pprof_top, require_go)

KINDS = ["cpu", "heap", "allocs", "mutex", "block", "goroutine", "threadcreate"]


@pytest.fixture(scope="module")
def go_dir() -> Path:
    return go_profiles_dir()


@functools.cache
def raw_text_of(path: Path) -> str:
    return pprof_raw_text(path)


# --- what pprof shows of a profile, computed from cprof's model ------------------


def _labels(s: Sample) -> tuple[dict[str, list[str]], dict[str, list[tuple[int, str]]]]:
    strings: dict[str, list[str]] = defaultdict(list)
    numbers: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for key, value, unit in s.label_items:
        if isinstance(value, str):
            strings[key].append(value)
        else:
            numbers[key].append((value, unit))
    return dict(strings), dict(numbers)


def _mapping_key(m: Mapping | None) -> Any:
    # google/pprof's mappingKey: size rounded up to 4 KiB, offset, build id or file.
    if m is None:
        return None
    return (m.limit - m.start + 0xFFF) // 0x1000, m.offset, m.build_id or m.filename


def pprof_view(p: Profile) -> tuple[list[tuple[Any, ...]], dict[int, tuple[int, list[str]]]]:
    """The samples and locations `go tool pprof -raw` prints for ``p``: pprof
    first merges the profile (google/pprof profile.Merge: all-zero samples
    dropped, equal locations and equal samples combined, locations renumbered
    in order of first use), then drops samples without locations.

    Returns [(values, location ids, string labels, numeric labels)] and
    {location id: (address, function names leaf first)}."""
    ids: dict[Any, int] = {}
    locations: dict[int, tuple[int, list[str]]] = {}
    samples: dict[Any, list[Any]] = {}

    def location_id(loc: Location) -> int:
        start = loc.mapping.start if loc.mapping else 0
        key = (loc.address - start, _mapping_key(loc.mapping), loc.is_folded,
               tuple((ln.function.name, ln.function.system_name, ln.function.filename,
                      ln.function.start_line) if ln.function else None for ln in loc.lines),
               tuple(ln.line for ln in loc.lines))
        if key not in ids:
            ids[key] = len(ids) + 1
            locations[ids[key]] = (loc.address, [ln.function.name if ln.function else "??"
                                                 for ln in loc.lines])
        return ids[key]

    for s in p.samples:
        if not any(s.values):
            continue
        loc_ids = tuple(location_id(loc) for loc in s.locations)
        strings, numbers = _labels(s)
        key = repr((loc_ids, sorted(strings.items()), sorted(numbers.items())))
        if key in samples:
            samples[key][0] = [a + b for a, b in zip(samples[key][0], s.values)]
        else:
            samples[key] = [list(s.values), loc_ids, strings, numbers]
    shown = [(tuple(v), ids_, strings, numbers) for v, ids_, strings, numbers in samples.values()
             if ids_]
    return shown, locations


def flat_cum(p: Profile, index: int) -> dict[str, tuple[int, int]]:
    """Per function name: flat (the sample's leaf line) and cum (once per
    sample, inlined frames included), as `pprof -top` aggregates them."""
    flat: dict[str, int] = defaultdict(int)
    cum: dict[str, int] = defaultdict(int)
    for s in p.samples:
        w = s.values[index]
        if w == 0 or not s.locations:
            continue
        names = [ln.function.name for loc in s.locations for ln in loc.lines if ln.function]
        flat[names[0]] += w
        for name in set(names):
            cum[name] += w
    return {name: (flat[name], cum[name]) for name in cum if flat[name] or cum[name]}


def assert_top_matches(p: Profile, top: Top, sample_type: str | None = None) -> None:
    index = p.sample_index(sample_type)
    unit = p.sample_types[index].unit
    expected = flat_cum(p, index)
    assert sorted(r.name for r in top.rows) == sorted(expected), top.text
    for row in top.rows:
        flat, cum = expected[row.name]
        assert row.flat.matches(in_base_units(flat, unit)), (row, flat)
        assert row.cum.matches(in_base_units(cum, unit)), (row, cum)
    assert top.total.matches(in_base_units(p.total(index), unit)), (top.total, p.total(index))
    shown = sum(flat for flat, _ in expected.values())
    assert top.shown.matches(in_base_units(shown, unit)), (top.shown, shown)


def assert_raw_matches(p: Profile, raw: RawProfile) -> None:
    assert raw.sample_types == [str(t) for t in p.sample_types]
    assert raw.default_sample_type == (p.default_sample_type or None)
    assert raw.period_type == ((p.period_type.type, p.period_type.unit) if p.period_type
                               else None)
    assert raw.period == p.period
    assert raw.comments == p.comments
    samples, locations = pprof_view(p)
    assert len(raw.samples) == len(samples)
    for got, (values, ids, strings, numbers) in zip(raw.samples, samples):
        assert (got.values, got.location_ids, got.labels, got.num_labels) == \
               (values, ids, strings, numbers)
    assert {i: (loc.address, loc.functions) for i, loc in raw.locations.items()} == locations


# --- a) Go's profiles --------------------------------------------------------------


def test_require_go_fails_with_the_package_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(pytest.fail.Exception, match=GO_PACKAGE):
        require_go()


@pytest.mark.parametrize("kind", KINDS)
def test_go_profile_reads_as_pprof_reads_it(go_dir: Path, kind: str) -> None:
    path = go_dir / f"{kind}.prof"
    p = cprof.load(path)
    raw = pprof_raw(path)
    assert_raw_matches(p, raw)
    # Every sample type's total: what pprof shows plus the samples it hides
    # (those without locations, as Go's threadcreate profile has).
    hidden = [s.values for s in p.samples if not s.locations]
    for j, total in enumerate(p.totals()):
        assert total == sum(s.values[j] for s in raw.samples) + sum(v[j] for v in hidden)
        assert total == sum(s.values[j] for s in p.samples)
    assert_top_matches(p, pprof_top(path))


def test_go_profiles_have_what_genprofiles_wrote(go_dir: Path) -> None:
    """The comparisons above are not vacuous: the profiles hold real samples."""
    cpu = cprof.load(go_dir / "cpu.prof")
    assert cpu.total("samples") > 20
    # Work inside pprof.Do carries its label (a sample in the runtime, e.g. GC,
    # may not: only the hot functions' samples are asserted).
    hot_samples = [s for s in cpu.samples
                   if s.locations[0].lines[0].function.name in ("main.hotA", "main.hotB")]
    assert hot_samples and {s.labels.get("worker") for s in hot_samples} == {"a"}
    hot = flat_cum(cpu, cpu.sample_index("cpu"))
    assert hot["main.hotA"][0] > hot["main.hotB"][0] > 0
    heap = cprof.load(go_dir / "heap.prof")
    assert flat_cum(heap, heap.sample_index("inuse_space"))["main.allocLarge"][0] >= 40 * 16 << 10
    mutex = cprof.load(go_dir / "mutex.prof")
    assert any(len(loc.lines) > 1 for loc in mutex.locations)  # inlined Mutex.Unlock
    threads = cprof.load(go_dir / "threadcreate.prof")
    assert [s.locations for s in threads.samples] == [()] and threads.total() > 0


# --- b) round trip -------------------------------------------------------------------


@pytest.mark.parametrize("level", [1, 9, 0])
@pytest.mark.parametrize("kind", KINDS)
def test_rewritten_go_profile_prints_the_same(go_dir: Path, tmp_path: Path, kind: str,
                                              level: int) -> None:
    original = go_dir / f"{kind}.prof"
    p = cprof.load(original)
    out = tmp_path / f"{kind}.prof"
    p.write(out, level=level)
    assert (out.read_bytes()[:2] == b"\x1f\x8b") == (level != 0)
    again = cprof.load(out)
    assert snapshot(again) == snapshot(p)
    assert pprof_raw_text(out) == raw_text_of(original)


def snapshot(p: Profile) -> tuple[Any, ...]:
    header = (p.sample_types, p.period_type, p.period, p.time_ns, p.duration_ns, p.comments,
              p.default_sample_type, p.drop_frames, p.keep_frames, p.doc_url)
    return header, list(p.samples), list(p.locations), list(p.functions), list(p.mappings)


# --- c) profiles built in Python --------------------------------------------------------

MS = 1_000_000
T0 = 1_700_000_000_123_456_789  # 2023-11-14 22:13:20.123456789 UTC


def cpu_profile() -> Profile:
    b = ProfileBuilder([("samples", "count"), ("cpu", "nanoseconds")],
                       period_type=("cpu", "nanoseconds"), period=10 * MS,
                       default_sample_type="cpu")
    main = ("app.main", "/app/main.py", 40, 38)
    run = ("app.Worker.run", "/app/worker.py", 21, 20, "run")
    labels = {"endpoint": "/api", "thread_id": 7, "request": 512}
    units = {"request": "bytes"}
    b.add([600, 600 * 10 * MS], [("app.parse", "/app/worker.py", 12, 10), run, main],
          labels, num_units=units)
    b.add([300, 300 * 10 * MS], [("app.render", "/app/view.py", 5, 3), main],
          {"endpoint": "/home", "thread_id": 8})
    b.add([100, 100 * 10 * MS], [("app.log", "/app/log.py", 9, 1), run, main],
          {"endpoint": ["/api", "/batch"]})
    return b.build(time_ns=T0, duration_ns=10_000 * MS,
                   comments=["built by cprof's tests", "second comment"])


# What `go tool pprof -raw` prints for cpu_profile() (sample lines end in a space).
CPU_RAW = """\
Comment: built by cprof's tests
Comment: second comment
PeriodType: cpu nanoseconds
Period: 10000000
Time: 2023-11-14 22:13:20.123456789 +0000 UTC
Duration: 10s
Samples:
samples/count cpu/nanoseconds[dflt]
        600 6000000000: 1 2 3 \n\
                endpoint:[/api]
                request:[512 bytes] thread_id:[7]
        300 3000000000: 4 3 \n\
                endpoint:[/home]
                thread_id:[8]
        100 1000000000: 5 2 3 \n\
                endpoint:[/api /batch]
Locations
     1: 0x0 M=1 app.parse /app/worker.py:12 s=10
     2: 0x0 M=1 app.Worker.run /app/worker.py:21 s=20(run)
     3: 0x0 M=1 app.main /app/main.py:40 s=38
     4: 0x0 M=1 app.render /app/view.py:5 s=3
     5: 0x0 M=1 app.log /app/log.py:9 s=1
Mappings
1: 0x0/0x0/0x0 python  [FN][FL][LN]
"""


def test_python_cpu_profile_reads_in_pprof(tmp_path: Path) -> None:
    path = tmp_path / "cpu.prof"
    p = cpu_profile()
    p.write(path)
    assert pprof_raw_text(path) == CPU_RAW
    top = pprof_top(path)
    assert top.total.text == "10s"
    assert [(r.name, r.flat.text, r.cum.text) for r in top.rows] == [
        ("app.parse", "6s", "6s"),
        ("app.render", "3s", "3s"),
        ("app.log", "1s", "1s"),
        ("app.Worker.run", "0", "7s"),
        ("app.main", "0", "10s"),
    ]
    assert_top_matches(cprof.load(path), top)


def heap_profile() -> Profile:
    b = ProfileBuilder([("alloc_objects", "count"), ("alloc_space", "bytes"),
                        ("inuse_objects", "count"), ("inuse_space", "bytes")],
                       period_type=("space", "bytes"), period=512 * 1024,
                       default_sample_type="inuse_space")
    main = ("app.main", "/app/main.py", 3)
    b.add([10, 10 << 20, 2, 2 << 20], [("app.load_json", "/app/io.py", 8), main],
          {"bytes": 1 << 20}, num_units={"bytes": "bytes"})
    b.add([4, 3 << 20, 4, 3 << 20], [("app.fill_cache", "/app/cache.py", 30), main])
    b.add([1000, 64 << 10, 0, 0], [("app.tmp_list", "/app/io.py", 20), main])
    return b.build()


def test_python_heap_profile_reads_in_pprof(tmp_path: Path) -> None:
    path = tmp_path / "heap.prof"
    heap_profile().write(path)
    p = cprof.load(path)
    raw = pprof_raw(path)
    assert_raw_matches(p, raw)
    assert raw.sample_types[-1] == "inuse_space/bytes" and raw.default_sample_type == "inuse_space"
    inuse = pprof_top(path)
    assert inuse.total.text == "5MB"
    assert [(r.name, r.flat.text) for r in inuse.rows] == [
        ("app.fill_cache", "3MB"), ("app.load_json", "2MB"), ("app.main", "0")]
    alloc = pprof_top(path, sample_index="alloc_space")
    # One unit for the whole report, so 64 KiB shows rounded, as 0.06MB.
    assert alloc.total.text == "13.06MB"
    assert [(r.name, r.flat.text) for r in alloc.rows] == [
        ("app.load_json", "10MB"), ("app.fill_cache", "3MB"), ("app.tmp_list", "0.06MB"),
        ("app.main", "0")]
    assert_top_matches(p, alloc, "alloc_space")
    assert_top_matches(p, pprof_top(path, sample_index="alloc_objects"), "alloc_objects")


def test_explicit_profile_with_an_inlined_location(tmp_path: Path) -> None:
    exe = Mapping(id=1, start=0x400000, limit=0x500000, filename="/usr/bin/app",
                  build_id="abc123", has_functions=True, has_filenames=True,
                  has_line_numbers=True, has_inline_frames=True)
    inner = Function(1, "pkg.inner", "inner", "/src/pkg.py", 3)
    outer = Function(2, "pkg.outer", "outer", "/src/pkg.py", 18)
    main = Function(3, "pkg.main", "main", "/src/main.py", 1)
    inlined = Location(1, 0x401000, exe, (Line(inner, 5), Line(outer, 20)))
    caller = Location(2, 0x402000, exe, (Line(main, 7),))
    recursive = Location(3, 0x401100, exe, (Line(outer, 25),))
    p = Profile([("samples", "count")],
                [Sample([5], [inlined, caller]), Sample([2], [caller]),
                 Sample([3], [recursive, inlined, caller])],  # outer twice: cum counts it once
                period_type=("samples", "count"), period=1,
                mappings=[exe], locations=[inlined, caller, recursive],
                functions=[inner, outer, main])
    path = tmp_path / "inline.prof"
    p.write(path)
    text = pprof_raw_text(path)
    assert ("     1: 0x401000 M=1 pkg.inner /src/pkg.py:5 s=3(inner)\n"
            "             pkg.outer /src/pkg.py:20 s=18(outer)\n"
            "     2: 0x402000 M=1 pkg.main /src/main.py:7 s=1(main)\n") in text
    assert "1: 0x400000/0x500000/0x0 /usr/bin/app abc123 [FN][FL][LN][IN]" in text
    assert_raw_matches(cprof.load(path), pprof_raw(path))
    top = pprof_top(path)
    assert [(r.name, r.flat.text, r.cum.text, r.inline) for r in top.rows] == [
        ("pkg.inner", "5", "8", "(inline)"),
        ("pkg.outer", "3", "8", ""),
        ("pkg.main", "2", "10", ""),
    ]
    assert top.total.text == "10"
    assert_top_matches(p, top)


# --- d) text beyond ASCII ----------------------------------------------------------------


def test_non_ascii_names_labels_and_comments_survive(tmp_path: Path) -> None:
    b = ProfileBuilder([("samples", "count")], period_type=("samples", "count"), period=1)
    stack = [("naïve_函数", "/tmp/données/模块.py", 7, 2), ("main", "/tmp/données/main.py", 1)]
    b.add([3], stack, {"user": "josé_ß", "émoji": "☕"})
    path = tmp_path / "unicode.prof"
    b.build(comments=["résumé — 概要"]).write(path)
    text = pprof_raw_text(path)
    assert "Comment: résumé — 概要\n" in text
    assert "     1: 0x0 M=1 naïve_函数 /tmp/données/模块.py:7 s=2\n" in text
    assert "                user:[josé_ß] émoji:[☕]\n" in text
    assert_raw_matches(cprof.load(path), pprof_raw(path))
    assert [(r.name, r.flat.text) for r in pprof_top(path).rows] == [
        ("naïve_函数", "3"), ("main", "0")]
