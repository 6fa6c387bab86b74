"""CPU profiler overhead: cprof's sampler against cProfile, pyinstrument, yappi and py-spy.

One run times two workloads, each a fixed amount of work sized to take about
--seconds of CPU unprofiled:

  - "arithmetic": a CPU-bound loop of floating-point arithmetic, one Python
    frame and almost no calls;
  - "calls": recursive fib, many small Python function calls;

both run below a stack of NEST_DEPTH frames, as code in a real program does.
Each is run under every configuration in CONFIGS: unprofiled; cprof at 100 and
1000 Hz on CPU time and at 100 Hz on wall time; cProfile; pyinstrument (its
default interval); yappi on the CPU clock; py-spy record --nonblocking at 100
and 1000 Hz, which samples from outside the process.

Every run is a fresh subprocess. In-process profilers are started before and
stopped after the timed region, so the figure is the process CPU time (every
thread: cprof's helper thread and its drains included) of the work while
profiled; what start and stop cost is reported apart. For py-spy the figure
is the target's own CPU time for the same work, and py-spy's own CPU time
(its process, from wait4, less the target's) is reported on a row of its own.
Repeats are interleaved (round i runs every configuration once, in an order
rotated by i) and each ratio is profiled / unprofiled CPU time of the same
round; the table gives the median and the range of those ratios, and the
best profiled run over the best unprofiled one.

On a shared machine, runs in separate processes vary by a few percent, more
than the 1% cprof aims at; so cprof is also measured paired in one process
(see paired()), and the CPU its helper thread takes is reported apart, from
the per-thread CPU clocks.

    python benchmarks/cpu_overhead.py [--repeat N] [--seconds S] [--json OUT]
                                      [--python 3.11,3.14,... | PATH ...]

pyinstrument, yappi and py-spy are pip-installed into the benchmarked
interpreter's environment if missing; a peer that cannot be installed or does
not run there is reported unavailable, with the reason, and left out.

--python (repeatable, or comma-separated) runs the whole benchmark once for
each interpreter named, in turn, and ends with a table of cprof's ratios side
by side: "3.14" means this checkout's .venv/3.14/bin/python (as .ci/venv.sh
makes it, cprof installed), anything else is a path to a python or a command
on PATH. Without it the benchmark runs on the interpreter running the script.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from _hooks import measure_record_ns
from _machine import cpu_model, markdown_table

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# The targets: cprof's CPU time over unprofiled, at most.
TARGETS = {"cprof-cpu-100": 1.01, "cprof-cpu-1000": 1.05}

NEST_DEPTH = 30     # frames below the workload, as in a program
ARITH_N = 20_000    # loop iterations per unit of "arithmetic"
FIB_N = 18          # fib(18): 8,361 calls per unit of "calls"
RECORD_DEPTH = 50   # stack depth at which the handler's cost is measured
PAIRS = 20          # alternations of the in-process paired measurement
SEGMENT = 0.1       # its segments, as a fraction of the work

# Tracing profilers slow "calls" so much (yappi about 40x) that the full work
# would take minutes: they run this fraction of it, and their CPU time is
# scaled back up. Their ratios are large, so the shorter run costs no accuracy
# that matters.
WORK_FRACTION = {("calls", "cProfile"): 1 / 5, ("calls", "pyinstrument"): 1 / 5,
                 ("calls", "yappi-cpu"): 1 / 40}


def import_cprof() -> Any:
    """cprof as installed, else this checkout's in-place build, with its C core
    loaded (``import cprof`` alone leaves cprof._core for the first use that needs it)."""
    try:
        importlib.import_module("cprof._core")
    except ImportError:
        sys.path.insert(0, ROOT)
        importlib.import_module("cprof._core")
    return importlib.import_module("cprof")


# --- workloads --------------------------------------------------------------------

def arith(n: int) -> float:
    # Floating point, not integer %: on this shared machine the divider is
    # contended by whatever runs on the other hyperthread, and integer
    # division loops varied 5-8% from run to run where this varies ~2%.
    x = 0.5
    for _ in range(n):
        x = x * 1.0000001 + 0.5 - x * 0.0000001
    return x


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def arithmetic_work(units: int) -> None:
    for _ in range(units):
        arith(ARITH_N)


def calls_work(units: int) -> None:
    for _ in range(units):
        fib(FIB_N)


WORKLOADS: dict[str, Callable[[int], None]] = {"arithmetic": arithmetic_work,
                                                "calls": calls_work}


def stack_depth() -> int:
    f: Any = sys._getframe(1)
    n = 0
    while f is not None:
        f, n = f.f_back, n + 1
    return n


def at_depth(depth: int, fn: Callable[..., Any], *args: Any) -> Any:
    """Call fn(*args) with `depth` frames on the stack below it."""
    def nest(k: int) -> Any:
        return fn(*args) if k <= 1 else nest(k - 1)
    return nest(max(1, depth - stack_depth()))


# --- profilers, each started and stopped in the worker ----------------------------
# A setup returns (start, stop); stop returns figures to report.

Profiler = tuple[Callable[[], None], Callable[[], dict[str, Any]]]


def setup_none() -> Profiler:
    return (lambda: None), (lambda: {})


def setup_cprof(hz: int, mode: str) -> Callable[[], Profiler]:
    def setup() -> Profiler:
        cprof = import_cprof()

        def stop() -> dict[str, Any]:
            taken = cprof._core.cpu_sample_count()
            profile = cprof.stop_cpu_profile()
            count, ns = profile.totals()
            return {"samples": taken, "profile_samples": count, "profile_ns": ns,
                    "comment": profile.comments[0]}
        return (lambda: cprof.start_cpu_profile(hz=hz, mode=mode)), stop
    return setup


def setup_cprofile() -> Profiler:
    import cProfile
    p = cProfile.Profile()

    def stop() -> dict[str, Any]:
        p.disable()
        return {}
    return p.enable, stop


def setup_pyinstrument() -> Profiler:
    from pyinstrument import Profiler as PyinstrumentProfiler
    p = PyinstrumentProfiler()

    def stop() -> dict[str, Any]:
        session = p.stop()
        return {"interval_s": p.interval, "samples": session.sample_count}
    return p.start, stop


def setup_yappi() -> Profiler:
    import yappi
    yappi.set_clock_type("cpu")

    def stop() -> dict[str, Any]:
        yappi.stop()
        return {}
    return yappi.start, stop


CONFIGS: dict[str, tuple[str, Callable[[], Profiler] | None]] = {
    "none": ("unprofiled", setup_none),
    "cprof-cpu-100": ("cprof cpu 100 Hz", setup_cprof(100, "cpu")),
    "cprof-cpu-1000": ("cprof cpu 1000 Hz", setup_cprof(1000, "cpu")),
    "cprof-wall-100": ("cprof wall 100 Hz", setup_cprof(100, "wall")),
    "cProfile": ("cProfile", setup_cprofile),
    "pyinstrument": ("pyinstrument (default interval)", setup_pyinstrument),
    "yappi-cpu": ("yappi (cpu clock)", setup_yappi),
    "py-spy-100": ("py-spy --rate 100 (target)", None),
    "py-spy-1000": ("py-spy --rate 1000 (target)", None),
}
PY_SPY_RATES = {"py-spy-100": 100, "py-spy-1000": 1000}


def cpu_s() -> float:
    return time.process_time()


def thread_cpu_s() -> float:
    return time.clock_gettime(time.CLOCK_THREAD_CPUTIME_ID)


def worker(config: str, workload: str, units: int) -> dict[str, Any]:
    setup = CONFIGS[config][1]
    assert setup is not None
    work = WORKLOADS[workload]
    at_depth(NEST_DEPTH, work, 1)  # warm up
    start, stop = setup()
    c0 = cpu_s()
    start()
    c1, m1, w1 = cpu_s(), thread_cpu_s(), time.perf_counter()
    at_depth(NEST_DEPTH, work, units)
    c2, m2, w2 = cpu_s(), thread_cpu_s(), time.perf_counter()
    extra = stop()
    c3 = cpu_s()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return dict(extra, cpu_s=c2 - c1, main_thread_cpu_s=m2 - m1, wall_s=w2 - w1,
                start_stop_cpu_s=(c1 - c0) + (c3 - c2),
                process_cpu_s=ru.ru_utime + ru.ru_stime)


def calibrate(workload: str) -> float:
    """CPU seconds per unit of the workload, unprofiled."""
    work = WORKLOADS[workload]
    at_depth(NEST_DEPTH, work, 1)
    units = 1
    while True:
        t0 = cpu_s()
        at_depth(NEST_DEPTH, work, units)
        t = cpu_s() - t0
        if t >= 0.5:
            return t / units
        units *= 2


def paired(workload: str, units: int, pairs: int) -> dict[str, list[list[float]]]:
    """cprof against no profiler in one process: short segments of the work,
    alternating unprofiled / 100 Hz / 1000 Hz (order reversed every other
    time), so that each comparison is between neighbours a fraction of a
    second apart. Per segment: [process CPU s, main thread CPU s, samples]."""
    cprof = import_cprof()
    work = WORKLOADS[workload]
    at_depth(NEST_DEPTH, work, 1)
    out: dict[str, list[list[float]]] = {"none": [], "cprof-cpu-100": [], "cprof-cpu-1000": []}

    def segment(hz: int) -> list[float]:
        if hz:
            cprof.start_cpu_profile(hz=hz)
        c0, m0 = cpu_s(), thread_cpu_s()
        at_depth(NEST_DEPTH, work, units)
        c1, m1 = cpu_s(), thread_cpu_s()
        n = cprof._core.cpu_sample_count() if hz else 0
        if hz:
            cprof.stop_cpu_profile()
        return [c1 - c0, m1 - m0, n]
    for i in range(pairs):
        names = list(out) if i % 2 == 0 else list(out)[::-1]
        for name in names:
            out[name].append(segment(0 if name == "none" else int(name.rsplit("-", 1)[1])))
    return out


def record_ns() -> float:
    """The handler's mean record cost for a RECORD_DEPTH-frame stack."""
    cprof = import_cprof()
    return float(at_depth(RECORD_DEPTH, measure_record_ns(cprof._core), 20_000))


