"""dot: a call graph in Graphviz's DOT language, as ``go tool pprof -dot`` draws it,
and SVG through Graphviz's ``dot`` (pprof's ``-svg`` and ``web``).

The graph follows google/pprof's internal/graph and internal/report (the copy
vendored in Go's cmd/vendor) at function granularity: a node is a function
(inlined lines are functions of their own), with the flat and cum of
``cprof.report.top``; an edge from caller to callee carries the value of the
samples through that call, once per sample. Trimming, as pprof's
newTrimmedGraph:

1. nodes whose cum is under ``node_fraction`` of the flat total are dropped
   and the graph rebuilt without them: a call through a dropped node becomes
   a residual edge (dotted) from the nearest kept caller;
2. nodes are ranked by pprof's entropy score (favouring entries, leaves and
   nodes whose edges spread), and the first ``node_count`` are kept, counting
   each node's label boxes (nodelets, four at most) as nodes too;
3. edges under ``edge_fraction`` of the flat total are dropped, then residual
   edges whose callee is reachable another way.

Nodes are boxes labelled "name\\nflat (pct)\\nof cum (pct)", the font growing
with flat from 8 to 24 points and the colour with cum; a node's samples'
string labels, and their ``bytes`` numeric label (heap profiles), hang off it
as nodelets. Not applied, as in ``cprof.report``: the profile's drop_frames /
keep_frames and pprof's -mean / -divide_by views. Unlike pprof, quotes in the
graph's title and in label values are escaped, so the DOT stays valid.
"""

from __future__ import annotations

import array
import math
import os
import re
import shutil
import subprocess
from collections import deque

from ..pprof.model import LabelValue
from ..pprof.profile import label_items
from ..pprof.ops import DIFF_BASE_LABEL
from ..pprof.units import scale, scaled_label
from ..report.graph import EDGE_FRACTION, NODE_FRACTION
from ..report.text import active_filters, output_unit, percentage, profile_labels
from ..report.tree import NODE_COUNT

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Iterable

    from ..pprof.profile import Profile

MAX_NODELETS = 4  # label boxes per node, as pprof
GRAPHVIZ_PACKAGE = "graphviz"
HOW_TO_READ = "See https://git.io/JfYMW for how to read the graph"
_NEWLINE = "\\n"  # DOT's centred line break, as two characters
_LEFT = "\\l"  # DOT's left-justified line break


class GraphvizError(RuntimeError):
    """Graphviz's ``dot`` is missing or failed."""


# A node's identity at function granularity (pprof's NodeInfo once aggregated):
# the function name, or for a location without a named function the binary
# and the function's start line.
_Key = tuple[str, str, int]


class _Tag:
    """A label box: a joined set of string labels, or one numeric value."""

    __slots__ = ("name", "unit", "value", "flat", "cum")

    def __init__(self, name: str, unit: str = "", value: int = 0) -> None:
        self.name = name
        self.unit = unit
        self.value = value
        self.flat = 0
        self.cum = 0


class _Edge:
    __slots__ = ("src", "dest", "weight", "residual", "inline")

    def __init__(self, src: _Node, dest: _Node, weight: int, residual: bool,
                 inline: bool) -> None:
        self.src = src
        self.dest = dest
        self.weight = weight
        self.residual = residual  # goes through dropped nodes
        self.inline = inline  # every call through it was inlined into the caller


class _Node:
    __slots__ = ("key", "name", "flat", "cum", "ins", "outs", "label_tags", "numeric_tags")

    def __init__(self, key: _Key, flat: int, cum: int) -> None:
        self.key = key
        name, objfile, _ = key
        self.name = name or (f"[{os.path.basename(objfile)}]" if objfile else "<unknown>")
        self.flat = flat
        self.cum = cum
        self.ins: dict[_Node, _Edge] = {}  # by caller
        self.outs: dict[_Node, _Edge] = {}  # by callee
        self.label_tags: dict[str, _Tag] = {}
        # Numeric tags grouped by the samples' joined string labels ("" for none).
        self.numeric_tags: dict[str, dict[str, _Tag]] = {}

    def sort_string(self) -> str:
        # Go's fmt.Sprint of the NodeInfo struct: pprof's last tie-breaker.
        name, objfile, start = self.key
        return f"{{{name}  0  {start} 0 {objfile}}}"


