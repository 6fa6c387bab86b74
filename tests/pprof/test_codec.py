"""The codec through the public API: everything read is written back, every
input form is accepted, and objects are made lazily."""

from __future__ import annotations

import gzip
import io
import os
import tracemalloc
from pathlib import Path

import pytest

import cprof
from cprof import Function, Line, Location, Mapping, Profile, ProfileError, Sample, ValueType

GO = Path(__file__).resolve().parents[1] / "testdata" / "go"
GO_PROFILES = sorted(GO.glob("*.prof"))


def snapshot(p: Profile) -> tuple:
    """Everything a profile says, as plain comparable values."""
    header = (p.sample_types, p.period_type, p.period, p.time_ns, p.duration_ns,
              p.comments, p.default_sample_type, p.drop_frames, p.keep_frames, p.doc_url)
    return (header, list(p.samples), list(p.locations), list(p.functions), list(p.mappings))


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, wire: int, payload: bytes | int) -> bytes:
    key = varint(number << 3 | wire)
    if wire == 0:
        return key + varint(payload)  # type: ignore[arg-type]
    return key + varint(len(payload)) + payload  # type: ignore[arg-type]


def test_go_profiles_are_present() -> None:
    assert {p.stem for p in GO_PROFILES} == {
        "cpu", "heap", "allocs", "mutex", "block", "goroutine", "threadcreate"}


@pytest.mark.parametrize("path", GO_PROFILES, ids=lambda p: p.stem)
@pytest.mark.parametrize("level", [0, 1, 9])
def test_go_profile_round_trips(path: Path, level: int) -> None:
    original = cprof.load(path)
    data = original.to_bytes(level)
    assert data[:2] == (b"\x1f\x8b" if level else data[:2])
    if level == 0:
        assert data[:2] != b"\x1f\x8b"
    again = cprof.load(data)
    assert snapshot(again) == snapshot(original)


@pytest.mark.parametrize("path", GO_PROFILES, ids=lambda p: p.stem)
def test_rebuilt_from_python_equals_original(path: Path) -> None:
    original = cprof.load(path)
    original.comments.append("rewritten by cprof")  # forces the Python-tables path
    again = cprof.load(original.to_bytes())
    assert again.comments[-1] == "rewritten by cprof"
    assert snapshot(again)[1:] == snapshot(original)[1:]
    assert again.totals() == original.totals()


def test_go_cpu_profile_content() -> None:
    p = cprof.load(GO / "cpu.prof")
    assert p.sample_types == [ValueType("samples", "count"), ValueType("cpu", "nanoseconds")]
    assert p.period_type == ValueType("cpu", "nanoseconds")
    assert p.period == 10_000_000
    assert p.total("samples") * p.period == p.total("cpu") == p.total()
    leaves = {s.locations[0].lines[0].function.name for s in p.samples}
    assert {"main.hotA", "main.hotB"} <= leaves
    assert all(s.labels == {"worker": "a"} for s in p.samples)


def full_profile() -> Profile:
    """A profile that sets every field of profile.proto."""
    mapping = Mapping(7, 0x400000, 0x500000, 0x1000, "/usr/bin/python3.12", "abc123",
                      True, True, True, True)
    inner = Function(3, "pkg.mod.inner", "inner", "/src/pkg/mod.py", 10)
    outer = Function(4, "pkg.mod.Outer.run", "run", "/src/pkg/mod.py", 30)
    inlined = Location(11, 0x401234, mapping, (Line(inner, 12, 5), Line(outer, 33, 9)), True)
    plain = Location(12, 0x402000, mapping, (Line(outer, 35, 1),))
    no_lines = Location(13, 0x403000, None, ())
    samples = [
        Sample([5, 50_000], [inlined, plain], {"thread_name": "MainThread", "thread_id": 1,
                                                "bytes": [512, 1024]},
               num_units={"bytes": "bytes"}),
        Sample([1, 10_000], [no_lines, plain], {"task": "naïve_函数"}),
        Sample([0, 0], []),
    ]
    return Profile(
        [("samples", "count"), ("cpu", "nanoseconds")], samples,
        period_type=("cpu", "nanoseconds"), period=10_000, time_ns=1_700_000_000_123_456_789,
        duration_ns=2_500_000_000, comments=["first", "second: ünïcode"],
        default_sample_type="cpu", drop_frames="^runtime\\.", keep_frames="^main$",
        doc_url="https://example.invalid/doc")


