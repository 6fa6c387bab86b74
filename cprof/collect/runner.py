"""runner: run a Python program in this process, as ``python`` would.

``cprof record`` and ``cprof serve`` take the program as python does
(``script.py args``, ``-m module args``, or ``python [options] script.py
args``, which re-executes that interpreter to run cprof itself) and run it
in this process: the program sees the ``sys.argv``, ``sys.path[0]`` and
``__main__`` it would see unprofiled, and its exit status is passed through.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
import threading
import time
import types

from . import patches
from .command import ProgramError, _words, exec_python, python_command

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Callable, NoReturn, Sequence

def _check_script(path: str) -> None:
    """Refuse a file that is not Python source, before the profile starts."""
    try:
        with open(path, "rb") as f:
            head = f.read(128)
    except OSError as e:
        raise ProgramError(f"can't open file {path!r}: {e.strerror}") from None
    first = head.split(b"\n", 1)[0]
    if head.startswith(b"\x7fELF") or (first.startswith(b"#!") and b"python" not in first):
        raise ProgramError(f"{path} is not a Python program: cprof record runs a Python script, "
                          f"-m module, or python with a script or module")


def _main_module(spec: Any, path: str) -> types.ModuleType:
    """A fresh ``__main__`` as the interpreter makes one for a script (spec
    None) or for ``-m`` (its spec), put in sys.modules."""
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__spec__ = spec
    main.__loader__ = spec.loader if spec is not None else None
    main.__package__ = spec.parent if spec is not None else None
    main.__dict__["__cached__"] = spec.cached if spec is not None else None
    sys.modules["__main__"] = main
    return main


def _module_code(name: str) -> tuple[Any, types.CodeType]:
    """Find ``-m name`` as ``python -m`` does: a package runs its ``__main__``."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as e:
        raise ProgramError(f"No module named {name} ({e})") from None
    if spec is None:
        raise ProgramError(f"No module named {name}")
    if spec.submodule_search_locations is not None:
        if name.endswith(".__main__"):
            raise ProgramError(f"cannot run package {name}")
        return _module_code(name + ".__main__")
    loader: Any = spec.loader
    code = loader.get_code(spec.name) if loader is not None else None
    if code is None:
        raise ProgramError(f"No code object available for {name}")
    return spec, code


def _exit_status(e: SystemExit) -> int:
    """What the interpreter would exit with for ``raise SystemExit(code)``."""
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code & 0xFF
    print(e.code, file=sys.stderr)
    return 1


def _run(code: types.CodeType, main: types.ModuleType) -> int:
    """Run the program's code as __main__, then wait for its threads; return
    its exit status. An uncaught exception is reported as the interpreter
    reports it."""
    try:
        exec(code, main.__dict__)
        status = 0
    except SystemExit as e:
        status = _exit_status(e)
    except BaseException as e:
        if e.__traceback__ is not None:  # leave out this frame
            e.__traceback__ = e.__traceback__.tb_next
        sys.excepthook(type(e), e, e.__traceback__)
        status = 130 if isinstance(e, KeyboardInterrupt) else 1
    try:
        _join_threads()
    except KeyboardInterrupt:
        status = 130
    return status


def _join_threads() -> None:
    """Wait for the program's non-daemon threads, as the interpreter does
    before it exits, so that their work is in the profile."""
    for t in threading.enumerate():
        if t is not threading.current_thread() and not t.daemon:
            t.join()


# The command line of the program cprof runs, as python would have been run
# for it (what /debug/pprof/cmdline answers); None when cprof runs nothing.
command_line: list[str] | None = None


