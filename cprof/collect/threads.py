"""threads: every thread's and asyncio task's stack, as Go's goroutine
and threadcreate profiles.

``lookup("goroutine")`` (alias "threads") dumps every Python thread of the
process (``sys._current_frames()``, no cap on their number) with its name,
ids, daemon flag and state, and every asyncio task with its await chain and,
on 3.14+, the tasks that await it (``asyncio.capture_call_graph``);
``lookup("threadcreate")`` gives the stacks that started the live threads,
recorded by a wrapper around ``threading.Thread.start`` while a collector
runs or the live server serves (patches.thread_creators).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field
from types import CodeType, FrameType

from ..pprof.builder import Frame, ProfileBuilder
from ..pprof.profile import Profile
from .. import _core
from . import leaf, locks, patches
from .tasks import all_tasks, directory_of as _directory_of
from .symbols import (HIDDEN_FRAMES, PACKAGE_DIR, ROOT_FRAMES, fold_cprof, frame_kind,
                      frame_line, library_dirs, module_names, names)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Iterable, Sequence


@dataclass(frozen=True)
class StackFrame:
    """One Python frame of a dump: qualified name, code name, file, line."""

    name: str
    system_name: str
    filename: str
    line: int
    start_line: int
    callee: bool = False  # a C function the frame after it calls (collect/leaf.py)

    def as_frame(self) -> Frame:
        return Frame(self.name, self.filename, self.line, self.start_line, self.system_name)


@dataclass
class ThreadDump:
    ident: int
    native_id: int | None
    name: str
    daemon: bool
    state: str
    stack: list[StackFrame]                  # leaf first
    created_by: list[StackFrame] | None = None
    created_in: int | None = None            # ident of the thread that started it
    waiting_on: locks.Wait | None = None     # a recording lock it waits on


@dataclass(frozen=True)
class Awaiter:
    """A task (or future) awaiting a task, and the frame it awaits in: the
    counterpart of a thread's creator, as asyncio 3.14+ records it for a task
    awaited directly, through asyncio.gather or wait, or as a TaskGroup's child."""

    name: str                                # the task's name, or the future's type
    is_task: bool
    frame: StackFrame | None = None          # where it awaits

    def describe(self) -> str:
        return f'task "{self.name}"' if self.is_task else self.name


@dataclass
class TaskDump:
    name: str
    state: str
    stack: list[StackFrame]                  # leaf first: the innermost awaiting coroutine
    thread: int | None = None                # ident of the thread whose loop runs it
    awaiting: str = ""                       # what the innermost coroutine waits on
    awaited_by: list[Awaiter] = field(default_factory=list)  # empty before 3.14


@dataclass
class Dump:
    threads: list[ThreadDump] = field(default_factory=list)
    tasks: list[TaskDump] = field(default_factory=list)
    time_ns: int = 0


# --- frames --------------------------------------------------------------------------


def _stack_frame(code: CodeType, line: int | None, modules: dict[str, str]) -> StackFrame:
    name, system, path = names(code.co_qualname, code.co_name, code.co_filename, modules)
    return StackFrame(name, system, path, line or 0, code.co_firstlineno)


def _callee(frame: FrameType) -> StackFrame | None:
    """The C function frame is calling (time.sleep, select.select), when the
    catalogue names it (collect/leaf.py)."""
    key = _core.frame_callee(frame)
    named = leaf.named(key) if key is not None else None
    if named is None:
        return None
    name, short_name, path = named
    return StackFrame(name, short_name, path, 0, 0, callee=True)


def _walk(frame: FrameType | None, modules: dict[str, str]) -> list[StackFrame]:
    """frame's stack, leaf first, each frame after the C function it calls:
    the innermost one's (time.sleep), and one between a frame and Python code
    it calls back (builtins.sorted under a key). A frame calling Python code
    directly has a function in its call's slot, which no catalogue names."""
    out: list[StackFrame] = []
    while frame is not None:
        code = frame.f_code
        key = (code.co_filename, code.co_name)
        if key in ROOT_FRAMES:
            break
        if key not in HIDDEN_FRAMES:
            callee = _callee(frame)
            if callee is not None:
                out.append(callee)
            out.append(_stack_frame(code, frame_line(frame), modules))
        frame = frame.f_back
    return out