# --- interpreters and peers ---------------------------------------------------------

def resolve_pythons(specs: Sequence[str]) -> list[str]:
    """--python's values in order, duplicates dropped: a version such as "3.14"
    is this checkout's .venv/3.14/bin/python (as .ci/venv.sh makes it, cprof
    installed); anything else is a path, or a command on PATH."""
    out: list[str] = []
    for spec in (s.strip() for value in specs for s in value.split(",")):
        if not spec:
            continue
        version = re.fullmatch(r"\d+\.\d+", spec) is not None
        if version:
            path = os.path.join(ROOT, ".venv", spec, "bin", "python")
        else:
            path = spec if os.sep in spec else (shutil.which(spec) or spec)
        # abspath, not realpath: a venv's bin/python is a symlink, and only
        # when started through it does the interpreter see the venv's packages.
        path = os.path.abspath(path)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            hint = f" (make it: bash .ci/venv.sh {spec} .venv/{spec})" if version else ""
            raise ValueError(f"--python {spec}: no interpreter at {path}{hint}")
        if path not in out:
            out.append(path)
    return out


class PeerError(Exception):
    """A peer cannot be installed or does not run; the message is the reason,
    one line."""


@dataclass(frozen=True)
class Peer:
    """A profiler cprof is compared with, as one interpreter has it."""
    name: str                          # as printed
    package: str | None                # what pip installs; None: the standard library's
    configs: tuple[str, ...]           # the configurations that need it
    check: Callable[[str, str], None]  # (python, tmp): raises PeerError unless it runs there


