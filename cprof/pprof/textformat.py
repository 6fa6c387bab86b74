"""textformat: Go's debug=1 text forms of profiles (runtime/pprof's
WriteTo(w, 1)), which people read and ``go tool pprof`` still parses.

Python frames have no program counters: a frame's Location id stands in for
its address, so that equal stacks print equal address lists.
"""

from __future__ import annotations

import gc
import math
import re
import resource
import sys
from typing import NamedTuple  # HeapRecord is one

from .model import Function, Line, Location, Sample
from .profile import Profile, ProfileError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Iterable, Sequence


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


# --- reading Go's legacy heap text ------------------------------------------------

# google/pprof's patterns (profile/legacy_profile.go): the header, then one
# line per record, `inuse_objects: inuse_bytes [alloc_objects: alloc_bytes] @ addresses`.
_HEAP_HEADER = re.compile(
    r"heap profile: *(\d+): *(\d+) *\[ *(\d+): *(\d+) *\] *@ *(heap[_a-z0-9]*)/?(\d*)")
_HEAP_RECORD = re.compile(r"(-?\d+): *(-?\d+) *\[ *(\d+): *(\d+) *\] @([ x0-9a-f]*)")
# `#\taddress\tname+offset\tfile:line`, the frames Go and cprof print under a record.
_FRAME_LINE = re.compile(r"#\t+(0x[0-9a-f]+)\t+(.*?)(?:\+0x[0-9a-f]+)?\t+(.*?)(?::(\d+))?$")
# Where the records end: a memory map follows (pprof's isMemoryMapSentinel).
_MAP_SENTINELS = ("--- Memory map: ---", "MAPPED_LIBRARIES:")


def is_heap_text(data: bytes) -> bool:
    """True when data starts as Go's legacy heap text does (``heap profile:``)."""
    return data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"heap profile:")


def _heap_sampling(header: re.Match[str]) -> tuple[int, bool, bool]:
    """(period, scaled, has_alloc) from a header, as pprof's parseHeapHeader:
    ``heap/N`` (Go's and cprof's) means Poisson sampling every N/2 bytes."""
    kind, rate = header.group(5), int(header.group(6) or 0)
    inuse, alloc = header.group(1, 2), header.group(3, 4)
    has_alloc = any(a not in (i, "0") for i, a in zip(inuse, alloc))
    if kind in ("heapz_v2", "heap_v2"):
        return rate, True, has_alloc
    if kind == "heapprofile":
        return 1, False, has_alloc
    if kind == "heap":
        return rate // 2, True, has_alloc
    raise ProfileError(f"not a heap profile pprof reads: unknown sampling {kind!r} in "
                       f"{header.group(0)!r}")


def _scale(count: int, size: int, rate: int) -> tuple[int, int]:
    """pprof's scaleHeapSample: undo Poisson sampling every ``rate`` bytes."""
    if count == 0 or size == 0:
        return 0, 0
    if rate <= 1:
        return count, size
    scale = 1 / (1 - math.exp(-(size / count) / rate))
    return int(count * scale), int(size * scale)


class _HeapReader:
    """Builds a Profile from heap text, one record at a time: locations by
    address (shared between records) and functions by name and file."""

    def __init__(self, period: int, scaled: bool, has_alloc: bool) -> None:
        self.period, self.scaled, self.has_alloc = period, scaled, has_alloc
        self.locations: dict[int, Location] = {}
        self.functions: dict[tuple[str, str], Function] = {}
        self.samples: list[Sample] = []

    def values(self, numbers: Sequence[str], what: str) -> tuple[list[int], int]:
        """pprof's addValues: a record's count and size, scaled, and its block size."""
        count, size = int(numbers[0]), int(numbers[1])
        if count == 0 and size != 0:
            raise ProfileError(f"{what} count was 0 but {what} bytes was {size}")
        if count == 0:
            return [0, 0], 0
        block = size // count
        if self.scaled:
            count, size = _scale(count, size, self.period)
        return [count, size], block

    def location(self, address: int, lines: list[tuple[str, str, int]]) -> Location:
        """The location of a return address (pprof subtracts one to land on
        the call) with the frame lines printed for it, made once."""
        loc = self.locations.get(address)
        if loc is None:
            made = []
            for name, filename, line in lines:
                fn = self.functions.setdefault(
                    (name, filename), Function(len(self.functions) + 1, name, name, filename))
                made.append(Line(fn, line))
            loc = Location(len(self.locations) + 1, address - 1, None, tuple(made))
            self.locations[address] = loc
        return loc

    def record(self, match: re.Match[str], frames: list[tuple[int, str, str, int]]) -> None:
        values: list[int] = []
        block = 0
        if self.has_alloc:
            values, block = self.values(match.group(3, 4), "allocation")
        inuse, inuse_block = self.values(match.group(1, 2), "inuse")
        values += inuse
        if int(match.group(1)) != 0:  # pprof keeps the last non-zero count's block size
            block = inuse_block
        try:
            addresses = [int(a, 16) for a in match.group(5).split()]
        except ValueError:
            raise ProfileError(f"bad address in heap record {match.group(0)!r}") from None
        stack = [self.location(a, lines) for a, lines in zip(addresses,
                                                              _frames_by_address(addresses, frames))]
        self.samples.append(Sample(values, stack, {"bytes": block}))


