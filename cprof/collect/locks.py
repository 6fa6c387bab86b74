"""locks: Go's mutex and block profiles for Python's threading locks.

``set_mutex_profile_fraction(n)`` and ``set_block_profile_rate(ns)`` turn
recording on (Go's semantics); while either is on, threading.Lock, RLock and
Condition's waiter locks are cprof's recording locks (csrc/collect/locks.c; their types csrc/module/locks.c), so
everything built on them records too: Condition, Semaphore, BoundedSemaphore,
Event, Barrier, queue.Queue, concurrent.futures. Locks created before stay
what they were; locks created while recording keep working after it stops.
While the block profile is on, waits on asyncio's Lock, Event, Condition,
Semaphore and Queue are recorded too, at the waiting coroutine's stack.
The replacements are patches.recording_locks and patches.asyncio_waits.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import NamedTuple  # Wait is one

from .. import _core
from ..pprof.model import Sample, ValueType
from ..pprof.profile import Profile
from ..pprof.textformat import frame_lines, tabwrite
from . import leaf, patches
from .symbols import resolve

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

SAMPLE_TYPES = [ValueType("contentions", "count"), ValueType("delay", "nanoseconds")]

_settings = {"mutex": 0, "block": 0}
_started_ns = time.time_ns()
_lock = threading.Lock()  # created before any patching: always the original type


# A lock is said to be made where the program asked for it, not in these.
_LIBRARY_FILES = frozenset({threading.Condition.__init__.__code__.co_filename,
                            queue.Queue.__init__.__code__.co_filename})


def _apply(mutex: int, block: int) -> None:
    """Configure the C side first: only if that succeeds are the new rates
    stored (a failure leaves the previous ones, whole); then the patches
    follow what is on."""
    _core.locks_configure(mutex, block)
    if mutex > 0 or block > 0:
        leaf.install()  # the C function a thread blocks in, named
    was_on, was_blocking = _settings["mutex"] > 0 or _settings["block"] > 0, _settings["block"] > 0
    _settings["mutex"], _settings["block"] = mutex, block
    _core.locks_library_files(_LIBRARY_FILES)
    _switch((patches.recording_locks, patches.thread_creators), was_on, mutex > 0 or block > 0)
    _switch((patches.asyncio_waits,), was_blocking, block > 0)


def _switch(used: tuple[patches.Patch, ...], was: bool, now: bool) -> None:
    for patch in used:
        if now and not was:
            patch.use()
        elif was and not now:
            patch.release()


# The rates are C int64 values: Go's are int too.
MAX_RATE = 2**63 - 1


def _checked_rate(rate: object, what: str) -> int:
    """``rate`` if it is an int the C side can hold, else TypeError or ValueError."""
    if isinstance(rate, bool) or not isinstance(rate, int):
        raise TypeError(f"rate must be an int{what}, not {type(rate).__name__}")
    if rate > MAX_RATE:
        raise ValueError(f"rate must be at most 2**63-1, not {rate}")
    return rate


def set_mutex_profile_fraction(rate: int) -> int:
    """Record, on average, 1 in ``rate`` contended releases of a lock, at the
    releasing holder's stack, with the delay the waiters suffered (Go's
    SetMutexProfileFraction). 0 turns it off; a negative rate only reads the
    current one. Returns the previous rate. A rate above 2**63-1 raises
    ValueError and changes nothing."""
    rate = _checked_rate(rate, "")
    with _lock:
        previous = _settings["mutex"]
        if rate >= 0:
            _apply(rate, _settings["block"])
        return previous


def set_block_profile_rate(rate: int) -> int:
    """Record waits on locks at the waiter's stack: every wait of at least
    ``rate`` nanoseconds, a shorter one with probability duration/rate (and
    counted rate/duration times), as Go's SetBlockProfileRate. 1 records every
    wait; 0 or less turns it off. Returns the previous rate. A rate above
    2**63-1 raises ValueError and changes nothing. asyncio's waits are timed
    too, from when the program imports asyncio (cprof does not import it)."""
    rate = _checked_rate(rate, " number of nanoseconds")
    with _lock:
        previous = _settings["block"]
        _apply(_settings["mutex"], max(rate, 0))
        return previous


def _rows(kind: str) -> tuple[dict[str, Any], list[tuple[int, float, float]]]:
    tables = _core.locks_snapshot()
    return tables, tables[kind]


def profile(kind: str) -> Profile:
    """The mutex or block profile so far: contentions/count and
    delay/nanoseconds per stack (default delay, as pprof picks the last)."""
    tables, rows = _rows(kind)
    resolved = resolve(tables)
    samples = [Sample([round(count), round(delay)], resolved.stacks[stack])
               for stack, count, delay in rows if round(count) > 0]
    what = ("contended releases, 1 in "
            f"{_settings['mutex']} recorded" if kind == "mutex"
            else f"waits, rate {_settings['block']} ns")
    return Profile(SAMPLE_TYPES, samples, period_type=ValueType("contentions", "count"),
                   period=1, time_ns=_started_ns, comments=[f"cprof {kind} profile: {what}"],
                   mappings=resolved.mappings, locations=resolved.locations,
                   functions=resolved.functions)


def text(kind: str) -> str:
    """Go's debug=1 text: ``--- mutex:`` (with the sampling period; counts as
    sampled) or ``--- contention:`` (block), cycles in nanoseconds."""
    p = profile(kind)
    period = max(_settings["mutex"], 1) if kind == "mutex" else 1
    lines = [f"--- {'mutex' if kind == 'mutex' else 'contention'}:", "cycles/second=1000000000"]
    if kind == "mutex":
        lines.append(f"sampling period={period}")
    for s in sorted(p.samples, key=lambda s: -s.values[1]):
        addresses = "".join(f" {loc.id:#x}" for loc in s.locations)
        lines.append(f"{s.values[1] // period} {s.values[0] // period} @{addresses}")
        lines.extend(frame_lines(s.locations))
        lines.append("")
    return tabwrite(lines)


def reset() -> None:
    """Forget what was recorded so far."""
    _core.locks_clear()
    _core.locks_configure(_settings["mutex"], _settings["block"])


class Wait(NamedTuple):
    """A thread waiting on a recording lock, as a thread dump tells it."""

    lock: object
    holder: int            # thread ident, 0 when none (or a Condition's waiter)
    made_at: tuple[str, int, str] | None   # file, line, code qualname
    condition: bool        # a Condition's wait (Event, Queue, ...), not a mutex


def waits() -> dict[int, Wait]:
    """Threads (by ident) now waiting on recording locks, and on what."""
    out = {}
    for thread, lock in _core.locks_waiting():
        holder, made_at, condition = lock._cprof_info()
        out[thread] = Wait(lock, 0 if condition else holder, made_at, condition)
    return out
