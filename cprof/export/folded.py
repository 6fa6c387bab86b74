"""folded: a profile as folded stacks, the input of flamegraph.pl and inferno.

One line per distinct stack: the frames from the root to the leaf joined by
";", a space, and the summed value of one sample type (``main;work;leaf 42``).
A frame is a function name (pprof's function granularity); a location with
inlined calls becomes one frame per line, caller first. Stacks whose values
sum to zero are left out, as are samples without locations; lines are sorted
by stack, so the same profile always gives the same text.

flamegraph.pl reads only non-negative counts, so a stack that sums below zero
(a diff profile) is an error rather than a line the tools would drop.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..pprof.io import Dest, write_bytes
from ..pprof.model import Line, Location, Sample

if TYPE_CHECKING:
    from ..pprof.profile import Profile


def frame_name(line: Line | None, location: Location) -> str:
    """The name of one frame: the function's name or, for a location without
    one, pprof's ``[binary]`` (the mapping's file name), else ``<unknown>``."""
    fn = line.function if line is not None else None
    if fn is not None and fn.name:
        return fn.name
    if location.mapping is not None and location.mapping.filename:
        return f"[{os.path.basename(location.mapping.filename)}]"
    return "<unknown>"


def location_names(location: Location) -> tuple[str, ...]:
    """The frames of one location, caller first: an inlined callee comes
    after the function it was inlined into."""
    if not location.lines:
        return (frame_name(None, location),)
    return tuple(frame_name(ln, location) for ln in reversed(location.lines))


def stack_names(sample: Sample) -> tuple[str, ...]:
    """The frames of a sample from the root to the leaf."""
    return tuple(name for loc in reversed(sample.locations) for name in location_names(loc))


def _clean(name: str) -> str:
    # ";" separates frames and the line ends the record: neither may appear in a name.
    return name.replace(";", ":").replace("\r", " ").replace("\n", " ")


def folded_stacks(profile: Profile, sample_type: str | int | None = None) -> dict[str, int]:
    """Each distinct folded stack (frames joined by ";") with its summed
    value, zero sums included; ``folded`` prints the non-zero ones."""
    index = profile.sample_index(sample_type)
    by_locations: dict[tuple[int, ...], int] = {}
    texts: dict[int, str] = {}  # id(location) -> its frames, caller first, joined by ";"
    for s in profile.samples:
        value = s.values[index]
        if value == 0 or not s.locations:
            continue
        key = tuple(map(id, s.locations))
        by_locations[key] = by_locations.get(key, 0) + value
        for loc in s.locations:
            if id(loc) not in texts:
                texts[id(loc)] = ";".join(_clean(n) for n in location_names(loc))
    # Different locations (lines of one function) may fold to the same names.
    stacks: dict[str, int] = {}
    for key, value in by_locations.items():
        text = ";".join(texts[i] for i in reversed(key))
        stacks[text] = stacks.get(text, 0) + value
    return stacks


def folded(profile: Profile, sample_type: str | int | None = None) -> str:
    """The profile as folded stacks of one sample type (by name or index;
    the default one when None), one ``root;...;leaf value`` line per stack.

    Raises ValueError when a stack sums below zero (a diff profile), which
    flamegraph.pl and inferno cannot draw."""
    index = profile.sample_index(sample_type)
    stacks = folded_stacks(profile, index)
    negative = [text for text, value in stacks.items() if value < 0]
    if negative:
        vt = profile.sample_types[index]
        raise ValueError(
            f"{len(negative)} of {len(stacks)} stacks have a negative {vt.type} total "
            f"(a diff profile?): folded stacks carry non-negative counts only; "
            f"export the two profiles separately")
    return "".join(f"{text} {value}\n" for text, value in sorted(stacks.items()) if value)


def write_folded(profile: Profile, dest: Dest, sample_type: str | int | None = None) -> None:
    """Write ``folded(profile, sample_type)`` as UTF-8 to a path (atomically)
    or an open binary file."""
    write_bytes(dest, folded(profile, sample_type).encode("utf-8"))


__all__ = ["folded", "folded_stacks", "frame_name", "location_names", "stack_names",
           "write_folded"]
