"""cprof.collect.leaf: what the sampler needs, beforehand, to name the C
function a Python frame is calling. The stack depths are checked against the
compiler's own (co_stacksize) over thousands of the standard library's code
objects, and the callable's slot against the layouts each version keeps."""

from __future__ import annotations

import dis
import hashlib
import importlib
import json
import re
import sys
import time
import types
from pathlib import Path

import pytest

from cprof.collect import leaf
from sanitizers import UNDER_ASAN

STDLIB = ["json.decoder", "json.encoder", "re._parser", "re._compiler", "asyncio.base_events",
          "asyncio.tasks", "email.message", "http.client", "argparse", "typing", "dataclasses",
          "inspect", "ast", "tokenize", "pathlib", "subprocess", "threading", "collections",
          "functools", "enum", "logging", "unittest.case", "pickle", "tarfile", "zipfile",
          "difflib", "decimal", "statistics", "textwrap", "socket", "ssl", "urllib.parse",
          "configparser", "csv", "shutil", "tempfile", "traceback", "multiprocessing.pool"]


def code_objects(code: types.CodeType) -> list[types.CodeType]:
    found = [code]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found += code_objects(const)
    return found


def test_the_depths_agree_with_the_compilers_stack_size() -> None:
    """The deepest point of the walk is the co_stacksize the compiler gave, for
    all but a few code objects, and never deeper: a wrong effect or a missed
    handler shows here. The few are the compiler's spare slot (3.13 keeps one
    for a function that only returns a constant: 2% of these)."""
    codes = []
    for name in STDLIB:
        path = importlib.import_module(name).__file__
        assert path is not None
        with open(path, encoding="utf-8") as f:
            codes += code_objects(compile(f.read(), path, "exec"))
    assert len(codes) > 3000
    below = 0
    for code in codes:
        depths = leaf.stack_depths(code)
        deepest = max(depths[ins.offset] + max(0, _effect(ins))
                      for ins in leaf.dis.get_instructions(code) if ins.offset in depths)
        assert deepest <= code.co_stacksize, code
        below += deepest < code.co_stacksize
    assert below <= len(codes) // 20, f"{below} of {len(codes)} below co_stacksize"


def _effect(ins: leaf.dis.Instruction) -> int:
    if ins.opname == "RETURN_GENERATOR":
        return 1
    return leaf.dis.stack_effect(ins.opcode, ins.arg if ins.opcode >= leaf.dis.HAVE_ARGUMENT
                                 else None)


def call_lasti(source: str, which: int = -1) -> tuple[types.CodeType, int]:
    """The function f in source and the lasti of one of its call instructions
    (the last by default)."""
    namespace: dict[str, object] = {}
    exec(compile(source, "<test>", "exec"), namespace)
    code = namespace["f"].__code__  # type: ignore[attr-defined]
    calls = [ins.offset // 2 for ins in leaf.dis.get_instructions(code)
             if ins.opname in leaf.CALLS]
    return code, calls[which]


NEW = sys.version_info >= (3, 13)


@pytest.mark.parametrize("source, new, old", [
    # 3.13+: [callable, self or NULL, args]; 3.11/3.12: [NULL or method, callable or self, args]
    ("def f(a, b): g(a, b)", (0, 0), (0, 1)),
    ("def f(x, a): return x + g(a)", (1, 1), (1, 2)),
    ("def f(o, a): o.m(a)", (0, 0), (0, 1)),
    ("def f(a): g(a, k=1)", (0, 0), (0, 1)),
    ("def f(a): g(1, h(a))", (3, 3), (3, 4)),
    ("def f(a): g(*a)", (0, 0), (1, 1)),
    ("def f(a, k): g(*a, **k)", (0, 0), (1, 1)),
])
def test_the_callable_slot_of_each_call_shape(source: str, new: tuple[int, int],
                                              old: tuple[int, int]) -> None:
    code, lasti = call_lasti(source, which=-1 if "h(" not in source else 0)
    assert leaf.callable_slots(code, lasti) == (new if NEW else old)


def test_an_instruction_that_calls_nothing_has_no_slot() -> None:
    code, lasti = call_lasti("def f(a, b): return a + g(b)")
    assert leaf.callable_slots(code, 0) is None
    assert leaf.callable_slots(code, lasti + 1) is None  # its cache or the next instruction


@pytest.fixture(scope="module")
def known() -> dict[str, tuple[object, str]]:
    return {name: (obj, path) for obj, name, path in leaf.catalogue().values()}


