"""traces: every sample's stack with its labels, as ``go tool pprof -traces`` prints them.

pprof first merges the profile (google/pprof profile.Merge): samples with
equal stacks (locations compared by content) and equal labels become one,
their values summed, in order of first appearance, and samples whose values
are all zero are dropped. Each remaining sample with a stack is printed with
its string labels, its numeric labels (in the key's unit), its value in the
best unit for it alone, and its functions leaf first, an inlined call marked.
"""

from __future__ import annotations


from ..pprof.filter import label_units
from ..pprof.model import LabelValue, Location, Mapping, Sample
from ..pprof.units import scaled_label
from .graph import function_infos, printable_name
from .text import profile_labels

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Hashable, Sequence

    from ..pprof.profile import Profile

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
            lines = labels[s.label_items] = _label_lines(s, units)
        out += lines
        out.append(f"{fmt(values[index]):>10}   {stack[0]}")
        out += [_BLANK + name for name in stack[1:]]
    out.append(_SEPARATOR)
    return "\n".join(out) + "\n"


def _label_lines(s: Sample, units: dict[str, str]) -> list[str]:
    """A sample's string labels, then its numeric ones in their key's unit,
    each key with its values on one line, sorted."""
    strings: dict[str, list[str]] = {}
    numbers: dict[str, list[str]] = {}
    for key, value, _ in s.label_items:
        if isinstance(value, str):
            strings.setdefault(key, []).append(value)
        else:
            numbers.setdefault(key, []).append(scaled_label(value, units[key], "auto"))
    return (sorted(f"{k:>10}:  {' '.join(vs)}" for k, vs in strings.items())
            + sorted(f"{k:>10}:  {' '.join(vs)}" for k, vs in numbers.items()))


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
            labels = label_keys[s.label_items] = _labels_key(s)
        seen = out.get((stack, labels))
        if seen is None:
            out[stack, labels] = (s, list(s.values))
        else:
            for i, v in enumerate(s.values):
                seen[1][i] += v
    return [(s, values) for s, values in out.values() if any(values)]


def _labels_key(s: Sample) -> Hashable:
    # Keys in order, each with its values in the sample's order.
    by_key: dict[tuple[str, bool], list[tuple[LabelValue, str]]] = {}
    for key, value, unit in s.label_items:
        by_key.setdefault((key, isinstance(value, int)), []).append((value, unit))
    return tuple(sorted((k, tuple(v)) for k, v in by_key.items()))
