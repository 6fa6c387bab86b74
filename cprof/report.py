"""report: pprof's text reports over a Profile; today ``top``, as ``go tool pprof -top``.

The numbers follow google/pprof's internal/graph and internal/report (the copy
vendored in Go's cmd/vendor): at function granularity a node is a function name
(inlined lines count as functions of their own); a sample adds its value to
the flat of its leaf location's first line and, once per sample however often
it recurses, to the cum of every function on its stack; percentages are of the
sum of absolute values of the chosen sample type over all samples. Nodes whose
cum is below ``node_fraction`` of the flat total are dropped (pprof's
-nodefraction, 0.005), then rows are sorted by flat (or cum) descending, then
by name, and one unit is chosen for every value of the report.

Not applied (pprof applies them before reporting): the profile's drop_frames /
keep_frames regular expressions, and mean (-mean) or ratio (-divide_by) views.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator, Sequence

from .model import Location, Sample

if TYPE_CHECKING:
    from .profile import Profile

NODE_FRACTION = 0.005  # pprof's -nodefraction default
EDGE_FRACTION = 0.001  # pprof's -edgefraction default


@dataclass(frozen=True)
class TopRow:
    """One function of a top report. Percentages are of the report's total
    (0-100); ``inline`` is "", "(inline)" or "(partial-inline)" as pprof marks
    a function that was inlined into all or some of its callers."""

    name: str
    flat: int
    flat_pct: float
    sum_pct: float
    cum: int
    cum_pct: float
    inline: str = ""


@dataclass
class TopReport:
    """The rows of ``go tool pprof -top``; ``str()`` prints it as pprof does.

    ``total`` is the sum of the absolute values of ``sample_type`` over all
    samples; ``shown`` the flat sum of the rows; ``dropped`` how many functions
    fell under ``node_fraction`` of the total, and ``candidates`` how many were
    left to choose the rows from."""

    rows: list[TopRow]
    sample_type: str
    sample_unit: str
    total: int
    shown: int
    dropped: int
    candidates: int
    node_cutoff: int
    unit: str  # the unit every value is printed in (pprof's -unit=minimum)
    profile_labels: list[str] = field(default_factory=list)

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
        lines = list(self.profile_labels)
        lines.append(f"Showing nodes accounting for {self.format_value(self.shown)}, "
                     f"{percentage(self.shown, self.total).strip()} of "
                     f"{self.format_value(self.total)} total")
        if self.total != 0:
            if self.dropped > 0:
                plural = "s" if self.dropped > 1 else ""
                lines.append(f"Dropped {self.dropped} node{plural} (cum <= "
                             f"{self.format_value(self.node_cutoff)})")
            if 0 < len(self.rows) < self.candidates:
                lines.append(f"Showing top {len(self.rows)} nodes out of {self.candidates}")
        return lines

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
        sample_type: str | int | None = None, node_fraction: float = NODE_FRACTION) -> TopReport:
    """The heaviest functions of ``profile``, as ``go tool pprof -top`` lists
    them: ``n`` rows at most (all when None or 0, as -nodecount), sorted by
    flat or, with ``cum=True``, by cum (-cum); ``sample_type`` by name or
    index, the profile's default when None (-sample_index)."""
    index = profile.sample_index(sample_type)
    vt = profile.sample_types[index]
    total = sum(abs(s.values[index]) for s in profile.samples)
    nodes, inlined = _graph(profile.samples, index)

    def keep(kept: set[_Key]) -> list[_Node]:
        # Kept functions keep their values; only their caller edges (which
        # decide the inline marks) change, as pprof rebuilds its graph.
        if inlined:
            return _graph(profile.samples, index, kept)[0]
        return [nd for nd in nodes if nd.key in kept]

    flat_total = sum(nd.flat for nd in nodes)
    node_cutoff = abs(int(flat_total * node_fraction))
    edge_cutoff = abs(int(flat_total * EDGE_FRACTION))
    dropped = 0
    if node_cutoff > 0:
        kept = {nd.key for nd in nodes if abs(nd.cum) >= node_cutoff}
        if len(kept) != len(nodes):
            dropped = len(nodes) - len(kept)
            nodes = keep(kept)
    candidates = len(nodes)
    _sort(nodes, cum)
    if n and n < len(nodes):
        nodes = keep({nd.key for nd in nodes[:n]})
        _sort(nodes, cum)
    rows = []
    flat_sum = 0
    for nd in nodes:
        flat_sum += nd.flat
        rows.append(TopRow(nd.name, nd.flat, _pct(nd.flat, total), _pct(flat_sum, total),
                           nd.cum, _pct(nd.cum, total), nd.inline_label(edge_cutoff)))
    report = TopReport(rows, vt.type, vt.unit, total, flat_sum, dropped, candidates,
                       abs(int(total * node_fraction)), _output_unit(nodes, total, vt.unit))
    report.profile_labels = _profile_labels(profile, report)
    return report


# --- the call graph, as google/pprof's graph.newGraph builds it ------------------------

# A node's identity at function granularity (pprof's NodeInfo after aggregation):
# the function name, or, for a location without a named function, the binary and
# the function's start line.
_Key = tuple[str, str, int]


