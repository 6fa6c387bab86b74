"""The call graph, line listing and traces as cprof first wrote them in
Python, stack by stack and sample by sample: the reference the C engine
(csrc/analysis/) is compared with on random profiles (test_listing_engine.py,
test_traces_engine.py), and the Python that benchmarks/engine_reports.py
times against it. Kept as it was in cprof/report/graph.py, listing.py and
traces.py, apart from its imports; what the engine did not replace (the
source lines' range and reading, the labels' text) is cprof's own."""

from __future__ import annotations

import collections
import itertools
import re
from typing import Callable, Hashable, Iterable, Sequence

from cprof.pprof.filter import label_units
from cprof.pprof.model import LabelValue, Location, Mapping, Sample
from cprof.pprof.profile import Profile
from cprof.pprof.units import scaled_label
from cprof.report import listing
from cprof.report.graph import Edge, Node, clean_path, printable_name
from cprof.report.listing import ListReport, _trim
from cprof.report.text import profile_labels
from cprof.report.traces import _label_lines, _labels_key

# pprof's NodeInfo without the address: (name, file, start line, line, binary).
Info = tuple[str, str, int, int, str]

# Distinct stacks, leaf first: the locations' ids, the locations, their summed value.
Stacks = list[tuple[tuple[int, ...], Sequence[Location], int]]


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


def build(stacks: Stacks, kept: set[Info] | None = None,
          infos: Callable[[Location], list[Info]] = function_infos) -> list[Node]:
    """The nodes of the graph (those with a value), with their edges; with
    ``kept``, other nodes are left out."""
    paths = Paths.of(stacks, infos)
    return (paths if kept is None else paths.restrict(kept)).graph()




def listed_lines(profile: Profile, index: int, rx: re.Pattern[str], search_path: str,
                 trim_path: str) -> list[tuple[str, str, int, int, str, int, int]]:
    """What cprof.report.listing._listed_lines gives, as the Python graph
    made it: the nodes of the line-granularity graph (files trimmed and
    cleaned) whose function name rx matches, in the graph's order."""
    nodes = build(profile_stacks(profile, index),
                  infos=line_infos(lambda f: _trim(f, trim_path, search_path)))
    return [(*nd.info, nd.flat, nd.cum) for nd in nodes if rx.search(nd.info[0])]


def list_source(profile: Profile, regex: str, **options: object) -> ListReport:
    """cprof.report.listing.list_source on the lines of the Python graph."""
    engine = listing._listed_lines
    listing._listed_lines = listed_lines
    try:
        return listing.list_source(profile, regex, **options)  # type: ignore[arg-type]
    finally:
        listing._listed_lines = engine


_SEPARATOR = "-----------+-------------------------------------------------------"
_BLANK = " " * 13  # where a stack's value goes, on its first line only


def traces(profile: Profile, *, sample_type: str | int | None = None) -> str:
    """The text of ``go tool pprof -traces`` for ``profile``, with values of
    ``sample_type`` (by name or index; the default one when None)."""
    index = profile.sample_index(sample_type)
    vt = profile.sample_types[index]
    samples = profile.samples
    total = profile.report_total(index)

    def fmt(value: int) -> str:
        return scaled_label(value, vt.unit, "minimum")

    out = profile_labels(profile, vt.type, vt.unit, total, fmt)
    units = label_units(s.label_items for s in samples)
    frames: dict[int, list[str]] = {}  # id(location) -> its function names, leaf first
    stacks: dict[tuple[int, ...], list[str]] = {}  # the names of a stack of locations
    labels: dict[tuple[tuple[str, LabelValue, str], ...], list[str]] = {}  # their lines
    for s, values in merged(samples):
        ids = tuple(map(id, s.locations))
        stack = stacks.get(ids)
        if stack is None:
            stack = stacks[ids] = []
            for loc in s.locations:
                names = frames.get(id(loc))
                if names is None:
                    names = frames[id(loc)] = _frames(loc)
                stack += names
        if not stack:
            continue
        out.append(_SEPARATOR)
        lines = labels.get(s.label_items)
        if lines is None:
            lines = labels[s.label_items] = _label_lines(s.label_items, units)
        out += lines
        out.append(f"{fmt(values[index]):>10}   {stack[0]}")
        out += [_BLANK + name for name in stack[1:]]
    out.append(_SEPARATOR)
    return "\n".join(out) + "\n"


def _frames(loc: Location) -> list[str]:
    """A location's functions, leaf first; all but the last were inlined."""
    infos = function_infos(loc)
    return [printable_name(info) + (" (inline)" if i != len(infos) - 1 else "")
            for i, info in enumerate(infos)]




def _mapping_key(m: Mapping | None) -> Hashable:
    # google/pprof's mappingKey: size rounded up to 4 KiB, offset, build id or file.
    if m is None:
        return None
    return (m.limit - m.start + 0xFFF) // 0x1000, m.offset, m.build_id or m.filename


def _location_key(loc: Location) -> Hashable:
    # google/pprof's locationKey, with functions compared by content.
    address = loc.address - loc.mapping.start if loc.mapping is not None else loc.address
    lines = tuple(
        (None if ln.function is None else (ln.function.start_line, ln.function.name,
                                           ln.function.system_name, ln.function.filename),
         ln.line) for ln in loc.lines)
    return address, _mapping_key(loc.mapping), lines, loc.is_folded


def merged(samples: Sequence[Sample]) -> list[tuple[Sample, list[int]]]:
    """The samples as pprof merges them: each distinct (stack, labels) once,
    in order of first appearance, with its summed values; all-zero samples
    left out."""
    location_keys: dict[int, Hashable] = {}
    stack_keys: dict[tuple[int, ...], Hashable] = {}
    label_keys: dict[tuple[tuple[str, LabelValue, str], ...], Hashable] = {}
    out: dict[Hashable, tuple[Sample, list[int]]] = {}
    for s in samples:
        if not any(s.values):
            continue
        ids = tuple(map(id, s.locations))
        stack = stack_keys.get(ids)
        if stack is None:
            for loc in s.locations:
                if id(loc) not in location_keys:
                    location_keys[id(loc)] = _location_key(loc)
            stack = stack_keys[ids] = tuple(map(location_keys.__getitem__, ids))
        labels = label_keys.get(s.label_items)
        if labels is None:
            labels = label_keys[s.label_items] = _labels_key(s.label_items)
        seen = out.get((stack, labels))
        if seen is None:
            out[stack, labels] = (s, list(s.values))
        else:
            for i, v in enumerate(s.values):
                seen[1][i] += v
    return [(s, values) for s, values in out.values() if any(values)]