class Program:
    """The program a command line names: a script or ``-m`` module and its
    arguments. ``load()`` compiles it and makes this process look as python
    would for it; ``run()`` runs it and returns its exit status."""

    def __init__(self, name: str, argv: list[str], module: bool) -> None:
        self.name = name
        self.argv = argv
        self.module = module
        self._code: types.CodeType | None = None
        self._main: types.ModuleType | None = None

    def load(self) -> None:
        global command_line
        if self.module:
            # python -m puts the current directory first on sys.path before
            # it looks the module up (unless -P): so must this.
            if not sys.flags.safe_path:
                sys.path[0] = os.getcwd()
            spec, code = _module_code(self.name)
            path = spec.origin
            path0 = os.getcwd()
        else:
            _check_script(self.name)
            spec, path = None, os.path.abspath(self.name)
            with open(self.name, "rb") as f:
                # dont_inherit: not this module's __future__ imports (annotations).
                code = compile(f.read(), path, "exec", dont_inherit=True)
            path0 = os.path.dirname(os.path.realpath(self.name))
        sys.argv[:] = [path if spec is not None else self.name, *self.argv]
        if not sys.flags.safe_path:
            sys.path[0] = path0
        self._code = code
        self._main = _main_module(spec, path)
        command_line = [sys.executable, *(["-m", self.name] if self.module else [self.name]),
                        *self.argv]

    def run(self) -> int:
        if self._code is None or self._main is None:
            self.load()
        assert self._code is not None and self._main is not None
        return _run(self._code, self._main)


def program(command: Sequence[str], module: list[str] | None, cprof_args: list[str]) -> Program:
    """The program of ``cprof COMMAND [options] (-- python ... | script.py
    args | -m module args)``: ``command`` is what follows the options (or
    ``module``, the words after -m). A python command re-executes that
    interpreter with ``cprof_args`` (the subcommand and its options), and
    does not return."""
    argv = python_command(command, module, cprof_args)
    if argv is not None:
        exec_python(argv)
    words, module = _words(command, module)
    if module is not None:
        return Program(module[0], module[1:], True)
    return Program(words[0], words[1:], False)


# --- the end of a recorded program: signals, abrupt exits ---------------------------

# What `kill`, `timeout`, `docker stop` and a closed terminal send: by default
# each ends the process at once, and a profile in memory would be lost.
TERMINATION_SIGNALS = patches.TERMINATION_SIGNALS


def say_now(text: str) -> None:
    """Write a line to stderr from a signal handler: straight to the file
    descriptor, as sys.stderr's buffer may be in the middle of a write the
    signal interrupted (a reentrant write raises RuntimeError)."""
    data = (text + "\n").encode("utf-8", "replace")
    try:
        while data:
            data = data[os.write(2, data):]
    except OSError:
        pass


def die_of(signum: int) -> NoReturn:
    """End this process by ``signum`` with its default action, so that the
    parent sees it killed by that signal (WIFSIGNALED), as it would have
    been without cprof. The program's buffered output is not flushed, as
    the default action would not flush it (a flush could block on a full
    pipe: a signal meant to end the process must not hang it)."""
    signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})
    signal.raise_signal(signum)
    os._exit(128 + signum)  # not reached: the default action of each ends the process


class TerminationHandlers:
    """While installed, SIGTERM, SIGHUP and SIGQUIT call ``on_signal(signum)``
    (in the main thread, between two bytecodes, as Python runs handlers),
    which is to save what it can and then ``die_of(signum)``.

    Only a signal whose disposition is the default is taken: an ignored one
    (nohup's SIGHUP) stays ignored. A program that installs its own handler
    replaces this one and keeps its behaviour; one that restores SIG_DFL
    chooses to die without a profile. A forked child of the program has the
    default action back, and dies of the signal at once, as it would have:
    the profile is its parent's."""

    def __init__(self, on_signal: Callable[[int], None]) -> None:
        self._on_signal = on_signal
        self._pid = os.getpid()
        self._taken: list[int] = []

    def _handle(self, signum: int, frame: object) -> None:
        if os.getpid() != self._pid:
            die_of(signum)
        self._on_signal(signum)

    def install(self) -> None:
        """Take each signal whose disposition is the default, or the handler
        of another TerminationHandlers that this process inherited from the
        one it was forked from (which would only die of the signal)."""
        # A forked child gets the signals once its handlers are in place,
        # and the default action of those taken here (_default_in_child).
        patches.at_fork(after_in_child=_default_in_child)
        for signum in TERMINATION_SIGNALS:
            current = signal.getsignal(signum)
            owner = getattr(current, "__self__", None)
            if current == signal.SIG_DFL or (isinstance(owner, TerminationHandlers)
                                             and owner._pid != os.getpid()):
                signal.signal(signum, self._handle)
                self._taken.append(signum)
        if self._taken and self not in _installed:
            _installed.append(self)

    def taken(self) -> list[int]:
        """The signals that call this one's ``on_signal`` now."""
        return [signum for signum in self._taken if self.handles(signum)]

    def handles(self, signum: int) -> bool:
        """Whether ``signum`` calls this one's ``on_signal`` now."""
        return bool(signal.getsignal(signum) == self._handle)

    def remove(self) -> None:
        """Give back the default action, where the program left ours."""
        for signum in self._taken:
            if signal.getsignal(signum) == self._handle:
                signal.signal(signum, signal.SIG_DFL)
        self._taken.clear()
        if self in _installed:
            _installed.remove(self)


