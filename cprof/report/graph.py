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

import collections
import itertools
import posixpath

from ..pprof.model import Location, Sample

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Callable, Iterable, Sequence

    from .. import _core
    from ..pprof.profile import Profile

NODE_FRACTION = 0.005  # pprof's -nodefraction default
EDGE_FRACTION = 0.001  # pprof's -edgefraction default

# pprof's NodeInfo without the address: (name, file, start line, line, binary).
Info = tuple[str, str, int, int, str]

# Distinct stacks, leaf first: the locations' ids, the locations, their summed value.
Stacks = list[tuple[tuple[int, ...], "Sequence[Location]", int]]


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


def aggregate(samples: Iterable[Sample], index: int) -> Stacks:
    """The distinct stacks of the samples whose value is not zero, with the
    sum of their values (pprof skips zero samples: they make no edge)."""
    sums: dict[tuple[int, ...], int] = {}
    first: dict[tuple[int, ...], Sequence[Location]] = {}
    for s in samples:
        w = s.values[index]
        if w == 0 or not s.locations:
            continue
        key = tuple(map(id, s.locations))
        if key in sums:
            sums[key] += w
        else:
            sums[key] = w
            first[key] = s.locations
    return [(k, first[k], w) for k, w in sums.items()]


def profile_stacks(profile: Profile, index: int) -> Stacks:
    """aggregate(profile.samples, index), from C when the profile is a loaded
    one that nobody changed: no Sample object is made, only the locations the
    distinct stacks use (a 300,000-sample profile then takes a fraction of the
    time)."""
    data = profile._unchanged_data()
    if data is None:
        return aggregate(profile.samples, index)
    locations = profile.locations
    return [(key, tuple(locations[i] for i in key), w) for key, w in data.stack_sums(index)]


def function_infos(loc: Location) -> list[Info]:
    """Function granularity: a location's nodes, leaf first."""
    objfile = loc.mapping.filename if loc.mapping is not None else ""
    infos: list[Info] = []
    for ln in loc.lines or (None,):
        fn = ln.function if ln is not None else None
        if fn is None:
            infos.append(("", "", 0, 0, objfile))
        elif fn.name:
            infos.append((fn.name, "", 0, 0, ""))
        else:
            infos.append(("", "", fn.start_line, 0, objfile))
    return infos


def line_infos(filename: Callable[[str], str]) -> Callable[[Location], list[Info]]:
    """Line granularity, as pprof's list sees it: every line keeps its
    function, file (passed through ``filename``, then cleaned), line number,
    start line and binary."""
    def infos(loc: Location) -> list[Info]:
        objfile = loc.mapping.filename if loc.mapping is not None else ""
        out: list[Info] = []
        for ln in loc.lines or (None,):
            fn = ln.function if ln is not None else None
            if fn is None:
                out.append(("", "", 0, 0, objfile))
            else:
                file = filename(fn.filename) if fn.filename else ""
                out.append((fn.name, clean_path(file) if file else "", fn.start_line,
                            ln.line if ln is not None else 0, objfile))
        return out
    return infos


# A node stack, root first, without left-out nodes; whether each node was
# inlined into the one before (empty when nothing in the profile is); whether
# the stack's leaf was kept (else the stack adds no flat).
_Path = tuple[tuple[int, ...], tuple[bool, ...], bool]