# cprof's own work in a stack, as the collectors' profiles show it (symbols.fold_cprof).
# Its system name differs from its name, as the collectors' synthetic functions'
# (empty) does: go tool pprof strips "<...>" from a name equal to its system name,
# taking it for C++ template arguments, and would print no name at all.
_PROFILER_FRAME = StackFrame("<cprof>", "cprof", "", 0, 0)


def _without_cprof(stack: list[StackFrame], library: tuple[str, ...]) -> list[StackFrame]:
    # A C callee is of its caller's kind: cprof's own work when cprof calls it.
    kinds = [frame_kind(f.filename, f.system_name, library) for f in stack]
    for depth in range(len(stack) - 2, -1, -1):
        if stack[depth].callee:
            kinds[depth] = kinds[depth + 1]
    kept = fold_cprof(range(len(stack)), kinds.__getitem__, -1)
    return [_PROFILER_FRAME if depth < 0 else stack[depth] for depth in kept]


# --- states ----------------------------------------------------------------------------

# Where a thread that is not running Python code waits: the innermost frame
# of a known blocking call in the standard library, by (module file stem,
# code name). The thread that takes the dump is "running"; a thread whose
# innermost frame is elsewhere is "runnable" (running Python, waiting for the
# GIL, or in a C call the catalogue does not name: collect/leaf.py).
_WAITS = {
    ("threading", "wait"): "waiting on {owner}",
    ("threading", "join"): "joining a thread",
    ("threading", "_wait_for_tstate_lock"): "joining a thread",
    ("threading", "acquire"): "acquiring a {owner}",
    ("queue", "get"): "waiting on queue.Queue.get",
    ("queue", "put"): "waiting on queue.Queue.put",
    ("selectors", "select"): "IO wait (select)",
    ("socket", "accept"): "IO wait (accept)",
    ("socket", "readinto"): "IO wait (socket read)",
    ("subprocess", "_wait"): "waiting on a subprocess",
    ("subprocess", "_try_wait"): "waiting on a subprocess",
    ("base_events", "_run_once"): "asyncio event loop",
}


# A thread whose innermost frame is in none of those but calls a C function:
# waiting there (without the GIL, or for it), by the function's name.
_C_WAITS = {"time.sleep": "sleeping (time.sleep)", "select.select": "IO wait (select)",
            "select.poll.poll": "IO wait (poll)", "select.epoll.poll": "IO wait (epoll)"}


def _state(frame: FrameType | None, current: bool, callee: StackFrame | None = None) -> str:
    if current:
        return "running"
    if frame is None:
        return "idle"
    code = frame.f_code
    stem = os.path.splitext(os.path.basename(code.co_filename))[0]
    pattern = _WAITS.get((stem, code.co_name))
    if pattern is None and callee is not None:
        return _C_WAITS.get(callee.name, f"in {callee.name}")
    if pattern is None:
        return "runnable"
    owner = code.co_qualname.rsplit(".", 1)[0] if "." in code.co_qualname else stem
    return pattern.format(owner=f"{stem}.{owner}" if stem == "threading" else owner)


def _made_at(wait: locks.Wait) -> str:
    if wait.made_at is None:
        return ""
    file, line, qualname = wait.made_at
    return f" made at {file}:{line} ({qualname})"


def _thread_name(ident: int, by_ident: dict[int | None, threading.Thread]) -> str:
    thread = by_ident.get(ident)
    return f'thread {ident} "{thread.name}"' if thread is not None else f"thread {ident}"


def _waiting_state(wait: locks.Wait, by_ident: dict[int | None, threading.Thread]) -> str:
    if wait.condition:  # its waiter lock is made by the wait itself: the stack tells where
        return "waiting on a Condition"
    holder = f", held by {_thread_name(wait.holder, by_ident)}" if wait.holder else ""
    return f"waiting on lock{_made_at(wait)}{holder}"


