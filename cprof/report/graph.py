"""graph: the call graph behind pprof's reports, as google/pprof's internal/graph builds it.

A node is what pprof's NodeInfo names after the driver's aggregation (no
addresses): at function granularity a function name (an inlined line counts
as a function of its own), or, for a line without a named function, the
binary and the function's start line; at line granularity the function, its
file and the line. A sample adds its value to the flat of its leaf node and,
once per sample however often it recurses, to the cum of every node on its
stack and to the weight of every caller -> callee edge. When only some nodes
are kept, the others pass nothing on: an edge joins the kept frames around
left-out ones, and a sample whose leaf was left out adds no flat. (pprof
marks such edges "residual"; only its DOT output shows that, so it is not
kept here.)

Names are the profile's own, as ``go tool pprof -symbolize=none`` prints
them; with symbolization on, pprof's demangling heuristics also cut the
``<...>`` out of a name equal to its system name (so an unqualified Python
``<module>`` or ``<lambda>`` prints as the binary's name there).

Identical stacks are summed once, then identical node stacks, before the
walk, so the cost follows the number of distinct stacks rather than of
samples.
"""

from __future__ import annotations

import posixpath

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Iterable

    from .. import _core
    from ..pprof.profile import Profile

NODE_FRACTION = 0.005  # pprof's -nodefraction default
EDGE_FRACTION = 0.001  # pprof's -edgefraction default

# pprof's NodeInfo without the address: (name, file, start line, line, binary).
Info = tuple[str, str, int, int, str]


class Edge:
    """A caller -> callee edge: its weight, and whether every call through
    it was inlined."""

    __slots__ = ("src", "dest", "weight", "inline")

    def __init__(self, src: Node, dest: Node, weight: int, inline: bool) -> None:
        self.src = src
        self.dest = dest
        self.weight = weight
        self.inline = inline


class Node:
    """One function (or line) with its flat and cum values, its callers
    (``ins``) and callees (``outs``)."""

    __slots__ = ("info", "name", "flat", "cum", "ins", "outs")

    def __init__(self, info: Info, flat: int, cum: int) -> None:
        self.info = info
        self.name = printable_name(info)
        self.flat = flat
        self.cum = cum
        self.ins: dict[Node, Edge] = {}
        self.outs: dict[Node, Edge] = {}

    def sort_string(self) -> str:
        # Go's fmt.Sprint of the NodeInfo struct: pprof's last tie-breaker.
        name, file, start, lineno, objfile = self.info
        return f"{{{name}  0 {file} {start} {lineno} {objfile}}}"

    def inline_label(self) -> str:
        """pprof's mark for a function inlined into all or some of its callers."""
        kinds = {e.inline for e in self.ins.values()}
        if True not in kinds:
            return ""
        return "(partial-inline)" if False in kinds else "(inline)"


def printable_name(info: Info) -> str:
    """pprof's NodeInfo.PrintableName, for a node without an address."""
    name, file, _, lineno, objfile = info
    parts = [name] if name else []
    if lineno:
        parts.append(f"{file}:{lineno}")
    elif file:
        parts.append(file)
    elif not name:
        parts.append(f"[{base_name(objfile)}]" if objfile else "<unknown>")
    return " ".join(parts)


def clean_path(path: str) -> str:
    """Go's filepath.Clean: like normpath, but a leading "//" becomes "/"."""
    cleaned = posixpath.normpath(path) if path else "."
    return cleaned[1:] if cleaned.startswith("//") else cleaned


def base_name(path: str) -> str:
    """Go's filepath.Base: the last element, trailing slashes ignored."""
    stripped = path.rstrip("/")
    if not stripped:
        return "/" if path else "."
    return stripped.rsplit("/", 1)[-1]


