"""heap: the heap profiler's Python face, like Go's heap and allocs profiles.

``with cprof.heap("heap.prof"): work()`` or ``start_heap_profile()`` /
``write_heap_profile(...)`` / ``stop_heap_profile()``. The C hooks
(csrc/collect/heap.c) sample one allocation per ``rate`` bytes on average, as Go's
MemProfileRate; this module turns their buckets into Go's four sample types,
unsampled with Go's formula.
"""

from __future__ import annotations

import gc as _gc
import math
import os
import threading
import time
from types import TracebackType

from .. import _core
from ..pprof import textformat
from ..pprof.io import write_bytes
from ..pprof.model import Sample, ValueType
from ..pprof.profile import Profile
from ..pprof.textformat import HeapRecord
from . import leaf, patches
from .symbols import Resolved, resolve

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

    from ..pprof.io import Dest

DEFAULT_RATE = 512 * 1024
# The heap profiler's limits (csrc/collect/heap.h, CPROF_HEAP_MAX_DEPTH; a C long long).
MAX_DEPTH = 256
MAX_RATE = 2**63 - 1

SAMPLE_TYPES = [ValueType("alloc_objects", "count"), ValueType("alloc_space", "bytes"),
                ValueType("inuse_objects", "count"), ValueType("inuse_space", "bytes")]


class _Session:
    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.start_ns = time.time_ns()
        self.start_clock = time.monotonic_ns()
        self.numpy = False  # NumPy's data allocator was sampled too
        # The child processes followed (follow.Following), when asked.
        self.following: Any = None


_session: _Session | None = None
# The last snapshot of a stopped profile: lookup("heap") still reads it.
_final: tuple[dict[str, Any], _Session] | None = None
_lock = threading.Lock()


def scale_heap_sample(count: int, size: int, rate: int) -> tuple[int, int]:
    """Go's unsampling (runtime/pprof's scaleHeapSample): an allocation of
    s bytes is sampled with probability 1 - exp(-s/rate), so each sampled
    one stands for 1 / (1 - exp(-s/rate)) of them."""
    if count == 0 or size == 0:
        return 0, 0
    if rate <= 1:
        return count, size
    # -expm1(-x) is Go's 1 - exp(-x), without its rounding to 0 (and division
    # by zero) when an allocation is tiny against the rate.
    scale = 1 / -math.expm1(-(size / count) / rate)
    return int(count * scale), int(size * scale)


# What a heap profile changes in the interpreter while it runs.
_PATCHES = (patches.numpy_allocator, patches.thread_creators)


def start_heap_profile(rate: int = DEFAULT_RATE, *, max_depth: int = 128,
                       follow_children: bool = False) -> None:
    """Start sampling allocations: one per ``rate`` bytes on average (Go's
    MemProfileRate; 1 records every allocation), in every thread, through
    Python's three allocator domains and, once the program has imported
    NumPy, its array data allocator. One heap profile runs at a time: a second
    start raises RuntimeError. ``follow_children=True`` samples every Python
    child process of this version too, with the same settings
    (collect/follow.py): stop_heap_profile merges in what each allocated,
    labelled ``pid`` and ``process``."""
    global _session, _final
    if isinstance(rate, bool) or not isinstance(rate, int):
        raise TypeError(f"rate must be an int number of bytes, not {type(rate).__name__}")
    # Before C, where a huge int is an OverflowError.
    if rate > MAX_RATE:
        raise ValueError(f"rate must be at most 2**63-1 bytes, not {rate}")
    if isinstance(max_depth, int) and not 1 <= max_depth <= MAX_DEPTH:
        raise ValueError(f"max_depth must be between 1 and {MAX_DEPTH}, not {max_depth}")
    with _lock:
        if _session is not None:
            raise RuntimeError("heap profiling already in use: stop the running heap "
                               "profile first (one per process)")
        patches.at_fork(after_in_child=_after_fork_in_child)
        leaf.install()  # the C function an allocation is made in, named
        _core.heap_start(rate=rate, max_depth=max_depth)
        _session = session = _Session(rate)
        _final = None
        for patch in _PATCHES:
            patch.use()
    if follow_children:
        from . import follow  # here: it imports this module
        try:
            session.following = follow.Following(follow.heap_settings(rate=rate,
                                                                      max_depth=max_depth))
        except BaseException:
            stop_heap_profile()
            raise


def _records(tables: dict[str, Any]) -> tuple[list[HeapRecord], Resolved]:
    """One record per (stack, size) bucket, with sampled (unscaled) counts."""
    resolved = resolve(tables)
    merged: dict[tuple[int, int], list[int]] = {}
    for stack, size, allocs, frees in tables["buckets"]:
        counts = merged.setdefault((stack, size), [0, 0])
        counts[0] += allocs
        counts[1] += frees
    records = [HeapRecord(allocs - frees, (allocs - frees) * size, allocs, allocs * size,
                          resolved.stacks[stack])
               for (stack, size), (allocs, frees) in merged.items() if allocs > 0]
    return records, resolved