# A numeric tag as pprof names it: (printed value, unit, value).
_Numeric = tuple[tuple[str, str, int], ...]


class _Samples:
    """One sample type of a profile as the graph reads it from the C engine
    (csrc/analysis: graph.c for nodes and edges, tags.c for the label
    boxes): the nodes' identities by id (``keys``), and the total that
    percentages are of, the profile's report total (Profile.report_total:
    pprof's, with equal samples merged, of the diff base's alone in a
    -diff_base profile, taken before the filters of a filtered profile)."""

    def __init__(self, profile: Profile, index: int) -> None:
        self.data = profile._analysis_data()
        self.index = index
        self.total = profile.report_total(index)
        # ProfileData.nodes rows: (name, file, start line, line, binary, ...).
        self.keys: list[_Key] = [(nd[0], nd[4], nd[2]) for nd in self.data.nodes(0)]
        self.tag_names: list[tuple[str, _Numeric]] | None = None  # per group of label sets
        self.groups = array.array("I")  # per label set: its group

    def mask(self, kept: set[int] | None) -> bytes | None:
        return None if kept is None else bytes(i in kept for i in range(len(self.keys)))

    def tags(self, kept: set[int] | None,
             cutoff: int) -> list[tuple[int, str, _Numeric, int, int]]:
        """The label boxes' rows: (node, joined string labels, numeric tags,
        flat, cum); label sets drawn alike are summed together in C, those
        without labels to show are left out, and so are rows below ``cutoff``
        (_trim_tags's) where a row is one box: when no sample has a numeric
        tag. A big labelled profile has millions of rows (node, labels), a
        drawn graph a few hundred."""
        if self.tag_names is None:
            sets = [label_items(raw) for raw in self.data.label_sets()[0]]
            unit = _bytes_unit(sets)
            names = [_tag_names(items, unit) for items in sets]
            group_of: dict[tuple[str, _Numeric], int] = {}
            self.groups = array.array("I", [
                group_of.setdefault(name, len(group_of)) if name[0] or name[1] else _NONE
                for name in names])
            self.tag_names = list(group_of)
        names_of = self.tag_names
        one_box_a_row = not any(numeric for _, numeric in names_of)
        rows = self.data.node_tags(self.index, self.mask(kept), self.groups,
                                   cutoff if one_box_a_row else 0)
        return [(nd, *names_of[group], flat, cum) for nd, group, flat, cum in rows]


_NONE = 2**32 - 1  # csrc/analysis/tags.h's CPROF_TAGS_NONE: a label set with no box


def _tag_names(items: tuple[tuple[str, LabelValue, str], ...],
               bytes_unit: str) -> tuple[str, _Numeric]:
    """pprof's label boxes for a sample: its string labels as one sorted
    ``key:value`` list, and its numeric ``bytes`` values."""
    strings = sorted(f"{k}:{v}" for k, v, _ in items
                     if isinstance(v, str) and k != DIFF_BASE_LABEL)
    numeric = tuple((scaled_label(v, bytes_unit, "minimum"), bytes_unit, v)
                    for k, v, _ in items if k == "bytes" and isinstance(v, int))
    return _NEWLINE.join(map(_escape, strings)), numeric


def _first(item: tuple[str, LabelValue, str]) -> str:
    return item[0]


def _bytes_unit(label_sets: list[tuple[tuple[str, LabelValue, str], ...]]) -> str:
    """The unit of the ``bytes`` numeric label, the only one pprof's graphs
    show: the first unit a sample gives it, else "bytes"."""
    for items in label_sets:
        for k, v, unit in items:
            if k == "bytes" and isinstance(v, int) and unit:
                return unit
    return "bytes"


def _graph(samples: _Samples, kept: set[int] | None, tag_cutoff: int | None) -> list[_Node]:
    """pprof's graph.New: nodes with their values and edges (and, unless
    ``tag_cutoff`` is None, the label boxes that _trim_tags would keep at that
    cutoff); with ``kept`` (node ids), other functions are left out and calls
    through them become residual edges."""
    mask = samples.mask(kept)
    _, flat, cum, pairs, _ = samples.data.call_graph(samples.index, 0, mask, True)
    made = {nd: _Node(samples.keys[nd], flat[nd], cum[nd]) for nd in range(len(samples.keys))
            if flat[nd] != 0 or cum[nd] != 0}
    for a, b, weight, inline, residual in pairs:
        if a in made and b in made:
            e = _Edge(made[a], made[b], weight, residual, inline)
            made[a].outs[made[b]] = made[b].ins[made[a]] = e
    if tag_cutoff is not None:
        _add_tags(samples, kept, made, tag_cutoff)
    return list(made.values())


