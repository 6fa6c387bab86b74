"""cpu: the CPU profiler's Python face, like Go's StartCPUProfile.

``with cprof.cpu("out.prof"): work()`` or ``start_cpu_profile(...)`` /
``stop_cpu_profile()``. The C sampler (csrc/collect/sampler.c) records stacks; this
module names threads and asyncio tasks while it runs, and turns its tables
into a pprof Profile when it stops.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from types import TracebackType

from .. import _core
from ..pprof.io import write_bytes
from ..pprof.model import Sample, ValueType
from ..pprof.profile import Profile
from . import leaf, patches
from .labels import LABEL_VAR, labels_of
from .symbols import resolve
from .tasks import all_tasks

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Callable, TypeVar

    from ..pprof.io import Dest

    F = TypeVar("F", bound=Callable[..., Any])

MODES = ("cpu", "wall")
DEFAULT_MAX_DEPTH = 128
NATIVE_MAX_DEPTH = 512  # C frames count against it too
# The sampler's limits (csrc/module/sampler.c, cpu_start).
MAX_HZ = 100000
MAX_DEPTH = 65536


class _Session:
    """What the running profile needs besides the C sampler."""

    def __init__(self, dest: Dest | None, hz: float, mode: str, max_depth: int,
                 native: bool) -> None:
        self.dest = dest
        self.hz = hz
        self.mode = mode
        self.max_depth = max_depth
        self.native = native
        self.start_ns = time.time_ns()
        self.start_clock = time.monotonic_ns()
        self.thread_names: dict[int, str] = {}
        self.task_names: dict[int, str] = {}
        # The child processes followed (follow.Following), when asked.
        self.following: Any = None

    def start_core(self, resume: bool = False) -> None:
        """Start the sampler; ``resume``: each thread's time counts from the
        previous profile's last reading of its clock (a cut)."""
        # The C functions frames call, named (collect/leaf.py); not in native
        # mode, whose walk leaves them to libunwind.
        leaf.install()
        _core.cpu_start(hz=self.hz, mode=self.mode, max_depth=self.max_depth,
                        label_var=LABEL_VAR, hook=self.refresh, native=self.native,
                        resume=resume)

    def cut(self) -> _Session:
        """A copy of this session as it is, for the profile so far; this one
        goes on as if started now."""
        before = _Session(self.dest, self.hz, self.mode, self.max_depth, self.native)
        before.__dict__.update(self.__dict__)
        before.thread_names = dict(self.thread_names)
        before.task_names = dict(self.task_names)
        self.start_ns = time.time_ns()
        self.start_clock = time.monotonic_ns()
        return before

    def thread_started(self, native_id: int, name: str) -> None:
        """A new thread, named at once: a short one may end before any drain."""
        self.thread_names[native_id] = name

    def refresh(self) -> None:
        """Called by the sampler after each drain: learn names while their
        threads and tasks are alive."""
        for t in threading.enumerate():
            if t.native_id is not None:
                self.thread_names[t.native_id] = t.name
        leaf.refresh()
        pending = _core.cpu_new_coroutines()
        if pending:
            for task in all_tasks():
                coro = task.get_coro()
                if id(coro) in pending:
                    self.task_names[id(coro)] = task.get_name()


