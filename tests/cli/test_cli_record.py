"""`cprof record` as a user runs it: `-- python script.py args`, `script.py args` and
`-m module args`, through `python -m cprof` in a real child process, with real signals.

The program sees the argv and __main__ it would see unprofiled, its exit status is
passed through, the profile is written and names the hot function, and a top 10 is
printed; a live sample count shows on a terminal and nowhere else.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cprof

PROGRAM = '''\
import json, sys, time

def burn():
    end = time.process_time() + 0.3  # BURN_NS
    n = 0
    while time.process_time() < end:
        for _ in range(1000):  # Python's work, not the clock's (a C callee, named)
            n += 1
    return n

print("SEEN " + json.dumps({"argv": sys.argv, "name": __name__, "file": __file__}))
burn()
if sys.argv[1:2] == ["exit3"]:
    sys.exit(3)
if sys.argv[1:2] == ["raise"]:
    raise ValueError("boom from the program")
'''


BURN_NS = 300_000_000  # what burn() in PROGRAM spends


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "hot.py").write_text(PROGRAM)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "hotmod.py").write_text(PROGRAM)
    return tmp_path


def record(cwd: Path, *args: str, flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *flags, "-m", "cprof", "record", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def seen(r: subprocess.CompletedProcess[str]) -> dict[str, object]:
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("SEEN "))
    return json.loads(line[5:])  # type: ignore[no-any-return]


def assert_recorded(r: subprocess.CompletedProcess[str], out: Path) -> None:
    """The file is there, burn() is on top, and stderr ends with the top 10."""
    p = cprof.load(out)
    rows = p.top(10)
    assert rows[0].name == "__main__.burn"
    # burn() spends 0.3 s of CPU; what the interpreter spends around it
    # (start-up imports, printing a traceback) grows with the machine's load,
    # so burn's own time is judged, not its share.
    assert rows[0].flat >= 0.8 * BURN_NS, rows[0]
    # burn() is called from the program's own top level, with no frame of the
    # runner's between (3.14's tracebacks, printed for "raise", bring enough
    # functions of their own to push <module> out of the top 10).
    burns = [[loc.lines[0].function.name for loc in s.locations] for s in p.samples
             if s.locations[0].lines[0].function.name == "__main__.burn"]
    assert burns and all(stack[1:] == ["__main__.<module>"] for stack in burns), burns[:3]
    # Only the program: cprof's own work ("<cprof>", under the runner's frames)
    # may catch a tick at the very start or end of recording, never more. Ticks
    # are counted, not their share: the tick in the stop path carries the CPU
    # since the last one, 16 ms (5.2% of this profile) once on a loaded machine.
    own = [s for s in p.samples
           if any(loc.lines[0].function.name.startswith(("cprof.", "runpy.", "<cprof>"))
                  for loc in s.locations)]
    assert sum(s.values[0] for s in own) <= 2, [
        (s.values, [loc.lines[0].function.name for loc in s.locations]) for s in own]
    err = r.stderr.splitlines()
    wrote = next(i for i, ln in enumerate(err) if ln.startswith(f"cprof: wrote {out.name}")
                 or ln.startswith(f"cprof: wrote {out}"))
    header = err.index("      flat  flat%   sum%        cum   cum%")
    assert wrote < header
    printed = [ln.split()[-1] for ln in err[header + 1:] if not ln.startswith("cprof:")]
    assert printed == [row.name for row in rows]
    assert "\r" not in r.stderr and "recording" not in r.stderr  # no live count off a terminal


def test_python_script_args_after_double_dash(work: Path) -> None:
    # The re-executed python imports cprof as installed, even from a directory
    # holding a cprof package (a checkout of cprof: `make demo`); -P keeps this
    # first python from importing it too.
    (work / "cprof").mkdir()
    (work / "cprof" / "__init__.py").write_text("raise ImportError('the decoy was imported')")
    r = record(work, "-o", "out.prof", "--hz", "200", "--", sys.executable, "hot.py", "a", "-o",
               flags=("-P",))
    assert r.returncode == 0, r.stderr
    assert seen(r) == {"argv": ["hot.py", "a", "-o"], "name": "__main__",
                       "file": str(work / "hot.py")}
    assert_recorded(r, work / "out.prof")
    assert cprof.load(work / "out.prof").period == 5_000_000  # --hz reached the child


def test_script_args_default_output_and_exit_status(work: Path) -> None:
    r = record(work, "hot.py", "exit3", "--mode")
    assert r.returncode == 3, r.stderr
    assert seen(r)["argv"] == ["hot.py", "exit3", "--mode"]
    assert_recorded(r, work / "hot.cpu.prof")


def test_module_with_args(work: Path) -> None:
    r = record(work, "-o", "m.prof", "-m", "pkg.hotmod", "x", "--hz", "1")
    assert r.returncode == 0, r.stderr
    assert seen(r) == {"argv": [str(work / "pkg" / "hotmod.py"), "x", "--hz", "1"],
                       "name": "__main__", "file": str(work / "pkg" / "hotmod.py")}
    assert_recorded(r, work / "m.prof")


def test_uncaught_exception_exits_1_with_its_traceback_and_a_profile(work: Path) -> None:
    r = record(work, "-o", "e.prof", "--", sys.executable, "hot.py", "raise")
    assert r.returncode == 1
    assert "ValueError: boom from the program" in r.stderr
    traceback = r.stderr[r.stderr.index("Traceback"):r.stderr.index("ValueError")]
    assert "hot.py" in traceback and "cprof" not in traceback
    assert_recorded(r, work / "e.prof")


ANNOTATED = """\
def f(x: int) -> None: ...
print("SEEN " + repr(f.__annotations__))
"""


@pytest.mark.parametrize("how", ["script", "python", "module"])
def test_the_program_is_compiled_with_its_own_future_imports_only(tmp_path: Path,
                                                                    how: str) -> None:
    # cprof's modules have `from __future__ import annotations`; compile()
    # passes the caller's future flags on unless told not to, which made a
    # script's annotations strings under cprof record.
    (tmp_path / "annotated.py").write_text(ANNOTATED)
    program = {"script": ["annotated.py"], "python": ["--", sys.executable, "annotated.py"],
               "module": ["-m", "annotated"]}[how]
    r = record(tmp_path, "-o", "a.prof", *program)
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("SEEN "))
    assert line == "SEEN {'x': <class 'int'>, 'return': None}"


def test_mistakes_are_said_before_anything_runs(work: Path) -> None:
    r = record(work, "-o", "nowhere/x.prof", "hot.py")
    assert (r.returncode, r.stdout) == (2, "")
    assert "nowhere is not a writable directory" in r.stderr
    r = record(work, "--", "/bin/sh", "-c", "true")
    assert r.returncode == 2 and "/bin/sh is not a Python program" in r.stderr


def read_pty(fd: int, pid: int, timeout: float = 60) -> tuple[bytes, int]:
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            out += data
    _, status = os.waitpid(pid, 0)
    return out, os.waitstatus_to_exitcode(status)


def test_live_sample_count_on_a_terminal(work: Path) -> None:
    slow = work / "slow.py"
    slow.write_text(PROGRAM.replace("0.3", "0.8"))
    pid, fd = pty.fork()
    if pid == 0:  # the child: stdout and stderr are the terminal
        os.chdir(work)
        os.execv(sys.executable, [sys.executable, "-m", "cprof", "record", "--mode", "wall",
                                  "-o", "tty.prof", "--", sys.executable, str(slow)])
    out, status = read_pty(fd, pid)
    os.close(fd)
    assert status == 0, out
    text = out.decode()
    counts = text.count("cprof: recording, ")
    assert counts >= 2, text  # refreshed about 4 times a second over 0.8 s
    last = text.rindex("cprof: recording, ")
    assert text[last:].split("\r\x1b[K", 1)[1].startswith("cprof: wrote tty.prof")  # cleared
    p = cprof.load(work / "tty.prof")
    assert p.sample_types[-1].type == "wall"
    names = {s.labels.get("thread_name") for s in p.samples}
    assert "cprof-live-count" not in names  # cprof's own thread is not the program's
