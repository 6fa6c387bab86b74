"""command: the program a cprof command line names, read without running it.

``cprof record`` and ``cprof serve`` take the program as python does
(``script.py args``, ``-m module args``, or ``python [options] script.py
args``). This module reads those words, and re-executes the interpreter a
``python ...`` command names; it imports nothing but os and sys, so that
``cprof record -- python ...`` replaces its process before loading what only
the re-executed cprof uses (runner.py, the collectors: ~7 ms).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import NoReturn, Sequence

# Interpreter options that take the next argument as their value.
_PYTHON_OPTIONS_WITH_VALUE = ("-X", "-W", "--check-hash-based-pycs")


class ProgramError(Exception):
    """A mistake in the command that names the program, said before it runs."""


def _is_python_name(name: str) -> bool:
    """An interpreter's name: python or pypy, then a version (3, 3.12, 3.13t)
    or none, then -dbg or not: python3, python3.12, pypy3, python3-dbg.
    Written out: importing re would cost every cprof record ~4 ms."""
    for stem in ("python", "pypy"):
        if name.startswith(stem):
            version = name[len(stem):].removesuffix("-dbg")
            if not version:
                return True
            major, dot, minor = version.removesuffix("t").partition(".")
            return major.isdecimal() and (not dot or minor.isdecimal())
    return False


def which(command: str) -> str | None:
    """The executable file ``command`` names, searched in $PATH unless it has
    a directory part, as shutil.which finds it on POSIX (importing shutil
    would cost every cprof record ~4 ms: it loads re, bz2 and lzma)."""
    if os.path.dirname(command):
        candidates = [command]
    else:
        dirs = os.environ.get("PATH")
        if dirs is None:  # unset: the system's default (an empty PATH finds nothing)
            try:
                dirs = os.confstr("CS_PATH") or ""
            except (AttributeError, ValueError):
                dirs = os.defpath
        candidates = [os.path.join(d, command)
                      for d in dict.fromkeys(dirs.split(os.pathsep)) if dirs]
    for name in candidates:
        if os.path.exists(name) and os.access(name, os.X_OK) and not os.path.isdir(name):
            return name
    return None


def _is_python(path: str) -> bool:
    if _is_python_name(os.path.basename(path)):
        return True
    found = which(path)
    return found is not None and os.path.realpath(found) == os.path.realpath(sys.executable)


# The re-executed interpreter's program: import cprof as installed, not from the
# current directory (a checkout of cprof, say), then give sys.path[0] back to
# Program.load(), which sets it to what the profiled program expects there.
_REEXEC = ("import sys; slot = [] if sys.flags.safe_path else [sys.path.pop(0)]; "
           "from cprof.cli import main; sys.path[:0] = slot; sys.exit(main(sys.argv[1:]))")


def _reexec_argv(command: list[str], cprof_args: list[str]) -> list[str]:
    """``python [options] script.py args`` (or ``-m module args``) as
    ``python [options] -c <cprof's main> CPROF-ARGS ...`` (``record -o out``,
    say)."""
    interpreter = which(command[0])
    if interpreter is None:
        raise ProgramError(f"{command[0]}: no such interpreter")
    end, target = _target(command)
    return [interpreter, *command[1:end], "-c", _REEXEC, *cprof_args, *target]


def _target(command: list[str]) -> tuple[int, list[str]]:
    """Where the interpreter's options end in ``python [options] script.py
    args`` or ``python [options] -m module args``, and what follows them (a
    script as ``["--", "script.py", ...]``)."""
    i = 1
    while i < len(command) and command[i].startswith("-") and command[i] not in ("-", "-m"):
        if command[i] == "-c" or (not command[i].startswith("--") and "c" in command[i][1:]
                                   and command[i][1] not in "XW"):
            raise ProgramError("python -c is not supported: put the code in a file, or use "
                              "-m module")
        i += 2 if command[i] in _PYTHON_OPTIONS_WITH_VALUE else 1
    target = command[i:]
    if not target or target[0] == "-":
        raise ProgramError(f"{' '.join(command)}: give a script or -m module to run")
    return i, target if target[0] == "-m" else ["--", *target]


def _words(command: Sequence[str], module: list[str] | None) -> tuple[list[str], list[str] | None]:
    words = list(command)
    if words and words[0] == "--":
        words = words[1:]
    if module is None and words and words[0] == "-m":
        module, words = words[1:], []
    if module is not None and not module:
        raise ProgramError("-m needs a module name")
    return words, module


def program_name(command: Sequence[str], module: list[str] | None, verb: str) -> str:
    """The script or module a command line names (for default file names),
    without running or re-executing anything."""
    words, module = _words(command, module)
    if module is not None:
        return module[0]
    if not words:
        raise _no_program(verb)
    if _is_python(words[0]):
        return _target(words)[1][1]
    return words[0]


def _no_program(verb: str) -> ProgramError:
    return ProgramError(f"give the program to {verb}: cprof {verb} [options] -- python "
                        f"script.py args, script.py args, or -m module args")


def python_command(command: Sequence[str], module: list[str] | None,
                   cprof_args: list[str]) -> list[str] | None:
    """When the words name a python interpreter (``python [options] script.py
    args``), that interpreter's command line to run cprof with ``cprof_args``
    (the subcommand and its options) on the same program; else None."""
    words, module = _words(command, module)
    if module is not None:
        return None
    if not words:
        raise _no_program(cprof_args[0])
    return _reexec_argv(words, cprof_args) if _is_python(words[0]) else None


def exec_python(argv: list[str]) -> NoReturn:
    """Replace this process with ``argv`` (python_command's)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)
