"""Folded stacks and speedscope's stacks, merged and printed in C
(csrc/analysis/frame_stacks.c), against a plain per-sample reference on
random profiles whose names are chosen to trip the text order: prefixes of
one another, characters below and above ';', ';' and line breaks (which
folded text cleans), non-ASCII, unnamed functions and locations without
lines."""

from __future__ import annotations

import array
import random

import pytest

import cprof
from cprof import Function, Line, Location, Mapping, Profile, Sample
from cprof.export.folded import folded, folded_stacks
from cprof.export.speedscope import to_speedscope

NAMES = ["a", "a-b", "a;b", "ab", "a b", "a:b", "é", "z", "", "a\nb", "日本", "a\rb", "A"]


def random_profile(rng: random.Random) -> Profile:
    mappings = [Mapping(i + 1, filename=rng.choice(["/bin/app", "/lib/libc.so.6", ""]))
                for i in range(2)]
    functions = [Function(i + 1, rng.choice(NAMES), "", rng.choice(["/a.py", ""]),
                          rng.randrange(3)) for i in range(8)]
    locations = []
    for i in range(14):
        lines = tuple(Line(rng.choice(functions + [None]), rng.randrange(1, 4))
                      for _ in range(rng.choice([0, 1, 1, 1, 2, 3])))
        locations.append(Location(i + 1, 0x1000 + i, rng.choice(mappings + [None]), lines))
    samples = []
    for _ in range(rng.randrange(1, 50)):
        stack = [rng.choice(locations) for _ in range(rng.randrange(0, 7))]
        values = [rng.choice([0, 1, 5, -3, 2**62, -(2**62), rng.randrange(100)])
                  for _ in range(2)]
        labels = {"pprof::base": "true"} if rng.random() < 0.2 else None
        samples.append(Sample(values, stack, labels))
    return Profile([("samples", "count"), ("alloc_space", "kilobytes")], samples)


def label(ln: Line | None, loc: Location) -> str:
    fn = ln.function if ln is not None else None
    if fn is not None and fn.name:
        return fn.name
    if loc.mapping is not None and loc.mapping.filename:
        return "[" + loc.mapping.filename.rsplit("/", 1)[-1] + "]"
    return "<unknown>"


def clean(name: str) -> str:
    return name.replace(";", ":").replace("\r", " ").replace("\n", " ")


def reference(p: Profile, index: int) -> dict[tuple[str, ...], int]:
    """Each distinct stack of frame names, root first, with its summed value,
    those summing to zero left out: one sample at a time."""
    sums: dict[tuple[str, ...], int] = {}
    for s in p.samples:
        if s.values[index] == 0 or not s.locations:
            continue
        names = tuple(label(ln, loc) for loc in reversed(s.locations)
                      for ln in (list(reversed(loc.lines)) or [None]))
        sums[names] = sums.get(names, 0) + s.values[index]
    return {k: v for k, v in sums.items() if v != 0}


def folded_reference(p: Profile, index: int) -> tuple[str, int]:
    texts: dict[str, int] = {}
    for names, v in reference(p, index).items():
        text = ";".join(map(clean, names))
        texts[text] = texts.get(text, 0) + v
    lines = sorted((t, v) for t, v in texts.items() if v != 0)
    return "".join(f"{t} {v}\n" for t, v in lines), sum(v < 0 for _, v in lines)


@pytest.mark.parametrize("seed", range(150))
def test_folded_and_speedscope_match_the_reference(seed: int) -> None:
    rng = random.Random(7000 + seed)
    p = cprof.load(random_profile(rng).to_bytes())
    for index in range(2):
        text, negative = folded_reference(p, index)
        if negative:
            with pytest.raises(ValueError, match=f"^{negative} of .* have a negative"):
                folded(p, index)
        else:
            assert folded(p, index) == text
        assert folded_stacks(p, index) == {
            line.rpartition(" ")[0]: int(line.rpartition(" ")[2])
            for line in text.split("\n")[:-1]}

        want = {k: v * (1024 if index == 1 else 1) for k, v in reference(p, index).items()}
        doc = to_speedscope(p, index, split_diff=True)
        names = [f["name"] for f in doc["shared"]["frames"]]
        assert names == sorted(set(names))
        got: dict[tuple[str, ...], int] = {}
        for prof, sign in zip(doc["profiles"], (1, -1)):
            assert all(w > 0 for w in prof["weights"])
            for stack, w in zip(prof["samples"], prof["weights"]):
                key = tuple(names[f] for f in stack)
                assert key not in got
                got[key] = sign * w
        assert got == want