@pytest.mark.parametrize("obj, name", [
    (time.sleep, "time.sleep"),
    (sorted, "builtins.sorted"),
    (list.sort, "builtins.list.sort"),
    (dict, "builtins.dict"),
    (str.maketrans, "builtins.str.maketrans"),
    (re.Pattern.match, "re.Pattern.match"),
    (type(hashlib.sha256()).update, f"{type(hashlib.sha256()).__module__}."
                                    f"{type(hashlib.sha256()).__qualname__}.update"),
])
def test_the_catalogue_names_c_callables(known: dict[str, tuple[object, str]], obj: object,
                                         name: str) -> None:
    assert name in known, sorted(n for n in known if n.split(".")[-1] == name.split(".")[-1])
    assert known[name][0] is obj


def test_a_c_callable_gets_its_extension_as_file(known: dict[str, tuple[object, str]]) -> None:
    hash_type = type(hashlib.sha256())
    _, path = known[f"{hash_type.__module__}.{hash_type.__qualname__}.update"]
    assert path.endswith(".so"), path
    assert known["time.sleep"][1] in ("time", getattr(time, "__file__", "time"))


def test_python_code_is_not_catalogued() -> None:
    module = types.ModuleType("made_here")
    exec("class Python:\n    def __init__(self): pass\n"
         "class CBased(dict): pass\n"
         "def function(): pass\n", module.__dict__)
    names = {name for _, name, _ in leaf.catalogue([module]).values()}
    assert "made_here.CBased" in names  # calling it runs dict's C code only
    assert "made_here.Python" not in names and "made_here.function" not in names


def test_every_instruction_of_one_call_gives_the_same_slot() -> None:
    """3.11 makes a call in two instructions, PRECALL (whose specialised forms
    run the C function) and CALL; each must point at the same slot."""
    code, _ = call_lasti("def f(a, b): return a + g(a, b)")
    calls = [ins.offset // 2 for ins in leaf.dis.get_instructions(code)
             if ins.opname in leaf.CALLS]
    assert len(calls) == (2 if "PRECALL" in leaf.CALLS else 1)
    assert {leaf.callable_slots(code, lasti) for lasti in calls} == {(1, 1) if NEW else (1, 2)}


@pytest.mark.skipif(sys.version_info >= (3, 14), reason=(
    "3.14+ read the callable below the stack pointer their frames keep: no places"))
