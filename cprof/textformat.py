"""textformat: Go's debug=1 text forms of profiles (runtime/pprof's
WriteTo(w, 1)), which people read and ``go tool pprof`` still parses.

Python frames have no program counters: a frame's Location id stands in for
its address, so that equal stacks print equal address lists.
"""

from __future__ import annotations

import gc
import resource
import sys
from typing import Iterable, NamedTuple, Sequence

from .model import Location
from .profile import Profile


def tabwrite(lines: Sequence[str], *, tabwidth: int = 8, padding: int = 1) -> str:
    """Align tab-separated cells as Go's text/tabwriter does with padchar
    '\\t' (minwidth 1, flags 0): a column's cells, in each run of lines that
    have one, are padded with tabs to the run's widest cell plus padding,
    rounded up to a tab stop. A line's last cell is not a column."""
    cells = [line.split("\t") for line in lines]
    widths: list[list[int]] = [[0] * (len(c) - 1) for c in cells]
    column = 0
    while True:
        i, any_cell = 0, False
        while i < len(cells):
            if len(cells[i]) - 1 <= column:
                i += 1
                continue
            j = i
            while j < len(cells) and len(cells[j]) - 1 > column:
                j += 1
            width = max(1, max(len(cells[k][column]) + padding for k in range(i, j)))
            width = -(-width // tabwidth) * tabwidth
            for k in range(i, j):
                widths[k][column] = width
            i, any_cell = j, True
        if not any_cell:
            break
        column += 1
    out = []
    for line_cells, line_widths in zip(cells, widths):
        parts = []
        for cell, width in zip(line_cells, line_widths):
            parts.append(cell + "\t" * -(-(width - len(cell)) // tabwidth))
        parts.append(line_cells[-1])
        out.append("".join(parts))
    return "\n".join(out) + ("\n" if out else "")


class HeapRecord(NamedTuple):
    """One bucket as Go's MemProfileRecord: sampled counts, not scaled."""

    inuse_objects: int
    inuse_bytes: int
    alloc_objects: int
    alloc_bytes: int
    stack: tuple[Location, ...]


def frame_lines(stack: Iterable[Location]) -> list[str]:
    """Go's `#\taddress\tname+offset\tfile:line` lines of a stack."""
    lines = []
    for loc in stack:
        for ln in loc.lines:
            name = ln.function.name if ln.function is not None else "?"
            filename = ln.function.filename if ln.function is not None else "?"
            lines.append(f"#\t{loc.id:#x}\t{name}+0x0\t{filename}:{ln.line}")
    return lines


def heap_text(records: Sequence[HeapRecord], rate: int) -> str:
    """Go's ``heap`` text (debug=1): totals, then each record by in-use bytes,
    its stack, and the memory statistics Python keeps. Counts are sampled
    ones; the header's heap/2*rate tells readers how to scale them, as Go's
    does (pprof expects twice the rate there, for historical reasons)."""
    ordered = sorted(records, key=lambda r: r.inuse_bytes, reverse=True)
    lines = [f"heap profile: {sum(r.inuse_objects for r in ordered)}: "
             f"{sum(r.inuse_bytes for r in ordered)} "
             f"[{sum(r.alloc_objects for r in ordered)}: "
             f"{sum(r.alloc_bytes for r in ordered)}] @ heap/{2 * rate}"]
    for r in ordered:
        addresses = "".join(f" {loc.id:#x}" for loc in r.stack)
        lines.append(f"{r.inuse_objects}: {r.inuse_bytes} [{r.alloc_objects}: "
                     f"{r.alloc_bytes}] @{addresses}")
        lines.extend(frame_lines(r.stack))
        lines.append("")
    collections = sum(s["collections"] for s in gc.get_stats())
    lines += ["", "# Python memory",
              f"# MemProfileRate = {rate}",
              f"# AllocatedBlocks = {sys.getallocatedblocks()}",
              f"# NumGC = {collections}",
              f"# GCThreshold = {gc.get_threshold()}",
              f"# MaxRSS = {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}"]
    return tabwrite(lines)


def count_text(profile: Profile, name: str) -> str:
    """Go's text of a count profile (goroutine, threadcreate; debug=1): the
    total, then each sample's count and addresses, labels as Go prints them,
    and its stack; most frequent first."""
    records = []
    for s in profile.samples:
        key = "@" + "".join(f" {loc.id:#x}" for loc in s.locations)
        if s.labels:
            pairs = sorted(f'"{k}":"{v}"' for k, v in s.labels.items())
            key += "\n# labels: {" + ", ".join(pairs) + "}"
        records.append((s.values[0], key, s.locations))
    records.sort(key=lambda r: (-r[0], r[1]))
    lines = [f"{name} profile: total {sum(r[0] for r in records)}"]
    for count, key, stack in records:
        lines.extend(f"{count} {key}".split("\n"))
        lines.extend(frame_lines(stack))
        lines.append("")
    return tabwrite(lines)
