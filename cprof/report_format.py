"""report_format: numbers, units and header lines as google/pprof's reports print them.

Values scale as internal/measurement scales them (two decimals, one unit for a
whole report or the best unit per value); the lines above a report are
internal/report's ProfileLabels and reportLabels.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Callable, Iterable, Protocol

if TYPE_CHECKING:
    from .profile import Profile

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


class Valued(Protocol):
    """Anything with pprof's flat and cum values (a graph node, a report row)."""

    @property
    def flat(self) -> int: ...

    @property
    def cum(self) -> int: ...


def output_unit(nodes: Iterable[Valued], total: int, sample_unit: str) -> str:
    """pprof's selectOutputUnit: the unit of the smallest non-zero value,
    unless that is under 1% of the total in a smaller unit (then values may
    print as 0.01 of a larger one); "minimum" (each value its own unit) for
    an empty report."""
    smallest = 0
    empty = True
    for nd in nodes:
        empty = False
        v = abs(nd.flat) or abs(nd.cum)
        if v > 0 and (smallest == 0 or v < smallest):
            smallest = v
    if empty:
        return "minimum"
    if smallest == 0:
        smallest = total
    _, min_unit = scale(smallest, sample_unit, "minimum")
    _, max_unit = scale(total, sample_unit, "minimum")
    unit = min_unit
    if min_unit != max_unit and smallest * 100 < total:
        _, unit = scale(100 * smallest, sample_unit, "minimum")
    return unit or sample_unit


# --- the lines above a report ------------------------------------------------------

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _time_label(ns: int) -> str:
    """Go's layout "Jan 2, 2006 at 3:04pm (MST)" in the local time zone."""
    t = time.localtime(ns // 1_000_000_000)
    hour = t.tm_hour % 12 or 12
    ampm = "pm" if t.tm_hour >= 12 else "am"
    return (f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday}, {t.tm_year} at {hour}:{t.tm_min:02d}{ampm} "
            f"({t.tm_zone})")


def profile_labels(p: Profile, sample_type: str, sample_unit: str, total: int,
                   fmt: Callable[[int], str]) -> list[str]:
    """pprof's ProfileLabels: File, Build ID, comments, Type, Time and
    Duration, with ``total`` printed by ``fmt``."""
    out = []
    if p.mappings:
        m = p.mappings[0]
        if m.filename:
            out.append(f"File: {os.path.basename(m.filename)}")
        if m.build_id:
            out.append(f"Build ID: {m.build_id}")
    out += [c for c in p.comments if not c.startswith("#")]
    out.append(f"Type: {sample_type}")
    if p.time_ns:
        out.append(f"Time: {_time_label(p.time_ns)}")
    if p.duration_ns:
        nanos, unit = scale(total, sample_unit, "nanoseconds")
        ratio = f"({percentage(int(nanos), p.duration_ns)})" if unit == "ns" and nanos else ""
        out.append(f"Duration: {scaled_label(p.duration_ns, 'nanoseconds', 'auto')}, "
                   f"Total samples = {fmt(total)} {ratio}")
    return out


def active_filters(filters: Iterable[str]) -> list[str]:
    """pprof's legend of the filters applied (``focus=REGEX``), each cut at
    80 characters."""
    lines = [f"   {f[:80]}…" if len(f) > 80 else f"   {f}" for f in filters]
    return ["Active filters:", *lines] if lines else []


def graph_labels(*, shown: int, total: int, dropped: int, node_cutoff: int, nodes: int,
                 candidates: int, fmt: Callable[[int], str]) -> list[str]:
    """pprof's reportLabels after the profile's own lines: what the report
    shows of the total, how many functions fell under the node fraction
    (``node_cutoff`` is the total times that fraction) and how many of the
    ``candidates`` left were kept."""
    lines = [f"Showing nodes accounting for {fmt(shown)}, "
             f"{percentage(shown, total).strip()} of {fmt(total)} total"]
    if total != 0:
        if dropped > 0:
            plural = "s" if dropped > 1 else ""
            lines.append(f"Dropped {dropped} node{plural} (cum <= {fmt(node_cutoff)})")
        if 0 < nodes < candidates:
            lines.append(f"Showing top {nodes} nodes out of {candidates}")
    return lines