def deadlocks(d: Dump) -> list[list[ThreadDump]]:
    """Cycles of threads each waiting on a lock the next one holds."""
    by_ident = {t.ident: t for t in d.threads}
    cycles: list[list[ThreadDump]] = []
    seen: set[int] = set()
    for start in d.threads:
        path: list[ThreadDump] = []
        t: ThreadDump | None = start
        while t is not None and t.ident not in seen and t not in path:
            path.append(t)
            holder = t.waiting_on.holder if t.waiting_on is not None else 0
            t = by_ident.get(holder)
        if t is not None and t in path:
            cycles.append(path[path.index(t):])
        seen.update(x.ident for x in path)
    return cycles


# --- asyncio tasks ----------------------------------------------------------------------


def _describe_awaitable(awaitable: Any) -> str:
    """What a coroutine waits on: a Future, another task, or the awaitable's
    type. asyncio's C future iterator hides its future from Python: the
    garbage collector's referents show it."""
    if type(awaitable).__name__ == "FutureIter":
        import gc
        awaitable = next((r for r in gc.get_referents(awaitable)
                          if hasattr(r, "add_done_callback")), awaitable)
    get_name = getattr(awaitable, "get_name", None)
    if callable(get_name) and hasattr(awaitable, "get_coro"):
        return f"task {get_name()}"
    return type(awaitable).__qualname__.lstrip("_")


def _awaited(coro: Any) -> Any:
    """What a suspended coroutine or generator awaits, or None. Not asked of
    one that runs (in another thread, which the dump caught inside it): 3.11
    and 3.12 find a running one's awaitable by reading the instruction after
    its current one, which may be a call's inline cache that reads as a
    RESUME, and then its value stack, whose top a running frame does not
    keep: a dump crashed so in a thread collecting garbage. Its frames are in
    its thread's stack."""
    if getattr(coro, "cr_running", False) or getattr(coro, "gi_running", False):
        return None
    return getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)


def _await_chain(coro: Any, modules: dict[str, str]) -> tuple[list[StackFrame], str]:
    """The frames of a coroutine and of what it awaits, innermost first, and
    what the innermost one waits on."""
    outer_first: list[StackFrame] = []
    awaiting = ""
    seen = 0
    while coro is not None and seen < 10_000:
        seen += 1
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
        if frame is not None:
            outer_first.append(_stack_frame(frame.f_code, frame_line(frame), modules))
        elif code is not None:
            outer_first.append(_stack_frame(code, code.co_firstlineno, modules))
        else:
            awaiting = _describe_awaitable(coro)
            break
        coro = _awaited(coro)
    return outer_first[::-1], awaiting


def _awaiter(future: Any, frames: Sequence[FrameType], modules: dict[str, str]) -> Awaiter:
    """An awaiting task, and where it awaits: its innermost frame outside
    asyncio (TaskGroup.__aexit__ or asyncio.wait's own frames tell less than
    the program's line that entered them; the awaiter's own dump has them)."""
    is_task = hasattr(future, "get_name") and hasattr(future, "get_coro")
    name = str(future.get_name()) if is_task else type(future).__qualname__.lstrip("_")
    asyncio_dir = _directory_of(sys.modules.get("asyncio"))
    frame = next((f for f in frames if not f.f_code.co_filename.startswith(asyncio_dir)),
                 frames[0] if frames else None)
    where = _stack_frame(frame.f_code, frame_line(frame), modules) if frame is not None else None
    return Awaiter(name, is_task, where)


def _coroutine_frames(future: Any) -> list[FrameType]:
    """The frames of a task's await chain, innermost first, found by hand."""
    coro = future.get_coro() if hasattr(future, "get_coro") else None
    outer_first: list[FrameType] = []
    while len(outer_first) < 10_000:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        outer_first.append(frame)
        coro = _awaited(coro)
    return outer_first[::-1]


def _task_chain(task: Any, modules: dict[str, str]) -> tuple[list[StackFrame], str, list[Awaiter]]:
    """A task's frames (innermost first), what its innermost coroutine waits
    on, and who awaits the task."""
    if sys.version_info >= (3, 14):
        chain = _call_graph_chain(task, modules)
        if chain is not None:
            return chain
    stack, awaiting = _await_chain(task.get_coro(), modules)
    return stack, awaiting, []