def test_every_field_survives_a_round_trip() -> None:
    built = full_profile()
    p = cprof.load(built.to_bytes())
    assert snapshot(p) == snapshot(built)
    s0 = p.samples[0]
    assert s0.labels == {"thread_name": "MainThread", "thread_id": 1, "bytes": 512}
    assert s0.label_items == (("thread_name", "MainThread", ""), ("thread_id", 1, ""),
                              ("bytes", 512, "bytes"), ("bytes", 1024, "bytes"))
    assert s0.num_units == {"bytes": "bytes"}
    loc = s0.locations[0]
    assert loc.is_folded and [(ln.function.name, ln.line, ln.column) for ln in loc.lines] == [
        ("pkg.mod.inner", 12, 5), ("pkg.mod.Outer.run", 33, 9)]
    assert loc.mapping.has_inline_frames and loc.mapping.build_id == "abc123"
    assert p.samples[1].labels == {"task": "naïve_函数"}
    assert p.samples[2].locations == ()
    assert (p.time_ns, p.duration_ns, p.doc_url) == (
        1_700_000_000_123_456_789, 2_500_000_000, "https://example.invalid/doc")
    assert p.total() == 60_000 and p.sample_index() == 1


def test_header_changes_are_written() -> None:
    p = cprof.load(GO / "cpu.prof")
    p.period = 1234
    p.comments = ["changed"]
    p.doc_url = "https://go.dev/doc/diagnostics#profiling"
    q = cprof.load(p.to_bytes())
    assert (q.period, q.comments, q.doc_url) == (1234, ["changed"], p.doc_url)


def test_ids_are_assigned_when_missing_and_kept_when_given() -> None:
    f = Function(0, "f", "f", "/a.py", 1)
    g = Function(9, "g", "g", "/a.py", 5)
    a = Location(0, 0, None, (Line(f, 2),))
    b = Location(4, 0, None, (Line(g, 6),))
    p = cprof.load(Profile([("samples", "count")], [Sample([1], [a, b])]).to_bytes())
    ids = {loc.lines[0].function.name: (loc.id, loc.lines[0].function.id) for loc in p.locations}
    assert ids["g"] == (4, 9)
    assert ids["f"][0] not in (0, 4) and ids["f"][1] not in (0, 9)


def test_conflicting_ids_from_python_raise_profile_error() -> None:
    f = Function(1, "f")
    g = Function(1, "g")
    p = Profile([("samples", "count")], [Sample([1], [Location(1, 0, None, (Line(f),)),
                                                      Location(2, 0, None, (Line(g),))])])
    with pytest.raises(ProfileError, match=r"function\[0\] and function\[1\] share id 1"):
        p.to_bytes()


def test_wrong_value_count_from_python_raises_profile_error() -> None:
    with pytest.raises(ProfileError, match=r"sample\[0\] has 1 values but the profile has 2"):
        Profile([("samples", "count"), ("cpu", "nanoseconds")], [Sample([1], [])])


def test_label_values_must_be_str_or_int() -> None:
    with pytest.raises(TypeError, match="label 'x'"):
        Sample([1], [], {"x": 1.5})  # type: ignore[dict-item]


def test_load_accepts_path_bytes_memoryview_and_files(tmp_path: Path) -> None:
    data = (GO / "heap.prof").read_bytes()
    expected = snapshot(cprof.load(data))
    for source in (GO / "heap.prof", str(GO / "heap.prof"), bytearray(data), memoryview(data),
                   io.BytesIO(data), gzip.decompress(data)):
        assert snapshot(cprof.load(source)) == expected
    with open(GO / "heap.prof", "rb") as f:
        assert snapshot(cprof.load(f)) == expected
    with open(GO / "heap.prof", encoding="latin-1") as text:
        with pytest.raises(TypeError, match="binary mode"):
            cprof.load(text)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="path, bytes or a binary file"):
        cprof.load(42)  # type: ignore[arg-type]


def test_multi_member_gzip_is_read_whole() -> None:
    raw = gzip.decompress((GO / "cpu.prof").read_bytes())
    halves = gzip.compress(raw[:100]) + gzip.compress(raw[100:])
    assert snapshot(cprof.load(halves)) == snapshot(cprof.load(raw))