_installed: list[TerminationHandlers] = []  # those with signals taken, in this process


def _default_in_child() -> None:
    """In a forked child, before its termination signals are let through
    (patches holds them across the fork): each signal a handler of the
    parent's took gets its default action back, so that the kernel ends the
    child at once, as it would have without cprof. The inherited Python
    handler would end it too, but only when the main thread next runs
    Python: a signal that came just before the child blocked (between
    Python's last look at its signals and the system call) left it waiting
    for ever, 1 child in 300 under ASan. A followed child then takes the
    signals for its own profile (follow.py)."""
    for handlers in list(_installed):
        if handlers._pid != os.getpid():
            handlers.remove()


# The watcher: a shell outside this process (orphaned at once, so never a
# child the program could wait for) that reads the pipe and, if it closes
# without "done" (os._exit, SIGSEGV, SIGKILL), says MESSAGE on stderr. It
# ignores the terminal's and kill's signals: only this process's end ends it.
_WATCHER = ('trap "" HUP INT QUIT TERM PIPE; exec 3<&0; '
            '( IFS= read -r line; [ "$line" = done ] || printf "%s\\n" "$1" >&2 ) <&3 & ')


def _wait_briefly(pid: int, timeout: float = 10.0) -> None:
    """Wait for child ``pid`` to end; OSError if it takes over ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            raise OSError(f"/bin/sh (pid {pid}) did not return within {timeout:g} s")
        time.sleep(0.0005)


class EndWatch:
    """Says ``message`` on stderr if this process ends before :meth:`done`,
    however it ends: no code of this process runs after ``os._exit`` or a
    crash, so the word comes from another process, which learns of the end
    when this process's end of a pipe closes. Forked children close their
    copy, so a child's exit says nothing. Nothing is watched where no
    /bin/sh can be started."""

    def __init__(self, message: str) -> None:
        self._fd: int | None = None
        read, write = os.pipe()  # not inherited across exec
        try:
            # posix_spawn, not subprocess (~3 ms of every cprof record's
            # start-up to import). The shell gets the pipe as its stdin; every
            # other descriptor of this process is non-inheritable (PEP 446) or
            # a standard stream.
            shell = os.posix_spawn("/bin/sh", ["/bin/sh", "-c", _WATCHER, "sh", message],
                                   os.environ, file_actions=[
                                       (os.POSIX_SPAWN_DUP2, read, 0),
                                       (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)])
            _wait_briefly(shell)  # it returns once the watcher is in the background
        except OSError:
            os.close(write)
        else:
            self._fd = write
            _watches.append(self)
            patches.at_fork(after_in_child=_forget_watches_in_child)
        finally:
            os.close(read)

    def done(self) -> None:
        """The profile is written (or no profile is due): say nothing."""
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.write(fd, b"done\n")
            except OSError:
                pass
            os.close(fd)

    def forget(self) -> None:
        """In a forked child: close this copy of the pipe, saying nothing."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


_watches: list[EndWatch] = []


def _forget_watches_in_child() -> None:
    for watch in _watches:
        watch.forget()
    _watches.clear()