class EnginePaths:
    """The call graph's paths from the C engine (csrc/analysis): the distinct node
    stacks of a profile at one granularity (GRAINS) are summed in C, and
    only the graph's nodes become Python objects."""

    def __init__(self, data: _core.ProfileData, index: int,
                 kept: bytes | None = None, grain: int = 0) -> None:
        self.data = data
        self.index = index
        self.kept = kept
        self.grain = grain
        self.infos: list[Info] | None = None
        self.inlined = False

    def restrict(self, kept: set[Info]) -> EnginePaths:
        infos = self._infos()
        out = EnginePaths(self.data, self.index, bytes(info in kept for info in infos), self.grain)
        out.infos, out.inlined = infos, self.inlined
        return out

    def _infos(self) -> list[Info]:
        if self.infos is None:
            self.infos = [nd[:5] for nd in self.data.nodes(self.grain)]
        return self.infos

    def graph(self, edges: bool = True) -> list[Node]:
        infos, flat, cum, pairs, self.inlined = self.data.call_graph(
            self.index, self.grain, self.kept, edges)
        if self.infos is None:
            self.infos = infos
        made: dict[int, Node] = {}

        def node(i: int) -> Node:
            nd = made.get(i)
            if nd is None:
                nd = made[i] = Node(infos[i], flat[i], cum[i])
            return nd

        out = [node(i) for i in range(len(infos)) if flat[i] != 0 or cum[i] != 0]
        for a, b, w, inline, _ in pairs:
            src, dest = node(a), node(b)
            e = Edge(src, dest, w, inline)
            src.outs[dest] = e
            dest.ins[src] = e
        return out


# pprof's granularities the engine knows (csrc/analysis/paths.h's cprof_grain_t).
GRAINS = {"function": 0, "file": 1, "line": 2}


def graph_paths(profile: Profile, index: int, granularity: str | None = None) -> EnginePaths:
    """The paths of a profile's samples of one sample type at a granularity
    (function by default), from the C engine (a profile built in Python is
    made into C data once)."""
    grain = GRAINS.get(granularity or "function")
    if grain is None:
        raise ValueError(f"granularity must be one of {', '.join(GRAINS)}, not {granularity!r}")
    return EnginePaths(profile._analysis_data(), index, grain=grain)


def sort_nodes(nodes: list[Node], cum: bool = False) -> None:
    """pprof's FlatNameOrder (or CumNameOrder): by the value, then name, then
    the other value, then the node's identity."""
    if cum:
        nodes.sort(key=lambda nd: (-abs(nd.cum), nd.name, -abs(nd.flat), nd.sort_string()))
    else:
        nodes.sort(key=lambda nd: (-abs(nd.flat), nd.name, -abs(nd.cum), nd.sort_string()))


def sorted_edges(edges: Iterable[Edge]) -> list[Edge]:
    """pprof's edge order: heaviest first, then by caller and callee name."""
    return sorted(edges, key=lambda e: (-abs(e.weight), e.src.name, e.dest.name))


def trim_edges(nodes: Iterable[Node], cutoff: int) -> int:
    """Remove the edges lighter than ``cutoff``; returns how many."""
    dropped = 0
    for nd in nodes:
        for src, e in list(nd.ins.items()):
            if abs(e.weight) < cutoff:
                del nd.ins[src]
                del src.outs[nd]
                dropped += 1
    return dropped


class Trimmed:
    """pprof's newTrimmedGraph: the nodes left after -nodefraction (their cum
    under the fraction of the flat total) and -nodecount, sorted, with edges
    under -edgefraction removed. ``dropped`` counts the nodes under the node
    fraction, ``candidates`` those left to choose ``node_count`` from. With
    ``edges=False`` the graph has edges only if something was inlined (they
    decide the inline marks)."""

    def __init__(self, paths: EnginePaths, *, node_fraction: float,
                 edge_fraction: float, node_count: int = 0, cum: bool = False,
                 edges: bool = True) -> None:
        nodes = paths.graph(edges)
        if not edges and paths.inlined:  # the inline marks need the edges
            nodes = paths.graph(True)
        edges = edges or paths.inlined
        flat_total = sum(nd.flat for nd in nodes)
        node_cutoff = abs(int(flat_total * node_fraction))
        edge_cutoff = abs(int(flat_total * edge_fraction))
        self.dropped = 0
        if node_cutoff > 0:
            kept = {nd.info for nd in nodes if abs(nd.cum) >= node_cutoff}
            if len(kept) != len(nodes):
                self.dropped = len(nodes) - len(kept)
                nodes = paths.restrict(kept).graph(edges)
        self.candidates = len(nodes)
        sort_nodes(nodes, cum)
        if 0 < node_count < len(nodes):
            nodes = paths.restrict({nd.info for nd in nodes[:node_count]}).graph(edges)
            sort_nodes(nodes, cum)
        self.dropped_edges = trim_edges(nodes, edge_cutoff)
        self.nodes = nodes
