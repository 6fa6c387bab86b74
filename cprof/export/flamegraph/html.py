"""Interactive HTML flame graph: the merged call tree as compact JSON, drawn by an inline script.

The page is self-contained (inline style and script, no font, no network
access) and works on any pprof profile. :func:`call_tree` merges the samples
into one tree keyed by function name, root first, with inlined lines expanded
into frames of their own. It grows the tree one level at a time and stops at
frames narrower than ``min_width_fraction`` of the total in every sample type,
so a huge profile costs time in proportion to what is drawn; the page says how
many frames were hidden. Hidden frames still count in a search: each hidden
subtree leaves on its parent the sets of functions on its stacks with their
values, so the matched share is exact (each sample counted once however many
of its frames match) up to a size budget, past which the page says how much
it did not search.

Diff profiles (``-diff_base``: base samples negated and labelled
``pprof::base``; ``-base``: negative values) are drawn as pprof draws them: a
frame is as wide as the sum of its positive and negative parts, coloured red
where the profile grew over its base and blue where it shrank.
"""

from __future__ import annotations

import array
import functools
import html as _html
import json
import os
from dataclasses import dataclass
from itertools import repeat
from math import gcd

from ...pprof.io import write_bytes
from ...pprof.units import scale
from ..frames import frames_by_name

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

    from ...pprof.profile import Profile

DEFAULT_MIN_WIDTH_FRACTION = 0.00001  # 0.001%: 2 px of a 1200 px frame zoomed to 1/600 of the total
RESIDUE_BUDGET = 300_000  # function ids kept to search hidden frames (about 2 MB of JSON)
ROOT_NAME = "root"


@dataclass
class CallTree:
    """A merged call tree, flattened in preorder (parents before children,
    siblings sorted by name); node 0 is the root.

    ``funcs`` lists each distinct frame name with a file and start line
    (empty and 0 when unknown); ``func``, ``line`` and ``depth`` give each
    node's function, its line when all its samples agree on one (else 0) and
    its depth. ``pos[t][i]`` is the sum of the positive values of sample type
    ``sample_types[t]`` through node ``i``, ``neg[t][i]`` that of the
    magnitudes of the negative ones (all zero unless ``diff``): a frame's width
    is ``pos + neg`` and its value ``pos - neg``. ``flat[t][i]`` is the value
    of the samples whose stack ends at node ``i``.

    ``hidden`` counts the frames pruned from under kept ones (each with all it
    calls). ``residue`` rows ``(node, set, sums)`` hold the samples under
    node's pruned children whose pruned frames are exactly the functions of
    ``sets[set]``; ``sums`` are positive parts per type, then negative parts.
    ``unsearched`` is, per type, the width of the pruned samples left out of
    ``residue`` to keep it under budget.
    """

    sample_types: list[int]
    funcs: list[tuple[str, str, int]]
    func: list[int]
    line: list[int]
    depth: list[int]
    pos: list[list[int]]
    neg: list[list[int]]
    flat: list[list[int]]
    residue: list[tuple[int, int, list[int]]]
    sets: list[list[int]]
    hidden: int
    unsearched: list[int]
    diff: bool
    min_width_fraction: float

    def width(self, t: int, i: int) -> int:
        """Node ``i``'s width in sample type ``t`` (an index into ``sample_types``)."""
        return self.pos[t][i] + self.neg[t][i]

    def value(self, t: int, i: int) -> int:
        """Node ``i``'s value (positive minus negative) in sample type ``t``."""
        return self.pos[t][i] - self.neg[t][i]

    def hidden_width(self, t: int) -> int:
        """The width of all pruned frames in sample type ``t``."""
        n = len(self.sample_types)
        return sum(sums[t] + sums[n + t] for _, _, sums in self.residue) + self.unsearched[t]


