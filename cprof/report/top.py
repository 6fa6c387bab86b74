"""top: pprof's flat/cum table of the heaviest functions, as ``go tool pprof -top`` prints it.

The numbers follow google/pprof's internal/graph and internal/report (the copy
vendored in Go 1.19's cmd/vendor): at function granularity a node is a
function name (inlined lines count as functions of their own); a sample adds
its value to the flat of its leaf location's first line and, once per sample
however often it recurses, to the cum of every function on its stack;
percentages are of the sum of absolute values of the chosen sample type over
all samples. Nodes whose cum is below ``node_fraction`` of the flat total are
dropped (pprof's -nodefraction, 0.005), then rows are sorted by flat (or cum)
descending, then by name, and one unit is chosen for every value of the
report.

Not applied (pprof applies them before reporting): the profile's drop_frames /
keep_frames regular expressions, mean (-mean) or ratio (-divide_by) views, and
the demangling heuristics of pprof's symbolizer (reports print names as
``-symbolize=none`` does; see graph.py).
"""

from __future__ import annotations

from ..pprof.model import Frozen, set_field
from ..pprof.units import scaled_label
from .graph import EDGE_FRACTION, NODE_FRACTION, Trimmed, graph_paths
from .text import active_filters, graph_labels, output_unit, percentage, profile_labels

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Iterator

    from ..pprof.profile import Profile


class TopRow(Frozen):
    """One function of a top report. Percentages are of the report's total
    (0-100); ``inline`` is "", "(inline)" or "(partial-inline)" as pprof marks
    a function that was inlined into all or some of its callers."""

    __slots__ = ("name", "flat", "flat_pct", "sum_pct", "cum", "cum_pct", "inline")
    name: str
    flat: int
    flat_pct: float
    sum_pct: float
    cum: int
    cum_pct: float
    inline: str

    def __init__(self, name: str, flat: int, flat_pct: float, sum_pct: float, cum: int,
                 cum_pct: float, inline: str = "") -> None:
        set_field(self, "name", name)
        set_field(self, "flat", flat)
        set_field(self, "flat_pct", flat_pct)
        set_field(self, "sum_pct", sum_pct)
        set_field(self, "cum", cum)
        set_field(self, "cum_pct", cum_pct)
        set_field(self, "inline", inline)


class TopReport(Frozen):
    """The rows of ``go tool pprof -top``; ``str()`` prints it as pprof does.

    ``total`` is the sum of the absolute values of ``sample_type`` over all
    samples; ``shown`` the flat sum of the rows; ``dropped`` how many functions
    fell under ``node_fraction`` of the total, and ``candidates`` how many were
    left to choose the rows from; ``unit`` the unit every value is printed in
    (pprof's -unit=minimum); ``profile_labels`` the lines above the counts
    (File, Type, Time, Duration ... and the active filters)."""

    __slots__ = ("rows", "sample_type", "sample_unit", "total", "shown", "dropped",
                 "candidates", "node_cutoff", "unit", "profile_labels")
    rows: list[TopRow]
    sample_type: str
    sample_unit: str
    total: int
    shown: int
    dropped: int
    candidates: int
    node_cutoff: int
    unit: str
    profile_labels: list[str]

    def __init__(self, rows: list[TopRow], sample_type: str, sample_unit: str, total: int,
                 shown: int, dropped: int, candidates: int, node_cutoff: int, unit: str,
                 profile_labels: list[str] | None = None) -> None:
        set_field(self, "rows", rows)
        set_field(self, "sample_type", sample_type)
        set_field(self, "sample_unit", sample_unit)
        set_field(self, "total", total)
        set_field(self, "shown", shown)
        set_field(self, "dropped", dropped)
        set_field(self, "candidates", candidates)
        set_field(self, "node_cutoff", node_cutoff)
        set_field(self, "unit", unit)
        set_field(self, "profile_labels", [] if profile_labels is None else profile_labels)

    def __iter__(self) -> Iterator[TopRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> TopRow:
        return self.rows[i]

    def format_value(self, value: int) -> str:
        """A value as this report prints it (``1490ms``, ``821.09kB``, ``17``)."""
        return scaled_label(value, self.sample_unit, self.unit)

    def header(self) -> list[str]:
        """The lines above the columns: the profile's labels (File, Type,
        Time, Duration ...), then what is shown and what was dropped."""
        return self.profile_labels + graph_labels(
            shown=self.shown, total=self.total, dropped=self.dropped,
            node_cutoff=self.node_cutoff, nodes=len(self.rows), candidates=self.candidates,
            fmt=self.format_value)

    def __str__(self) -> str:
        out = self.header()
        out.append(f"{'flat':>10} {'flat':>5}% {'sum':>5}% {'cum':>10} {'cum':>5}%")
        flat_sum = 0
        for r in self.rows:
            flat_sum += r.flat
            inline = f" {r.inline}" if r.inline else ""
            out.append(f"{self.format_value(r.flat):>10} {percentage(r.flat, self.total)} "
                       f"{percentage(flat_sum, self.total)} {self.format_value(r.cum):>10} "
                       f"{percentage(r.cum, self.total)}  {r.name}{inline}")
        return "\n".join(out) + "\n"


def top(profile: Profile, n: int | None = None, *, cum: bool = False,
        sample_type: str | int | None = None, node_fraction: float = NODE_FRACTION,
        granularity: str | None = None) -> TopReport:
    """The heaviest functions of ``profile``, as ``go tool pprof -top`` lists
    them: ``n`` rows at most (all when None or 0, as -nodecount), sorted by
    flat or, with ``cum=True``, by cum (-cum); ``sample_type`` by name or
    index, the profile's default when None (-sample_index); ``granularity``
    "function" (the default), "file" or "line" (-functions, -files, -lines)."""
    index = profile.sample_index(sample_type)
    vt = profile.sample_types[index]
    total = profile.report_total(index)
    g = Trimmed(graph_paths(profile, index, granularity), node_fraction=node_fraction,
                edge_fraction=EDGE_FRACTION, node_count=n or 0, cum=cum, edges=False)
    rows = []
    flat_sum = 0
    for nd in g.nodes:
        flat_sum += nd.flat
        rows.append(TopRow(nd.name, nd.flat, _pct(nd.flat, total), _pct(flat_sum, total),
                           nd.cum, _pct(nd.cum, total), nd.inline_label()))
    unit = output_unit(g.nodes, total, vt.unit)
    labels = profile_labels(profile, vt.type, vt.unit, total,
                            lambda value: scaled_label(value, vt.unit, unit))
    return TopReport(rows, vt.type, vt.unit, total, flat_sum, g.dropped, g.candidates,
                     abs(int(total * node_fraction)), unit,
                     labels + active_filters(profile.active_filters))


def _pct(value: int, total: int) -> float:
    return abs(value / total) * 100 if total else 0.0
