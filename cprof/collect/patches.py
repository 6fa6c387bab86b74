"""patches: every change cprof makes to the interpreter, and when.

Importing cprof changes nothing. A collector applies the patches it needs
when it starts and undoes them when it stops; a patch several collectors use
is counted, and undone when its last user stops. ``applied()`` names the ones
in force.

==================  =====================================================  ==========================
patch               what changes                                           applied while
==================  =====================================================  ==========================
thread_timing       ``threading.Thread._bootstrap_inner``: a new thread    a CPU profile runs
                    is timed from its first instruction and named at once
thread_creators     ``threading.Thread.start``: the stack that started     any collector runs, or the
                    each thread (threadcreate; a dump's "created by")      live server serves
recording_locks     ``threading.Lock``, ``RLock`` and ``_allocate_lock``   the mutex or block
                    are cprof's recording locks (locks made meanwhile      profile is on
                    stay recording locks)
asyncio_waits       the wait methods of asyncio's Lock, Event, Condition,  the block profile is on
                    Semaphore and Queue; a ``sys.meta_path`` finder until
                    the program imports asyncio (cprof never imports it)
numpy_allocator     NumPy's default data allocator; a ``sys.meta_path``    a heap profile runs
                    finder until the program imports NumPy
exit_stop           ``atexit``: a CPU profile still running at exit is     a CPU profile runs
                    stopped and written
child_exit          ``atexit`` and ``os._exit``: a child process cprof     a followed child's
                    follows writes its profile as it ends, however it      profile runs
                    ends (multiprocessing's forked workers leave through
                    ``os._exit``)
fork_handlers       ``os.register_at_fork`` (once, from the first start:   from the first start on
                    Python cannot unregister them; they do nothing while
                    nothing runs; ``before`` handlers run in reverse
                    order, as Python runs its own)
==================  =====================================================  ==========================

The C core changes nothing in the interpreter beyond what these start: its
allocator hooks (heap) and signal handler (cpu) come and go with their
collectors (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import atexit
import functools
import importlib.machinery
import os
import signal
import sys
import threading
import time
import types
import weakref
from types import CodeType, FrameType

from .. import _core
from .symbols import frame_line

_lock = threading.RLock()  # made before any patching: always the original type


class Patch:
    """One change to the interpreter, counted: ``use()`` applies it for its
    first user, ``release()`` undoes it after its last."""

    def __init__(self, name: str, apply: Callable[[], None], undo: Callable[[], None]) -> None:
        self.name = name
        self._apply = apply
        self._undo = undo
        self.users = 0

    def use(self) -> None:
        with _lock:
            self.users += 1  # first: what the patch does may ask whether it is in use
            if self.users == 1:
                try:
                    self._apply()
                except BaseException:
                    self.users = 0
                    raise

    def release(self) -> None:
        with _lock:
            if self.users == 0:
                return
            self.users -= 1
            if self.users == 0:
                self._undo()

    def __repr__(self) -> str:
        return f"<patch {self.name}: {self.users} user(s)>"


# --- thread_timing -------------------------------------------------------------------

_original_bootstrap_inner = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]
# Told of each new thread (its native id and name) while thread_timing is applied.
thread_started: Callable[[int, str], None] | None = None


def _bootstrap_inner(self: threading.Thread) -> None:
    """threading.Thread._bootstrap_inner while a CPU profile runs: a new thread
    is timed from its first instruction, and the time after its last sample
    is counted when it ends, so even a thread shorter than one sampling period
    shows its CPU time."""
    _core.thread_started()
    listener = thread_started
    if listener is not None:  # named now: a short thread may end before any drain
        listener(threading.get_native_id(), self.name)
    try:
        _original_bootstrap_inner(self)
    finally:
        _core.thread_exiting()


def _set_bootstrap(function: Callable[[threading.Thread], None]) -> None:
    threading.Thread._bootstrap_inner = function  # type: ignore[attr-defined]


thread_timing = Patch("thread_timing", lambda: _set_bootstrap(_bootstrap_inner),
                      lambda: _set_bootstrap(_original_bootstrap_inner))


# --- thread_creators -------------------------------------------------------------------

# Thread -> (code, line) pairs of the stack that called start(), leaf first,
# and the ident of the thread that called it.
created: weakref.WeakKeyDictionary[threading.Thread, tuple[list[tuple[CodeType, int]], int]] = (
    weakref.WeakKeyDictionary())
_original_start = threading.Thread.start


def _start(self: threading.Thread) -> None:
    """threading.Thread.start, remembering who started the thread."""
    frames = []
    f: FrameType | None = sys._getframe(1)
    while f is not None:
        frames.append((f.f_code, frame_line(f)))
        f = f.f_back
    created[self] = (frames, threading.get_ident())
    _original_start(self)


_start.__wrapped__ = _original_start  # type: ignore[attr-defined]


def _set_start(function: Callable[[threading.Thread], None]) -> None:
    threading.Thread.start = function  # type: ignore[method-assign, assignment]


thread_creators = Patch("thread_creators", lambda: _set_start(_start),
                        lambda: _set_start(_original_start))


# --- recording_locks ----------------------------------------------------------------------

_ORIGINAL_LOCKS = {name: getattr(threading, name) for name in ("Lock", "RLock", "_allocate_lock")}
_RECORDING_LOCKS = {"Lock": _core.Lock, "RLock": _core.RLock, "_allocate_lock": _core.waiter_lock}


def _set_locks(locks: dict[str, Any]) -> None:
    for name, value in locks.items():
        setattr(threading, name, value)


recording_locks = Patch("recording_locks", lambda: _set_locks(_RECORDING_LOCKS),
                        lambda: _set_locks(_ORIGINAL_LOCKS))


# --- asyncio_waits ----------------------------------------------------------------------

# asyncio's waits, for the block profile: (module, class, method, whether a
# call will wait). A call that will not wait is not a block event.
_ASYNC_WAITS: list[tuple[str, str, str, Callable[[Any], bool]]] = [
    ("asyncio.locks", "Lock", "acquire", lambda self: self.locked()),
    ("asyncio.locks", "Event", "wait", lambda self: not self.is_set()),
    ("asyncio.locks", "Condition", "wait", lambda self: True),
    ("asyncio.locks", "Semaphore", "acquire", lambda self: self.locked()),
    ("asyncio.queues", "Queue", "get", lambda self: self.empty()),
    ("asyncio.queues", "Queue", "put", lambda self: self.full()),
]
_ASYNC_MODULES = frozenset(module_name for module_name, _, _, _ in _ASYNC_WAITS)


def _timed(method: Callable[..., Any], will_wait: Callable[[Any], bool]) -> Callable[..., Any]:
    """method (a coroutine function) with its waits recorded at the waiting
    coroutine's stack."""
    @functools.wraps(method)
    async def wait(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not will_wait(self):
            return await method(self, *args, **kwargs)
        start = time.monotonic_ns()
        try:
            return await method(self, *args, **kwargs)
        finally:
            _core.locks_block_event(time.monotonic_ns() - start, 1)  # 1: not this frame
    wait.__cprof_original__ = method  # type: ignore[attr-defined]
    return wait


def _patch_asyncio_module(module: Any, on: bool) -> None:
    """Time (or stop timing) the waits of one of asyncio's modules."""
    for module_name, class_name, name, will_wait in _ASYNC_WAITS:
        if module_name != module.__name__:
            continue
        cls = getattr(module, class_name)
        current = cls.__dict__[name]
        original = getattr(current, "__cprof_original__", None)
        if on and original is None:
            setattr(cls, name, _timed(current, will_wait))
        elif not on and original is not None:
            setattr(cls, name, original)

# The two classes below follow the import protocol (find_spec; create_module and
# exec_module) without importlib.abc's base classes at run time, which add
# nothing they use: importing importlib.abc loads importlib.resources, inspect
# and pathlib, ~8 ms of every cprof record's start-up. The type checker sees them.
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from importlib.abc import Loader as _Loader, MetaPathFinder as _MetaPathFinder
    from typing import Any, Callable, NoReturn, Sequence
else:
    _Loader = _MetaPathFinder = object


class _AfterExec(_Loader):
    """A module's loader that calls ``then(module)`` once the module has run."""

    def __init__(self, loader: Any, then: Callable[[types.ModuleType], None]) -> None:
        self.loader = loader
        self.then = then

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        module: types.ModuleType | None = self.loader.create_module(spec)
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        self.loader.exec_module(module)
        self.then(module)


class _ImportWatch(_MetaPathFinder):
    """On sys.meta_path while a patch waits for the program to import one of
    ``names``: ``then(module)`` runs as soon as the module has run (before a
    package's __init__ copies its names). cprof never imports them itself."""

    def __init__(self, names: frozenset[str] | tuple[str, ...],
                 then: Callable[[types.ModuleType], None]) -> None:
        self.names = names
        self.then = then

    def find_spec(self, name: str, path: Sequence[str] | None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if name not in self.names:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _AfterExec(spec.loader, self.then)
        return spec

    def watch(self, on: bool) -> None:
        if on and self not in sys.meta_path:
            sys.meta_path.insert(0, self)
        elif not on and self in sys.meta_path:
            sys.meta_path.remove(self)


def _time_on_import(module: types.ModuleType) -> None:
    if asyncio_waits.users > 0:
        _patch_asyncio_module(module, True)


_asyncio_watch = _ImportWatch(_ASYNC_MODULES, _time_on_import)


def _patch_asyncio(on: bool) -> None:
    """Time asyncio's waits (on) or stop: the modules already imported now,
    the others when they are imported."""
    for module_name in sorted(_ASYNC_MODULES):
        module = sys.modules.get(module_name)
        if module is not None:
            _patch_asyncio_module(module, on)
    _asyncio_watch.watch(on and not _ASYNC_MODULES <= sys.modules.keys())


asyncio_waits = Patch("asyncio_waits", lambda: _patch_asyncio(True),
                      lambda: _patch_asyncio(False))


# --- numpy_allocator -----------------------------------------------------------------------

_NUMPY_CORE = ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath")


def _wrap_numpy(module: types.ModuleType) -> None:
    """Sample NumPy's array data too (it bypasses Python's allocators); the C
    side unwraps it when the heap profile stops."""
    api = getattr(module, "_ARRAY_API", None)
    if api is None or numpy_allocator.users == 0 or _numpy["wrapped"]:
        return
    try:
        _core.heap_wrap_numpy(api)
        _numpy["wrapped"] = True
    except RuntimeError:
        pass  # NumPy before 1.22, or an unknown layout: Python's allocations still count


_numpy = {"wrapped": False}
_numpy_watch = _ImportWatch(_NUMPY_CORE, _wrap_numpy)


def _numpy_on() -> None:
    _numpy["wrapped"] = False
    core = next((sys.modules[name] for name in _NUMPY_CORE if name in sys.modules), None)
    if core is not None:
        _wrap_numpy(core)
    else:
        _numpy_watch.watch(True)


def _numpy_off() -> None:
    _numpy_watch.watch(False)


def numpy_wrapped() -> bool:
    """Whether NumPy's allocator is sampled by the running heap profile."""
    return _numpy["wrapped"]


numpy_allocator = Patch("numpy_allocator", _numpy_on, _numpy_off)


# --- exit_stop ----------------------------------------------------------------------------

def _stop_cpu_at_exit() -> None:
    from . import cpu
    if cpu._session is not None:
        try:
            cpu.stop_cpu_profile()
        except Exception:  # pragma: no cover - best effort at interpreter exit
            pass


def _register_exit_stop() -> None:
    atexit.register(_stop_cpu_at_exit)


exit_stop = Patch("exit_stop", _register_exit_stop, lambda: atexit.unregister(_stop_cpu_at_exit))


# --- child_exit ---------------------------------------------------------------------------

# Called as a followed child ends (collect/follow.py sets it): at exit, or in
# os._exit before the process goes.
child_ending: Callable[[], None] | None = None
_original_exit = os._exit


def _at_child_exit() -> None:
    ending = child_ending
    if ending is not None:
        ending()


def _exit(status: int) -> NoReturn:
    """os._exit, once a followed child has written its profile."""
    try:
        _at_child_exit()
    finally:
        _original_exit(status)


_exit.__wrapped__ = _original_exit  # type: ignore[attr-defined]


def _set_exit(function: Callable[[int], NoReturn]) -> None:
    os._exit = function  # type: ignore[assignment]


def _child_exit_on() -> None:
    atexit.register(_at_child_exit)
    _set_exit(_exit)


def _child_exit_off() -> None:
    atexit.unregister(_at_child_exit)
    _set_exit(_original_exit)


child_exit = Patch("child_exit", _child_exit_on, _child_exit_off)


# --- fork_handlers -------------------------------------------------------------------------

# The C core's own duties come first: the sampler's helper thread is held off
# across the fork, and the child forgets the parent's running collectors.
_fork: dict[str, list[Callable[[], None]]] = {"before": [_core.before_fork],
                                              "after_in_parent": [_core.after_fork_parent],
                                              "after_in_child": [_core.after_fork_child]}
_fork_registered = False


# The signals cprof may end a process on with a handler of its own
# (runner.TerminationHandlers): held across a fork (_run).
TERMINATION_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
_masks_before_fork: dict[int, set[int | signal.Signals]] = {}  # the forking threads' own masks


def _run(when: str) -> Callable[[], None]:
    def run() -> None:
        # Before the fork, the latest first, as os.register_at_fork runs them:
        # a handler that waits for work of its own to end must run before the
        # C core holds off the sampler's helper, which that work may need.
        handlers = _fork[when]
        try:
            for handler in list(reversed(handlers) if when == "before" else handlers):
                handler()
        finally:
            _hold_termination_signals(when)
    return run


def _hold_termination_signals(when: str) -> None:
    """The termination signals wait from just before the fork until cprof's
    handlers have run in the child (and the parent): one that came to the
    child before its Python reset its signal state (PyOS_AfterFork_Child
    clears what the inherited handler noted) was lost, and a child killed
    as it started (Pool.terminate) could wait for ever: 17 in 20 did, under
    cprof record, killed at once by their parent."""
    if when == "before":
        _masks_before_fork[threading.get_ident()] = signal.pthread_sigmask(
            signal.SIG_BLOCK, TERMINATION_SIGNALS)
        return
    mask = _masks_before_fork.pop(threading.get_ident(), None)
    if mask is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def at_fork(*, before: Callable[[], None] | None = None,
            after_in_parent: Callable[[], None] | None = None,
            after_in_child: Callable[[], None] | None = None) -> None:
    """Run these around os.fork from now on (each handler once, however often
    it is given), as os.register_at_fork would: ``before`` handlers in the
    reverse order of their registration, the others in that order."""
    global _fork_registered
    with _lock:
        for when, handler in (("before", before), ("after_in_parent", after_in_parent),
                              ("after_in_child", after_in_child)):
            if handler is not None and handler not in _fork[when]:
                _fork[when].append(handler)
        if not _fork_registered:
            os.register_at_fork(before=_run("before"), after_in_parent=_run("after_in_parent"),
                                after_in_child=_run("after_in_child"))
            _fork_registered = True


# --- what is applied ----------------------------------------------------------------------

PATCHES = (thread_timing, thread_creators, recording_locks, asyncio_waits, numpy_allocator,
           exit_stop, child_exit)


def applied() -> list[str]:
    """The patches in force now, by name ("fork_handlers" once registered)."""
    names = [p.name for p in PATCHES if p.users > 0]
    return names + (["fork_handlers"] if _fork_registered else [])