_session: _Session | None = None
_lock = threading.Lock()
# What a CPU profile changes in the interpreter while it runs.
_PATCHES = (patches.thread_timing, patches.thread_creators, patches.exit_stop)
def _kernel_thread_name(tid: int) -> str:
    """/proc/self/task/TID/comm, or "" once the thread has gone."""
    try:
        with open(f"/proc/self/task/{tid}/comm", encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return ""


def _build(tables: dict[str, Any], s: _Session) -> Profile:
    resolved = resolve(tables)
    stacks = resolved.stacks
    samples = []
    for stack, tid, label_set, coroutine, count, weight in tables["samples"]:
        labels: dict[str, str | int] = dict(labels_of(label_set))
        if tid:
            labels["thread_id"] = tid
            name = s.thread_names.get(tid)
            if name is None:  # a thread Python does not know (native mode): the kernel's name
                name = s.thread_names[tid] = _kernel_thread_name(tid)
            if name:
                labels["thread_name"] = name
        if coroutine and coroutine in s.task_names:
            labels["task"] = s.task_names[coroutine]
        samples.append(Sample([count, weight], stacks[stack], labels))
    period = int(round(1e9 / s.hz))
    kind = s.mode
    stats = tables["stats"]
    comments = [f"cprof {kind} profile at {s.hz:g} Hz: {stats['samples']} samples, "
                f"{stats['lost']} lost, {stats['threads']} threads"]
    comments += _troubles(stats)
    return Profile(
        [ValueType("samples", "count"), ValueType(kind, "nanoseconds")], samples,
        period_type=ValueType(kind, "nanoseconds"), period=period, time_ns=s.start_ns,
        duration_ns=time.monotonic_ns() - s.start_clock, comments=comments,
        default_sample_type=kind, mappings=resolved.mappings, locations=resolved.locations,
        functions=resolved.functions)


def start_cpu_profile(dest: Dest | None = None, *, hz: float = 100, mode: str = "cpu",
                      max_depth: int | None = None, native: bool = False,
                      follow_children: bool = False) -> object:
    """Start profiling every thread of the process, like Go's StartCPUProfile,
    and return this profile's handle: ``stop_cpu_profile(handle)`` stops it
    and no other, so that code which starts a profile never stops one that
    someone else started after stopping its own.

    ``dest`` (a path or a binary file, optional) receives the gzipped pprof
    profile at :func:`stop_cpu_profile`. ``mode="cpu"`` samples CPU time per
    thread; ``mode="wall"`` samples every thread on wall-clock time, so time
    spent sleeping or blocked shows up. Stacks deeper than ``max_depth`` keep
    their innermost frames under a ``<truncated>`` root (default 128 frames,
    512 with ``native``, whose C frames count too). One CPU profile runs
    at a time: a second start raises RuntimeError, as Go's "cpu profiling
    already in use". ``native=True`` records C frames too (libunwind), each
    interpreter call replaced by the Python frames it ran, so that time in
    C (NumPy, zlib, an extension) is named under the Python call that made it.
    ``follow_children=True`` profiles every Python child process of this
    version too, with the same settings (collect/follow.py): their profiles
    are merged into this one at the stop, each sample labelled ``pid`` and
    ``process``.
    """
    global _session
    if mode not in MODES:
        raise ValueError(f"mode must be 'cpu' or 'wall', not {mode!r}")
    with _lock:
        if _session is not None:
            raise RuntimeError("cpu profiling already in use: stop the running CPU profile "
                               "first (one per process, as in Go)")
        if max_depth is None:
            max_depth = NATIVE_MAX_DEPTH if native else DEFAULT_MAX_DEPTH
        if not 1 <= max_depth <= MAX_DEPTH:  # before C, where a huge int is an OverflowError
            raise ValueError(f"max_depth must be 1..{MAX_DEPTH}, not {max_depth}")
        session = _Session(dest, hz, mode, max_depth, native)
        patches.at_fork(after_in_child=_after_fork_in_child)
        session.start_core()
        patches.thread_started = session.thread_started
        for patch in _PATCHES:
            patch.use()
        _session = session
    if follow_children:
        from . import follow  # here: it imports this module
        try:
            session.following = follow.Following(follow.cpu_settings(
                hz=hz, mode=mode, max_depth=max_depth, native=native))
        except BaseException:
            stop_cpu_profile(session)
            raise
    return session


def _troubles(stats: dict[str, Any]) -> list[str]:
    """What went wrong while sampling, in words for the profile's comments
    and stderr."""
    out = []
    after = stats.get("taken_over_after_ns", -1)
    if after >= 0:
        out.append(f"SIGPROF's handler was replaced by another (a library's profiler, or "
                   f"signal.signal) {after / 1e9:.3f} s after the start: sampling stopped "
                   f"then, and the time after it is <sampling stopped>")
    if stats.get("handlers_stuck"):
        out.append("a thread was still inside cprof's signal handler a second after stop "
                   "(stopped in a debugger?): its memory is kept until it returns")
    return out


def _release_patches() -> None:
    """Undo what start_cpu_profile applied (the profile is ending)."""
    patches.thread_started = None
    for patch in _PATCHES:
        patch.release()


def stop_cpu_profile(handle: object | None = None) -> Profile:
    """Stop the CPU profile; write it where start_cpu_profile was told (the
    file atomically: a temporary file renamed into place) and return it.
    Given the ``handle`` start_cpu_profile returned, stop that profile only:
    RuntimeError when another one runs."""
    global _session
    with _lock:
        session = _session
        if session is None:
            raise RuntimeError("no CPU profile is running")
        if handle is not None and session is not handle:
            raise RuntimeError("the running CPU profile is not the one this handle started "
                               "(that one was stopped): left running")
        try:
            # Name the threads and tasks of the last samples while they live.
            _core.cpu_drain(refresh=True)
        finally:
            _release_patches()
            tables = _core.cpu_stop()
            _session = None
    profile = _build(tables, session)
    if session.following is not None:
        profile = session.following.finish(profile)
    if session.dest is not None:
        write_bytes(session.dest, profile.to_bytes())
    for trouble in _troubles(tables["stats"]):
        print(f"cprof: warning: {trouble}", file=sys.stderr)
    return profile


def cut_cpu_profile(handle: object) -> Profile:
    """The samples of the running CPU profile (the one ``handle`` started)
    since its start or its last cut, as a profile, while it goes on with
    the same settings and patches: what a followed child writes every
    second (collect/follow.py)."""
    global _session
    with _lock:
        session = _session
        if session is None or session is not handle:
            raise RuntimeError("the CPU profile this handle started is not running")
        try:
            _core.cpu_drain(refresh=True)
        finally:
            tables = _core.cpu_stop()
            before = session.cut()
            try:
                session.start_core(resume=True)  # the time between stop and start counts
            except BaseException:
                _release_patches()
                _session = None
                raise
    return _build(tables, before)


class cpu:
    """Profile CPU (or wall) time of a block or a function.

    >>> with cprof.cpu("out.prof"):          # written on exit
    ...     work()
    >>> with cprof.cpu(hz=1000, mode="wall") as c:
    ...     work()
    >>> c.profile.total()

    As a decorator, each call of the function is profiled (and the file, if
    any, rewritten). ``follow_children=True``: the Python child processes
    started meanwhile are profiled too, and merged in (start_cpu_profile).
    """

    def __init__(self, path: Dest | None = None, *, hz: float = 100, mode: str = "cpu",
                 max_depth: int | None = None, native: bool = False,
                 follow_children: bool = False) -> None:
        self.path = path
        self.hz = hz
        self.mode = mode
        self.max_depth = max_depth
        self.native = native
        self.follow_children = follow_children
        self.profile: Profile | None = None
        self._pid = 0
        self._handle: object | None = None

    def __enter__(self) -> cpu:
        self._handle = start_cpu_profile(self.path, hz=self.hz, mode=self.mode,
                                         max_depth=self.max_depth, native=self.native,
                                         follow_children=self.follow_children)
        self._pid = os.getpid()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if os.getpid() != self._pid:
            return  # a child forked inside the block: the profile (and its file) is the parent's
        handle, self._handle = self._handle, None
        self.profile = stop_cpu_profile(handle)

    def __call__(self, func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self:
                return func(*args, **kwargs)
        return wrapper  # type: ignore[return-value]


def _after_fork_in_child() -> None:
    global _session, _lock
    _session = None
    _lock = threading.Lock()


