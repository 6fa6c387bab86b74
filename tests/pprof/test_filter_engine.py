"""pprof's filters in C (csrc/analysis/filter.c) against the plain Python
implementation they replaced (filter_reference.py, sample by sample), on
random profiles and random combinations of every filter: the same samples,
in the same order, with the same frames, values and labels."""

from __future__ import annotations

import os
import random
import sys

import pytest

import cprof
from cprof import Function, Line, Location, Mapping, Profile, Sample
from cprof.pprof.filter import filter as c_filter

sys.path.insert(0, os.path.dirname(__file__))
import filter_reference  # noqa: E402

NAMES = ["main", "work", "helper", "json.dumps", "std::vector<int>::push(int)",
         "(anonymous namespace)::run", "re.compile", "", "lib.zero", "work_b"]
FILES = ["/src/app.py", "/src/util.py", "/usr/lib/python3/json/encoder.py", ""]
PATTERNS = ["work", "^main$", "json", "util", r"\.py$", "libz", "push", "^$", "zero|helper",
            "anonymous", "b$", "nothing-matches-this"]
TAGS = ["phase=a", "phase=a,b", "a", "phase:b", "bytes=1kb:16kb", "bytes=:512", "bytes=4kb:",
        "16384", "thread=t1", "t2,phase:a", "bytes=2", "n=1:3"]


def random_profile(rng: random.Random) -> Profile:
    mappings = [Mapping(1, 0x400000, 0x500000, filename="/usr/bin/app"),
                Mapping(2, 0x7F0000, 0x7F8000, filename="/usr/lib/libz.so")]
    functions = [Function(i + 1, rng.choice(NAMES), "", rng.choice(FILES), rng.randrange(3))
                 for i in range(10)]
    locations = []
    for i in range(16):
        lines = tuple(Line(rng.choice(functions + [None]), rng.randrange(1, 30))
                      for _ in range(rng.choice([0, 1, 1, 1, 2, 3, 4])))
        locations.append(Location(i + 1, 0x1000 + i, rng.choice(mappings + [None]), lines))
    samples = []
    for _ in range(rng.randrange(0, 60)):
        stack = [rng.choice(locations) for _ in range(rng.randrange(0, 8))]
        labels: dict[str, object] = {}
        if rng.random() < 0.6:
            labels["phase"] = rng.choice(["a", "b", "c"])
        if rng.random() < 0.5:
            labels["bytes"] = rng.choice([0, 2, 512, 1024, 4096, 16384, 1 << 20])
        if rng.random() < 0.3:
            labels["thread"] = rng.choice(["t1", "t2"])
        if rng.random() < 0.2:
            labels["n"] = rng.randrange(5)
        samples.append(Sample([rng.randrange(-3, 100), rng.randrange(1000)], stack,
                              labels or None))
    return Profile([("samples", "count"), ("cpu", "nanoseconds")], samples, mappings=mappings)


def options(rng: random.Random) -> dict[str, str]:
    out = {}
    for name in ("focus", "ignore", "hide", "show", "show_from", "prune_from"):
        if rng.random() < 0.3:
            out[name] = rng.choice(PATTERNS)
    for name in ("tagfocus", "tagignore"):
        if rng.random() < 0.2:
            out[name] = rng.choice(TAGS)
    return out


def content(p: Profile) -> list[tuple]:
    """Each sample as what it says, location ids aside (a location that lost
    lines gets a new id in C, keeps its own in the reference)."""
    def loc(l: Location) -> tuple:
        return (l.mapping.filename if l.mapping else None, l.address,
                tuple((ln.function.name, ln.function.filename, ln.function.start_line)
                      if ln.function else None for ln in l.lines),
                tuple(ln.line for ln in l.lines))
    return [(s.values, tuple(map(loc, s.locations)), s.label_items) for s in p.samples]


@pytest.mark.parametrize("seed", range(300))
def test_the_c_filters_keep_what_the_reference_keeps(seed: int) -> None:
    rng = random.Random(11000 + seed)
    built = random_profile(rng)
    loaded = cprof.load(built.to_bytes())
    opts = options(rng)
    want = content(filter_reference.filter(loaded, **opts))
    got = c_filter(loaded, **opts)
    assert content(got) == want, opts
    # A profile built in Python is filtered alike, and the result is a whole
    # profile: it encodes and loads back the same.
    assert content(c_filter(built, **opts)) == want
    assert content(cprof.load(got.to_bytes())) == want
    # Every function the result holds is one its samples use.
    assert {f.id for f in got.functions} == {
        ln.function.id for s in got.samples for l in s.locations for ln in l.lines
        if ln.function is not None}


def test_filtering_twice_and_dropping_the_source() -> None:
    rng = random.Random(5)
    p = cprof.load(random_profile(rng).to_bytes())
    once = c_filter(p, hide="helper")
    twice = c_filter(once, show_from="main")
    want = content(filter_reference.filter(filter_reference.filter(p, hide="helper"),
                                           show_from="main"))
    del p, once  # the filtered profile keeps what it shares alive
    import gc
    gc.collect()
    assert content(twice) == want


def test_the_binding_refuses_bad_arguments() -> None:
    p = cprof.load(random_profile(random.Random(2)).to_bytes())
    data = p._analysis_data()
    n_samples, _, n_fn, n_map, _ = data.counts()
    with pytest.raises(ValueError, match="function_bits has 1 bytes"):
        data.filtered(1, b"\0", bytes(n_map))
    with pytest.raises(ValueError, match="mapping_bits has 0 bytes"):
        data.filtered(1, bytes(n_fn), b"")
    with pytest.raises(ValueError, match="sample_keep has"):
        data.filtered(0, bytes(n_fn), bytes(n_map), bytes(n_samples + 1))
    with pytest.raises(ValueError, match="unknown filter bits"):
        data.filtered(64, bytes(n_fn), bytes(n_map))


def test_new_locations_find_free_ids_when_the_largest_is_near_2_to_the_64() -> None:
    work, helper = Function(1, "work", "", "", 0), Function(2, "helper", "", "", 0)
    top_id = 2**64 - 1
    inlined = Location(top_id, 0, None, (Line(helper, 1), Line(work, 2)))
    other = Location(1, 0, None, (Line(work, 3),))
    p = cprof.load(Profile([("samples", "count")], [Sample([1], [inlined, other]),
                                                   Sample([2], [inlined])]).to_bytes())
    got = c_filter(p, hide="helper")
    ids = [loc.id for s in got.samples for loc in s.locations]
    assert len(set(ids)) == 2 and top_id not in ids and all(0 < i < 2**64 for i in ids)
    assert content(got) == content(filter_reference.filter(p, hide="helper"))
