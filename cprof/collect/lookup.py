"""lookup: named profiles, as Go's pprof.Lookup and Profile.WriteTo.

``cprof.lookup("heap").write_to("heap.prof")`` writes gzipped pprof;
``debug=1`` writes the text Go writes for the same profile.
"""

from __future__ import annotations

import io
from typing import NamedTuple  # _Kind is one

from ..pprof import textformat
from ..pprof.io import write_bytes
from ..pprof.profile import Profile
from . import heap, locks, threads

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Callable

    from ..pprof.io import Dest


class _Kind(NamedTuple):
    profile: Callable[[], Profile]
    text: Callable[[int], str]  # debug >= 1


def _goroutine_text(debug: int) -> str:
    if debug >= 2:
        return threads.full_text()
    return textformat.count_text(threads.goroutine_profile(), "goroutine")


_KINDS: dict[str, _Kind] = {
    "heap": _Kind(lambda: heap.heap_profile("heap"), lambda debug: heap.heap_text()),
    "allocs": _Kind(lambda: heap.heap_profile("allocs"), lambda debug: heap.heap_text()),
    "goroutine": _Kind(threads.goroutine_profile, _goroutine_text),
    "mutex": _Kind(lambda: locks.profile("mutex"), lambda debug: locks.text("mutex")),
    "block": _Kind(lambda: locks.profile("block"), lambda debug: locks.text("block")),
    "threadcreate": _Kind(threads.threadcreate_profile,
                          lambda debug: textformat.count_text(threads.threadcreate_profile(),
                                                              "threadcreate")),
}
_ALIASES = {"threads": "goroutine"}


class NamedProfile:
    """One of the process's named profiles (Go's *pprof.Profile)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._kind = _KINDS[name]

    def __repr__(self) -> str:
        return f"<cprof profile {self.name!r}>"

    def profile(self) -> Profile:
        """The profile as it stands now."""
        return self._kind.profile()

    def count(self) -> int:
        """How many samples (Go: records) the profile holds now."""
        return len(self.profile().samples)

    def text(self, debug: int = 1) -> str:
        """Go's text of the profile (debug >= 1): grouped stacks with counts;
        for "goroutine", debug=2 is the full per-thread dump."""
        return self._kind.text(debug)

    def write_to(self, dest: Dest, debug: int = 0) -> None:
        """Write the profile: debug=0 as gzipped pprof, debug>=1 as Go's
        text (for "goroutine", debug=2 is the full per-thread dump). dest is
        a path (written atomically) or a binary file."""
        if not isinstance(debug, int) or debug < 0:
            raise ValueError(f"debug must be 0, 1 or 2, not {debug!r}")
        data = self.profile().to_bytes() if debug == 0 else self.text(debug).encode()
        if isinstance(dest, io.TextIOBase):
            raise TypeError("write_to needs a path or a binary file")
        write_bytes(dest, data)


def lookup(name: str) -> NamedProfile:
    """The named profile: "heap" (in-use memory by default) or "allocs"
    (allocated memory by default), which need a running or stopped heap
    profile; "mutex" and "block": contention and waits on threading's locks
    (cprof.set_mutex_profile_fraction, cprof.set_block_profile_rate);
    "goroutine" (alias "threads"): every thread's and asyncio task's stack now; "threadcreate": the stacks that started the live
    threads. An unknown name raises ValueError listing the known ones."""
    name = _ALIASES.get(name, name)
    if name not in _KINDS:
        raise ValueError(f"unknown profile {name!r}: known profiles are "
                         f"{', '.join(sorted(_KINDS))}")
    return NamedProfile(name)


def profiles() -> list[NamedProfile]:
    """Every named profile, like Go's pprof.Profiles()."""
    return [NamedProfile(name) for name in sorted(_KINDS)]
