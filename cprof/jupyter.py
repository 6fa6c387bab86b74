"""jupyter: the ``%cprof`` / ``%%cprof`` magics.

A profile's rich display in a notebook is cprof.export.notebook's.
:func:`load_ipython_extension` (``%load_ext cprof``) adds the magics, which profile a statement or a cell in
the user's namespace, as ``%time`` / ``%%time`` time one. IPython is imported
only there: cprof does not depend on it.
"""

from __future__ import annotations

import ast
import os
import re
import threading
from dataclasses import dataclass

from .collect.cpu import MODES, cpu
from .export.notebook import mimebundle
from .pprof.model import Location, Sample
from .pprof.ops import with_samples

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

    from .pprof.profile import Profile

# --- magics ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MagicOptions:
    """The options of ``%cprof`` / ``%%cprof``."""

    hz: float = 100
    mode: str = "cpu"
    var: str | None = None


USAGE = ("%cprof [--hz N] [--mode cpu|wall] [-o VAR] statement, or "
         "%%cprof [--hz N] [--mode cpu|wall] [-o VAR] on a cell's first line")

_TOKEN = re.compile(r"\s*(\S+)")


def parse_options(line: str) -> tuple[MagicOptions, str]:
    """The options at the start of a magic's line and the rest of it (the
    statement of ``%cprof``). Options end at the first word that is not one,
    or after ``--``. A bad option raises ValueError with the usage."""
    hz, mode, var = 100.0, "cpu", None
    pos = 0

    def value(option: str, inline: str | None) -> str:
        nonlocal pos
        if inline is not None:
            return inline
        m = _TOKEN.match(line, pos)
        if m is None:
            raise ValueError(f"{option} needs a value; usage: {USAGE}")
        pos = m.end()
        return m.group(1)

    while (m := _TOKEN.match(line, pos)) is not None:
        word = m.group(1)
        if not word.startswith("-") or word == "-":
            break
        pos = m.end()
        if word == "--":
            break
        option, eq, inline = word.partition("=")
        given = inline if eq else None
        if option == "--hz":
            text = value(option, given)
            try:
                hz = float(text)
            except ValueError:
                hz = 0.0
            if not hz > 0:
                raise ValueError(f"--hz must be a positive number, not {text!r}")
        elif option == "--mode":
            mode = value(option, given)
            if mode not in MODES:
                raise ValueError(f"--mode must be cpu or wall, not {mode!r}")
        elif option == "-o" or (option.startswith("-o") and not option.startswith("--")):
            var = value("-o", given) if option == "-o" else word[2:]
            if not var.isidentifier():
                raise ValueError(f"-o needs a variable name, not {var!r}")
        else:
            raise ValueError(f"unknown option {word!r}; usage: {USAGE}")
    return MagicOptions(hz, mode, var), line[pos:].strip()


def load_ipython_extension(ipython: Any) -> None:
    """Register the ``%cprof`` line magic and the ``%%cprof`` cell magic
    (``%load_ext cprof``):

    ``%cprof [--hz N] [--mode cpu|wall] [-o VAR] statement`` and
    ``%%cprof [--hz N] [--mode cpu|wall] [-o VAR]`` run the statement or the
    cell in the user's namespace (so what the cell defines stays defined)
    under a CPU (or wall) profile at N Hz (100), show the profile, store it
    in VAR when asked, and return the value of the last expression, as
    ``%%time`` does. An exception raised by the code propagates once the
    profile is shown and stored. The profile holds the code's own frames
    (IPython's, above them, are cut off) and the threads it started; the
    threads that were running before, such as the kernel's, are left out."""
    from IPython.core.error import UsageError  # type: ignore[import-not-found, unused-ignore]

    def options(line: str) -> tuple[MagicOptions, str]:
        try:
            return parse_options(line)
        except ValueError as e:
            raise UsageError(str(e)) from None

    def line_magic(line: str, local_ns: dict[str, Any] | None = None) -> Any:
        __tracebackhide__ = True  # IPython leaves the magic's frames out of tracebacks
        opts, statement = options(line)
        if not statement:
            raise UsageError(f"%cprof needs a statement; usage: {USAGE}")
        return run(ipython, opts, statement, local_ns)

    def cell_magic(line: str, cell: str, local_ns: dict[str, Any] | None = None) -> Any:
        __tracebackhide__ = True
        opts, rest = options(line)
        if rest:
            raise UsageError(f"%%cprof takes no statement on its line (found {rest!r}); "
                             f"usage: {USAGE}")
        return run(ipython, opts, cell, local_ns)

    line_magic.needs_local_scope = True  # type: ignore[attr-defined]
    cell_magic.needs_local_scope = True  # type: ignore[attr-defined]
    ipython.register_magic_function(line_magic, "line", "cprof")
    ipython.register_magic_function(cell_magic, "cell", "cprof")