class _Node:
    __slots__ = ("key", "name", "flat", "cum", "caller_weight", "caller_inline")

    def __init__(self, key: _Key, flat: int, cum: int) -> None:
        self.key = key
        name, objfile, _ = key
        self.name = name or (f"[{os.path.basename(objfile)}]" if objfile else "<unknown>")
        self.flat = flat
        self.cum = cum
        # The edges from callers (kept only for functions that were inlined
        # somewhere: they alone can be marked): weight, and whether every call
        # through the edge was to a line inlined into its caller.
        self.caller_weight: dict[int, int] = {}
        self.caller_inline: dict[int, bool] = {}

    def inline_label(self, edge_cutoff: int) -> str:
        """pprof's mark, over the caller edges that survive -edgefraction."""
        kinds = {self.caller_inline[k] for k, w in self.caller_weight.items()
                 if abs(w) >= edge_cutoff}
        if True not in kinds:
            return ""
        return "(partial-inline)" if False in kinds else "(inline)"

    def sort_string(self) -> str:
        # Go's fmt.Sprint of the NodeInfo struct: pprof's last tie-breaker.
        name, objfile, start = self.key
        return f"{{{name}  0  {start} 0 {objfile}}}"


def _line_keys(loc: Location) -> list[_Key]:
    objfile = loc.mapping.filename if loc.mapping is not None else ""
    keys: list[_Key] = []
    for ln in loc.lines or (None,):
        fn = ln.function if ln is not None else None
        if fn is not None and fn.name:
            keys.append((fn.name, "", 0))
        else:
            keys.append(("", objfile, fn.start_line if fn is not None else 0))
    return keys


def _graph(samples: Sequence[Sample], index: int,
           kept: set[_Key] | None = None) -> tuple[list[_Node], bool]:
    """Nodes with their flat, cum and caller edges for one sample type, and
    whether any function was inlined somewhere; with ``kept``, other functions
    are left out (their values go nowhere)."""
    keys: list[_Key] = []
    ids: dict[_Key, int] = {}
    # id(location) -> its functions' node ids, caller first (-1: left out), and
    # which of them are inlined there (all lines but the last).
    chains: dict[int, tuple[list[int], list[bool]]] = {}
    inlined: set[int] = set()
    for s in samples:
        for loc in s.locations:
            if id(loc) in chains:
                continue
            chain = []
            for key in reversed(_line_keys(loc)):
                if kept is not None and key not in kept:
                    chain.append(-1)
                    continue
                if key not in ids:
                    ids[key] = len(keys)
                    keys.append(key)
                chain.append(ids[key])
            chains[id(loc)] = (chain, [False] + [True] * (len(chain) - 1))
            inlined.update(nd for nd in chain[1:] if nd >= 0)
    flat = [0] * len(keys)
    cum = [0] * len(keys)
    weight: dict[tuple[int, int], int] = {}
    inline: dict[tuple[int, int], bool] = {}
    for s in samples:
        w = s.values[index]
        if w == 0 or not s.locations:
            continue
        stack: list[int] = []
        for loc in reversed(s.locations):
            stack += chains[id(loc)][0]
        if stack[-1] >= 0:  # the leaf was kept: it takes the flat
            flat[stack[-1]] += w
        for nd in set(stack):
            if nd >= 0:
                cum[nd] += w
        if inlined and not inlined.isdisjoint(stack):
            flags: list[bool] = []
            for loc in reversed(s.locations):
                flags += chains[id(loc)][1]
            seen: set[tuple[int, int]] = set()
            parent = -1
            for nd, is_inlined in zip(stack, flags):
                if nd < 0:
                    continue
                if parent >= 0 and nd != parent and nd in inlined and (nd, parent) not in seen:
                    seen.add((nd, parent))
                    weight[nd, parent] = weight.get((nd, parent), 0) + w
                    inline[nd, parent] = inline.get((nd, parent), True) and is_inlined
                parent = nd
    nodes = [_Node(key, flat[i], cum[i]) for i, key in enumerate(keys)]
    for (nd, parent), w in weight.items():
        nodes[nd].caller_weight[parent] = w
        nodes[nd].caller_inline[parent] = inline[nd, parent]
    return [nd for nd in nodes if nd.flat != 0 or nd.cum != 0], bool(inlined)


def _sort(nodes: list[_Node], cum: bool) -> None:
    """pprof's FlatNameOrder (or CumNameOrder): by the value, then name, then the
    other value, then the node's identity."""
    if cum:
        nodes.sort(key=lambda nd: (-abs(nd.cum), nd.name, -abs(nd.flat), nd.sort_string()))
    else:
        nodes.sort(key=lambda nd: (-abs(nd.flat), nd.name, -abs(nd.cum), nd.sort_string()))


def _pct(value: int, total: int) -> float:
    return abs(value / total) * 100 if total else 0.0


# --- units and numbers, as google/pprof's internal/measurement prints them ---------