def call_tree(profile: Profile, *, sample_types: list[int] | None = None,
              min_width_fraction: float = DEFAULT_MIN_WIDTH_FRACTION,
              residue_budget: int = RESIDUE_BUDGET) -> CallTree:
    """Merge ``profile``'s samples into a call tree over the sample types
    given by index (all by default), pruning frames narrower than
    ``min_width_fraction`` of the root in every one of them. The tree is
    grown in C (csrc/analysis/tree.c) from the profile's distinct stacks;
    Python names the frames and receives the tree's columns."""
    types = list(range(len(profile.sample_types))) if sample_types is None else sample_types
    n = len(types)
    data = profile._analysis_data()
    # Frame ids in name order: the tree's siblings come out sorted by name, and
    # nodes printed alike (lines of one function) are one frame.
    frames = frames_by_name(data.nodes(0))
    funcs: list[tuple[str, str, int]] = [(ROOT_NAME, "", 0)] + [
        (name, file, line) for name, (file, line) in zip(frames.names, frames.sources)]
    # Frame f is funcs[f + 1]: the tree is given ids one up, so that its
    # frames and residue sets index funcs as they are (the root is funcs[0]).
    t = data.call_tree(array.array("I", [f + 1 for f in frames.of_node]), types,
                       min_width_fraction)
    func = t["frame"]
    func[0] = 0  # the root, CPROF_TREE_ROOT in C
    rows, sets, unsearched = _budget(t["residue"], t["sets"], [col[0] for col in t["pos"]]
                                     + [col[0] for col in t["neg"]], n, residue_budget)
    return CallTree(
        sample_types=types, funcs=funcs, func=func, line=t["line"], depth=t["depth"],
        pos=t["pos"], neg=t["neg"], flat=t["flat"], residue=rows, sets=sets,
        hidden=t["hidden"], unsearched=unsearched, diff=t["diff"],
        min_width_fraction=min_width_fraction)


def _budget(residue: list[tuple[int, int, list[int]]], sets: list[list[int]], root: list[int],
            n: int, budget: int) -> tuple[list[tuple[int, int, list[int]]], list[list[int]],
                                          list[int]]:
    """The tree's residue rows (node, set, sums) and interned function sets,
    widest rows first while the sets they use hold under ``budget`` function
    ids, renumbered; and the width of the rows left out."""
    totals = [root[j] + root[n + j] or 1 for j in range(n)]
    shares = [[(sums[j] + sums[n + j]) / totals[j] for _, _, sums in residue] for j in range(n)]
    widest = list(map(max, *shares)) if n > 1 else shares[0] if n else []
    order = sorted(range(len(residue)), key=widest.__getitem__, reverse=True)
    kept: dict[int, int] = {}  # the tree's set id -> its id here
    rows = []
    unsearched = [0] * n
    used = 0
    for r in order:
        index, s, row_sums = residue[r]
        new = kept.get(s)
        if new is None:
            if used + len(sets[s]) > budget:
                for j in range(n):
                    unsearched[j] += row_sums[j] + row_sums[n + j]
                continue
            used += len(sets[s])
            new = kept[s] = len(kept)
        rows.append((index, new, row_sums))
    return rows, [sets[s] for s in kept], unsearched


def _unit_info(unit: str) -> tuple[str, float]:
    """The unit family the page scales values in ("time" in ns, "bytes" in B,
    or "" for plain numbers) and the factor from ``unit`` to its base unit."""
    _, name = scale(1, unit, "auto")
    if name in ("ns", "us", "ms", "s", "hrs"):
        return "time", scale(1, unit, "ns")[0]
    if name in ("B", "kB", "MB", "GB", "TB", "PB"):
        return "bytes", scale(1, unit, "B")[0]
    return "", 1.0


