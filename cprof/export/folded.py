"""folded: a profile as folded stacks, the input of flamegraph.pl and inferno.

One line per distinct stack: the frames from the root to the leaf joined by
";", a space, and the summed value of one sample type (``main;work;leaf 42``).
A frame is a function name (pprof's function granularity); a location with
inlined calls becomes one frame per line, caller first. Stacks whose values
sum to zero are left out, as are samples without locations; lines are sorted
by stack, so the same profile always gives the same text. The stacks are
merged and printed in C (csrc/analysis/frame_stacks.c) from the engine's
function-granularity paths; frames are named as export/frames.py says.

flamegraph.pl reads only non-negative counts, so a stack that sums below zero
(a diff profile) is an error rather than a line the tools would drop.
"""

from __future__ import annotations


from ..pprof.io import write_bytes
from ..pprof.model import Line, Location, Sample
from .frames import frame_label, frames_by_name

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from ..pprof.io import Dest
    from ..pprof.profile import Profile


def frame_name(line: Line | None, location: Location) -> str:
    """The name of one frame: the function's name or, for a location without
    one, pprof's ``[binary]`` (the mapping's file name), else ``<unknown>``."""
    fn = line.function if line is not None else None
    return frame_label(fn.name if fn is not None else "",
                       location.mapping.filename if location.mapping is not None else "")


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


def _folded(profile: Profile, index: int) -> tuple[bytes, int, int]:
    """The folded text of sample type ``index`` from the C engine
    (csrc/analysis/frame_stacks.c), the number of its stacks and of those
    summing below zero."""
    data = profile._analysis_data()
    frames = frames_by_name(data.nodes(0), _clean)
    return data.folded(index, frames.of_node, frames.names)


def folded_stacks(profile: Profile, sample_type: str | int | None = None) -> dict[str, int]:
    """Each distinct folded stack (frames joined by ";") with its summed
    value, those summing to zero left out."""
    text, _, _ = _folded(profile, profile.sample_index(sample_type))
    stacks: dict[str, int] = {}
    for line in text.decode("utf-8").split("\n")[:-1]:  # names may hold other line breaks
        stack, _, value = line.rpartition(" ")
        stacks[stack] = int(value)
    return stacks


def folded(profile: Profile, sample_type: str | int | None = None) -> str:
    """The profile as folded stacks of one sample type (by name or index;
    the default one when None), one ``root;...;leaf value`` line per stack.

    Raises ValueError when a stack sums below zero (a diff profile), which
    flamegraph.pl and inferno cannot draw."""
    return _folded_bytes(profile, sample_type).decode("utf-8")


def _folded_bytes(profile: Profile, sample_type: str | int | None) -> bytes:
    index = profile.sample_index(sample_type)
    text, stacks, negative = _folded(profile, index)
    if negative:
        vt = profile.sample_types[index]
        raise ValueError(
            f"{negative} of {stacks} stacks have a negative {vt.type} total "
            f"(a diff profile?): folded stacks carry non-negative counts only; "
            f"export the two profiles separately")
    return text


def write_folded(profile: Profile, dest: Dest, sample_type: str | int | None = None) -> None:
    """Write ``folded(profile, sample_type)`` as UTF-8 to a path (atomically)
    or an open binary file."""
    write_bytes(dest, _folded_bytes(profile, sample_type))


__all__ = ["folded", "folded_stacks", "frame_name", "location_names", "stack_names",
           "write_folded"]