def _add_tags(samples: _Samples, kept: set[int] | None, made: dict[int, _Node],
              cutoff: int) -> None:
    """Each node's label boxes: its samples' joined string labels and their
    numeric ``bytes`` values, with the flat and cum they carry (one row per
    node and group of label sets drawn alike, summed in C); boxes below
    ``cutoff`` may be left out, as _trim_tags would drop them."""
    for nd, labels, numeric, flat, cum in samples.tags(kept, cutoff):
        node = made.get(nd)
        if node is None:
            continue
        found = []
        if labels:
            tag = node.label_tags.get(labels)
            if tag is None:
                tag = node.label_tags[labels] = _Tag(labels)
            found.append(tag)
        if numeric:
            group = node.numeric_tags.setdefault(labels, {})
            for name, unit, value in numeric:
                tag = group.get(name)
                if tag is None:
                    tag = group[name] = _Tag(name, unit, value)
                found.append(tag)
        for tag in found:
            tag.flat += flat
            tag.cum += cum


# --- ranking and trimming -------------------------------------------------------

_INV_LN2 = 1.4426950408889634073599246810018921374266


def _log2(x: float) -> float:
    # Go's math.Log2, so that scores truncate to the same integers as pprof's.
    frac, exp = math.frexp(x)
    if frac == 0.5:
        return float(exp - 1)
    return math.log(frac) * _INV_LN2 + exp


def _edge_entropy(edges: Iterable[_Edge], self_weight: int) -> float:
    weights = [e.weight for e in edges]
    total = self_weight + sum(abs(w) for w in weights if w > 0)
    score = 0.0
    if total != 0:
        for w in weights + ([self_weight] if self_weight > 0 else []):
            frac = float(abs(w)) / float(total)
            # A zero weight (a diff's cancelled edge) makes NaN, as in Go.
            score += -frac * _log2(frac) if frac > 0 else math.nan
    return score


_INT64_MIN = -(1 << 63)


def _int64(v: int) -> int:
    """v wrapped to a Go int64."""
    return (v - _INT64_MIN) % (1 << 64) + _INT64_MIN


def _abs64(v: int) -> int:
    return _int64(-v) if v < 0 else v


def _entropy_score(n: _Node) -> int:
    """pprof's entropyScore: how much a node adds to the picture; a node that
    merely passes its calls through scores low."""
    score = 1.0 if not n.ins else _edge_entropy(n.ins.values(), 0)
    score += 1.0 if not n.outs else _edge_entropy(n.outs.values(), n.flat)
    product = score * float(n.cum)
    # Go on amd64 turns NaN and out-of-range floats into the smallest int64.
    whole = int(product) if math.isfinite(product) and abs(product) < 2.0**63 else _INT64_MIN
    return _int64(whole + n.flat)


def _sort(nodes: list[_Node]) -> None:
    """pprof's EntropyOrder."""
    scores = {n: _abs64(_entropy_score(n)) for n in nodes}
    nodes.sort(key=lambda n: (-scores[n], n.name, -abs(n.flat), n.sort_string()))


def _sorted_edges(edges: Iterable[_Edge]) -> list[_Edge]:
    return sorted(edges, key=lambda e: (-abs(e.weight), e.src.name, e.dest.name))


def _trim_tags(nodes: list[_Node], cutoff: int) -> None:
    def keep(tags: dict[str, _Tag]) -> dict[str, _Tag]:
        return {k: t for k, t in tags.items() if abs(t.flat) >= cutoff or abs(t.cum) >= cutoff}

    for n in nodes:
        n.label_tags = keep(n.label_tags)
        n.numeric_tags = {k: keep(group) for k, group in n.numeric_tags.items()}


def _trim_edges(nodes: list[_Node], cutoff: int) -> int:
    dropped = 0
    for n in nodes:
        for src, e in list(n.ins.items()):
            if abs(e.weight) < cutoff:
                del n.ins[src]
                del src.outs[n]
                dropped += 1
    return dropped


