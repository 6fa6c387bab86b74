"""Issue 14, names: every frame of a profile is ``module.qualname`` with a
real line, whatever kind of code object it runs, and cprof's own frames never
show outside ``<cprof>``.

Each test profiles real code with the real sampler (signals, the C frame
walk and naming), in this process or in a ``cprof record`` child, bounded in
time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import os
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

import cprof
from cprof import Profile
from cprof.collect import symbols
from cprof.pprof.model import Function

PACKAGE = os.path.dirname(os.path.abspath(cprof.__file__)) + os.sep


# --- workloads: each burns CPU in one kind of code object ------------------------------------


def spin(seconds: float) -> None:
    start = time.thread_time()
    while time.thread_time() - start < seconds:
        for _ in range(1000):
            pass


def import_fresh_modules(directory: Path, seconds: float) -> None:
    """Import new modules until `seconds` of CPU: the time is importlib's
    frozen bootstrap's (finders, loaders, _call_with_frames_removed)."""
    sys.path.insert(0, str(directory))
    try:
        start, n = time.thread_time(), 0
        while time.thread_time() - start < seconds:
            name = f"cprof_names_fresh_{os.getpid()}_{n}"
            (directory / f"{name}.py").write_text("X = 1\n")
            importlib.invalidate_caches()
            importlib.import_module(name)
            del sys.modules[name]
            n += 1
    finally:
        sys.path.remove(str(directory))


EXEC_SOURCE = """
def burn_exec(seconds):
    import time
    start = time.thread_time()
    while time.thread_time() - start < seconds:
        for _ in range(1000):
            pass
"""


@dataclasses.dataclass
class Wide:
    """A dataclass whose generated __init__ has work of its own."""
    a: int = 0
    b: int = 0
    c: int = 0
    d: int = 0
    e: int = 0
    f: int = 0
    g: int = 0
    h: int = 0
    i: int = 0
    j: int = 0
    k: int = 0
    m: int = 0


def construct_dataclasses(seconds: float) -> None:
    start = time.thread_time()
    while time.thread_time() - start < seconds:
        for _ in range(2000):
            Wide(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)


def comprehension(seconds: float) -> int:
    start, total = time.thread_time(), 0
    while time.thread_time() - start < seconds:
        total += len([x * x for x in range(5000) if x % 3])
    return total


def generator(seconds: float) -> Iterator[int]:
    start = time.thread_time()
    while time.thread_time() - start < seconds:
        for i in range(1000):
            yield i


async def coroutine(seconds: float) -> None:
    start = time.thread_time()
    while time.thread_time() - start < seconds:
        await asyncio.sleep(0)
        for _ in range(2000):
            pass


burn_lambda: Callable[[float], None] = lambda seconds: spin(seconds)  # noqa: E731


def python_functions(profile: Profile) -> list[Function]:
    """The functions of Python frames (cprof's synthetic ones have no file)."""
    return [f for f in profile.functions if f.filename and f.system_name]


def leaf_names(profile: Profile) -> set[str]:
    return {s.locations[0].lines[0].function.name for s in profile.samples if s.locations}


def all_names(profile: Profile) -> set[str]:
    return {ln.function.name for s in profile.samples for loc in s.locations
            for ln in loc.lines if ln.function is not None}


# --- item 21: every kind of code object is qualified -------------------------------------------


def test_frozen_importlib_frames_are_qualified_by_their_module(tmp_path: Path) -> None:
    """importlib's bootstrap runs frozen code whose file is ``<frozen
    importlib._bootstrap>``: its frames are importlib._bootstrap.<qualname>
    (not bare ``_call_with_frames_removed``), in the module's source file."""
    with cprof.cpu(hz=1000) as c:
        import_fresh_modules(tmp_path, 0.6)
    assert c.profile is not None
    import importlib._bootstrap as bootstrap
    import importlib._bootstrap_external as external
    files = {os.path.abspath(bootstrap.__file__), os.path.abspath(external.__file__)}
    frozen = [f for f in python_functions(c.profile)
              if f.filename in files or f.filename.startswith("<frozen importlib")]
    assert frozen, sorted(f.name for f in python_functions(c.profile))[:40]
    for f in frozen:
        assert f.name.startswith(("importlib._bootstrap.", "importlib._bootstrap_external.")), f
        assert f.filename in files, f  # the real source, for pprof -list
        assert os.path.isabs(f.filename), f


@pytest.mark.parametrize("kind", ["exec", "dataclass", "lambda", "comprehension",
                                  "generator", "coroutine"])
