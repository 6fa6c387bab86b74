"""tree: callers and callees, as ``go tool pprof -tree`` and ``-peek`` print them.

Each entry is a node of the trimmed call graph (graph.Trimmed, the
same one ``top`` lists): its callers with the weight of their calls above it,
its callees below, and the percentages of a caller or callee relative to the
node's cum. ``peek`` is the tree restricted to the functions whose name
matches a regular expression, on the untrimmed graph (pprof turns trimming
off for peek).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..pprof.filter import filter as filter_profile
from ..pprof.units import scaled_label
from .graph import EDGE_FRACTION, NODE_FRACTION, Edge, Trimmed, graph_paths, sorted_edges
from .text import active_filters, graph_labels, output_unit, percentage, profile_labels

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Iterable, Iterator

    from ..pprof.profile import Profile

NODE_COUNT = 80  # pprof's -nodecount default for every report but top

_SEPARATOR = "----------------------------------------------------------+-------------"
_LEGEND = "      flat  flat%   sum%        cum   cum%   calls calls% + context \t \t "


@dataclass(frozen=True)
class TreeEdge:
    """A caller or callee of an entry, with the weight of the calls between
    them; ``inline`` when every such call was inlined."""

    name: str
    value: int
    inline: bool = False


@dataclass(frozen=True)
class TreeEntry:
    """One function with its callers and callees, heaviest first."""

    name: str
    flat: int
    cum: int
    callers: tuple[TreeEdge, ...] = ()
    callees: tuple[TreeEdge, ...] = ()


@dataclass
class TreeReport:
    """The entries of ``go tool pprof -tree`` (or ``-peek``); ``str()``
    prints them as pprof does.

    ``total`` is the sum of the absolute values of ``sample_type`` over all
    samples (before any focus); ``shown`` the flat sum of the graph's
    ``nodes`` functions (for peek, more than the entries that matched);
    ``dropped`` how many fell under the node fraction and ``candidates`` how
    many were left to choose the nodes from."""

    entries: list[TreeEntry]
    sample_type: str
    sample_unit: str
    total: int
    shown: int
    nodes: int
    dropped: int
    candidates: int
    node_cutoff: int
    unit: str  # the unit every value is printed in
    labels: list[str] = field(default_factory=list)  # the profile's lines and active filters

    def __iter__(self) -> Iterator[TreeEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> TreeEntry:
        return self.entries[i]

    def format_value(self, value: int) -> str:
        """A value as this report prints it (``1490ms``, ``821.09kB``, ``17``)."""
        return scaled_label(value, self.sample_unit, self.unit)

    def header(self) -> list[str]:
        return self.labels + graph_labels(
            shown=self.shown, total=self.total, dropped=self.dropped,
            node_cutoff=self.node_cutoff, nodes=self.nodes, candidates=self.candidates,
            fmt=self.format_value)

    def __str__(self) -> str:
        fmt = self.format_value
        out = self.header() + [_SEPARATOR, _LEGEND]
        flat_sum = 0
        for e in self.entries:
            out.append(_SEPARATOR)
            out += [self._edge_line(c, e.cum) for c in e.callers]
            flat_sum += e.flat
            out.append(f"{fmt(e.flat):>10} {percentage(e.flat, self.total)} "
                       f"{percentage(flat_sum, self.total)} {fmt(e.cum):>10} "
                       f"{percentage(e.cum, self.total)}                | {e.name}")
            out += [self._edge_line(c, e.cum) for c in e.callees]
        if self.nodes:
            out.append(_SEPARATOR)
        return "\n".join(out) + "\n"

    def _edge_line(self, edge: TreeEdge, cum: int) -> str:
        inline = " (inline)" if edge.inline else ""
        return (f"{self.format_value(edge.value):>50} {percentage(edge.value, cum)} |   "
                f"{edge.name}{inline}")


def tree(profile: Profile, *, sample_type: str | int | None = None, focus: str | None = None,
         node_fraction: float = NODE_FRACTION, edge_fraction: float = EDGE_FRACTION,
         node_count: int = NODE_COUNT, cum: bool = False,
         granularity: str | None = None) -> TreeReport:
    """Every function with its callers and callees, as ``go tool pprof -tree``:
    ``sample_type`` by name or index (-sample_index); ``focus`` keeps the
    samples with a frame whose function name, file name or binary matches
    (-focus); functions whose cum is under ``node_fraction`` of the total
    and calls under ``edge_fraction`` are left out, then all but the
    ``node_count`` heaviest (0: all), sorted by flat or, with ``cum=True``,
    by cum; ``granularity`` as top's."""
    return _report(profile, None, sample_type, focus, node_fraction, edge_fraction,
                   node_count, cum, granularity)


def peek(profile: Profile, regex: str, *, sample_type: str | int | None = None,
         focus: str | None = None, granularity: str | None = None) -> TreeReport:
    """The callers and callees of the functions whose name matches ``regex``
    (searched, as Go's MatchString), as ``go tool pprof -peek``: nothing is
    trimmed. Raises ValueError when no function matches."""
    return _report(profile, re.compile(regex), sample_type, focus, 0.0, 0.0, 0, False,
                   granularity)


def _report(profile: Profile, rx: re.Pattern[str] | None, sample_type: str | int | None,
            focus: str | None, node_fraction: float, edge_fraction: float, node_count: int,
            cum: bool, granularity: str | None) -> TreeReport:
    if focus:
        profile = filter_profile(profile, focus=focus)
    index = profile.sample_index(sample_type)
    vt = profile.sample_types[index]
    total = profile.report_total(index)
    g = Trimmed(graph_paths(profile, index, granularity), node_fraction=node_fraction,
                edge_fraction=edge_fraction, node_count=node_count, cum=cum)
    entries = [TreeEntry(nd.name, nd.flat, nd.cum, _edges(nd.ins.values(), callers=True),
                         _edges(nd.outs.values(), callers=False))
               for nd in g.nodes if rx is None or rx.search(nd.name)]
    if rx is not None and not entries:
        raise ValueError(f"no matches found for regexp: {rx.pattern}")
    report = TreeReport(entries, vt.type, vt.unit, total, sum(nd.flat for nd in g.nodes),
                        len(g.nodes), g.dropped, g.candidates, abs(int(total * node_fraction)),
                        output_unit(g.nodes, total, vt.unit))
    report.labels = (profile_labels(profile, vt.type, vt.unit, total, report.format_value)
                     + active_filters(profile.active_filters))
    return report


def _edges(edges: Iterable[Edge], *, callers: bool) -> tuple[TreeEdge, ...]:
    return tuple(TreeEdge((e.src if callers else e.dest).name, e.weight, e.inline)
                 for e in sorted_edges(edges))