class Paths:
    """The distinct node stacks of a profile with their summed values
    (different lines of one function are one node at function granularity),
    the node identities by id, and whether anything was inlined."""

    def __init__(self, infos: list[Info], paths: dict[_Path, int], inlined: bool) -> None:
        self.infos = infos
        self.paths = paths
        self.inlined = inlined

    @classmethod
    def of(cls, stacks: Stacks,
           infos: Callable[[Location], list[Info]] = function_infos) -> Paths:
        ids: dict[Info, int] = {}
        # id(location) -> its node ids, caller first, and whether each is
        # inlined there (all but the first, the location's caller).
        chains: dict[int, tuple[int, ...]] = {}
        inline_chains: dict[int, tuple[bool, ...]] = {}
        for loc_ids, locs, _ in stacks:
            if all(map(chains.__contains__, loc_ids)):
                continue
            for key, loc in zip(loc_ids, locs):
                if key not in chains:
                    chain = tuple(ids.setdefault(info, len(ids))
                                  for info in reversed(infos(loc)))
                    chains[key] = chain
                    inline_chains[key] = (False,) + (True,) * (len(chain) - 1)
        inlined = any(len(c) > 1 for c in chains.values())
        node_of = {key: chain[0] for key, chain in chains.items()}
        paths: dict[_Path, int] = {}
        flags: tuple[bool, ...] = ()
        for loc_ids, _, w in stacks:
            if inlined:
                root_first = loc_ids[::-1]
                path = tuple(itertools.chain.from_iterable(map(chains.__getitem__, root_first)))
                flags = tuple(itertools.chain.from_iterable(
                    map(inline_chains.__getitem__, root_first)))
            else:
                path = tuple(map(node_of.__getitem__, reversed(loc_ids)))
            stack = (path, flags, True)
            paths[stack] = paths.get(stack, 0) + w
        return cls(list(ids), paths, inlined)

    def restrict(self, kept: set[Info]) -> Paths:
        """The stacks with only the ``kept`` nodes, as pprof's graph rebuilt
        from the samples with a set of kept nodes."""
        keep = {i for i, info in enumerate(self.infos) if info in kept}.__contains__
        paths: dict[_Path, int] = {}
        for (path, flags, leaf_kept), w in self.paths.items():
            if leaf_kept:
                leaf_kept = keep(path[-1])
            if flags:
                flags = tuple(itertools.compress(flags, map(keep, path)))
            path = tuple(filter(keep, path))
            if path:
                key = (path, flags, leaf_kept)
                paths[key] = paths.get(key, 0) + w
        return Paths(self.infos, paths, self.inlined)

    def graph(self, edges: bool = True) -> list[Node]:
        """The nodes (those with a value) with their edges (unless not
        wanted): each stack adds its value to its leaf's flat and, once
        however often it recurses, to the cum of its nodes and the weight of
        its caller -> callee edges."""
        flat = [0] * len(self.infos)
        cum = [0] * len(self.infos)
        weight: dict[tuple[int, int], int] = collections.defaultdict(int)  # caller, callee
        not_inline: set[tuple[int, int]] = set()  # edges with a call that was not inlined
        for (path, flags, leaf_kept), w in self.paths.items():
            if leaf_kept:
                flat[path[-1]] += w
            recursive = len(set(path)) != len(path)
            for nd in set(path) if recursive else path:
                cum[nd] += w
            if not edges:
                continue
            pairs = zip(path, path[1:])
            if not flags:
                for pair in set(pairs) if recursive else pairs:
                    if pair[0] != pair[1]:
                        weight[pair] += w
                continue
            # Once per stack, as first met from the root (its inline flag counts).
            seen: set[tuple[int, int]] = set()
            for pair, inline in zip(pairs, flags[1:]):
                if pair[0] != pair[1] and pair not in seen:
                    seen.add(pair)
                    weight[pair] += w
                    if not inline:
                        not_inline.add(pair)
        nodes = [Node(info, flat[i], cum[i]) for i, info in enumerate(self.infos)]
        for (a, b), w in weight.items():
            e = Edge(nodes[a], nodes[b], w, self.inlined and (a, b) not in not_inline)
            nodes[a].outs[nodes[b]] = e
            nodes[b].ins[nodes[a]] = e
        return [nd for nd in nodes if nd.flat != 0 or nd.cum != 0]


class EnginePaths:
    """Paths' interface over the C engine (csrc/analysis): the distinct node
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


def build(stacks: Stacks, kept: set[Info] | None = None,
          infos: Callable[[Location], list[Info]] = function_infos) -> list[Node]:
    """The nodes of the graph (those with a value), with their edges; with
    ``kept``, other nodes are left out."""
    paths = Paths.of(stacks, infos)
    return (paths if kept is None else paths.restrict(kept)).graph()


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

    def __init__(self, stacks: Stacks | Paths | EnginePaths, *, node_fraction: float,
                 edge_fraction: float, node_count: int = 0, cum: bool = False,
                 edges: bool = True) -> None:
        paths = stacks if isinstance(stacks, (Paths, EnginePaths)) else Paths.of(stacks)
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
