"""cprof attach: real CPython 3.14+ processes, started without cprof, profiled
through sys.remote_exec; and each refusal, said plainly, on every version."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import cprof
from cprof.live import attach as attach_module

ROOT = Path(__file__).resolve().parents[2]
ATTACHABLE = sys.version_info >= (3, 14)
needs_attach = pytest.mark.skipif(
    not ATTACHABLE, reason="sys.remote_exec is 3.14+: these run in the 3.14 and 3.15 suites")

TARGET = textwrap.dedent("""
    import os, sys, time

    def attach_target_hot():
        x = 0
        for i in range(20000):
            x += i * i
        return x

    def attach_target_alloc(keep):
        keep.append([str(i) * 8 for i in range(2000)])
        del keep[:-50]

    keep = []
    end = time.monotonic() + float(sys.argv[1])
    print("ready", flush=True)
    while time.monotonic() < end:
        attach_target_hot()
        attach_target_alloc(keep)
""")


def interpreter(version: str) -> str:
    r = subprocess.run(["bash", str(ROOT / ".ci" / "python.sh"), version], capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


class Target:
    def __init__(self, tmp: Path, python: str, seconds: float = 30, code: str = TARGET,
                 env: dict[str, str] | None = None, pre: list[str] | None = None) -> None:
        script = tmp / "target.py"
        script.write_text(code)
        self.proc = subprocess.Popen([*(pre or []), python, str(script), str(seconds)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **(env or {})}, cwd=tmp)
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"
        self.pid = self.proc.pid

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.kill()
        _, err = self.proc.communicate(timeout=30)
        return err


@pytest.fixture
def targets(tmp_path: Path) -> Iterator[list[Target]]:
    made: list[Target] = []
    yield made
    for t in made:
        t.stop()


def start(targets: list[Target], tmp: Path, python: str = sys.executable,
          **kw: object) -> Target:
    t = Target(tmp, python, **kw)  # type: ignore[arg-type]
    targets.append(t)
    return t


def cprof_attach(*args: str, tmp: Path, pre: list[str] | None = None,
                 python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    # TMPDIR: the exchange directories land where the test can see them.
    return subprocess.run([*(pre or []), python, "-m", "cprof", "attach", *args],
                          capture_output=True, text=True, timeout=120, cwd=tmp,
                          env={**os.environ, "TMPDIR": str(tmp)})


def exchanges(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("cprof-attach-*"))


def top_names(profile: cprof.Profile, **options: object) -> list[str]:
    """The functions of the top 5 by flat value, heaviest first."""
    return [row.name for row in profile.top(5, **options).rows]


# --- attaching for real --------------------------------------------------------------

@needs_attach
@pytest.mark.parametrize("mode", ["cpu", "wall"])
def test_attach_profiles_the_hot_function_and_leaves_nothing(
        tmp_path: Path, targets: list[Target], mode: str) -> None:
    t = start(targets, tmp_path)
    out = tmp_path / "out.prof"
    r = cprof_attach(str(t.pid), "--seconds", "1", "--mode", mode, "--hz", "200", "-o",
                     str(out), tmp=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"attached to process {t.pid}" in r.stderr
    profile = cprof.load(out)
    assert mode in [st.type for st in profile.sample_types]
    # The profile is cprof's own, sampled in the process: the hot function
    # leads the flat column.
    assert top_names(profile)[0] == "__main__.attach_target_hot", str(profile.top(5))
    assert t.proc.poll() is None  # the target goes on
    assert exchanges(tmp_path) == []
    assert t.stop() == ""  # nothing printed into the target's stderr


@needs_attach
def test_attach_heap_dump_and_serve(tmp_path: Path, targets: list[Target]) -> None:
    t = start(targets, tmp_path)
    heap_out = tmp_path / "heap.prof"
    r = cprof_attach(str(t.pid), "--heap", "--heap-rate", "4096", "--seconds", "1", "-o",
                     str(heap_out), tmp=tmp_path)
    assert r.returncode == 0, r.stderr
    heap = cprof.load(heap_out)
    assert "alloc_space" in [st.type for st in heap.sample_types]
    assert "__main__.attach_target_alloc" in top_names(heap, sample_type="alloc_space")

    # A dump sees the main thread where it let the GIL go: mostly inside the
    # target's functions, sometimes in its loop between two calls. So its
    # stack is checked at once, and the functions within a few dumps.
    for attempt in range(5):
        r = cprof_attach(str(t.pid), "--dump", tmp=tmp_path)
        assert r.returncode == 0, r.stderr
        main = r.stdout.split('"MainThread"', 1)[1].split("\n\n", 1)[0]
        assert "__main__.<module>" in main and "target.py" in main, r.stdout
        assert "_cprof_attach" not in r.stdout, r.stdout
        if "__main__.attach_target_" in main:
            break
    else:
        raise AssertionError(f"no dump of 5 saw the target's functions: {r.stdout}")

    r = cprof_attach(str(t.pid), "--serve", "127.0.0.1:0", tmp=tmp_path)
    assert r.returncode == 0, r.stderr
    url = r.stderr.split("serves ", 1)[1].split()[0]
    for attempt in range(5):
        with urllib.request.urlopen(url + "goroutine?debug=2", timeout=30) as page:
            text = page.read().decode()
        assert "target.py" in text, text
        if "attach_target_" in text:
            break
    else:
        raise AssertionError(f"no dump of 5 saw the target's functions: {text}")
    assert exchanges(tmp_path) == []


@needs_attach
def test_a_target_without_cprof_is_told_how_and_add_path_lends_it(
        tmp_path: Path, targets: list[Target]) -> None:
    base = getattr(sys, "_base_executable", sys.executable)
    probe = subprocess.run([base, "-c", "import cprof"], capture_output=True, cwd=tmp_path)
    assert probe.returncode != 0, f"{base} imports cprof: the test needs one that does not"
    t = start(targets, tmp_path, python=base)
    r = cprof_attach(str(t.pid), "--seconds", "0.5", tmp=tmp_path)
    assert r.returncode == 2
    assert f"cprof is not importable in process {t.pid}" in r.stderr
    assert "--add-path" in r.stderr and "pip install cprof" in r.stderr
    assert t.proc.poll() is None
    out = tmp_path / "lent.prof"
    r = cprof_attach(str(t.pid), "--seconds", "1", "--add-path", "-o", str(out), tmp=tmp_path)
    assert r.returncode == 0, r.stderr
    assert top_names(cprof.load(out))[0] == "__main__.attach_target_hot"
    assert exchanges(tmp_path) == []


@needs_attach
def test_a_target_that_exits_midway_gives_what_it_had(tmp_path: Path,
                                                      targets: list[Target]) -> None:
    t = start(targets, tmp_path, seconds=1.5)
    out = tmp_path / "partial.prof"
    r = cprof_attach(str(t.pid), "--seconds", "20", "-o", str(out), tmp=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "the process exited after" in r.stderr
    profile = cprof.load(out)
    assert 0.5e9 < profile.duration_ns < 3e9
    assert top_names(profile)[0] == "__main__.attach_target_hot"
    assert exchanges(tmp_path) == []


@needs_attach
def test_a_target_killed_midway_is_said(tmp_path: Path, targets: list[Target]) -> None:
    t = start(targets, tmp_path)
    attacher = subprocess.Popen([sys.executable, "-m", "cprof", "attach", str(t.pid),
                                 "--seconds", "20", "-o", str(tmp_path / "never.prof")],
                                stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                                env={**os.environ, "TMPDIR": str(tmp_path)})
    assert attacher.stderr is not None
    assert "attached to process" in attacher.stderr.readline()
    t.proc.send_signal(signal.SIGKILL)
    _, err = attacher.communicate(timeout=60)
    assert attacher.returncode == 2
    assert f"process {t.pid} exited" in err and "before it wrote the result" in err
    assert not (tmp_path / "never.prof").exists()
    assert exchanges(tmp_path) == []


@needs_attach
def test_a_target_blocked_in_c_times_out_and_cleans_up_later(tmp_path: Path,
                                                             targets: list[Target]) -> None:
    code = "import sys, time\nprint('ready', flush=True)\ntime.sleep(float(sys.argv[1]))\n"
    t = start(targets, tmp_path, seconds=2.5, code=code)
    r = cprof_attach(str(t.pid), "--timeout", "0.5", tmp=tmp_path)
    assert r.returncode == 2
    assert "did not run cprof's script within 0.5 s" in r.stderr
    assert len(exchanges(tmp_path)) == 1  # the target has yet to run what is left there
    assert t.proc.wait(timeout=30) == 0
    assert t.stop() == ""
    assert exchanges(tmp_path) == []  # it ran the cleaning script when it woke
    assert not list(tmp_path.glob("*.prof"))


@needs_attach
def test_remote_debugging_disabled_is_said(tmp_path: Path, targets: list[Target]) -> None:
    t = start(targets, tmp_path, env={"PYTHON_DISABLE_REMOTE_DEBUG": "1"})
    r = cprof_attach(str(t.pid), "--seconds", "0.5", tmp=tmp_path)
    assert r.returncode == 2
    assert f"process {t.pid} has remote debugging disabled" in r.stderr
    assert "PYTHON_DISABLE_REMOTE_DEBUG" in r.stderr
    assert exchanges(tmp_path) == []


@needs_attach
def test_another_minor_version_is_refused_with_the_interpreter_to_use(
        tmp_path: Path, targets: list[Target]) -> None:
    other = "3.15" if sys.version_info[:2] == (3, 14) else "3.14"
    t = start(targets, tmp_path, python=interpreter(other))
    r = cprof_attach(str(t.pid), "--seconds", "0.5", tmp=tmp_path)
    assert r.returncode == 2
    assert f"process {t.pid} runs CPython {other}." in r.stderr
    assert "must be the same version and build" in r.stderr
    assert f"-m cprof attach {t.pid}" in r.stderr


# --- refusals, on every version ---------------------------------------------------------

def test_an_older_python_target_is_refused(tmp_path: Path, targets: list[Target]) -> None:
    t = start(targets, tmp_path, python=interpreter("3.11"))
    r = cprof_attach(str(t.pid), tmp=tmp_path)
    assert r.returncode == 2
    assert f"process {t.pid} runs CPython 3.11" in r.stderr
    assert "needs 3.14 or later" in r.stderr and "cprof serve" in r.stderr


@pytest.mark.skipif(ATTACHABLE, reason="the attacher here has sys.remote_exec")
def test_an_attacher_without_remote_exec_names_the_interpreter_to_use(
        tmp_path: Path, targets: list[Target]) -> None:
    python = interpreter("3.14")
    t = start(targets, tmp_path, python=python)
    r = cprof_attach(str(t.pid), tmp=tmp_path)
    assert r.returncode == 2
    assert f"process {t.pid} runs CPython 3.14." in r.stderr
    assert f"{os.path.realpath(python)} -m cprof attach {t.pid}" in r.stderr


def test_a_process_that_is_not_python_is_refused(tmp_path: Path) -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        r = cprof_attach(str(sleeper.pid), tmp=tmp_path)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert r.returncode == 2
    assert f"process {sleeper.pid} (/usr/bin/sleep) is not a CPython process" in r.stderr


def test_no_such_process_and_bad_arguments(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    r = cprof_attach(str(gone.pid), tmp=tmp_path)
    assert (r.returncode, r.stderr.strip()) == (2, f"cprof attach: no process {gone.pid}")
    r = cprof_attach(str(os.getpid()), "--seconds", "0", tmp=tmp_path)
    assert r.returncode == 2 and "--seconds must be more than 0" in r.stderr
    r = cprof_attach("nope", tmp=tmp_path)
    assert r.returncode == 2 and "invalid int value" in r.stderr
    with pytest.raises(attach_module.AttachError, match="is this process"):
        attach_module.inspect(os.getpid())
    with pytest.raises(attach_module.AttachError, match="positive integer"):
        attach_module.inspect(-5)


def test_no_permission_is_said(tmp_path: Path, targets: list[Target]) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root, to drop CAP_SYS_PTRACE from the attacher")
    # A process that made itself undumpable can be read only with
    # CAP_SYS_PTRACE, which the attacher is started without.
    code = ("import ctypes, sys, time\nctypes.CDLL(None).prctl(4, 0, 0, 0, 0)\n"
            "print('ready', flush=True)\ntime.sleep(float(sys.argv[1]))\n")
    t = start(targets, tmp_path, code=code)
    r = cprof_attach(str(t.pid), tmp=tmp_path,
                     pre=["setpriv", "--inh-caps=-sys_ptrace", "--bounding-set=-sys_ptrace"])
    assert r.returncode == 2
    assert f"no permission to read process {t.pid}'s" in r.stderr
    assert "CAP_SYS_PTRACE" in r.stderr


def test_the_processs_answers_are_read_as_untrusted_files(tmp_path: Path) -> None:
    """The exchange directory is the target's when root attaches to another
    user's process: what it holds is read without following links, only from
    regular files, and within a size."""
    read = attach_module.read_answer
    assert read(str(tmp_path / "absent"), 10) is None
    (tmp_path / "ok").write_bytes(b"0123456789")
    assert read(str(tmp_path / "ok"), 10) == b"0123456789"
    with pytest.raises(attach_module.AttachError, match="over 9 bytes"):
        read(str(tmp_path / "ok"), 9)
    secret = tmp_path / "secret"
    secret.write_text("root's")
    (tmp_path / "link").symlink_to(secret)
    with pytest.raises(attach_module.AttachError, match="symbolic link is refused"):
        read(str(tmp_path / "link"), 100)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(attach_module.AttachError, match="not a regular file"):
        read(str(tmp_path / "fifo"), 100)