def one_line(text: str, limit: int = 240) -> str:
    """The line of a failure's output that says why: a compiler's or linker's
    error, else a Python exception, else pip's own ERROR, else the last line.
    pip's wrappers around a failed build ("subprocess-exited-with-error",
    "Failed building wheel") name no cause, so they are passed over."""
    lines = [line.strip(" \t│╰─>×") for line in text.splitlines()]
    lines = [line for line in lines if line]
    generic = re.compile(r"subprocess-exited-with-error|Failed (building|to build)|"
                         r"failed-wheel-build|Could not build wheels|exit code: \d+|"
                         r"metadata-generation-failed|^note:|^hint:|See above|"
                         r"error: command '.*' failed", re.I)
    for pattern in (r"(fatal )?error:|undefined reference|cannot find -l",
                    r"^([A-Za-z_.]+(Error|Exception)|Error)\b.*:",
                    r"^ERROR:|^Error\b|error"):
        for line in lines:
            if re.search(pattern, line) and not generic.search(line):
                return line[:limit]
    return (lines[-1] if lines else "no output")[:limit]


def run_checked(cmd: list[str], tmp: str, timeout: float = 120,
                env: dict[str, str] | None = None) -> str:
    """Run cmd; its stdout, or PeerError with the reason."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, timeout=timeout,
                              env=dict(env or os.environ, PYTHONHASHSEED="0"))
    except subprocess.TimeoutExpired:
        raise PeerError(f"{os.path.basename(cmd[0])} did not finish in {timeout:.0f} s") from None
    except OSError as e:
        raise PeerError(f"{cmd[0]}: {e.strerror}") from None
    if proc.returncode != 0:
        raise PeerError(one_line(proc.stderr + "\n" + proc.stdout))
    return proc.stdout


def failure(e: Exception) -> str:
    """One line of why a benchmark's subprocess failed."""
    text = (e.stderr if isinstance(e, subprocess.CalledProcessError) else None) or str(e)
    return one_line(text if isinstance(text, str) else text.decode(errors="replace"))


def check_code(code: str) -> Callable[[str, str], None]:
    """A check that the peer imports and profiles a moment of work in the
    interpreter: installing is not enough (a wheel built for another CPython,
    or one that refuses a version it does not know)."""
    def check(python: str, tmp: str) -> None:
        run_checked([python, "-c", code], tmp)
    return check


BUSY = "sum(i * i for i in range(300_000))"


def check_py_spy(python: str, tmp: str) -> None:
    """py-spy reads the interpreter's memory with layouts it knows per CPython
    version: on one it does not know it fails or records nothing."""
    raw = os.path.join(tmp, "py-spy-check.txt")
    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass"
    run_checked([py_spy(python), "record", "--rate", "100", "--nonblocking", "--format", "raw",
                 "-o", raw, "--", python, "-c", busy], tmp)
    with open(raw) as f:
        if not any(line.strip() for line in f):
            raise PeerError(f"py-spy recorded no samples of python {python_version(python)}")


PEERS = [
    Peer("cProfile", None, ("cProfile",), check_code(
        f"import cProfile\np = cProfile.Profile()\np.enable()\n{BUSY}\np.disable()")),
    Peer("pyinstrument", "pyinstrument", ("pyinstrument",), check_code(
        f"from pyinstrument import Profiler\np = Profiler()\np.start()\n{BUSY}\np.stop()")),
    Peer("yappi", "yappi", ("yappi-cpu",), check_code(
        f"import yappi\nyappi.set_clock_type('cpu')\nyappi.start()\n{BUSY}\nyappi.stop()")),
    Peer("py-spy", "py-spy", tuple(PY_SPY_RATES), check_py_spy),
]