def _frames_by_address(addresses: Sequence[int], frames: list[tuple[int, str, str, int]]
                       ) -> list[list[tuple[str, str, int]]]:
    """The frame lines of each stack address, in stack order: runs of lines
    at one address (several when calls were inlined), matched to the stack's
    addresses in turn. Go prints them at the return address - 1, cprof at
    the address itself (a location id: consecutive ids must not be mixed)."""
    shift = 0 if all(at in addresses for at, *_ in frames) else 1
    runs: list[tuple[int, list[tuple[str, str, int]]]] = []
    for at, name, filename, line in frames:
        if not runs or runs[-1][0] != at:
            runs.append((at, []))
        runs[-1][1].append((name, filename, line))
    out: list[list[tuple[str, str, int]]] = []
    k = i = 0
    while i < len(addresses):
        address = addresses[i]
        # A call recursing into itself repeats an address: its lines are one
        # run, shared out evenly among the repeats.
        repeats = 1
        while i + repeats < len(addresses) and addresses[i + repeats] == address:
            repeats += 1
        if k < len(runs) and runs[k][0] == address - shift:
            run = runs[k][1]
            k += 1
            if len(run) % repeats != 0:
                repeats = 1
            each = len(run) // repeats
            out.extend(run[j * each:(j + 1) * each] for j in range(repeats))
        else:
            out.extend([] for _ in range(repeats))
        i += repeats
    return out


def read_heap_text(text: str) -> Profile:
    """Parse Go's legacy heap text (runtime/pprof's debug=1, and what
    cprof's ``/debug/pprof/heap?debug=1`` serves) as google/pprof does:
    sample types alloc_objects, alloc_space, inuse_objects, inuse_space (or
    objects, space when nothing was freed), counts scaled back from the
    sampling rate, a ``bytes`` label with the block size. Beyond pprof, the
    ``#`` frame lines under each record name the locations' functions."""
    lines = text.splitlines()
    header = _HEAP_HEADER.search(lines[0]) if lines else None
    if header is None:
        raise ProfileError("not a heap profile: the first line is not "
                           "'heap profile: N: N [N: N] @ heap/RATE'")
    period, scaled, has_alloc = _heap_sampling(header)
    reader = _HeapReader(period, scaled, has_alloc)
    i = 1
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if line in _MAP_SENTINELS:
            break
        if not line or line.startswith("#"):
            continue
        match = _HEAP_RECORD.search(line)
        if match is None:
            raise ProfileError(f"heap text line {i}: {line[:80]!r} is not a record "
                               f"('N: N [N: N] @ addresses')")
        frames = []
        while i < len(lines) and lines[i].startswith("#\t"):
            frame = _FRAME_LINE.match(lines[i].rstrip())
            if frame is not None:
                frames.append((int(frame.group(1), 16), frame.group(2), frame.group(3),
                               int(frame.group(4) or 0)))
            i += 1
        reader.record(match, frames)
    types = (["alloc_objects", "alloc_space"] if has_alloc else []) + (
        ["inuse_objects", "inuse_space"] if has_alloc else ["objects", "space"])
    units = ["count", "bytes"] * (len(types) // 2)
    return Profile(list(zip(types, units)), reader.samples, period_type=("space", "bytes"),
                   period=period)
