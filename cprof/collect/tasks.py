"""tasks: the live asyncio tasks of the process, read without importing asyncio.

Split from threads.py (the thread and task dumps), which the CPU collector
does not otherwise need: the collector names the tasks its samples ran in
through all_tasks(), from its drain, and importing the dumps there (or at
start-up: ~4 ms) is what this module avoids.
"""

from __future__ import annotations

import os
import sys
from types import FrameType

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any


def all_tasks() -> list[Any]:
    """Every live asyncio task of every thread's loop (none when asyncio was
    never imported: importing it here would cost the program for nothing)."""
    tasks_module = sys.modules.get("asyncio.tasks")
    if tasks_module is None:
        return []
    found: list[Any] = []
    for name in ("_scheduled_tasks", "_eager_tasks", "_all_tasks"):  # 3.12+ / 3.11
        registry = getattr(tasks_module, name, None)
        if registry is not None:
            found.extend(list(registry))
    if sys.version_info >= (3, 14):
        # 3.14 keeps asyncio.Task and its subclasses in per-thread lists, out of
        # the WeakSets above (which keep only third-party tasks), and reads them
        # only through all_tasks(loop), one loop at a time.
        seen = {id(t) for t in found}
        for loop in event_loops():
            for task in tasks_module.all_tasks(loop):
                if id(task) not in seen:
                    seen.add(id(task))
                    found.append(task)
    return found


def directory_of(module: Any) -> str:
    """The directory of a module, as a prefix of its package's file names (a
    module without a file has none: no file name starts with NUL)."""
    file = getattr(module, "__file__", None)
    return os.path.dirname(os.path.abspath(file)) + os.sep if isinstance(file, str) else "\0"


def event_loops() -> list[Any]:
    """The event loops running in the process's threads, as their stacks show
    them: no registry lists loops. A loop that runs in no thread is not found,
    nor are its tasks (none of them can be making progress)."""
    events = sys.modules.get("asyncio.events")
    if events is None:
        return []
    runners = sys.modules.get("asyncio.runners")
    loop_type, runner_type = events.AbstractEventLoop, getattr(runners, "Runner", None)
    loops: dict[int, Any] = {}
    running = events._get_running_loop()
    if running is not None:  # the dumping thread's: a loop in C (uvloop) leaves no frame
        loops[id(running)] = running
    asyncio_dir = directory_of(events)
    for top in sys._current_frames().values():
        frame: FrameType | None = top
        while frame is not None:
            # BaseEventLoop.run_forever has the loop as self; asyncio.Runner.run
            # (asyncio.run, also with a loop_factory such as uvloop's) as self._loop.
            if frame.f_code.co_filename.startswith(asyncio_dir):
                owner = frame.f_locals.get("self")
                if runner_type is not None and isinstance(owner, runner_type):
                    owner = getattr(owner, "_loop", None)
                if isinstance(owner, loop_type):
                    loops[id(owner)] = owner
            frame = frame.f_back
    return list(loops.values())
