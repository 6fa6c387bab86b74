"""speedscope: a profile in speedscope's file format (https://www.speedscope.app).

Writes the schema's "sampled" profiles: ``shared.frames`` holds one frame per
function name, in name order, with the file and first line of the first
function of that name (frames are named as export/frames.py says, as in the
flame graphs and folded stacks), and each profile lists its distinct stacks
as frame indices from the root to the leaf, with the summed value of one
sample type as the stack's weight. A location with inlined calls becomes one
frame per function, caller first, as in the folded stacks. Samples without
locations and stacks summing to zero are left out.

speedscope refuses negative weights, so a profile with a stack summing below
zero (a diff) raises ValueError, or with ``split_diff=True`` becomes two
profiles: the stacks that grew, and the magnitude of those that shrank.
"""

from __future__ import annotations

import json

from .._version import __version__
from ..pprof.io import write_bytes
from ..pprof.model import Sample
from .folded import location_names
from .frames import frames_by_name

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

    from ..pprof.io import Dest
    from ..pprof.profile import Profile

SCHEMA = "https://www.speedscope.app/file-format-schema.json"
FORMAT_VERSION = "0.6.0"  # the format's version that added "name" and "activeProfileIndex"

# pprof unit (lower case, a plural "s" dropped past two letters) -> speedscope's
# unit and the factor taking a value there.
_UNITS: dict[str, tuple[str, int]] = {
    "ns": ("nanoseconds", 1), "nanosecond": ("nanoseconds", 1),
    "us": ("microseconds", 1), "μs": ("microseconds", 1), "microsecond": ("microseconds", 1),
    "ms": ("milliseconds", 1), "millisecond": ("milliseconds", 1),
    "s": ("seconds", 1), "sec": ("seconds", 1), "second": ("seconds", 1),
    "hour": ("seconds", 3600), "hr": ("seconds", 3600),
    "b": ("bytes", 1), "byte": ("bytes", 1),
    "kb": ("bytes", 1 << 10), "kbyte": ("bytes", 1 << 10), "kilobyte": ("bytes", 1 << 10),
    "mb": ("bytes", 1 << 20), "mbyte": ("bytes", 1 << 20), "megabyte": ("bytes", 1 << 20),
    "gb": ("bytes", 1 << 30), "gbyte": ("bytes", 1 << 30), "gigabyte": ("bytes", 1 << 30),
}


def speedscope_unit(unit: str) -> tuple[str, int]:
    """speedscope's unit for a pprof sample unit ("none" for counts and units
    it does not know), and the factor that converts a value to it."""
    u = unit.lower()
    if len(u) > 2:
        u = u.removesuffix("s")
    return _UNITS.get(u, ("none", 1))


_ThreadKey = tuple[int | None, str | None]


def _thread(sample: Sample) -> _ThreadKey:
    labels = sample.labels
    tid = labels.get("thread_id")
    name = labels.get("thread_name")
    return (tid if isinstance(tid, int) else None,
            str(name) if name is not None else None)


def _thread_title(key: _ThreadKey) -> str:
    tid, name = key
    if name is not None and tid is not None:
        return f"{name} (thread {tid})"
    if name is not None:
        return name
    if tid is not None:
        return f"thread {tid}"
    return "no thread label"