_UNIT_TYPES: list[tuple[list[tuple[str, tuple[str, ...], float]], str, float]] = [
    ([("B", ("b", "byte"), 1.0), ("kB", ("kb", "kbyte", "kilobyte"), 2.0**10),
      ("MB", ("mb", "mbyte", "megabyte"), 2.0**20), ("GB", ("gb", "gbyte", "gigabyte"), 2.0**30),
      ("TB", ("tb", "tbyte", "terabyte"), 2.0**40), ("PB", ("pb", "pbyte", "petabyte"), 2.0**50)],
     "B", 1.0),
    ([("ns", ("ns", "nanosecond"), 1.0), ("us", ("μs", "us", "microsecond"), 1e3),
      ("ms", ("ms", "millisecond"), 1e6), ("s", ("s", "sec", "second"), 1e9),
      ("hrs", ("hour", "hr"), 3600e9)],
     "s", 1e9),
]


def _sniff(units: list[tuple[str, tuple[str, ...], float]],
           unit: str) -> tuple[str, tuple[str, ...], float] | None:
    unit = unit.lower()
    if len(unit) > 2:
        unit = unit.removesuffix("s")
    return next((u for u in units if unit in u[1]), None)


def scale(value: int, from_unit: str, to_unit: str) -> tuple[float, str]:
    """``value`` in ``from_unit`` expressed in ``to_unit`` ("minimum" or "auto":
    the largest unit the value reaches), with the unit's printed name."""
    if value < 0:
        v, u = scale(-value, from_unit, to_unit)
        return -v, u
    for units, default, default_factor in _UNIT_TYPES:
        src = _sniff(units, from_unit)
        if src is None:
            continue
        v = value * src[2]
        if to_unit in ("minimum", "auto"):
            best = None
            for name, _, factor in units:
                if (best is None or factor >= best[1]) and v / factor >= 1.0:
                    best = (name, factor)
            if best is None:
                return v / default_factor, default
            return v / best[1], best[0]
        dst = _sniff(units, to_unit)
        if dst is None:
            return v / default_factor, default
        return v / dst[2], dst[0]
    if to_unit in ("count", "sample", "unit", "minimum", "auto"):
        return float(value), ""
    return float(value), to_unit


def scaled_label(value: int, from_unit: str, to_unit: str) -> str:
    """pprof's ScaledLabel: two decimals, ".00" dropped, a bare "0" for zero."""
    v, u = scale(value, from_unit, to_unit)
    text = f"{v:.2f}".removesuffix(".00")
    return "0" if text in ("0", "-0") else text + u


def percentage(value: int, total: int) -> str:
    """pprof's Percentage: five wide, "  100%" near 100, two significant
    digits under 1%."""
    ratio = abs(value / total) * 100 if total else 0.0
    if 99.95 <= ratio <= 100.05:
        return "  100%"
    if ratio >= 1.0:
        return f"{ratio:5.2f}%"
    return f"{ratio:5.2g}%"


def _output_unit(nodes: list[_Node], total: int, sample_unit: str) -> str:
    """pprof's selectOutputUnit: the unit of the smallest non-zero value,
    unless that is under 1% of the total in a smaller unit (then values may
    print as 0.01 of a larger one)."""
    if not nodes:
        return "minimum"
    smallest = 0
    for nd in nodes:
        v = abs(nd.flat) or abs(nd.cum)
        if v > 0 and (smallest == 0 or v < smallest):
            smallest = v
    if smallest == 0:
        smallest = total
    _, min_unit = scale(smallest, sample_unit, "minimum")
    _, max_unit = scale(total, sample_unit, "minimum")
    unit = min_unit
    if min_unit != max_unit and smallest * 100 < total:
        _, unit = scale(100 * smallest, sample_unit, "minimum")
    return unit or sample_unit


# --- the profile's own lines, as pprof's ProfileLabels ---------------------------

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _time_label(ns: int) -> str:
    """Go's layout "Jan 2, 2006 at 3:04pm (MST)" in the local time zone."""
    t = time.localtime(ns // 1_000_000_000)
    hour = t.tm_hour % 12 or 12
    ampm = "pm" if t.tm_hour >= 12 else "am"
    return (f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday}, {t.tm_year} at {hour}:{t.tm_min:02d}{ampm} "
            f"({t.tm_zone})")


def _profile_labels(p: Profile, report: TopReport) -> list[str]:
    out = []
    if p.mappings:
        m = p.mappings[0]
        if m.filename:
            out.append(f"File: {os.path.basename(m.filename)}")
        if m.build_id:
            out.append(f"Build ID: {m.build_id}")
    out += [c for c in p.comments if not c.startswith("#")]
    out.append(f"Type: {report.sample_type}")
    if p.time_ns:
        out.append(f"Time: {_time_label(p.time_ns)}")
    if p.duration_ns:
        nanos, unit = scale(report.total, report.sample_unit, "nanoseconds")
        ratio = f"({percentage(int(nanos), p.duration_ns)})" if unit == "ns" and nanos else ""
        out.append(f"Duration: {scaled_label(p.duration_ns, 'nanoseconds', 'auto')}, "
                   f"Total samples = {report.format_value(report.total)} {ratio}")
    return out


__all__ = ["TopReport", "TopRow", "top", "percentage", "scale", "scaled_label"]