if sys.version_info >= (3, 14):
    def _call_graph_chain(task: Any, modules: dict[str, str]
                          ) -> tuple[list[StackFrame], str, list[Awaiter]] | None:
        """The task as asyncio's call graph has it: its coroutine frames, innermost
        first as cprof orders stacks (for the task running in this thread, every
        frame it runs, not only its outermost coroutine), and the tasks awaiting
        it, which only asyncio records (gather, TaskGroup, awaiting a task)."""
        from asyncio import graph  # loaded with asyncio, whose task this is

        try:
            g = graph.capture_call_graph(task)
        except TypeError:  # a third-party task that is no asyncio.Future
            return None
        except RecursionError:
            # Tasks awaiting one another in a cycle (a deadlock, which a dump is
            # for) send the graph's awaited_by round the cycle forever: walk by
            # hand, and name the direct awaiters from what asyncio records.
            stack, awaiting = _await_chain(task.get_coro(), modules)
            parents = getattr(task, "_asyncio_awaited_by", None) or ()
            awaiters = [_awaiter(p, _coroutine_frames(p), modules) for p in parents]
            return stack, awaiting, sorted(awaiters, key=lambda a: a.name)
        if g is None:
            return None
        frames = [entry.frame for entry in g.call_stack]
        if frames and frames[0] is sys._getframe():
            # The dumping thread runs this task: its walk starts in cprof, whose
            # frames are not the program's (as for the thread's own stack).
            while frames and frames[0].f_code.co_filename.startswith(PACKAGE_DIR):
                frames.pop(0)
        awaiters = sorted((_awaiter(p.future, [e.frame for e in p.call_stack], modules)
                           for p in g.awaited_by), key=lambda a: a.name)
        if not frames:  # a coroutine the graph cannot walk (not native) or done
            stack, awaiting = _await_chain(task.get_coro(), modules)
            return stack, awaiting, awaiters
        # The graph stops at the first awaitable that is no native coroutine (a
        # generator-based one such as asyncio.sleep(0)'s): the hand walk goes on
        # from there, and names what the innermost frame waits on.
        leaf = frames[0].f_generator
        below = _awaited(leaf) if leaf is not None else None
        inner, awaiting = _await_chain(below, modules) if below is not None else ([], "")
        stack = inner + [_stack_frame(f.f_code, frame_line(f), modules) for f in frames]
        return stack, awaiting, awaiters


def _task_thread(task: Any) -> int | None:
    loop = task.get_loop()
    thread_id = getattr(loop, "_thread_id", None)
    return thread_id if isinstance(thread_id, int) else None


# --- the dump ---------------------------------------------------------------------------


def dump() -> Dump:
    """Every thread's stack and state, and every asyncio task's await chain."""
    leaf.install()
    frames = sys._current_frames()
    modules = module_names()
    by_ident = {t.ident: t for t in threading.enumerate()}
    me = threading.get_ident()
    waits = locks.waits()
    library = library_dirs()
    out = Dump(time_ns=time.time_ns())
    for ident, frame in sorted(frames.items(), key=lambda kv: (kv[0] != me, kv[0])):
        thread = by_ident.get(ident)
        stack = _walk(frame, modules)
        if ident == me:  # cprof's own frames, taking the dump, are not the program's
            while stack and (stack[0].callee or stack[0].filename.startswith(PACKAGE_DIR)):
                stack.pop(0)
        stack = _without_cprof(stack, library)
        info = ThreadDump(ident, getattr(thread, "native_id", None),
                          thread.name if thread is not None else f"Thread-{ident}",
                          bool(thread.daemon) if thread is not None else False,
                          _state(frame, ident == me, stack[0] if stack and stack[0].callee
                                 else None), stack)
        wait = waits.get(ident)
        if wait is not None:
            info.waiting_on = wait
            info.state = _waiting_state(wait, by_ident)
        created = patches.created.get(thread) if thread is not None else None
        if thread is threading.main_thread():
            info.created_by = [_MAIN]
        elif created is not None:
            info.created_by = _without_cprof(
                [_stack_frame(code, line, modules) for code, line in created[0]], library)
            info.created_in = created[1]
        out.threads.append(info)
    for task in all_tasks():
        stack, awaiting, awaited_by = _task_chain(task, modules)
        state = "done" if task.done() else "pending"
        out.tasks.append(TaskDump(task.get_name(), state, stack, _task_thread(task), awaiting,
                                  awaited_by))
    return out


