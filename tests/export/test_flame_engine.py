"""The flame graph's call tree, grown in C (csrc/analysis/tree.c), against a
plain Python reference on random profiles: every frame's positive and
negative width, flat value and line, by its path of names from the root."""

from __future__ import annotations

import os
import random
import sys

import pytest

import cprof
from cprof.export.flamegraph.html import call_tree

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "report"))
from test_engine import node_of, random_profile  # noqa: E402


def frame_name(node: tuple) -> str:
    name, _, _, _, objfile = node
    return name or (f"[{os.path.basename(objfile)}]" if objfile else "<unknown>")


def reference(p: cprof.Profile, types: list[int]) -> dict:
    # 1. Samples grouped by their node path and base mark, summed; lines kept where they agree.
    groups: dict = {}
    for s in p.samples:
        if not any(s.values):
            continue
        path, lines = [], []
        for loc in reversed(s.locations):
            for ln in list(reversed(loc.lines)) or [None]:
                path.append(node_of(ln, loc, 0))
                lines.append(ln.line if ln is not None else 0)
        base = ("pprof::base", "true", "") in s.label_items
        key = (tuple(path), base)
        g = groups.setdefault(key, [[0] * len(types), list(lines)])
        for j, t in enumerate(types):
            g[0][j] += -abs(s.values[t]) if base else s.values[t]
        g[1] = [a if a == b else 0 for a, b in zip(g[1], lines)]
    # 2. Each group into a trie of names, its value split by sign.
    tree: dict = {}
    n = len(types)

    def at(names: tuple) -> list:
        return tree.setdefault(names, [None, [0] * n, [0] * n, [0] * n])

    for (path, _), (values, lines) in groups.items():
        names = tuple(frame_name(nd) for nd in path)
        pos = [max(v, 0) for v in values]
        neg = [max(-v, 0) for v in values]
        for d in range(len(names) + 1):
            row = at(names[:d])
            line = lines[d - 1] if d else 0
            row[0] = line if row[0] is None or row[0] == line else 0
            for j in range(n):
                row[1][j] += pos[j]
                row[2][j] += neg[j]
        row = at(names)
        for j in range(n):
            row[3][j] += pos[j] - neg[j]
    return {k: (v[0] or 0, v[1], v[2], v[3]) for k, v in tree.items()
            if any(v[1]) or any(v[2]) or k == ()}


def engine(p: cprof.Profile, types: list[int]) -> dict:
    t = call_tree(p, sample_types=types, min_width_fraction=0.0)
    names = [f[0] for f in t.funcs]
    out, stack = {}, []
    for i in range(len(t.func)):
        if i:
            del stack[t.depth[i] - 1:]
            stack.append(names[t.func[i]])
        out[tuple(stack)] = (t.line[i], [c[i] for c in t.pos], [c[i] for c in t.neg],
                             [c[i] for c in t.flat])
    return out


@pytest.mark.parametrize("seed", range(120))
def test_tree_matches_the_reference(seed: int) -> None:
    rng = random.Random(5000 + seed)
    p = cprof.load(random_profile(rng).to_bytes())
    types = rng.choice([[0], [1], [0, 1], [1, 0]])
    want = reference(p, types)
    got = engine(p, types)
    # Frames whose widths are all zero are not made; the root always is.
    assert got == want


def test_a_profile_built_in_python_draws_the_same_tree() -> None:
    built = random_profile(random.Random(9))
    loaded = cprof.load(built.to_bytes())
    assert built._data is not None
    built._data = None
    assert engine(built, [0, 1]) == engine(loaded, [0, 1])