def test_unknown_fields_are_skipped_and_unpacked_repeats_read() -> None:
    strings = [b"", b"samples", b"count", b"f"]
    msg = b"".join(field(6, 2, s) for s in strings)
    msg += field(1, 2, field(1, 0, 1) + field(2, 0, 2))              # sample_type
    msg += field(5, 2, field(1, 0, 1) + field(2, 0, 3))              # function 1 "f"
    msg += field(4, 2, field(1, 0, 1) + field(4, 2, field(1, 0, 1)))  # location 1
    msg += field(4, 2, field(1, 0, 2) + field(4, 2, field(1, 0, 1)))  # location 2
    # location_id unpacked (one varint field per id), value packed
    sample = field(1, 0, 1) + field(1, 0, 2) + field(2, 2, varint(7))
    msg += field(2, 2, sample)
    msg += field(99, 0, 12345) + field(100, 2, b"future field")       # unknown fields
    p = cprof.load(msg)
    assert [loc.id for loc in p.samples[0].locations] == [1, 2]
    assert p.samples[0].values == (7,)


def test_strings_with_nul_and_invalid_utf8_survive() -> None:
    strings = [b"", b"samples", b"count", b"a\x00b", b"bad\xff\xfe"]
    msg = b"".join(field(6, 2, s) for s in strings)
    msg += field(1, 2, field(1, 0, 1) + field(2, 0, 2))
    msg += field(13, 0, 3) + field(13, 0, 4)                           # comments
    p = cprof.load(msg)
    assert p.comments == ["a\x00b", "bad\udcff\udcfe"]
    assert cprof.load(p.to_bytes(0)).comments == p.comments
    p.period = 1  # through the Python tables: same strings again
    assert cprof.load(p.to_bytes()).comments == ["a\x00b", "bad\udcff\udcfe"]


def test_max_size_applies_to_raw_and_gzipped_input() -> None:
    data = (GO / "allocs.prof").read_bytes()
    raw_len = len(gzip.decompress(data))
    # The decoded message takes about 9 times the protobuf's size (128 KB here).
    assert len(cprof.load(data, max_size=16 * raw_len).samples) > 0
    with pytest.raises(ProfileError, match=r"more than \d+ bytes \(the max_size limit\)"):
        cprof.load(data, max_size=raw_len - 1)
    with pytest.raises(ProfileError, match="max_size limit"):
        cprof.load(gzip.decompress(data), max_size=raw_len - 1)
    with pytest.raises(ProfileError, match=r"the decoded profile needs more than \d+ bytes "
                                           r"of memory \(the max_size limit\)"):
        cprof.load(data, max_size=2 * raw_len)


def test_encode_level_is_checked() -> None:
    p = cprof.load(GO / "cpu.prof")
    with pytest.raises(ValueError, match=r"0 \(raw protobuf\) or 1..9"):
        p.to_bytes(10)
    assert len(p.to_bytes(9)) <= len(p.to_bytes(1))


def test_write_to_path_is_atomic_and_to_files(tmp_path: Path) -> None:
    p = cprof.load(GO / "cpu.prof")
    target = tmp_path / "out.prof"
    p.write(target)
    assert snapshot(cprof.load(target)) == snapshot(p)
    buf = io.BytesIO()
    p.write(buf, level=0)
    assert snapshot(cprof.load(buf.getvalue())) == snapshot(p)

    # A profile that cannot be encoded leaves the old file and no temporary behind.
    bad = Profile([("samples", "count")], [Sample([1], [Location(1, 0, None, (Line(Function(1, "f")),)),
                                                        Location(1, 0, None, (Line(Function(2, "g")),))])])
    with pytest.raises(ProfileError, match="share id 1"):
        bad.write(target)
    assert snapshot(cprof.load(target)) == snapshot(p)
    assert sorted(os.listdir(tmp_path)) == ["out.prof"]


def test_samples_are_made_lazily() -> None:
    b = cprof.ProfileBuilder([("samples", "count")])
    for i in range(20_000):
        b.add([1], [(f"f{i % 500}", "/x.py", i % 50), ("main", "/x.py", 1)])
    data = b.build().to_bytes()
    tracemalloc.start()
    try:
        p = cprof.load(data)
        size, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Eager Sample objects would take several MB; an empty slot list takes ~160 kB.
    assert len(p.samples) == 20_000
    assert peak < 1_000_000, f"load allocated {peak} bytes of Python objects"
    assert p.samples[-1].locations[-1].lines[0].function.name == "main"
    assert p.total() == 20_000