def test_the_samplers_places_agree_with_callable_slots() -> None:
    """What the sampler works out in C (csrc/collect/leaf.c, frames.c), a
    drain's work where Python code may not run, is what callable_slots says
    for every call of thousands of the standard library's code objects."""
    from cprof import _core
    leaf.install()
    try:
        calls = 0
        for name in STDLIB:
            for code in code_objects(compile(open(importlib.import_module(name).__file__,
                                                  encoding="utf-8").read(), name, "exec")):
                got = memoryview(_core.leaf_call_places(code)).cast("H")
                assert len(got) == 2 * (len(code.co_code) // 2), code
                want = leaf.places(code)
                have = {i: (got[2 * i], got[2 * i + 1]) for i in range(len(got) // 2)
                        if got[2 * i] != 0xFFFF}
                assert have == want, code
                calls += len(want)
        assert calls > 10_000
    finally:
        from cprof import _core as core
        core.leaf_clear()


def test_the_places_of_a_code_the_sampler_cannot_read_are_empty() -> None:
    """A code object with an exception handler pointing past its end gets no
    place rather than a wrong one (or a crash)."""
    from cprof import _core
    leaf.install()
    try:
        def f() -> None:
            try:
                time.sleep(0)
            except OSError:
                pass
        code = f.__code__
        assert code.co_exceptiontable
        broken = code.replace(co_exceptiontable=b"\x80\x01\x7f\x7f\x7f\x7f\x00")
        if sys.version_info < (3, 14):
            assert set(memoryview(_core.leaf_call_places(broken)).cast("H")) == {0xFFFF}
            assert set(memoryview(_core.leaf_call_places(code)).cast("H")) != {0xFFFF}
    finally:
        _core.leaf_clear()


def hot(items: list[int]) -> int:
    total = 0
    for item in items:
        total += len(str(item)) + abs(item)
    return max(total, len(items))


@pytest.mark.skipif(sys.version_info >= (3, 14), reason=(
    "3.14+ read the callable below the stack pointer their frames keep: no places"))
def test_the_places_of_specialised_and_instrumented_code_are_its_base_codes() -> None:
    """The sampler reads the code's live instructions (not co_code, whose
    bytes object an allocator hook must not make): specialised ones, and
    instrumented ones while a tracer or sys.monitoring is on, give the places
    of the base instructions."""
    import json
    from cprof import _core
    leaf.install()
    codes = [hot.__code__, json.dumps.__code__, json.encoder.JSONEncoder.encode.__code__]

    def check() -> None:
        for code in codes:
            got = memoryview(_core.leaf_call_places(code)).cast("H")
            have = {i: (got[2 * i], got[2 * i + 1]) for i in range(len(got) // 2)
                    if got[2 * i] != 0xFFFF}
            assert have == leaf.places(code), code

    try:
        for _ in range(3000):
            hot([1, -2, 30])
            json.dumps({"a": [1, 2.5, "x"]})
        assert hot.__code__._co_code_adaptive != hot.__code__.co_code  # specialised
        check()
        seen: list[str] = []

        def tracer(frame: types.FrameType, event: str, arg: object) -> object:
            seen.append(event)
            return tracer

        sys.settrace(tracer)
        try:
            hot([1, 2])
            check()
        finally:
            sys.settrace(None)
        assert "line" in seen
        if sys.version_info >= (3, 12):
            mon = sys.monitoring
            mon.use_tool_id(mon.DEBUGGER_ID, "test")
            try:
                mon.set_local_events(mon.DEBUGGER_ID, hot.__code__,
                                     mon.events.INSTRUCTION | mon.events.LINE)
                mon.register_callback(mon.DEBUGGER_ID, mon.events.INSTRUCTION,
                                      lambda code, offset: None)
                hot([3])
                assert any(ins.opname.startswith("INSTRUMENTED_") for ins in
                           dis.get_instructions(hot.__code__, adaptive=True))
                check()
            finally:
                mon.set_local_events(mon.DEBUGGER_ID, hot.__code__, 0)
                mon.register_callback(mon.DEBUGGER_ID, mon.events.INSTRUCTION, None)
                mon.free_tool_id(mon.DEBUGGER_ID)
    finally:
        _core.leaf_clear()


def output_of(script: Path) -> list[str]:
    """The lines script printed, run by this interpreter in its folder."""
    import subprocess
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=script.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()


def test_a_program_importing_all_along_keeps_one_address_set(tmp_path: Path) -> None:
    """Each drain that finds new modules installs the catalogue again: its new
    addresses go into the set in use, not into a new one kept until the end
    (a handler may be reading the old one): 300 imports, each followed by an
    install, used to keep 300 sets (RSS +10.5 MiB for a small catalogue; +0.8
    MiB now, the modules themselves). The count of sets comes from the
    extension itself; RSS is checked too, but not under ASan, whose
    quarantine keeps what is freed (CI's ASan run: +95 MiB)."""
    script = tmp_path / "imports.py"
    script.write_text(
        "import json, resource, sys\n"
        "from cprof import _core\n"
        "from cprof.collect import leaf\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "leaf.install()\n"
        "def rss():\n"
        "    with open('/proc/self/statm') as f:\n"
        "        return int(f.read().split()[1]) * resource.getpagesize()\n"
        "before = rss()\n"
        "for i in range(300):\n"
        f"    open({str(tmp_path)!r} + f'/fresh_{{i}}.py', 'w').write('X = 1\\n')\n"
        "    __import__(f'fresh_{i}')\n"
        "    leaf.refresh()\n"
        "print(rss() - before)\n"
        "print(json.dumps(_core.leaf_held()))\n")
    *_, grown_line, held_line = output_of(script)
    held = json.loads(held_line)
    assert held["address_tables"] == 1, held
    if not UNDER_ASAN:
        grown = int(grown_line)
        assert grown < 4 << 20, f"RSS grew by {grown / 2**20:.1f} MiB"


def test_a_program_making_code_all_along_keeps_one_place_table(tmp_path: Path) -> None:
    """3.11-3.13 keep each sampled code's places until the code dies, in a
    table whose dead entries stay as tombstones until it is rebuilt: a
    program that makes and drops code objects all along (exec, templates,
    namedtuple) rebuilt it every few dozen codes, and each table it replaced
    was kept until the profile's end, since a handler might be reading it
    (20,000 codes: 625 tables, 640 KiB). A replaced table is freed once no
    handler is reading the tables. 3.14+ keep no places."""
    script = tmp_path / "codes.py"
    script.write_text(
        "import json\n"
        "from cprof import _core\n"
        "from cprof.collect import leaf\n"
        "leaf.install()\n"
        "for i in range(20_000):\n"
        "    ns = {}\n"
        "    exec(f'def f(): return len([{i}])', ns)\n"
        "    _core.leaf_call_places(ns['f'].__code__)\n"
        "    ns.clear()\n"
        "print(json.dumps(_core.leaf_held()))\n")
    held = json.loads(output_of(script)[-1])
    if sys.version_info >= (3, 14):
        assert held["place_tables"] == 0 and held["places_bytes"] == 0, held
        return
    assert held["place_tables"] == 1, held
    assert held["place_bytes"] <= 64 << 10, held
    assert held["places_bytes"] <= 16 << 10, held  # the dead codes' places are freed