def test_every_kind_of_code_object_is_qualified(kind: str) -> None:
    """exec'd code (``<string>``), a dataclass's generated __init__, a
    lambda, a comprehension (inlined in its function on 3.12+), a generator
    and a coroutine: each sampled frame is named module.qualname, or after
    the pseudo-file its code came from."""
    namespace: dict[str, Any] = {}
    exec(compile(EXEC_SOURCE, "<string>", "exec"), namespace)
    work: dict[str, tuple[Callable[[], Any], str]] = {
        "exec": (lambda: namespace["burn_exec"](0.3), "<string>.burn_exec"),
        "dataclass": (lambda: construct_dataclasses(0.5),
                      "<string>.__create_fn__.<locals>.__init__"),
        "lambda": (lambda: burn_lambda(0.3), f"{__name__}.<lambda>"),
        "comprehension": (lambda: comprehension(0.3),
                          f"{__name__}.comprehension.<locals>.<listcomp>"
                          if sys.version_info < (3, 12) else f"{__name__}.comprehension"),
        "generator": (lambda: sum(generator(0.3)), f"{__name__}.generator"),
        "coroutine": (lambda: asyncio.run(coroutine(0.3)), f"{__name__}.coroutine"),
    }
    run, expected = work[kind]
    with cprof.cpu(hz=1000) as c:
        run()
    assert c.profile is not None
    assert expected in all_names(c.profile), sorted(all_names(c.profile))
    for f in python_functions(c.profile):
        # module.qualname: more than the code name, ending with it.
        assert f.name != f.system_name and f.name.endswith(f.system_name), f