def test_samples_share_their_stacks_and_label_lists_in_any_order_of_reading() -> None:
    """Samples with the same location ids share one tuple of Locations, and
    those with the same labels one tuple of label items (a big profile's
    300,000 samples have 65,729 stacks), whichever sample is read first; each
    keeps its own values. Sample ids differ from the stacks' (the order the
    builder met them) and one stack is a prefix of another."""
    b = cprof.ProfileBuilder([("samples", "count")])
    for i in range(3000):
        stack = [(f"f{i % 7}", "/x.py", 1), ("main", "/x.py", 1)][: 1 + (i % 7 != 3)]
        b.add([i], stack, {"k": f"v{i % 3}"} if i % 5 else {"k": f"v{i % 3}", "n": 4})
    data = b.build().to_bytes()
    p = cprof.load(data)
    order = [2999, 3, 0, 1500, *range(3000)]  # a few at random first, then all
    read = [p.samples[i] for i in order][4:]
    assert [s.values for s in read] == [(i,) for i in range(3000)]
    stacks: dict[tuple[int, ...], set[int]] = {}
    labels: dict[tuple[object, ...], set[int]] = {}
    for s in read:
        stacks.setdefault(tuple(loc.id for loc in s.locations), set()).add(id(s.locations))
        labels.setdefault(s.label_items, set()).add(id(s.label_items))
    assert len(stacks) == 7 and all(len(ids) == 1 for ids in stacks.values())
    assert len(labels) == 6 and all(len(ids) == 1 for ids in labels.values())
    # The same samples as read one by one from the end of a fresh load.
    fresh = cprof.load(data)
    backwards = [fresh.samples[i] for i in reversed(range(3000))][::-1]
    assert [(s.values, s.locations, s.label_items) for s in backwards] == \
        [(s.values, s.locations, s.label_items) for s in read]


def test_builder_shares_functions_and_locations() -> None:
    b = cprof.ProfileBuilder([("samples", "count")], default_sample_type="samples")
    for _ in range(3):
        b.add([1], [("leaf", "/a.py", 3, 1), ("root", "/a.py", 9, 8)])
    b.add([2], [("leaf", "/a.py", 4, 1), ("root", "/a.py", 9, 8)])
    p = cprof.load(b.build(comments=["built"]).to_bytes())
    assert len(p.functions) == 2 and len(p.locations) == 3
    assert [m.has_functions and m.has_filenames and m.has_line_numbers for m in p.mappings] == [True]
    assert p.total() == 5 and p.comments == ["built"]


def test_empty_profile_round_trips() -> None:
    p = Profile([("samples", "count")])
    q = cprof.load(p.to_bytes())
    assert q.sample_types == [ValueType("samples", "count")] and len(q.samples) == 0
    assert q.total() == 0


def gzip_stream(head: bytes, zeros: int) -> bytes:
    c = __import__("zlib").compressobj(9, 8, 31)
    parts = [c.compress(head)]
    chunk = bytes(1 << 20)
    for _ in range(zeros >> 20):
        parts.append(c.compress(chunk))
    return b"".join(parts) + c.flush()


def test_valid_protobuf_bomb_is_refused_by_its_ratio_quickly() -> None:
    # string_table[0] = "" then one 256 MiB string of zeros: well-formed
    # protobuf, about 1000-fold compressed.
    size = 256 << 20
    bomb = gzip_stream(field(6, 2, b"") + varint(6 << 3 | 2) + varint(size), size)
    import time
    start = time.perf_counter()
    with pytest.raises(ProfileError, match=r"over 256-fold.*looks like a gzip bomb"):
        cprof.load(bomb)
    assert time.perf_counter() - start < 1.0
    with pytest.raises(ProfileError, match=r"more than 33554432 bytes \(the max_size limit\)"):
        cprof.load(bomb, max_size=32 << 20, max_ratio=0)


def test_ratio_check_spares_small_repetitive_profiles() -> None:
    b = cprof.ProfileBuilder([("samples", "count")])
    for _ in range(50_000):
        b.add([1], [("same", "/x.py", 1)])
    data = b.build().to_bytes(9)
    assert len(cprof.load(data).samples) == 50_000


def test_a_dropped_profile_frees_its_memory_without_the_cycle_collector() -> None:
    import gc
    import weakref
    p = cprof.load(GO / "heap.prof")
    p.samples[3], p.locations[2]  # make some objects
    data = weakref.ref(p._data)
    gc.disable()
    try:
        del p
        assert data() is None, "the profile's C data outlived it: a reference cycle"
    finally:
        gc.enable()
