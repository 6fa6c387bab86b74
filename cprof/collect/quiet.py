"""quiet: cprof's own threads take no signal meant for the program.

A signal sent to the process goes to any thread that does not block it.
Python runs its handler in the main thread only, and only once that thread
looks: a signal taken by another thread interrupts none of the main thread's
waits, so a program blocked in ``lock.acquire()`` until SIGTERM's handler
runs would wait for ever. cprof's threads (the live server, the live sample
count, attach's, the followed child's flusher) are therefore born with the
program's signals blocked, as the sampler's C thread is.
"""

from __future__ import annotations

import signal
import threading

# Kept open: the signals a fault in the thread itself raises (blocked, they
# would end the process without a word or faulthandler's report), and
# SIGPROF, which samples the thread as any other.
KEPT = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGTRAP,
                  signal.SIGABRT, signal.SIGSYS, signal.SIGPROF})


def start(thread: threading.Thread) -> None:
    """``thread.start()``, the thread born with every signal but KEPT blocked."""
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals() - KEPT)
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