def test_stdin_code_is_named_after_stdin(tmp_path: Path) -> None:
    """A program read from standard input (``python -``) compiles as
    ``<stdin>``: its frames are <stdin>.qualname."""
    out = tmp_path / "stdin.prof"
    program = (
        "import time, cprof\n"
        "def burn():\n"
        "    start = time.thread_time()\n"
        "    while time.thread_time() - start < 0.3:\n"
        "        for _ in range(1000):\n"
        "            pass\n"
        f"with cprof.cpu({str(out)!r}, hz=1000):\n"
        "    burn()\n")
    r = subprocess.run([sys.executable, "-"], input=program, text=True, capture_output=True,
                       timeout=60, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    p = cprof.load(out)
    assert "<stdin>.burn" in leaf_names(p), sorted(leaf_names(p))
    assert "<stdin>.<module>" in all_names(p)


def test_names_of_pseudo_files_and_frozen_code() -> None:
    """names() on the interpreter's own code objects, the rule the profiles
    above rely on, for what sampling may not reach on every version."""
    import importlib._bootstrap as bootstrap
    modules: dict[str, str] = {}
    code = bootstrap._call_with_frames_removed.__code__
    name, system, path = symbols.names(code.co_qualname, code.co_name, code.co_filename, modules)
    assert (name, system) == ("importlib._bootstrap._call_with_frames_removed",
                              "_call_with_frames_removed")
    assert path == os.path.abspath(bootstrap.__file__)
    join = os.path.join.__code__  # posixpath is frozen too (3.11+)
    assert symbols.names(join.co_qualname, join.co_name, join.co_filename, modules)[0] == (
        f"{os.path.__name__}.join")
    init = Wide.__init__.__code__
    assert symbols.names(init.co_qualname, init.co_name, init.co_filename, modules)[0] == (
        "<string>.__create_fn__.<locals>.__init__")
    assert symbols.names("<module>", "<module>", "<stdin>", modules) == (
        "<stdin>.<module>", "<module>", "<stdin>")
    # Other pseudo-files are not the interpreter's: a notebook cell's code
    # keeps its bare name.
    assert symbols.names("hot", "hot", "<ipython-input-1-d84366ec4c1a>", modules)[0] == "hot"
    # cprof's synthetic functions keep their names and no system name.
    assert symbols.names("<cprof>", "<cprof>", "", modules) == ("<cprof>", "", "")


# --- item 22: every sample has a real line -----------------------------------------------------


class Payload:
    """Burns CPU when freed: its __del__ runs inside the instruction that
    drops the last reference to it."""

    def __del__(self) -> None:
        spin(0.03)


class Handled(Exception):
    pass


class Escaping(Exception):
    pass


def raise_without_context() -> None:
    try:
        raise Escaping()
    except Escaping as e:
        e.__context__ = None  # the handled exception's last reference is its handler's
        raise


def free_in_handler_cleanup() -> None:
    """An exception escapes an ``except`` block: the block's cleanup
    (COPY, POP_EXCEPT, RERAISE), to which the compiler gives no line,
    drops the handled exception and so runs its payload's __del__."""
    try:
        try:
            raise Handled(Payload())
        except Handled:
            raise_without_context()
    except Escaping:
        pass


def test_a_frame_at_an_instruction_without_a_line_gets_a_real_line() -> None:
    """Samples taken while a frame executes an instruction the compiler gave
    no line (an exception handler's cleanup) had line -1; they get the line
    of the nearest instruction before it that has one."""
    with cprof.cpu(hz=1000) as c:
        for _ in range(20):
            free_in_handler_cleanup()
    assert c.profile is not None
    code = free_in_handler_cleanup.__code__
    first = code.co_firstlineno
    last = max(line for _, _, line in code.co_lines() if line is not None)
    handler_lines = []
    for s in c.profile.samples:
        for loc in s.locations:
            for ln in loc.lines:
                # A Python function's line (a C callee's file is its module's or
                # extension's, with no line).
                if ln.function is not None and ln.function.filename.endswith(".py"):
                    assert ln.line > 0, (ln.function.name, ln.line)
                if ln.function is not None and ln.function.name.endswith(
                        ".free_in_handler_cleanup"):
                    handler_lines.append(ln.line)
    assert handler_lines, "no sample under the handler's cleanup"
    assert all(first < line <= last for line in handler_lines), (handler_lines, first, last)


def test_code_line_of_instructions_without_a_line() -> None:
    """The Python twin of the collectors' line rule (thread dumps read
    frames from Python, where f_lineno is None at those instructions)."""
    code = free_in_handler_cleanup.__code__
    lineless = [start for start, _, line in code.co_lines() if line is None]
    assert lineless, "the compiler gave every instruction a line"
    for offset in lineless:
        line = symbols.code_line(code, offset)
        before = [ln for s, _, ln in code.co_lines() if s <= offset and ln]
        assert line == before[-1]
    assert symbols.code_line(code, -2) == code.co_firstlineno  # not started: its first line
    bare = types.CodeType(0, 0, 0, 0, 0, 0, b"", (), (), (), "f.py", "f", "f", 7, b"", b"")
    assert symbols.code_line(bare, 0) == 7


# --- item 22: cprof's own frames only as <cprof> ------------------------------------------------

JOINING_PROGRAM = """
import threading, time

def work():
    start = time.thread_time()
    while time.thread_time() - start < 0.5:
        for _ in range(1000):
            pass

threading.Thread(target=work).start()
"""


def test_cprof_record_waiting_for_the_programs_threads_is_cprof(tmp_path: Path) -> None:
    """After the program's main code returns, cprof record joins its
    threads (cprof.collect.runner._join_threads): that wait is cprof's, shown as
    ``<cprof>``, never as cprof's frames in the program's profile."""
    (tmp_path / "joins.py").write_text(JOINING_PROGRAM)
    out = tmp_path / "joins.prof"
    r = subprocess.run([sys.executable, "-m", "cprof", "record", "--mode", "wall", "--hz", "200",
                        "-o", str(out), "joins.py"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    p = cprof.load(out)
    ours = {ln.function.name for s in p.samples for loc in s.locations for ln in loc.lines
            if ln.function is not None and ln.function.filename.startswith(PACKAGE)}
    assert not ours, sorted(ours)
    main = [s for s in p.samples if s.labels.get("thread_name") == "MainThread"]
    assert any(s.locations[-1].lines[0].function.name == "<cprof>" for s in main), (
        [[loc.lines[0].function.name for loc in s.locations] for s in main[:5]])
    assert "__main__.work" in leaf_names(p)


def test_a_cprof_wrapper_around_the_programs_code_is_left_out() -> None:
    """cprof.cpu() as a decorator runs the program's function from a frame
    of cprof's: that frame is left out, the function and its callers kept."""
    profiler = cprof.cpu(hz=1000)

    @profiler
    def decorated() -> None:
        spin(0.3)

    def caller() -> None:
        decorated()

    caller()
    assert profiler.profile is not None
    stacks = [[loc.lines[0].function.name for loc in s.locations]
              for s in profiler.profile.samples]
    spun = [st for st in stacks if st and st[0] == f"{__name__}.spin"]
    assert spun, stacks[:5]
    here = f"{__name__}.test_a_cprof_wrapper_around_the_programs_code_is_left_out.<locals>"
    for st in spun:
        assert st[1:3] == [f"{here}.decorated", f"{here}.caller"], st
        assert not any(name.startswith("cprof.") for name in st), st


def test_thread_dumps_show_cprof_as_cprof() -> None:
    """The thread dumps apply the same rule: the server thread that
    cprof.serve() starts was created by cprof's code, which the threadcreate
    stack shows as <cprof> under the program's call of serve()."""
    from cprof.collect import threads as threaddump

    def start_server() -> cprof.Server:
        return cprof.serve(port=0, heap_rate=0)

    with start_server():
        d = threaddump.dump()
    http = next(t for t in d.threads if t.name == "cprof-http")
    assert http.created_by is not None
    created = [f.name for f in http.created_by]
    assert created[0] == "<cprof>", created
    assert created[1] == (f"{__name__}.test_thread_dumps_show_cprof_as_cprof.<locals>"
                          ".start_server"), created
    for t in d.threads:
        for f in t.stack + (t.created_by or []):
            assert not f.filename.startswith(PACKAGE), (t.name, f)