def _build(tables: dict[str, Any], s: _Session, kind: str) -> Profile:
    records, resolved = _records(tables)
    samples = []
    for r in records:
        values = [*scale_heap_sample(r.alloc_objects, r.alloc_bytes, s.rate),
                  *scale_heap_sample(r.inuse_objects, r.inuse_bytes, s.rate)]
        size = r.alloc_bytes // r.alloc_objects
        samples.append(Sample(values, r.stack, {"bytes": size} if size else {}))
    stats = tables["stats"]
    comments = [f"cprof heap profile: rate {s.rate} bytes, {stats['sampled']} sampled "
                f"allocations ({stats['deferred']} made without the GIL), {stats['live']} live, "
                f"{stats['dropped']} dropped"]
    if s.numpy or (s is _session and patches.numpy_wrapped()):
        comments.append("NumPy array data is included")
    if stats["hooks_lost"]:
        comments.append("warning: cprof's allocator hooks were removed by another hook "
                        "(tracemalloc.stop()?): allocations since then are missing")
    return Profile(
        SAMPLE_TYPES, samples, period_type=ValueType("space", "bytes"), period=s.rate,
        time_ns=s.start_ns, duration_ns=time.monotonic_ns() - s.start_clock,
        comments=comments, default_sample_type="alloc_space" if kind == "allocs" else "",
        mappings=resolved.mappings, locations=resolved.locations,
        functions=resolved.functions)


def _tables(gc: bool) -> tuple[dict[str, Any], _Session]:
    """The running profile's tables now, or the stopped one's last."""
    with _lock:
        if _session is not None:
            if gc:
                _gc.collect()
            return _core.heap_snapshot(), _session
        if _final is not None:
            return _final
    raise RuntimeError("heap profiling is not running: start it with "
                       "cprof.start_heap_profile() or `with cprof.heap(...)`")


def heap_profile(kind: str = "heap", *, gc: bool = False) -> Profile:
    """The heap (default inuse_space) or allocs (default alloc_space) profile
    of the running heap profile now, or of the last one as it stopped.
    ``gc=True`` collects garbage first, so that only reachable memory shows
    as in use."""
    if kind not in ("heap", "allocs"):
        raise ValueError(f"kind must be 'heap' or 'allocs', not {kind!r}")
    tables, session = _tables(gc)
    return _build(tables, session, kind)


def heap_text(*, gc: bool = False) -> str:
    """Go's debug=1 text of the heap profile (textformat.heap_text)."""
    tables, session = _tables(gc)
    return textformat.heap_text(_records(tables)[0], session.rate)


def write_heap_profile(dest: Dest, gc: bool = False) -> Profile:
    """Write the heap profile now (gzipped pprof, like Go's WriteHeapProfile)
    to a path (atomically) or a binary file, and return it."""
    profile = heap_profile("heap", gc=gc)
    write_bytes(dest, profile.to_bytes())
    return profile


def running() -> bool:
    """Whether a heap profile is running."""
    return _session is not None


def stop_heap_profile() -> Profile:
    """Stop sampling allocations and return the heap profile as it was at the
    stop; lookup("heap") and lookup("allocs") keep reading it (this process's
    alone, when children were followed)."""
    global _session, _final
    with _lock:
        session = _session
        if session is None:
            raise RuntimeError("no heap profile is running")
        try:
            tables = _core.heap_snapshot()
        finally:
            session.numpy = patches.numpy_wrapped()
            for patch in _PATCHES:
                patch.release()
            _core.heap_stop()
            _session = None
        _final = (tables, session)
    profile = _build(tables, session, "heap")
    if session.following is not None:
        profile = session.following.finish(profile)
    return profile


class heap:
    """Sample allocations in a block; the heap profile is written on exit
    (when a path or file is given) and kept as ``.profile``.

    >>> with cprof.heap("heap.prof", rate=64 * 1024) as h:
    ...     work()
    >>> h.profile.top(sample_type="alloc_space")

    ``follow_children=True``: the Python child processes started meanwhile
    are sampled too, and merged in (start_heap_profile).
    """

    def __init__(self, path: Dest | None = None, *, rate: int = DEFAULT_RATE,
                 max_depth: int = 128, follow_children: bool = False) -> None:
        self.path = path
        self.rate = rate
        self.max_depth = max_depth
        self.follow_children = follow_children
        self.profile: Profile | None = None
        self._pid = 0

    def __enter__(self) -> heap:
        start_heap_profile(self.rate, max_depth=self.max_depth,
                           follow_children=self.follow_children)
        self._pid = os.getpid()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if os.getpid() != self._pid:
            return  # a child forked inside the block: the profile (and its file) is the parent's
        self.profile = stop_heap_profile()
        if self.path is not None:
            write_bytes(self.path, self.profile.to_bytes())


def _after_fork_in_child() -> None:
    global _session, _final, _lock
    _session = None
    _final = None
    _lock = threading.Lock()