def _builder(kind: str) -> ProfileBuilder:
    return ProfileBuilder([(kind, "count")], period_type=(kind, "count"), period=1)


def _add(b: ProfileBuilder, stacks: Iterable[tuple[Sequence[StackFrame], dict[str, str]]]) -> None:
    """One sample per distinct (stack, labels), counting how many share it."""
    counts: dict[tuple[tuple[StackFrame, ...], tuple[tuple[str, str], ...]], int] = {}
    for stack, labels in stacks:
        key = (tuple(stack), tuple(sorted(labels.items())))
        counts[key] = counts.get(key, 0) + 1
    for (frames, pairs), n in sorted(counts.items(), key=lambda kv: -kv[1]):
        b.add([n], [f.as_frame() for f in frames], dict(pairs))


def goroutine_profile(d: Dump | None = None) -> Profile:
    """Go's goroutine profile: goroutine/count, one sample per distinct
    stack and state, threads and asyncio tasks alike (label kind)."""
    d = d or dump()
    b = _builder("goroutine")
    _add(b, [(t.stack or [_NO_FRAME], {"kind": "thread", "state": t.state}) for t in d.threads]
         + [(t.stack or [_NO_FRAME], {"kind": "task", "state": t.state}) for t in d.tasks])
    return b.build(time_ns=d.time_ns, comments=[
        f"cprof goroutine profile: {len(d.threads)} threads, {len(d.tasks)} asyncio tasks"])


def threadcreate_profile(d: Dump | None = None) -> Profile:
    """Go's threadcreate profile: the stacks that started the live threads
    (``<main thread>``, and ``<unknown>`` for threads started before cprof
    was imported)."""
    d = d or dump()
    b = _builder("threadcreate")
    _add(b, [(t.created_by or [_UNKNOWN], {}) for t in d.threads])
    return b.build(time_ns=d.time_ns)


_NO_FRAME = StackFrame("<no Python frame>", "", "", 0, 0)
_UNKNOWN = StackFrame("<unknown>", "", "", 0, 0)
_MAIN = StackFrame("<main thread>", "", "", 0, 0)


# --- text ----------------------------------------------------------------------------------


def _frame_lines(stack: Sequence[StackFrame]) -> list[str]:
    lines = []
    for f in stack:
        lines.append(f"{f.name}(...)")
        lines.append(f"\t{f.filename}:{f.line}")
    return lines


def full_text(d: Dump | None = None) -> str:
    """debug=2: every thread and task in full, in the spirit of Go's
    goroutine dump (``goroutine N [state]:``)."""
    d = d or dump()
    names = {t.ident: t.name for t in d.threads}
    blocks = []
    for cycle in deadlocks(d):
        lines = [f"deadlock between {len(cycle)} threads:"]
        lines += [f'  thread {t.ident} "{t.name}" is {t.state}' for t in cycle]
        blocks.append("\n".join(lines))
    for t in d.threads:
        flags = f"native {t.native_id}" if t.native_id is not None else "no native id"
        if t.daemon:
            flags += ", daemon"
        lines = [f'thread {t.ident} "{t.name}" ({flags}) [{t.state}]:']
        lines += _frame_lines(t.stack) or ["<no Python frame>"]
        if t.created_by is not None and t.created_by != [_MAIN]:
            top = t.created_by[0] if t.created_by else _UNKNOWN
            lines.append(f'created by {top.name} in thread {t.created_in} '
                         f'"{names.get(t.created_in or 0, "?")}"')
            lines.append(f"\t{top.filename}:{top.line}")
        blocks.append("\n".join(lines))
    for task in d.tasks:
        where = f" on thread {task.thread}" if task.thread is not None else ""
        awaiting = f", awaiting {task.awaiting}" if task.awaiting else ""
        lines = [f'task "{task.name}"{where} [{task.state}{awaiting}]:']
        lines += _frame_lines(task.stack) or ["<no coroutine frame>"]
        for a in task.awaited_by:  # as a thread's "created by": who, then where
            if a.frame is None:
                lines.append(f"awaited by {a.describe()}")
            else:
                lines.append(f"awaited by {a.frame.name} in {a.describe()}")
                lines.append(f"\t{a.frame.filename}:{a.frame.line}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
