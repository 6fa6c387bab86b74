"""Interpreters cprof does not know, and builds whose layout moved: the
collectors refuse with a clear error, never crash; everything that does not
read the interpreter's frames (load, reports, exports, the CLI's analysis
commands, cprof check) works."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import cprof
from cprof import _core

ROOT = Path(__file__).resolve().parents[2]
GO_CPU = ROOT / "tests" / "testdata" / "go" / "cpu.prof"

# Every collector that reads frames, started the way a user starts it; each
# prints "refused: <message>" or "started".
COLLECTORS = r'''
import sys, cprof
def attempt(name, start, stop):
    try:
        start()
    except RuntimeError as e:
        print(name, "refused:", e)
    else:
        stop()
        print(name, "started")
attempt("cpu", lambda: cprof.start_cpu_profile(), cprof.stop_cpu_profile)
attempt("wall", lambda: cprof.start_cpu_profile(mode="wall"), cprof.stop_cpu_profile)
attempt("heap", lambda: cprof.start_heap_profile(), cprof.stop_heap_profile)
attempt("mutex", lambda: cprof.set_mutex_profile_fraction(1),
        lambda: cprof.set_mutex_profile_fraction(0))
attempt("block", lambda: cprof.set_block_profile_rate(1), lambda: cprof.set_block_profile_rate(0))
'''

# What must keep working: load, top, filters, exports, a written profile.
ANALYSIS = r'''
import sys, cprof
p = cprof.load(sys.argv[1])
print("total", p.total())
print("top", p.top(1)[0].name)
print("share", round(p.filter(focus="hotA").total() / p.total(), 3))
p.flamegraph(sys.argv[2] + "/f.html")
p.to_speedscope(sys.argv[2] + "/s.json")
print("folded", len(p.folded().splitlines()))
p.write(sys.argv[2] + "/copy.prof")
print("copy", cprof.load(sys.argv[2] + "/copy.prof").total())
'''


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)  # type: ignore[call-overload]


def outcomes(stdout: str) -> dict[str, str]:
    return {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in stdout.splitlines()
            if " " in line}


def test_this_interpreter_passes_the_layout_check() -> None:
    assert _core.layout_problem() is None


@pytest.mark.skipif(sys.version_info < (3, 13),
                    reason="CPython publishes _Py_DebugOffsets from 3.13 on; 3.11 and 3.12 "
                    "are checked by version alone")
@pytest.mark.parametrize("field", ["interpreter_frame.previous", "thread_state.current_frame",
                                   "code_object.co_code_adaptive", "interpreter_frame.size"])
def test_a_moved_field_makes_every_collector_refuse(field: str, tmp_path: Path) -> None:
    """As if a patch release had moved a field the frame walk reads: the
    interpreter's _Py_DebugOffsets says one thing, cprof's headers another."""
    script = (
        "from cprof import _core\n"
        f"print('problem', _core.check_layout({field!r}, 8))\n" + COLLECTORS +
        "print('after', _core.check_layout())\n")
    r = run([sys.executable, "-c", script], cwd=tmp_path)  # the installed cprof
    assert r.returncode == 0, r.stderr
    out = outcomes(r.stdout)
    assert "does not support this CPython build yet" in out["problem"]
    assert field in out["problem"] and sys.version.split()[0] in out["problem"]
    for name in ("cpu", "wall", "heap", "mutex", "block"):
        assert out[name].startswith("refused: cprof does not support this CPython build yet"), \
            (name, out[name])
    assert out["after"] == "None"  # the true layout passes again


@pytest.mark.skipif(sys.version_info < (3, 13), reason="no _Py_DebugOffsets before 3.13")
def test_a_moved_field_leaves_analysis_working(tmp_path: Path) -> None:
    script = ("from cprof import _core\n"
              "assert _core.check_layout('interpreter_frame.owner', 1)\n" + ANALYSIS)
    r = run([sys.executable, "-c", script, str(GO_CPU), str(tmp_path)], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = outcomes(r.stdout)
    assert out["total"] == "1490000000" and out["copy"] == "1490000000"
    assert out["top"] == "main.hotA"


@pytest.fixture(scope="module")
def unknown_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cprof built as for an interpreter it does not know (a 3.16, a
    free-threaded build): without the frame walk, from the same sources."""
    out = tmp_path_factory.mktemp("unknown")
    env = dict(os.environ, CPROF_PRETEND_UNKNOWN="1")
    r = run([sys.executable, "setup.py", "build_ext", "--build-temp", str(out / "t"),
             "--build-lib", str(out / "l")], cwd=ROOT, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    site = out / "site"
    shutil.copytree(ROOT / "cprof", site / "cprof",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    shutil.copy(out / "l" / "cprof" / f"_core{suffix}", site / "cprof" / f"_core{suffix}")
    return site


def in_unknown(site: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(site))
    return run([sys.executable, *args], env=env, cwd=cwd)


def test_unknown_interpreter_imports_and_its_collectors_refuse(unknown_build: Path,
                                                               tmp_path: Path) -> None:
    script = ("import cprof\n"
              "from cprof import _core\n"
              "assert cprof.__file__.startswith(sys.argv[1]), cprof.__file__\n"
              "print('problem', _core.layout_problem())\n" + COLLECTORS)
    r = in_unknown(unknown_build, ["-c", "import sys\n" + script, str(unknown_build)], tmp_path)
    assert r.returncode == 0, r.stderr
    out = outcomes(r.stdout)
    version = sys.version.split()[0]
    assert out["problem"].startswith(f"cprof does not support CPython {version} yet")
    assert "Loading, analysing and writing profiles work" in out["problem"]
    for name in ("cpu", "wall", "heap", "mutex", "block"):
        assert out[name] == "refused: " + out["problem"], (name, out[name])


def test_unknown_interpreter_still_analyses(unknown_build: Path, tmp_path: Path) -> None:
    r = in_unknown(unknown_build, ["-c", ANALYSIS, str(GO_CPU), str(tmp_path)], tmp_path)
    assert r.returncode == 0, r.stderr
    out = outcomes(r.stdout)
    assert out["total"] == "1490000000" and out["copy"] == "1490000000"
    assert out["top"] == "main.hotA"
    assert float(out["share"]) > 0.1
    assert (tmp_path / "f.html").stat().st_size > 1000
    # The CLI's analysis commands and cprof check.
    r = in_unknown(unknown_build, ["-m", "cprof", "top", str(GO_CPU)], tmp_path)
    assert r.returncode == 0 and "main.hotA" in r.stdout, r.stderr
    r = in_unknown(unknown_build, ["-m", "cprof", "check", str(GO_CPU), "--max-share",
                                   "main.hotA=100%"], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    r = in_unknown(unknown_build, ["-m", "cprof", "check", str(GO_CPU), "--max-share",
                                   "main.hotA=1%", "--flame", str(tmp_path / "over.html")],
                   tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert (tmp_path / "over.html").stat().st_size > 1000


def test_unknown_interpreter_record_says_why(unknown_build: Path, tmp_path: Path) -> None:
    """cprof record on an interpreter it does not know: one clear line, no
    traceback, and the program is not run half-profiled."""
    program = tmp_path / "prog.py"
    program.write_text("print('ran')\n")
    r = in_unknown(unknown_build, ["-m", "cprof", "record", "-o", str(tmp_path / "o.prof"),
                                   str(program)], tmp_path)
    assert r.returncode != 0
    assert "cprof does not support CPython" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "o.prof").exists()