def _data(profile: Profile, tree: CallTree, initial: int) -> dict[str, Any]:
    """The page's data: every value of a sample type divided by their
    greatest common divisor (CPU values are multiples of the period), which
    the page multiplies back when it prints them."""
    n = len(tree.sample_types)
    divisors = [gcd(*tree.pos[t], *tree.neg[t], *tree.flat[t], tree.unsearched[t],
                    *(sums[t] for _, _, sums in tree.residue),
                    *(sums[n + t] for _, _, sums in tree.residue)) or 1
                for t in range(n)]
    types = []
    for t, index in enumerate(tree.sample_types):
        vt = profile.sample_types[index]
        family, factor = _unit_info(vt.unit)
        types.append({"type": vt.type, "unit": vt.unit, "family": family, "factor": factor,
                      "divisor": divisors[t]})

    def scaled(columns: list[list[int]]) -> list[list[int]]:
        return [column if divisors[t] == 1 else list(map(int.__floordiv__, column,
                                                          repeat(divisors[t])))
                for t, column in enumerate(columns)]

    residue = [[i, s, *(sums[t] // divisors[t] for t in range(n)),
                *(sums[n + t] // divisors[t] for t in range(n))] for i, s, sums in tree.residue]
    pos, neg, flat = scaled(tree.pos), scaled(tree.neg), scaled(tree.flat)
    hidden_width = [tree.hidden_width(t) // divisors[t] for t in range(n)]
    unsearched = [tree.unsearched[t] // divisors[t] for t in range(n)]
    return {
        "types": types,
        "initial": tree.sample_types.index(initial),
        "diff": tree.diff,
        "names": [f[0] for f in tree.funcs],
        "files": [f[1] for f in tree.funcs],
        "starts": [f[2] for f in tree.funcs],
        "func": tree.func,
        "line": tree.line,
        "depth": tree.depth,
        "pos": pos,
        "neg": neg if tree.diff else None,
        "flat": flat,
        "residue": residue,
        "sets": tree.sets,
        "hidden": tree.hidden,
        "hiddenWidth": hidden_width,
        "unsearched": unsearched,
    }


def _json(data: dict[str, Any]) -> str:
    # "<" escaped so that no "</script>" can end the data block early.
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).replace("<", "\\u003c")


def prune_note(tree: CallTree) -> str:
    """The sentence the page shows when frames were pruned ("" when none were)."""
    if not tree.hidden:
        return ""
    frames, calls = ("frame", "it calls") if tree.hidden == 1 else ("frames", "they call")
    return (f"{tree.hidden} tiny {frames} (each narrower than "
            f"{tree.min_width_fraction * 100:g}% of the total, with all {calls}) "
            "hidden to keep this graph fast; search still counts them.")


@functools.cache
def _asset(name: str) -> str:
    """The page's style sheet or script, shipped beside this module."""
    # Read beside this module (the package ships them there), not through
    # importlib.resources, whose import alone costs ~12 ms of every `cprof flame`.
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), name),
              encoding="utf-8") as f:
        return f.read()


def html_fragment(profile: Profile, *, sample_type: str | int | None = None,
                  title: str | None = None,
                  min_width_fraction: float = DEFAULT_MIN_WIDTH_FRACTION) -> str:
    """The flame graph as an HTML fragment (style, markup, data and script),
    self-contained: embed it in a page or an iframe's ``srcdoc``. Several
    fragments may share one page. ``sample_type`` (name or index) is the one
    shown first; every sample type is embedded and can be chosen on the page."""
    initial = profile.sample_index(sample_type)
    tree = call_tree(profile, min_width_fraction=min_width_fraction)
    heading = title if title is not None else "Flame graph"
    note = prune_note(tree)
    return (
        f"<style>{_asset('flamegraph.css')}</style>\n"
        '<div class="cprof-flame">\n'
        f'<div class="cfg-head"><b class="cfg-title">{_html.escape(heading)}</b>\n'
        '<label>Sample type <select class="cfg-type" aria-label="sample type"></select></label>\n'
        '<input class="cfg-search" type="search" placeholder="Search (regex)" '
        'aria-label="search functions">\n'
        '<button class="cfg-orient" type="button">View: flame</button>\n'
        '<button class="cfg-reset" type="button">Reset</button>\n'
        '<span class="cfg-total"></span> <span class="cfg-matched"></span></div>\n'
        '<div class="cfg-crumbs"></div>\n'
        f'<p class="cfg-note"{"" if note else " hidden"}>{_html.escape(note)}'
        '<span class="cfg-note-share"></span></p>\n'
        '<p class="cfg-legend" hidden><span class="cfg-up">red: grew over the base</span> '
        '<span class="cfg-down">blue: shrank</span> (frame width: new + base)</p>\n'
        '<div class="cfg-chart" role="img" aria-label="flame graph"></div>\n'
        '<div class="cfg-details">&nbsp;</div>\n'
        '<div class="cfg-tip" hidden></div>\n'
        f'<script type="application/json" class="cfg-data">{_json(_data(profile, tree, initial))}'
        "</script>\n"
        "</div>\n"
        f"<script>{_asset('flamegraph.js')}</script>\n")


def html(profile: Profile, *, sample_type: str | int | None = None, title: str | None = None,
         min_width_fraction: float = DEFAULT_MIN_WIDTH_FRACTION) -> str:
    """A complete, self-contained HTML page holding the interactive flame
    graph of ``profile`` (see :func:`html_fragment`)."""
    heading = title if title is not None else "cprof flame graph"
    body = html_fragment(profile, sample_type=sample_type, title=heading,
                         min_width_fraction=min_width_fraction)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{_html.escape(heading)}</title>\n"
            "<style>body{margin:8px;background:#fff}</style>\n"
            f"</head>\n<body>\n{body}</body>\n</html>\n")


def write_html(profile: Profile, path: str | os.PathLike[str], **kw: Any) -> None:
    """Write :func:`html` of ``profile`` to ``path`` (UTF-8)."""
    write_bytes(path, html(profile, **kw).encode("utf-8"))

__all__ = ["CallTree", "call_tree", "html", "html_fragment", "prune_note", "write_html",
           "DEFAULT_MIN_WIDTH_FRACTION"]
