"""_core.echo_signals: a signal's number written to a pipe as it comes
(csrc/collect/echo.h), in front of Python's own handler, which still runs.
Real signals, taken by another thread than the main one, as a followed
child's termination signals may be."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import pytest

from cprof import _core


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read, write = os.pipe()
    os.set_blocking(read, False)
    os.set_blocking(write, False)
    yield read, write
    _core.echo_signals(-1, ())
    os.close(read)
    os.close(write)


@pytest.fixture
def usr1() -> Iterator[list[int]]:
    """SIGUSR1 with a Python handler that notes each signal it is called for."""
    seen: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: seen.append(signum))
    yield seen
    signal.signal(signal.SIGUSR1, previous)


def from_another_thread(signum: int) -> None:
    t = threading.Thread(target=lambda: signal.pthread_kill(threading.get_ident(), signum))
    t.start()
    t.join()


def test_the_number_comes_to_the_pipe_and_pythons_handler_still_runs(
        pipe: tuple[int, int], usr1: list[int]) -> None:
    assert _core.echo_signals(pipe[1], [signal.SIGUSR1]) == [signal.SIGUSR1]
    from_another_thread(signal.SIGUSR1)
    assert os.read(pipe[0], 16) == bytes([signal.SIGUSR1])
    for _ in range(100):  # the handler runs at the main thread's next look
        if usr1:
            break
        threading.Event().wait(0.01)
    assert usr1 == [signal.SIGUSR1]


def test_a_second_call_changes_the_pipe_only(pipe: tuple[int, int], usr1: list[int]) -> None:
    assert _core.echo_signals(pipe[1], [signal.SIGUSR1]) == [signal.SIGUSR1]
    assert _core.echo_signals(pipe[1], [signal.SIGUSR1]) == [signal.SIGUSR1]
    from_another_thread(signal.SIGUSR1)
    assert os.read(pipe[0], 16) == bytes([signal.SIGUSR1])  # once, not twice
    assert _core.echo_signals(-1, ()) == []
    from_another_thread(signal.SIGUSR1)
    with pytest.raises(BlockingIOError):
        os.read(pipe[0], 16)


def test_a_signal_without_a_python_handler_is_not_taken(pipe: tuple[int, int]) -> None:
    assert signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL
    assert _core.echo_signals(pipe[1], [signal.SIGUSR2]) == []
    assert signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL


def test_the_program_setting_a_handler_again_takes_the_signal_back(
        pipe: tuple[int, int], usr1: list[int]) -> None:
    assert _core.echo_signals(pipe[1], [signal.SIGUSR1]) == [signal.SIGUSR1]
    signal.signal(signal.SIGUSR1, signal.getsignal(signal.SIGUSR1))
    from_another_thread(signal.SIGUSR1)
    with pytest.raises(BlockingIOError):
        os.read(pipe[0], 16)


@pytest.mark.parametrize("fd, signals, error", [
    (-2, [], "fd must be -1 or a file descriptor, not -2"),
    (-1, [0], "0 is not a signal number"),
    (-1, [signal.NSIG], f"{signal.NSIG} is not a signal number"),
    (-1, ["15"], "'15' is not a signal number"),
    (-1, 15, "signals must be a sequence"),
])
def test_bad_arguments_are_clear_errors(fd: int, signals: object, error: str) -> None:
    with pytest.raises((ValueError, TypeError), match=error):
        _core.echo_signals(fd, signals)  # type: ignore[arg-type]
