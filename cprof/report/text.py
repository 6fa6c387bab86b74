"""text: numbers and header lines as google/pprof's reports print them.

Percentages and the one output unit of a report (values scale through
pprof.units); the lines above a report are internal/report's ProfileLabels and
reportLabels.
"""

from __future__ import annotations

import os
import time

from ..pprof.units import scale, scaled_label

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Callable, Iterable, Protocol

    from ..pprof.profile import Profile


def percentage(value: int, total: int) -> str:
    """pprof's Percentage: five wide, "  100%" near 100, two significant
    digits under 1%."""
    ratio = abs(value / total) * 100 if total else 0.0
    if 99.95 <= ratio <= 100.05:
        return "  100%"
    if ratio >= 1.0:
        return f"{ratio:5.2f}%"
    return f"{ratio:5.2g}%"


if TYPE_CHECKING:
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