def to_speedscope(profile: Profile, sample_type: str | int | None = None,
                  name: str | None = None, *, split_diff: bool = False,
                  by_thread: bool = False) -> dict[str, Any]:
    """The profile as a speedscope file (a dict to serialize as JSON).

    ``sample_type`` by name or index (the default one when None); ``name``
    titles the file and its profiles (the sample type when None). One
    profile, or with ``by_thread=True`` one per thread (the samples'
    ``thread_name`` / ``thread_id`` labels), heaviest first. A stack summing
    below zero raises ValueError unless ``split_diff=True``, which gives two
    profiles per group, named "... (positive)" and "... (negative, magnitude)"."""
    index = profile.sample_index(sample_type)
    vt = profile.sample_types[index]
    unit, factor = speedscope_unit(vt.unit)
    title = name if name is not None else vt.type

    data = profile._analysis_data()
    table = frames_by_name(data.nodes(0))
    frames: list[dict[str, Any]] = []
    for text, (file, line) in zip(table.names, table.sources):
        frame: dict[str, Any] = {"name": text}
        if file:
            frame["file"] = file
        if line:
            frame["line"] = line
        frames.append(frame)

    everything: _ThreadKey = (None, None)
    groups: dict[_ThreadKey, dict[tuple[int, ...], int]] = {}
    if by_thread:
        groups = _thread_stacks(profile, index, factor, table.names)
    else:
        # The distinct stacks, merged in C (csrc/analysis/frame_stacks.c).
        merged, values, _ = data.frame_stacks(index, table.of_node, len(table.names))
        groups[everything] = dict(zip(map(tuple, merged), (v * factor for v in values)))

    def weight(stacks: dict[tuple[int, ...], int]) -> int:
        return sum(abs(v) for v in stacks.values())

    if by_thread:
        order = sorted(groups, key=lambda k: (-weight(groups[k]), _thread_title(k)))
    else:
        order = [everything]
    profiles: list[dict[str, Any]] = []
    for group in order:
        stacks = groups[group]
        base = f"{title} [{_thread_title(group)}]" if by_thread else title
        negative = {k: -v for k, v in stacks.items() if v < 0}
        positive = {k: v for k, v in stacks.items() if v > 0}
        if split_diff:
            profiles.append(_sampled(f"{base} (positive)", unit, positive))
            profiles.append(_sampled(f"{base} (negative, magnitude)", unit, negative))
        elif negative:
            raise ValueError(
                f"{len(negative)} stacks of {base!r} have a negative {vt.type} total (a diff "
                f"profile?) and speedscope refuses negative weights: pass split_diff=True "
                f"to export the positive and negative parts as two profiles")
        else:
            profiles.append(_sampled(base, unit, positive))

    return {
        "$schema": SCHEMA,
        "version": FORMAT_VERSION,
        "exporter": f"cprof {__version__}",
        "name": title,
        "activeProfileIndex": 0,
        "shared": {"frames": frames},
        "profiles": profiles,
    }


def _thread_stacks(profile: Profile, index: int, factor: int,
                   names: list[str]) -> dict[_ThreadKey, dict[tuple[int, ...], int]]:
    """The distinct stacks of each thread (by the samples' labels) with their
    summed values times ``factor``; frames by their ids in ``names``."""
    frame_of = {name: i for i, name in enumerate(names)}
    location_frames: dict[int, tuple[int, ...]] = {}  # id(location) -> frames, caller first
    groups: dict[_ThreadKey, dict[tuple[int, ...], int]] = {}
    for s in profile.samples:
        value = s.values[index]
        if value == 0 or not s.locations:
            continue
        stack: list[int] = []
        for loc in reversed(s.locations):
            made = location_frames.get(id(loc))
            if made is None:
                made = location_frames[id(loc)] = tuple(map(frame_of.__getitem__,
                                                            location_names(loc)))
            stack += made
        stacks = groups.setdefault(_thread(s), {})
        key = tuple(stack)
        stacks[key] = stacks.get(key, 0) + value * factor
    for stacks in groups.values():
        for key in [k for k, v in stacks.items() if v == 0]:
            del stacks[key]
    return groups


def _sampled(name: str, unit: str, stacks: dict[tuple[int, ...], int]) -> dict[str, Any]:
    weights = list(stacks.values())
    return {
        "type": "sampled",
        "name": name,
        "unit": unit,
        "startValue": 0,
        "endValue": sum(weights),
        "samples": [list(k) for k in stacks],
        "weights": weights,
    }


def write_speedscope(profile: Profile, dest: Dest, sample_type: str | int | None = None,
                     name: str | None = None, *, split_diff: bool = False,
                     by_thread: bool = False) -> None:
    """Write ``to_speedscope(...)`` as compact JSON to a path (atomically) or
    an open binary file."""
    doc = to_speedscope(profile, sample_type, name, split_diff=split_diff, by_thread=by_thread)
    write_bytes(dest, json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


__all__ = ["SCHEMA", "speedscope_unit", "to_speedscope", "write_speedscope"]
