"""tables.resolve: the collectors' tables as the profile's functions, locations
and stacks; cprof's runner frames cut, cprof's own work folded into "<cprof>"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cprof
import cprof.collect.runner
from cprof.collect.symbols import resolve

RUNNER = os.path.abspath(cprof.collect.runner.__file__)
PROGRAM = "/srv/app/main.py"


def tables(*stacks: tuple[int, ...]) -> dict[str, object]:
    return {
        "functions": [("_run", "_run", RUNNER, 130),              # 0: the runner's root
                      ("<module>", "<module>", PROGRAM, 1),       # 1
                      ("work", "work", PROGRAM, 5)],              # 2
        "locations": [(0, 137, 0), (1, 9, 0), (2, 6, 0)],
        "stacks": list(stacks),
    }


def names(stack: tuple[object, ...]) -> list[str]:
    return [loc.lines[0].function.name for loc in stack]  # type: ignore[attr-defined]


def test_the_program_starts_at_its_module_below_the_runner() -> None:
    r = resolve(tables((2, 1, 0)))
    assert [[ln.split(".")[-1] for ln in names(s)] for s in r.stacks] == [["work", "<module>"]]


def test_a_sample_in_the_runner_itself_is_cprofs_work_not_an_empty_stack() -> None:
    # Taken between the program's end and cprof's exit (an uncaught
    # exception's traceback being printed by the runner): every frame is cut.
    r = resolve(tables((0,), (2, 1, 0)))
    assert [names(s) for s in r.stacks][0] == ["<cprof>"]
    assert all(s for s in r.stacks)
    assert len({loc.id for loc in r.locations}) == len(r.locations)


def test_the_frames_cprof_treats_apart_are_real_functions() -> None:
    """symbols names cprof's hidden, root and kept frames by file and function:
    each must exist, or a move or a rename would silently show them."""
    import ast

    from cprof.collect.symbols import HIDDEN_FRAMES, KEPT_FRAMES, ROOT_FRAMES
    for filename, name in HIDDEN_FRAMES | ROOT_FRAMES | KEPT_FRAMES:
        with open(filename) as f:
            tree = ast.parse(f.read())
        defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert name in defined, f"{filename} defines no function {name}"


def test_a_scripts_functions_keep_their_module_in_a_profile_stopped_at_exit(tmp_path: Path) -> None:
    """python takes __main__.__file__ away as the script ends, before the
    atexit callbacks that stop a profile still running (and a followed
    child's): the script's functions are still __main__'s."""
    (tmp_path / "script.py").write_text(
        "import time, cprof\n"
        "def work():\n"
        "    start = time.process_time()\n"
        "    while time.process_time() - start < 0.05:\n"
        "        pass\n"
        "cprof.start_cpu_profile('out.prof', hz=1000)\n"
        "work()\n")
    r = subprocess.run([sys.executable, "script.py"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    profile = cprof.load(tmp_path / "out.prof")
    assert {ln.function.name for s in profile.samples for loc in s.locations
            for ln in loc.lines if ln.function.name.endswith("work")} == {"__main__.work"}