def run(shell: Any, opts: MagicOptions, source: str,
        local_ns: dict[str, Any] | None = None) -> Any:
    """Run ``source`` (IPython syntax) in ``shell``'s user namespace under a
    CPU profile; display the profile, store it in ``opts.var``, and return
    the value of the last expression (None when the code ends otherwise)."""
    __tracebackhide__ = True
    from IPython.display import display  # type: ignore[import-not-found, unused-ignore]
    show: Any = display  # untyped in IPython

    code = shell.transform_cell(source)
    tree = shell.transform_ast(shell.compile.ast_parse(code))
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    filename = shell.compile.cache(code, shell.execution_count, raw_code=source)
    body = shell.compile(tree, filename, "exec")
    value = shell.compile(last, filename, "eval") if last is not None else None
    user_ns = shell.user_ns
    namespace = local_ns if local_ns is not None else user_ns
    before = _running_threads() - {threading.get_native_id()}
    session = cpu(hz=opts.hz, mode=opts.mode)
    result = None
    try:
        with session:
            result = _execute(body, value, user_ns, namespace)
    finally:
        if session.profile is not None:
            profile = code_only(session.profile, before)
            if opts.var:
                user_ns[opts.var] = profile
            show(mimebundle(profile), raw=True)
    return result


def _execute(body: Any, value: Any, globals_: dict[str, Any], locals_: dict[str, Any]) -> Any:
    """Run the code: the frame that :func:`code_only` cuts the stacks at."""
    __tracebackhide__ = True
    exec(body, globals_, locals_)
    return eval(value, globals_, locals_) if value is not None else None


# Profiles keep this frame of cprof's (symbols.KEPT_FRAMES): code_only cuts there.
_EXECUTE = (os.path.abspath(_execute.__code__.co_filename), _execute.__code__.co_name)


def _running_threads() -> set[int | None]:
    """The native ids of the process's threads: threading's, and on Linux
    every other one too (C libraries', threads started with _thread), whose
    samples carry the OS's name for them."""
    ids: set[int | None] = {t.native_id for t in threading.enumerate()}
    try:
        ids.update(int(tid) for tid in os.listdir("/proc/self/task"))
    except OSError:
        pass  # not Linux: threading's alone
    return ids


def code_only(profile: Profile, before: set[int | None]) -> Profile:
    """``profile`` without what the magic did not run. On the magic's
    thread, stacks that pass through :func:`_execute` keep only the frames
    below it and the others (the magic's own work) are dropped. Of the other
    threads, only those started while the code ran are kept: the ones in
    ``before`` (native ids of every thread running when the code started,
    threading's or not: the kernel's, C libraries') and threads without a
    thread name in the samples are left out."""
    current = threading.get_native_id()
    samples = []
    for s in profile.samples:
        labels = s.labels
        thread = labels.get("thread_id")
        cut = _execute_index(s) if thread == current else None
        if cut and _runs_the_cell(s.locations[cut - 1]):
            cut -= 1
        if cut is not None:
            if cut > 0:  # at 0, _execute itself was running: exec starting the code, the magic's
                samples.append(Sample._raw(s.values, s.locations[:cut], s.label_items))
        elif thread != current and thread not in before and "thread_name" in labels:
            samples.append(s)
    return with_samples(profile, samples)


def _runs_the_cell(loc: Location) -> bool:
    """Whether loc is a C function _execute calls to run the cell (exec for
    its statements, eval for its last expression; named: collect/leaf.py)."""
    fn = loc.lines[0].function if loc.lines else None
    return fn is not None and fn.name in ("builtins.exec", "builtins.eval")


def _execute_index(s: Sample) -> int | None:
    for i, loc in enumerate(s.locations):
        for ln in loc.lines:
            fn = ln.function
            if fn is not None and (fn.filename, fn.system_name) == _EXECUTE:
                return i
    return None