def test_sums_past_64_bits_print_exactly() -> None:
    fn = Function(1, "big", "", "", 0)
    loc = Location(1, 0, None, (Line(fn, 1),))
    other = Location(2, 0, None, (Line(Function(2, "small", "", "", 0), 1),))
    p = Profile([("samples", "count")],
                [Sample([2**63 - 1], [loc]) for _ in range(5)]
                + [Sample([-(2**63)], [other]) for _ in range(3)])
    assert folded_stacks(p) == {"big": 5 * (2**63 - 1), "small": -3 * 2**63}
    with pytest.raises(ValueError, match="1 of 2 stacks"):
        folded(p)


def test_a_profile_built_in_python_folds_alike() -> None:
    built = random_profile(random.Random(11))
    loaded = cprof.load(built.to_bytes())
    assert built._data is not None
    built._data = None
    assert folded_stacks(built, 0) == folded_stacks(loaded, 0)


def test_the_bindings_refuse_bad_arguments() -> None:
    p = cprof.load(random_profile(random.Random(3)).to_bytes())
    data = p._analysis_data()
    n = len(data.nodes(0))
    frames = array.array("I", [0] * n)
    with pytest.raises(ValueError, match="has a ';'"):
        data.folded(0, frames, ["x;y"])
    with pytest.raises(ValueError, match="has a ';' or a line break"):
        data.folded(0, frames, ["x\ny"])
    with pytest.raises(TypeError, match="frame name 0 is not a str"):
        data.folded(0, frames, [b"x"])
    with pytest.raises(ValueError, match="not below 1"):
        data.folded(0, array.array("I", [1] * n), ["x"])
    with pytest.raises(ValueError, match=f"frames has 4 bytes for {n} nodes"):
        data.frame_stacks(0, array.array("I", [0]), 1)
    with pytest.raises(IndexError, match="sample type index 2 out of range"):
        data.frame_stacks(2, frames, 1)
    with pytest.raises(ValueError, match="n_frames must not be negative"):
        data.frame_stacks(0, frames, -1)
    # Every node in one frame: every stack of frames is one frame repeated.
    stacks, values, _ = data.frame_stacks(0, frames, 1)
    assert all(set(st) == {0} for st in stacks)
    assert len({len(st) for st in stacks}) == len(stacks)


def test_lines_sort_by_their_bytes_where_a_name_prefixes_another() -> None:
    def loc(i: int, name: str) -> Location:
        return Location(i, 0, None, (Line(Function(i, name, "", "", 0), 1),))

    a, ab, a_space, a_dash, x = (loc(1, "a"), loc(2, "ab"), loc(3, "a b"), loc(4, "a-b"),
                                 loc(5, "x"))
    p = Profile([("samples", "count")], [
        Sample([1], [x, a]), Sample([1], [x, a_dash]), Sample([1], [a]),
        Sample([1], [a_space]), Sample([1], [x, ab]), Sample([1], [a_dash])])
    # ' ' < '-' < ';' < 'b' in ASCII; a line that ends sorts before one that goes on.
    assert folded(p) == "a 1\na b 1\na-b 1\na-b;x 1\na;x 1\nab;x 1\n"


@pytest.mark.parametrize("seed", range(40))
def test_function_dataframe_matches_a_per_sample_reference(seed: int) -> None:
    pytest.importorskip("pandas")  # an optional dependency; the suite's venvs have it
    rng = random.Random(9100 + seed)
    made = random_profile(rng)
    # Values that fit the DataFrame's int64 columns once summed.
    small = Profile(made.sample_types, [
        Sample([v % 1000 - 200 for v in s.values], s.locations, s.labels or None)
        for s in made.samples])
    p = cprof.load(small.to_bytes())
    flat: dict[str, list[int]] = {}
    cum: dict[str, list[int]] = {}
    for s in p.samples:
        names = [label(ln, loc) for loc in s.locations
                 for ln in (list(loc.lines) or [None])]  # leaf first
        if not names:
            continue
        f = flat.setdefault(names[0], [0, 0])
        for name in set(names):
            c = cum.setdefault(name, [0, 0])
            for t in range(2):
                c[t] += s.values[t]
        for t in range(2):
            f[t] += s.values[t]
    want = {name: (flat.get(name, [0, 0]), c) for name, c in cum.items()
            if any(c) or any(flat.get(name, [0, 0]))}
    df = p.to_dataframe(level="function")
    got = {row.function: ([row.samples_flat, row.alloc_space_flat],
                          [row.samples_cum, row.alloc_space_cum])
           for row in df.itertuples()}
    assert got == want
