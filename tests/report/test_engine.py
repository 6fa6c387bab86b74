"""The C analysis engine (csrc/analysis) against a plain Python reference.

Random small profiles (random stacks with recursion, inlined lines, unnamed
and missing functions, mappings, repeated strings, negative, zero and huge
values, pprof::base labels) are written, loaded, and their call graphs
computed twice: by ``ProfileData.call_graph`` and by the reference below,
which follows google/pprof's graph.newGraph literally, one sample at a time.
Every node's flat and cum and every edge's weight and inline mark must agree,
with and without a set of kept nodes.
"""

from __future__ import annotations

import array
import random

import pytest

import cprof
from cprof.pprof.model import Function, Line, Location, Mapping, Sample

FUNCTION, FILE, LINE = 0, 1, 2


def random_profile(rng: random.Random) -> cprof.Profile:
    mappings = [Mapping(i + 1, filename=rng.choice(["/bin/app", "/lib/libc.so", ""]))
                for i in range(2)]
    names = ["main", "work", "leaf", "", "work"]  # a repeated name, and an unnamed function
    functions = [Function(i + 1, rng.choice(names), "", rng.choice(["a.py", "b.py", ""]),
                          rng.randrange(3)) for i in range(6)]
    locations = []
    for i in range(12):
        n_lines = rng.choice([0, 1, 1, 1, 2, 3])
        lines = tuple(Line(rng.choice(functions + [None]), rng.randrange(1, 4))
                      for _ in range(n_lines))
        locations.append(Location(i + 1, 0x1000 + i, rng.choice(mappings + [None]), lines))
    samples = []
    for _ in range(rng.randrange(1, 40)):
        stack = [rng.choice(locations) for _ in range(rng.randrange(0, 7))]
        values = [rng.choice([0, 1, 5, -3, 2**62, rng.randrange(100)]) for _ in range(2)]
        labels = {"pprof::base": "true"} if rng.random() < 0.2 else None
        samples.append(Sample(values, stack, labels))
    return cprof.Profile([("samples", "count"), ("cpu", "nanoseconds")], samples)


def node_of(ln: Line | None, loc: Location, grain: int) -> tuple[str, str, int, int, str]:
    objfile = loc.mapping.filename if loc.mapping is not None else ""
    fn = ln.function if ln is not None else None
    if fn is None:
        return ("", "", 0, 0, objfile)
    if grain == FILE:
        return (fn.filename, "", 0, 0, "") if fn.filename else ("", "", 0, 0, objfile)
    if grain == LINE:
        return (fn.name, fn.filename, 0, ln.line if ln is not None else 0, "")
    return (fn.name, "", 0, 0, "") if fn.name else ("", "", fn.start_line, 0, objfile)


def reference(p: cprof.Profile, index: int, grain: int, kept: set | None):
    """flat, cum and edges {(caller, callee): (weight, every call inlined,
    some call reached past left-out nodes)} by node identity, one sample at a
    time."""
    flat: dict = {}
    cum: dict = {}
    edges: dict = {}
    inlined = any(len(loc.lines) > 1 for loc in p.locations)
    for s in p.samples:
        w = s.values[index]
        if w == 0 or not s.locations:
            continue
        path = []  # (node, inlined into the one before), root first
        for loc in reversed(s.locations):
            lines = list(reversed(loc.lines)) or [None]
            path += [(node_of(ln, loc, grain), j > 0) for j, ln in enumerate(lines)]
        leaf = path[-1][0]
        # Each kept node, whether left-out nodes came between it and the one before.
        jumped, kept_path = False, []
        for nd, inl in path:
            if kept is not None and nd not in kept:
                jumped = True
                continue
            kept_path.append((nd, inl, jumped))
            jumped = False
        if kept is None or leaf in kept:
            flat[leaf] = flat.get(leaf, 0) + w
        for nd in {nd for nd, _, _ in kept_path}:
            cum[nd] = cum.get(nd, 0) + w
        seen = set()
        for (a, _, _), (b, inl, past) in zip(kept_path, kept_path[1:]):
            if a != b and (a, b) not in seen:
                seen.add((a, b))
                e = edges.setdefault((a, b), [0, True, False])
                e[0] += w
                e[1] = e[1] and inl
                e[2] = e[2] or past
    return flat, cum, {k: (w, inlined and inl, res) for k, (w, inl, res) in edges.items()}


def engine(p: cprof.Profile, index: int, grain: int, kept: set | None):
    data = p._unchanged_data()
    infos = data.call_graph(index, grain, None, False)[0]
    mask = None if kept is None else bytes(info in kept for info in infos)
    infos, flat, cum, pairs, _ = data.call_graph(index, grain, mask, True)
    # The engine keeps a node's start line for lines; the reference names lines without it.
    key = [(n, f, 0, ln, o) if grain == LINE else (n, f, s, ln, o)
           for n, f, s, ln, o in infos]
    return ({key[i]: v for i, v in enumerate(flat) if v},
            {key[i]: v for i, v in enumerate(cum) if v},
            {(key[a], key[b]): (w, inl, res) for a, b, w, inl, res in pairs})


