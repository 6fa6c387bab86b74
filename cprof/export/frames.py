"""frames: how every export that draws whole stacks names a frame.

The flame graphs, folded stacks, speedscope and the DataFrame print a frame
as its function's name (pprof's function granularity), or, for a location
without a named function, pprof's ``[binary]`` (the mapping's file name),
else ``<unknown>``. The stacks themselves come from the C engine
(csrc/analysis): its function-granularity nodes are named here, and nodes
printed alike (lines of one function, a function in two files) become one
frame, so that their stacks merge.
"""

from __future__ import annotations

import array
import os
from typing import NamedTuple  # Frames is one

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Callable, Sequence

# ProfileData.nodes()'s rows: (name, file, start line, line, binary, source
# file, source start line).
NodeRow = tuple[str, str, int, int, str, str, int]


def frame_label(name: str, objfile: str) -> str:
    """A frame's name: the function's, else ``[binary]``, else ``<unknown>``."""
    if name:
        return name
    return f"[{os.path.basename(objfile)}]" if objfile else "<unknown>"


def node_frame_name(node: Sequence[object]) -> str:
    """The frame name of a function-granularity node (a ProfileData.nodes row)."""
    name, objfile = node[0], node[4]
    assert isinstance(name, str) and isinstance(objfile, str)
    return frame_label(name, objfile)


class Frames(NamedTuple):
    """The frames of a profile's function-granularity nodes."""

    names: list[str]          # frame f's name; frames are in name order
    sources: list[tuple[str, int]]  # frame f's source file and first line ("", 0 if unknown)
    of_node: array.array[int]  # uint32: node i's frame, as ProfileData's stack calls take it


def frames_by_name(nodes: Sequence[NodeRow],
                   clean: Callable[[str], str] | None = None) -> Frames:
    """The frames of the engine's nodes (ProfileData.nodes(0)), their names
    passed through ``clean`` first when given. Frame ids in name order make a
    tree's siblings come out sorted by name; a frame's source is that of the
    first node of its name."""
    names = [node_frame_name(nd) for nd in nodes]
    if clean is not None:
        names = [clean(name) for name in names]
    frames = sorted(set(names))
    frame_of = {name: i for i, name in enumerate(frames)}
    sources = [("", 0)] * len(frames)
    for nd, name in zip(reversed(nodes), reversed(names)):  # the first node of a name wins
        sources[frame_of[name]] = (nd[5], nd[6])
    return Frames(frames, sources, array.array("I", [frame_of[name] for name in names]))


__all__ = ["Frames", "frame_label", "frames_by_name", "node_frame_name"]