def python_version(python: str) -> str:
    return subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                          capture_output=True, text=True).stdout.strip() or "?"


def python_headers(python: str, tmp: str) -> tuple[str, bool]:
    """python's include directory, and whether Debian's multiarch pyconfig.h
    is kept beside it: Debian's <pythonX.Y/pyconfig.h> includes
    <MULTIARCH/pythonX.Y/pyconfig.h>, which a Debian interpreter unpacked
    outside /usr (.ci/pythons.sh's 3.14 and 3.15) keeps in the include
    directory's parent, where no compiler looks unless told."""
    code = ("import os, sysconfig\n"
            "inc = sysconfig.get_paths()['include']\n"
            "parent, arch = os.path.dirname(inc), sysconfig.get_config_var('MULTIARCH')\n"
            "print(inc)\n"
            "print(bool(arch and parent != '/usr/include' and os.path.exists(\n"
            "    os.path.join(parent, arch, os.path.basename(inc), 'pyconfig.h'))))")
    include, beside = run_checked([python, "-c", code], tmp).split("\n")[:2]
    return include, beside == "True"


def build_env(python: str, tmp: str) -> dict[str, str]:
    """The environment for building a peer from source for python: setup.py
    adds the directory of Debian's multiarch pyconfig.h (python_headers) for
    cprof, and CPATH adds it for a peer's build alike."""
    include, beside = python_headers(python, tmp)
    if not beside:
        return dict(os.environ)
    parent = os.path.dirname(include)
    cpath = os.environ.get("CPATH")
    return dict(os.environ, CPATH=f"{parent}:{cpath}" if cpath else parent)


def installed_version(python: str, package: str, tmp: str) -> str | None:
    code = ("import importlib.metadata as m, sys\n"
            "try: print(m.version(sys.argv[1]))\n"
            "except m.PackageNotFoundError: pass")
    return run_checked([python, "-c", code, package], tmp).strip() or None