def _count_tags(n: _Node) -> int:
    count = sum(1 for t in n.label_tags.values() if t.flat != 0)
    count += sum(1 for group in n.numeric_tags.values() for t in group.values() if t.flat != 0)
    return count


def _top_nodes(nodes: list[_Node], node_count: int) -> list[_Node]:
    """The first nodes, counting each one's nodelets as nodes too."""
    limit = node_count
    count = 0
    for i, n in enumerate(nodes):
        count += min(_count_tags(n), MAX_NODELETS) + 1
        if count >= node_count:
            limit = i + 1
            break
    return nodes[:limit]


def _remove_redundant_edges(nodes: list[_Node]) -> None:
    """Drop residual edges, lightest first, whose callee the caller still
    reaches through other edges."""
    for n in reversed(nodes):
        for e in reversed(_sorted_edges(n.ins.values())):
            if not e.residual:
                break
            if _reachable_without(e):
                del e.src.outs[e.dest]
                del e.dest.ins[e.src]


def _reachable_without(edge: _Edge) -> bool:
    """Whether the edge's caller reaches its callee through other edges."""
    seen = {edge.dest}
    queue = deque([edge.dest])
    while queue:
        n = queue.popleft()
        for e in n.ins.values():
            if e is edge or e.src in seen:
                continue
            if e.src is edge.src:
                return True
            seen.add(e.src)
            queue.append(e.src)
    return False


def _by_id(samples: _Samples, nodes: list[_Node]) -> dict[int, _Node]:
    by_key = {n.key: n for n in nodes}
    return {i: by_key[key] for i, key in enumerate(samples.keys) if key in by_key}


def _ids(samples: _Samples, nodes: list[_Node]) -> set[int]:
    return set(_by_id(samples, nodes))


class _Trimmed:
    """The nodes left, ranked, and what the legend says was dropped:
    ``count_before_top`` nodes were left to choose ``node_count`` from."""

    def __init__(self, nodes: list[_Node], count_before_top: int, dropped_nodes: int,
                 dropped_edges: int) -> None:
        self.nodes = nodes
        self.count_before_top = count_before_top
        self.dropped_nodes = dropped_nodes
        self.dropped_edges = dropped_edges


def _trimmed_graph(samples: _Samples, node_count: int, node_fraction: float,
                   edge_fraction: float) -> _Trimmed:
    """pprof's newTrimmedGraph for a visual (DOT) report."""
    nodes = _graph(samples, None, None)
    flat_total = sum(n.flat for n in nodes)
    node_cutoff = abs(int(flat_total * node_fraction))
    edge_cutoff = abs(int(flat_total * edge_fraction))
    dropped_nodes = 0
    if node_cutoff > 0:
        kept = [n for n in nodes if abs(n.cum) >= node_cutoff]
        if len(kept) != len(nodes):
            dropped_nodes = len(nodes) - len(kept)
            nodes = _graph(samples, _ids(samples, kept), node_cutoff)
    if dropped_nodes == 0:
        _add_tags(samples, None, _by_id(samples, nodes), node_cutoff)
    count_before_top = len(nodes)
    _sort(nodes)
    if node_count > 0:
        # Low tags and edges go first: they weigh in the choice.
        _trim_tags(nodes, node_cutoff)
        _trim_edges(nodes, edge_cutoff)
        top = _top_nodes(nodes, node_count)
        if len(top) != len(nodes):
            nodes = _graph(samples, _ids(samples, top), node_cutoff)
            _sort(nodes)
    _trim_tags(nodes, node_cutoff)
    dropped_edges = _trim_edges(nodes, edge_cutoff)
    _remove_redundant_edges(nodes)
    return _Trimmed(nodes, count_before_top, dropped_nodes, dropped_edges)


# --- DOT text -------------------------------------------------------------------

_CPP_ANONYMOUS = re.compile(r"^\(anonymous namespace\)::", re.ASCII)
_GO_VERSION = re.compile(r"^(.*?)/v(?:[2-9]|[1-9][0-9]+)([./].*)\Z", re.ASCII)
_SHORTENERS = [
    re.compile(r"^(?:[\w\-\.]+\/)+(.+)", re.ASCII),  # Go: drop the package path
    re.compile(r"^(?:[a-z]\w*\.)*([A-Z][\w\$]*\.(?:<init>|[a-z][\w\$]*(?:\$\d+)?))(?:(?:\()|\Z)",
               re.ASCII),  # Java-like: Class.method
    re.compile(r"^(?:[_a-zA-Z]\w*::)+(_*[A-Z]\w*::~?[_a-zA-Z]\w*(?:<.*>)?)", re.ASCII),  # C++
]