@pytest.mark.parametrize("seed", range(150))
def test_engine_matches_the_reference(seed: int) -> None:
    rng = random.Random(seed)
    p = cprof.load(random_profile(rng).to_bytes())
    grain = rng.choice([FUNCTION, FILE, LINE]) if seed % 3 else FUNCTION
    for index in (0, 1):
        kept = None
        if seed % 2:
            every = {node_of(ln, loc, grain) for loc in p.locations
                     for ln in (loc.lines or (None,))}
            kept = {nd for nd in every if rng.random() < 0.6}
        want_flat, want_cum, want_edges = reference(p, index, grain, kept)
        got_flat, got_cum, got_edges = engine(p, index, grain, kept)
        assert got_flat == {k: v for k, v in want_flat.items() if v}
        assert got_cum == {k: v for k, v in want_cum.items() if v}
        # An edge whose weights cancel is still an edge (pprof keeps it).
        assert got_edges == want_edges


@pytest.mark.parametrize("seed", range(40))
def test_line_granularity(seed: int) -> None:
    rng = random.Random(1000 + seed)
    p = cprof.load(random_profile(rng).to_bytes())
    want = reference(p, 1, LINE, None)
    got = engine(p, 1, LINE, None)
    assert got[0] == {k: v for k, v in want[0].items() if v}
    assert got[1] == {k: v for k, v in want[1].items() if v}


def test_top_reads_the_engine_for_a_loaded_profile() -> None:
    # A loaded profile's top goes through the C engine, a built one through
    # Python: both print the same report.
    rng = random.Random(7)
    built = random_profile(rng)
    loaded = cprof.load(built.to_bytes())
    assert loaded._unchanged_data() is not None and built._data is not None
    built._data = None  # back to a Python-only profile
    assert str(loaded.top(sample_type=1)) == str(built.top(sample_type=1))


def test_bad_arguments_are_refused() -> None:
    p = cprof.load(random_profile(random.Random(3)).to_bytes())
    data = p._unchanged_data()
    with pytest.raises(IndexError):
        data.call_graph(2)
    with pytest.raises(ValueError, match="granularity"):
        data.call_graph(0, 3)
    with pytest.raises(ValueError, match="kept has"):
        data.call_graph(0, 0, b"\x01" * 1000)


def test_threads_share_one_profile() -> None:
    # The paths are made with the GIL released and kept on the profile: threads
    # asking for the same graph at once all get it, and the same one.
    import threading
    p = cprof.load(random_profile(random.Random(11)).to_bytes())
    data = p._unchanged_data()
    results: list = []
    barrier = threading.Barrier(8)

    def ask() -> None:
        barrier.wait()
        results.append(data.call_graph(1, 2))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and all(r == results[0] for r in results)


def test_node_tags_refuse_bad_arguments() -> None:
    p = cprof.load(random_profile(random.Random(4)).to_bytes())
    data = p._unchanged_data()
    n_nodes = len(data.nodes(0))
    n_sets = len(data.label_sets()[0])
    with pytest.raises(IndexError, match="sample type index 2 out of range"):
        data.node_tags(2)
    with pytest.raises(ValueError, match=f"kept has 1 bytes for {n_nodes} entries"):
        data.node_tags(0, b"\x01")
    with pytest.raises(ValueError, match=f"groups has 2 bytes for {n_sets} label sets"):
        data.node_tags(0, None, b"\0\0")
    with pytest.raises(ValueError, match=rf"groups\[0\] is {n_sets}: a group is a label set"):
        data.node_tags(0, None, array.array("I", [n_sets] * n_sets))
    with pytest.raises(ValueError, match="cutoff must not be negative"):
        data.node_tags(0, None, None, -1)
    # Every set in one group: one row per node at most.
    rows = data.node_tags(0, None, array.array("I", [0] * n_sets))
    assert len({nd for nd, _, _, _ in rows}) == len(rows)


@pytest.mark.parametrize("seed", range(40))
def test_node_tags_with_a_cutoff_are_the_rows_at_or_above_it(seed: int) -> None:
    """The DOT report asks for the label boxes at or above its cutoff only
    (a big profile has millions of rows): exactly the full rows whose flat or
    cum magnitude reaches it, in order, whatever the values' signs, with and
    without a kept mask and a grouping of the sets."""
    rng = random.Random(seed)
    base = random_profile(rng)
    sets = [{"endpoint": "/a"}, {"endpoint": "/b"}, {"endpoint": "/a", "user": "x"}, None]
    p = cprof.Profile(base.sample_types, [Sample(s.values, s.locations, rng.choice(sets))
                                          for s in base.samples])
    data = cprof.load(p.to_bytes())._unchanged_data()
    n_nodes, n_sets = len(data.nodes(0)), len(data.label_sets()[0])
    kept = bytes(rng.random() < 0.7 for _ in range(n_nodes))
    groups = array.array("I", [rng.choice([0, 1, 2**32 - 1]) for _ in range(n_sets)])
    for t in range(2):
        for mask, grouping in [(None, None), (kept, None), (kept, groups)]:
            full = data.node_tags(t, mask, grouping)
            magnitudes = {abs(v) for r in full for v in r[2:]}
            for cutoff in {1, 2, 5, 2**62, 2**63 - 1, *(m for m in magnitudes if m < 2**63)}:
                want = [r for r in full if abs(r[2]) >= cutoff or abs(r[3]) >= cutoff]
                assert data.node_tags(t, mask, grouping, cutoff) == want, (t, cutoff)