def ensure_peers(python: str, peers: Sequence[Peer],
                 tmp: str | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """Install each missing peer into python's environment and check that it
    runs there, in tmp (a directory of its own if None: a check may leave
    there what the runs use). Returns ({peer: version}, {peer: why
    unavailable}): one peer failing to build (no wheel for a new CPython, a
    missing library) leaves the others and the benchmark to go on."""
    if tmp is None:
        with tempfile.TemporaryDirectory() as own:
            return ensure_peers(python, peers, own)
    versions: dict[str, str] = {}
    unavailable: dict[str, str] = {}
    for peer in peers:
        try:
            version = "stdlib"
            if peer.package:
                found = installed_version(python, peer.package, tmp)
                if found is None:
                    # A build from source on 2 cores can take minutes.
                    try:
                        run_checked([python, "-m", "pip", "install", "-q", peer.package],
                                    tmp, timeout=1200, env=build_env(python, tmp))
                    except PeerError as e:
                        raise PeerError(f"pip install {peer.package} failed: {e}") from None
                    found = installed_version(python, peer.package, tmp)
                if found is None:
                    raise PeerError(f"pip installed {peer.package} but it is not found")
                version = found
            peer.check(python, tmp)
            versions[peer.name] = version
        except PeerError as e:
            unavailable[peer.name] = str(e)
    return versions, unavailable


# --- the driver ---------------------------------------------------------------------

def py_spy(python: str = sys.executable) -> str:
    local = os.path.join(os.path.dirname(python), "py-spy")
    return local if os.path.exists(local) else "py-spy"


def become_subreaper() -> None:
    """Have orphaned descendants handed to this process, not to init. py-spy
    record does not always reap the target it started: sometimes it exits
    without waiting for it (3 of 98 tries on 3.11, 7 of 60 on 3.14, on a
    2-core VM), the target still finishing. The target's CPU is then
    missing from py-spy's wait4 figure, and py-spy's own CPU (that figure
    less the target's) came out near zero or negative. As subreaper this
    process waits for such a target itself and adds its CPU back."""
    import ctypes
    PR_SET_CHILD_SUBREAPER = 36
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def wait_cpu_s(cmd: list[str]) -> float:
    """Run cmd; return its CPU time, descendants included: those it waited
    for, and those it left behind (see become_subreaper)."""
    # A fixed hash seed takes one source of run-to-run variance away.
    env = dict(os.environ, PYTHONHASHSEED="0")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    total = ru.ru_utime + ru.ru_stime
    # Whatever cmd left behind is this process's child by now, and may still
    # be finishing: wait for it too. Runs are sequential, so there is no
    # other child to wait for.
    while True:
        try:
            _, _, ru = os.wait4(-1, 0)
        except ChildProcessError:
            break
        total += ru.ru_utime + ru.ru_stime
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {err.decode()[-2000:]}")
    return total


def run(python: str, config: str, workload: str, units: int, tmp: str) -> dict[str, Any]:
    out = os.path.join(tmp, "result.json")
    # Never the previous run's figures: py-spy can exit 0 having run nothing.
    if os.path.exists(out):
        os.unlink(out)
    fraction = WORK_FRACTION.get((workload, config), 1.0)
    cmd = [python, os.path.abspath(__file__), "--worker", config if config not in
           PY_SPY_RATES else "none", "--workload", workload,
           "--units", str(max(1, round(units * fraction))), "--out", out]
    if config in PY_SPY_RATES:
        become_subreaper()
        raw = os.path.join(tmp, "py-spy.txt")
        cmd = [py_spy(python), "record", "--rate", str(PY_SPY_RATES[config]), "--nonblocking",
               "--format", "raw", "-o", raw, "--"] + cmd
    total = wait_cpu_s(cmd)
    with open(out) as f:
        r: dict[str, Any] = json.load(f)
    r["work_fraction"] = fraction
    r["children_cpu_s"] = total
    if config in PY_SPY_RATES:
        r["profiler_cpu_s"] = total - r["process_cpu_s"]
        with open(raw) as f:
            r["samples"] = sum(int(line.rsplit(" ", 1)[1]) for line in f if line.strip())
    return r


def run_peer(run_one: Callable[[], dict[str, Any]], config: str, workload: str,
             peers: Sequence[Peer], unavailable: dict[str, str]) -> dict[str, Any] | None:
    """run_one(), or None when config is a peer's and it failed: the peer is
    then recorded unavailable, with the reason, and the benchmark goes on.
    cprof's own configurations are not caught: their failure is the news."""
    peer = next((p for p in peers if config in p.configs), None)
    if peer is None:
        return run_one()
    try:
        return run_one()
    except (RuntimeError, OSError, ValueError, KeyError, subprocess.CalledProcessError) as e:
        unavailable[peer.name] = f"failed during the run ({config}, {workload}): {failure(e)}"
        print(f"{peer.name} unavailable: {unavailable[peer.name]}", flush=True)
        return None


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine(python: str = sys.executable) -> dict[str, Any]:
    cpu = cpu_model()
    # Asked of the benchmarked interpreter, which need not be the one running
    # this script: its version and the cprof it imports.
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "info.json")
        cmd = [python, os.path.abspath(__file__), "--worker", "info", "--out", out]
        proc = subprocess.run(cmd, stderr=subprocess.PIPE, text=True)
        sys.stderr.write(proc.stderr)
        if proc.returncode != 0:  # no cprof there: the reason is in its stderr
            raise subprocess.CalledProcessError(proc.returncode, cmd, stderr=proc.stderr)
        with open(out) as f:
            where = json.load(f)
    cprof_dir = where["cprof_path"]
    commit = subprocess.run(["git", "-C", cprof_dir, "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip() or "(not a checkout)"
    hz = "unknown"
    try:
        import gzip
        with gzip.open("/proc/config.gz", "rt") as f:
            m = re.search(r"^CONFIG_HZ=(\d+)$", f.read(), re.M)
            hz = m.group(1) if m else hz
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "os": platform.platform(),
            "kernel_hz": hz, "python": where["python"],
            "cprof_commit": commit, "cprof_path": cprof_dir,
            "date": datetime.date.today().isoformat()}


def where_info() -> dict[str, str]:
    """The --worker info child: this interpreter's version and cprof."""
    return {"python": platform.python_version(),
            "cprof_path": os.path.dirname(import_cprof().__file__)}


def format_table(rows: Sequence[tuple[str, ...]]) -> str:
    return markdown_table(list(rows))


def ratios(runs: dict[str, list[dict[str, Any]]], config: str,
           key: Callable[[dict[str, Any]], float] = lambda r: r["cpu_s"]) -> list[float]:
    """Per round: the configuration's CPU time for the whole work over the
    unprofiled run's of the same round."""
    return [key(r) / r["work_fraction"] / base["cpu_s"]
            for r, base in zip(runs[config], runs["none"])]


def best_ratio(runs: dict[str, list[dict[str, Any]]], config: str,
               key: Callable[[dict[str, Any]], float] = lambda r: r["cpu_s"]) -> float:
    """Best over best: contention only ever adds time, so the fastest run of
    each is the least disturbed."""
    best: float = min(key(r) / r["work_fraction"] for r in runs[config])
    base: float = min(r["cpu_s"] for r in runs["none"])
    return best / base


def overhead_table(results: dict[str, dict[str, list[dict[str, Any]]]]) -> str:
    head = ["profiler"]
    for w in results:
        head += [f"{w}: median x (min-max)", "best x", "start+stop ms"]
    rows = [tuple(head)]
    for config, (label, _) in CONFIGS.items():
        if any(config not in runs for runs in results.values()):
            continue  # left out: --only, or its peer unavailable
        keys: list[tuple[str, Callable[[dict[str, Any]], float]]] = [
            (label, lambda r: r["cpu_s"])]
        if config in PY_SPY_RATES:
            keys.append((label.replace("(target)", "(target + py-spy)"),
                         lambda r: r["cpu_s"] + r["profiler_cpu_s"]))
        for name, key in keys:
            row = [name]
            for w, runs in results.items():
                if config == "none":
                    none = [r["cpu_s"] for r in runs["none"]]
                    row += [f"{statistics.median(none):.3f} s CPU", f"{min(none):.3f} s", "-"]
                    continue
                xs = ratios(runs, config, key)
                start_stop = statistics.median(r["start_stop_cpu_s"] for r in runs[config])
                row += [f"{statistics.median(xs):.3f} ({min(xs):.3f}-{max(xs):.3f})",
                        f"{best_ratio(runs, config, key):.3f}",
                        "-" if config in PY_SPY_RATES else f"{start_stop * 1e3:.1f}"]
            rows.append(tuple(row))
    return format_table(rows)


def samples_table(results: dict[str, dict[str, list[dict[str, Any]]]]) -> str:
    """Medians per run: samples taken against what the rate promises (CPU
    time of the main thread for cprof cpu, wall time for the others), and for
    cprof the CPU its profile accounts for and the CPU of its other threads."""
    rows = [("profiler", "workload", "samples", "expected", "profile CPU s", "process CPU s",
             "main thread s", "other threads ms", "other threads %")]
    for config in ("cprof-cpu-100", "cprof-cpu-1000", "cprof-wall-100", "pyinstrument",
                   "py-spy-100", "py-spy-1000"):
        for w, runs in results.items():
            if config not in runs:
                continue  # its peer unavailable
            rs = runs[config]

            def med(f: Callable[[dict[str, Any]], float]) -> float:
                return statistics.median(f(r) for r in rs)
            hz = (1 / rs[0]["interval_s"] if config == "pyinstrument"
                  else int(config.rsplit("-", 1)[1]))
            basis = "main_thread_cpu_s" if config.startswith("cprof-cpu") else "wall_s"
            cprof = config.startswith("cprof")
            other = med(lambda r: max(0.0, r["cpu_s"] - r["main_thread_cpu_s"]))
            share = med(lambda r: max(0.0, r["cpu_s"] - r["main_thread_cpu_s"]) / r["cpu_s"])
            rows.append((CONFIGS[config][0], w, f"{med(lambda r: r['samples']):.0f}",
                         f"{med(lambda r: r[basis]) * hz:.0f}",
                         f"{med(lambda r: r['profile_ns']) / 1e9:.3f}" if cprof else "-",
                         f"{med(lambda r: r['cpu_s']):.3f}",
                         f"{med(lambda r: r['main_thread_cpu_s']):.3f}",
                         f"{other * 1e3:.1f}" if cprof else "-",
                         f"{share * 100:.2f}" if cprof else "-"))
    return format_table(rows)


def pair_ratios(segs: dict[str, list[list[float]]], config: str, i: int) -> tuple[float, float]:
    """Mean and standard error of the per-pair ratio to the unprofiled
    segment; i = 0 for process CPU, 1 for the main thread's."""
    xs = [a[i] / b[i] for a, b in zip(segs[config], segs["none"])]
    return statistics.mean(xs), statistics.stdev(xs) / len(xs) ** 0.5


def print_header(info: dict[str, Any], peers: Sequence[Peer], versions: dict[str, str],
                 unavailable: dict[str, str]) -> None:
    """The machine, the interpreter, cprof and each peer's version, why a
    peer is unavailable, and the load before the runs."""
    print(f"machine: {info['cpu']}, {info['cores']} cores; {info['os']}; "
          f"kernel HZ {info['kernel_hz']}")
    print(f"python {info['python']}; cprof {info['cprof_commit']} ({info['cprof_path']}); "
          + "".join(f"{p.name} {versions.get(p.name, 'unavailable')}; "
                    for p in peers if p.package) + info["date"])
    for name, why in unavailable.items():
        print(f"{name} unavailable: {why}")
    print(f"load average before: {info['load_before']}")


def measure(python: str, args: argparse.Namespace) -> dict[str, Any]:
    """The benchmark on one interpreter, printing its header and progress as
    it goes; returns what report() prints and --json writes."""
    t_start = time.monotonic()
    versions, unavailable = ensure_peers(python, PEERS)
    info = machine(python)
    info.update({p.name: versions[p.name] for p in PEERS if p.package and p.name in versions},
                repeat=args.repeat, seconds=args.seconds, load_before=loadavg())
    print_header(info, PEERS, versions, unavailable)

    with tempfile.TemporaryDirectory() as tmp:
        def child(kind: str, workload: str = "", units: int = 0) -> Any:
            out = os.path.join(tmp, "result.json")
            cmd = [python, os.path.abspath(__file__), "--worker", kind,
                   "--workload", workload or "calls", "--units", str(units), "--out", out,
                   "--pairs", str(args.pairs)]
            # stderr passed on as it comes, and kept for the one-line reason
            # should cprof fail on this interpreter.
            proc = subprocess.run(cmd, stderr=subprocess.PIPE, text=True,
                                  env=dict(os.environ, PYTHONHASHSEED="0"))
            sys.stderr.write(proc.stderr)
            if proc.returncode != 0:
                raise subprocess.CalledProcessError(proc.returncode, cmd, stderr=proc.stderr)
            with open(out) as f:
                return json.load(f)

        units = {w: max(1, round(args.seconds / child("calibrate", w))) for w in WORKLOADS}
        info["units"] = units
        info["record_ns"] = child("record")
        print(f"workloads: arithmetic = {units['arithmetic']} x arith({ARITH_N}); calls = "
              f"{units['calls']} x fib({FIB_N}); below {NEST_DEPTH} frames; "
              f"{args.repeat} interleaved rounds")

        def left_out() -> set[str]:
            return {c for p in PEERS if p.name in unavailable for c in p.configs}
        names = [c for c in CONFIGS if c not in left_out()]
        results: dict[str, dict[str, list[dict[str, Any]]]] = {
            w: {c: [] for c in names} for w in WORKLOADS}
        for i in range(args.repeat):
            order = names[i % len(names):] + names[:i % len(names)]
            for w in WORKLOADS:
                for config in order:
                    if config in left_out():
                        continue
                    r = run_peer(lambda: run(python, config, w, units[w], tmp), config, w,
                                 PEERS, unavailable)
                    if r is not None:
                        results[w][config].append(r)
            print(f"  round {i + 1}/{args.repeat} done, {time.monotonic() - t_start:.0f} s",
                  flush=True)
        # A peer that failed part-way has rounds missing: none of it is shown.
        for c in left_out():
            for runs in results.values():
                runs.pop(c, None)
        pair_results = {w: child("paired", w, max(1, round(units[w] * SEGMENT)))
                        for w in WORKLOADS}
    info["load_after"] = loadavg()
    info["elapsed_s"] = time.monotonic() - t_start
    if unavailable:
        info["unavailable"] = unavailable
    return {"machine": info, "results": results, "paired": pair_results}


def report(measured: dict[str, Any], args: argparse.Namespace) -> None:
    info, results, pair_results = measured["machine"], measured["results"], measured["paired"]
    print()
    print(overhead_table(results))
    print()
    if len(CONFIGS) == len(PY_SPY_RATES) + 7:
        print(samples_table(results))
        print("expected = rate x main-thread CPU s (cprof cpu) or x wall s (the others); "
              "other threads = process CPU - main thread CPU (cprof's helper thread)")
        print()
    ns = info["record_ns"]
    print(f"cprof handler record path, {RECORD_DEPTH}-frame stack: {ns:.0f} ns per sample "
          f"= {ns * 100 / 1e7:.4f}% of a CPU at 100 Hz, {ns * 1000 / 1e7:.4f}% at 1000 Hz "
          f"(timer re-arm and signal delivery not included)")
    if "pyinstrument" in results["calls"]:
        interval = results["calls"]["pyinstrument"][0]["interval_s"]
        print(f"pyinstrument interval: {interval * 1e3:g} ms (its default; wall clock)")
    for w, runs in results.items():
        verdicts = []
        for config, limit in TARGETS.items():
            if config in runs:
                x = statistics.median(ratios(runs, config))
                verdicts.append(f"{CONFIGS[config][0]} {x:.3f}x median, "
                                f"{best_ratio(runs, config):.3f}x best (target <= {limit:.2f}x): "
                                f"{'met' if x <= limit else 'MISSED'}")
        print(f"{w}: " + "; ".join(verdicts))
    print()
    print(f"cprof paired in one process ({args.pairs} alternations of {SEGMENT * args.seconds:g} s "
          "segments; mean +- standard error of the per-pair ratio to the unprofiled segment):")
    for w, segs in pair_results.items():
        parts = []
        for config in ("cprof-cpu-100", "cprof-cpu-1000"):
            for what, i in (("process", 0), ("main thread", 1)):
                mean, se = pair_ratios(segs, config, i)
                parts.append(f"{config.rsplit('-', 1)[1]} Hz {what} {mean:.4f} +- {se:.4f}")
        print(f"  {w}: " + "; ".join(parts))
    print(f"load average after: {info['load_after']}; {info['elapsed_s']:.0f} s in all")


def summary_table(measured: Sequence[dict[str, Any]]) -> str:
    """cprof's figures side by side, a column per interpreter: each column's
    ratios are to that interpreter's own unprofiled runs, never across
    columns."""
    rows: list[tuple[str, ...]] = [("cprof", *(m["machine"]["python"] for m in measured))]
    for w in WORKLOADS:
        for config in ("cprof-cpu-100", "cprof-cpu-1000", "cprof-wall-100"):
            if config not in CONFIGS:
                continue  # --only
            cells = []
            for m in measured:
                runs = m["results"][w]
                if config not in runs:
                    cells.append("-")
                    continue
                xs = ratios(runs, config)
                cells.append(f"{statistics.median(xs):.3f} ({min(xs):.3f}-{max(xs):.3f})")
            rows.append((f"{w}: {CONFIGS[config][0][len('cprof '):]}, median x (min-max)",
                         *cells))
    for w in WORKLOADS:
        for config in ("cprof-cpu-100", "cprof-cpu-1000"):
            for what, i in (("process", 0), ("main thread", 1)):
                cells = ["{:.4f} +- {:.4f}".format(*pair_ratios(m["paired"][w], config, i))
                         for m in measured]
                rows.append((f"{w}: paired {config.rsplit('-', 1)[1]} Hz, {what}", *cells))
    for config, limit in TARGETS.items():
        hz = config.rsplit("-", 1)[1]
        paired_cells, separate_cells = [], []
        for m in measured:
            worst = max(pair_ratios(m["paired"][w], config, 0)[0] for w in WORKLOADS)
            paired_cells.append(f"{worst:.4f} {'met' if worst <= limit else 'MISSED'}")
            if all(config in m["results"][w] for w in WORKLOADS):
                worst = max(statistics.median(ratios(m["results"][w], config)) for w in WORKLOADS)
                separate_cells.append(f"{worst:.3f} {'met' if worst <= limit else 'MISSED'}")
            else:
                separate_cells.append("-")
        rows.append((f"target {hz} Hz <= {limit:.2f}x: worst paired mean", *paired_cells))
        rows.append((f"target {hz} Hz <= {limit:.2f}x: worst separate median", *separate_cells))
    rows.append((f"handler record ns ({RECORD_DEPTH} frames)",
                 *(f"{m['machine']['record_ns']:.0f}" for m in measured)))
    return format_table(rows + machine_rows(measured))


def machine_rows(measured: Sequence[dict[str, Any]]) -> list[tuple[str, ...]]:
    """The rows every side-by-side table ends with: what could not run, and
    how busy the machine was."""
    return [
        ("peers unavailable", *(", ".join(m["machine"].get("unavailable", {})) or "-"
                                for m in measured)),
        ("load average before / after",
         *(f"{m['machine']['load_before'].split()[0]} / "
           f"{m['machine']['load_after'].split()[0]}" for m in measured)),
    ]


def common_arguments(ap: argparse.ArgumentParser) -> None:
    """The options the CPU and heap benchmarks share, and the hidden ones of
    their worker processes."""
    ap.add_argument("--repeat", type=int, default=5, help="interleaved rounds")
    ap.add_argument("--seconds", type=float, default=2.0,
                    help="unprofiled CPU seconds of each workload")
    ap.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    ap.add_argument("--python", action="append", metavar="VERSION|PATH",
                    help="benchmark this interpreter (3.14: .venv/3.14/bin/python); "
                         "repeat or comma-separate for several, compared side by side")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--workload", help=argparse.SUPPRESS)
    ap.add_argument("--units", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)


def side_by_side(ap: argparse.ArgumentParser, args: argparse.Namespace,
                 measure: Callable[[str, argparse.Namespace], dict[str, Any]],
                 report: Callable[[dict[str, Any]], None],
                 summary: Callable[[Sequence[dict[str, Any]]], str], title: str,
                 how: str) -> None:
    """The whole benchmark once per --python interpreter, then cprof's figures
    from every one of them in one table."""
    try:
        pythons = resolve_pythons(args.python)
    except ValueError as e:
        ap.error(str(e))
    done: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    for python in pythons:
        print(f"=== {python} ===", flush=True)
        try:
            measured = measure(python, args)
        except (subprocess.CalledProcessError, RuntimeError, OSError, ValueError) as e:
            # cprof itself failing on one interpreter is that interpreter's
            # result; the others are still worth their minutes.
            failed[python] = failure(e)
            print(f"{python}: benchmark failed: {failed[python]}", flush=True)
            continue
        report(measured)
        measured["machine"]["executable"] = python
        done.append(measured)
        print(flush=True)
    if done:
        print(f"{title}, side by side ({how}):")
        print(summary(done))
    for python, why in failed.items():
        print(f"{python}: no figures ({why})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"interpreters": done, "failed": failed}, f, indent=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_arguments(ap)
    ap.add_argument("--only", help=argparse.SUPPRESS)  # comma-separated configs, to investigate
    ap.add_argument("--pairs", type=int, default=PAIRS,
                    help=f"alternations of the in-process paired measurement (default {PAIRS}); "
                         "its standard error falls as 1/sqrt(pairs)")
    args = ap.parse_args()
    if args.worker:
        if args.worker == "calibrate":
            result: Any = calibrate(args.workload)
        elif args.worker == "record":
            result = record_ns()
        elif args.worker == "paired":
            result = paired(args.workload, args.units, args.pairs)
        elif args.worker == "info":
            result = where_info()
        else:
            result = worker(args.worker, args.workload, args.units)
        with open(args.out, "w") as f:
            json.dump(result, f)
        return

    global CONFIGS
    if args.only:
        keep = {"none", *args.only.split(",")}
        CONFIGS = {k: v for k, v in CONFIGS.items() if k in keep}
    if not args.python:
        measured = measure(sys.executable, args)
        report(measured, args)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(measured, f, indent=2)
        return

    side_by_side(ap, args, measure, lambda m: report(m, args), summary_table, "cprof",
                 "each ratio to the same interpreter's unprofiled runs; "
                 "paired: mean +- standard error")


if __name__ == "__main__":
    main()