def shorten_function_name(name: str) -> str:
    """pprof's ShortenFunctionName: a Go function without its package path,
    a Java-like ``pkg.Class.method`` as ``Class.method``, a C++ method
    without its namespaces."""
    name = _CPP_ANONYMOUS.sub("", name)
    name = _GO_VERSION.sub(r"\1\2", name)
    for pattern in _SHORTENERS:
        m = pattern.match(name)
        if m is not None:
            return "".join(m.groups())
    return name


def _escape(text: str) -> str:
    """pprof's escapeForDot: backslashes and quotes escaped, a newline made
    a left-justified line break."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\l")


def _multiline_name(n: _Node) -> str:
    name, objfile, _ = n.key
    if not name:
        return f"[{os.path.basename(objfile)}]\\n" if objfile else "<unknown>\\n"
    text = _escape(shorten_function_name(name)).replace("::", "\\n")
    text = text.replace("[...]", "[\u2026]").replace(".", "\\n")
    return text + "\\n"


def _color(score: float, background: bool) -> str:
    """pprof's dotColor: grey near 0, red towards 1 (green towards -1)."""
    saturation, value = (0.1, 0.93) if background else (1.0, 0.7)
    score = max(-1.0, min(1.0, score))
    if abs(score) < 0.2:
        saturation *= abs(score) / 0.2
    if score > 0.0:
        score = math.pow(score, 0.3)
    if score < 0.0:
        score = -math.pow(-score, 0.3)
    if score < 0.0:
        g = value
        r = value * (1 + saturation * score)
    else:
        r = value
        g = value * (1 - saturation * score)
    b = value * (1 - saturation)
    return "#%02x%02x%02x" % (int(r * 255.0), int(g * 255.0), int(b * 255.0))


def _sort_tags(tags: Iterable[_Tag], flat: bool) -> list[_Tag]:
    if flat:
        return sorted(tags, key=lambda t: (-abs(t.flat), t.name))
    return sorted(tags, key=lambda t: (-abs(t.cum), -abs(t.flat), t.name))


def _collapsed_tags(tags: list[_Tag], count: int, flat: bool) -> list[_Tag]:
    """pprof's collapsedTags: numeric tags in ``count`` groups around the
    heaviest ones, each group labelled by its range."""
    tags = _sort_tags(tags, flat)
    if len(tags) <= count:
        return tags

    def distance(t: _Tag, u: _Tag) -> float:
        v, _ = scale(u.value, u.unit, t.unit)
        return abs(t.value - v)

    groups = [[t] for t in tags[:count]]
    for t in tags[count:]:
        best, d = 0, distance(t, groups[0][0])
        for i in range(1, count):
            nd = distance(t, groups[i][0])
            if nd < d:
                best, d = i, nd
        groups[best].append(t)
    out = []
    for group in groups:
        if len(group) == 1:
            t = group[0]
            made = _Tag(scaled_label(t.value, t.unit, "auto"))
            made.flat, made.cum = t.flat, t.cum
        else:
            lo = hi = group[0]
            for t in group[1:]:
                if int(scale(t.value, t.unit, lo.unit)[0]) < lo.value:
                    lo = t
                if int(scale(t.value, t.unit, hi.unit)[0]) > hi.value:
                    hi = t
            made = _Tag(f"{scaled_label(lo.value, lo.unit, 'auto')}.."
                        f"{scaled_label(hi.value, hi.unit, 'auto')}")
            made.flat = sum(t.flat for t in group)
            made.cum = sum(t.cum for t in group)
        out.append(made)
    return _sort_tags(out, flat)


class _Writer:
    def __init__(self, total: int, sample_unit: str, unit: str) -> None:
        self.total = total
        self.sample_unit = sample_unit
        self.unit = unit
        self.lines: list[str] = []

    def value(self, v: int) -> str:
        return scaled_label(v, self.sample_unit, self.unit)

    def pct(self, v: int) -> str:
        return percentage(v, self.total).strip()

    def node(self, n: _Node, node_id: int, max_flat: float) -> None:
        flat_value = self.value(n.flat)
        label = _multiline_name(n)
        label += f"{flat_value} ({self.pct(n.flat)})" if n.flat != 0 else "0"
        cum_value = flat_value
        if n.cum != n.flat:
            label += "\\n" if n.flat != 0 else " "
            cum_value = self.value(n.cum)
            label += f"of {cum_value} ({self.pct(n.cum)})"
        font_size = 8
        if max_flat != 0 and n.flat != 0 and abs(n.flat) <= max_flat:
            font_size += math.ceil(16.0 * math.sqrt(abs(n.flat) / max_flat))
        score = n.cum / abs(self.total) if self.total else 0.0
        self.lines.append(
            f'N{node_id} [label="{label}" id="node{node_id}" fontsize={font_size} shape=box '
            f'tooltip="{_escape(n.name)} ({cum_value})" color="{_color(score, False)}" '
            f'fillcolor="{_color(score, True)}"]')

    def nodelets(self, n: _Node, node_id: int) -> bool:
        """The node's label boxes; whether it has any."""
        start = len(self.lines)
        # A leaf shows its tags' cum (which includes dropped callees), others their flat.
        flat = len(n.outs) > 0
        numeric = {k: list(group.values()) for k, group in n.numeric_tags.items() if group}
        for i, t in enumerate(_sort_tags(n.label_tags.values(), flat)[:MAX_NODELETS]):
            w = t.flat if flat else t.cum
            if w == 0:
                continue
            weight = self.value(w)
            self.lines.append(f'N{node_id}_{i} [label = "{t.name}" id="N{node_id}_{i}" '
                              f'fontsize=8 shape=box3d tooltip="{weight}"]')
            self.lines.append(f'N{node_id} -> N{node_id}_{i} [label=" {weight}" weight=100 '
                              f'tooltip="{weight}" labeltooltip="{weight}"]')
            if t.name in numeric:
                self.numeric_nodelets(numeric[t.name], flat, f"N{node_id}_{i}")
        if "" in numeric:
            self.numeric_nodelets(numeric[""], flat, f"N{node_id}")
        return len(self.lines) > start

    def numeric_nodelets(self, tags: list[_Tag], flat: bool, source: str) -> None:
        for j, t in enumerate(_collapsed_tags(tags, MAX_NODELETS, flat)):
            w, attr = t.cum, ' style="dotted"'
            if flat or t.flat == t.cum:
                w, attr = t.flat, ""
            if w == 0:
                continue
            weight = self.value(w)
            self.lines.append(f'N{source}_{j} [label = "{t.name}" id="N{source}_{j}" fontsize=8 '
                              f'shape=box3d tooltip="{weight}"]')
            self.lines.append(f'{source} -> N{source}_{j} [label=" {weight}" weight=100 '
                              f'tooltip="{weight}" labeltooltip="{weight}"{attr}]')

    def edge(self, e: _Edge, src: int, dest: int, src_has_nodelets: bool) -> None:
        w = self.value(e.weight)
        inline = _NEWLINE + " (inline)" if e.inline else ""
        attr = f'label=" {w}{inline}"'
        if self.total != 0:
            weight = 1 + min(abs(e.weight) * 100 // self.total, 100)
            if weight > 1:
                attr += f" weight={weight}"
            width = 1 + min(abs(e.weight) * 5 // self.total, 5)
            if width > 1:
                attr += f" penwidth={width}"
            attr += f' color="{_color(e.weight / abs(self.total), False)}"'
        arrow = "..." if e.residual else "->"
        tooltip = f'"{_escape(e.src.name)} {arrow} {_escape(e.dest.name)} ({w})"'
        attr += f" tooltip={tooltip} labeltooltip={tooltip}"
        if e.residual:
            attr += ' style="dotted"'
        if src_has_nodelets:
            attr += " minlen=2"
        self.lines.append(f"N{src} -> N{dest} [{attr}]")


def to_dot(profile: Profile, sample_type: str | int | None = None, node_count: int = NODE_COUNT,
           node_fraction: float = NODE_FRACTION, edge_fraction: float = EDGE_FRACTION) -> str:
    """The call graph of one sample type (by name or index; the default one
    when None) in the DOT language, as ``go tool pprof -dot`` prints it with
    ``-nodecount``, ``-nodefraction`` and ``-edgefraction`` (0 keeps all)."""
    index = profile.sample_index(sample_type)
    vt = profile.sample_types[index]
    samples = _Samples(profile, index)
    total = samples.total
    g = _trimmed_graph(samples, node_count, node_fraction, edge_fraction)
    nodes = g.nodes
    out = _Writer(total, vt.unit, output_unit(nodes, total, vt.unit))

    title = ""
    if profile.mappings and profile.mappings[0].filename:
        title = os.path.basename(profile.mappings[0].filename)
    shown = sum(n.flat for n in nodes)
    legend = (profile_labels(profile, vt.type, vt.unit, total, out.value)
              + active_filters(profile.active_filters))
    legend.append(f"Showing nodes accounting for {out.value(shown)}, {out.pct(shown)} of "
                  f"{out.value(total)} total")
    if total != 0:
        if g.dropped_nodes > 0:
            legend.append(f"Dropped {g.dropped_nodes} node{'s' if g.dropped_nodes > 1 else ''} "
                          f"(cum <= {out.value(abs(int(total * node_fraction)))})")
        if g.dropped_edges > 0:
            legend.append(f"Dropped {g.dropped_edges} edge{'s' if g.dropped_edges > 1 else ''} "
                          f"(freq <= {out.value(abs(int(total * edge_fraction)))})")
        if 0 < len(nodes) < g.count_before_top:
            legend.append(f"Showing top {len(nodes)} nodes out of {g.count_before_top}")
    legend.append("\n" + HOW_TO_READ)

    out.lines.append(f'digraph "{_escape(title or "unnamed")}" {{')
    out.lines.append('node [style=filled fillcolor="#f8f8f8"]')
    tooltip = f' tooltip="{_escape(title)}"' if title else ""
    text = _LEFT.join(_escape(line) for line in legend) + _LEFT
    out.lines.append(f'subgraph cluster_L {{ "{_escape(legend[0])}" [shape=box fontsize=16 '
                     f'label="{text}"{tooltip}] }}')
    if nodes:
        ids = {n: i + 1 for i, n in enumerate(nodes)}
        max_flat = float(max(abs(n.flat) for n in nodes))
        has_nodelets = {}
        for n in nodes:
            out.node(n, ids[n], max_flat)
            has_nodelets[n] = out.nodelets(n, ids[n])
        for e in _sorted_edges(e for n in nodes for e in n.outs.values()):
            out.edge(e, ids[e.src], ids[e.dest], has_nodelets[e.src])
    out.lines.append("}")
    return "\n".join(out.lines) + "\n"


def to_svg(profile: Profile, sample_type: str | int | None = None, node_count: int = NODE_COUNT,
           node_fraction: float = NODE_FRACTION, edge_fraction: float = EDGE_FRACTION) -> str:
    """``to_dot(...)`` laid out as SVG by Graphviz's ``dot -Tsvg``. Raises
    GraphvizError, naming the package to install, when ``dot`` is missing."""
    text = to_dot(profile, sample_type, node_count, node_fraction, edge_fraction)
    return render_dot(text, "svg")


def render_dot(text: str, fmt: str = "svg", timeout: float = 120) -> str:
    """Lay out DOT text with Graphviz's ``dot -T<fmt>`` and return what it
    prints, for a text format (svg, dot, plain, json)."""
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizError(
            "Graphviz's 'dot' was not found in PATH: it draws call graphs as SVG; install "
            f"Graphviz (Debian/Ubuntu: apt-get install {GRAPHVIZ_PACKAGE}; macOS: brew install "
            f"{GRAPHVIZ_PACKAGE}) or use to_dot() for the DOT text")
    try:
        r = subprocess.run([dot, f"-T{fmt}"], input=text.encode("utf-8"), capture_output=True,
                           timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise GraphvizError(f"Graphviz's dot took longer than {timeout:g}s") from None
    if r.returncode != 0:
        raise GraphvizError(f"Graphviz's dot failed (exit {r.returncode}): "
                            f"{r.stderr.decode('utf-8', 'replace').strip()[-2000:]}")
    return r.stdout.decode("utf-8")


__all__ = ["GraphvizError", "render_dot", "shorten_function_name", "to_dot", "to_svg"]
