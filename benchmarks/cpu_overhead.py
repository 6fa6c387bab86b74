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

pyinstrument, yappi and py-spy are pip-installed into the running
interpreter's environment if missing.
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
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Sequence

from _machine import cpu_model

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
    """cprof as installed, else this checkout's in-place build."""
    try:
        return importlib.import_module("cprof")
    except ImportError:
        sys.path.insert(0, ROOT)
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
    return float(at_depth(RECORD_DEPTH, cprof._core.measure_record_ns, 20_000))


# --- the driver ---------------------------------------------------------------------

def py_spy() -> str:
    local = os.path.join(os.path.dirname(sys.executable), "py-spy")
    return local if os.path.exists(local) else "py-spy"


def wait_cpu_s(cmd: list[str]) -> float:
    """Run cmd; return its CPU time, waited-for descendants included."""
    # A fixed hash seed takes one source of run-to-run variance away.
    env = dict(os.environ, PYTHONHASHSEED="0")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {err.decode()[-2000:]}")
    return ru.ru_utime + ru.ru_stime


def run(config: str, workload: str, units: int, tmp: str) -> dict[str, Any]:
    out = os.path.join(tmp, "result.json")
    fraction = WORK_FRACTION.get((workload, config), 1.0)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", config if config not in
           PY_SPY_RATES else "none", "--workload", workload,
           "--units", str(max(1, round(units * fraction))), "--out", out]
    if config in PY_SPY_RATES:
        raw = os.path.join(tmp, "py-spy.txt")
        cmd = [py_spy(), "record", "--rate", str(PY_SPY_RATES[config]), "--nonblocking",
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


def ensure_peers() -> dict[str, str]:
    """Install pyinstrument, yappi and py-spy if missing; return their versions."""
    try:
        import pyinstrument  # noqa: F401
        import yappi  # noqa: F401
        ok = subprocess.run([py_spy(), "--version"], capture_output=True).returncode == 0
    except (ImportError, OSError):
        ok = False
    if not ok:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "pyinstrument", "yappi",
                        "py-spy"], check=True)
        importlib.invalidate_caches()
    from importlib.metadata import version
    return {name: version(name) for name in ("pyinstrument", "yappi", "py-spy")}


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine() -> dict[str, Any]:
    cpu = cpu_model()
    cprof_dir = os.path.dirname(import_cprof().__file__)
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
            "kernel_hz": hz, "python": platform.python_version(),
            "cprof_commit": commit, "cprof_path": cprof_dir,
            "date": datetime.date.today().isoformat()}


def format_table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths))) + " |"
             for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 1) + ("-" if i == 0 else ":")
                                   for i, w in enumerate(widths)) + "|")
    return "\n".join(lines)


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="interleaved rounds")
    ap.add_argument("--seconds", type=float, default=2.0,
                    help="unprofiled CPU seconds of each workload")
    ap.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    ap.add_argument("--only", help=argparse.SUPPRESS)  # comma-separated configs, to investigate
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--workload", help=argparse.SUPPRESS)
    ap.add_argument("--units", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        if args.worker == "calibrate":
            result: Any = calibrate(args.workload)
        elif args.worker == "record":
            result = record_ns()
        elif args.worker == "paired":
            result = paired(args.workload, args.units, PAIRS)
        else:
            result = worker(args.worker, args.workload, args.units)
        with open(args.out, "w") as f:
            json.dump(result, f)
        return

    global CONFIGS
    if args.only:
        keep = {"none", *args.only.split(",")}
        CONFIGS = {k: v for k, v in CONFIGS.items() if k in keep}
    t_start = time.monotonic()
    versions = ensure_peers()
    info = machine()
    info.update(versions, repeat=args.repeat, seconds=args.seconds, load_before=loadavg())
    print(f"machine: {info['cpu']}, {info['cores']} cores; {info['os']}; "
          f"kernel HZ {info['kernel_hz']}")
    print(f"python {info['python']}; cprof {info['cprof_commit']} ({info['cprof_path']}); "
          f"pyinstrument {versions['pyinstrument']}; yappi {versions['yappi']}; "
          f"py-spy {versions['py-spy']}; {info['date']}")
    print(f"load average before: {info['load_before']}")

    with tempfile.TemporaryDirectory() as tmp:
        def child(kind: str, workload: str = "", units: int = 0) -> Any:
            out = os.path.join(tmp, "result.json")
            subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", kind,
                            "--workload", workload or "calls", "--units", str(units),
                            "--out", out], check=True, env=dict(os.environ, PYTHONHASHSEED="0"))
            with open(out) as f:
                return json.load(f)

        units = {w: max(1, round(args.seconds / child("calibrate", w))) for w in WORKLOADS}
        info["units"] = units
        info["record_ns"] = child("record")
        print(f"workloads: arithmetic = {units['arithmetic']} x arith({ARITH_N}); calls = "
              f"{units['calls']} x fib({FIB_N}); below {NEST_DEPTH} frames; "
              f"{args.repeat} interleaved rounds")
        names = list(CONFIGS)
        results: dict[str, dict[str, list[dict[str, Any]]]] = {
            w: {c: [] for c in names} for w in WORKLOADS}
        for i in range(args.repeat):
            order = names[i % len(names):] + names[:i % len(names)]
            for w in WORKLOADS:
                for config in order:
                    results[w][config].append(run(config, w, units[w], tmp))
            print(f"  round {i + 1}/{args.repeat} done, {time.monotonic() - t_start:.0f} s",
                  flush=True)
        pair_results = {w: child("paired", w, max(1, round(units[w] * SEGMENT)))
                        for w in WORKLOADS}
    info["load_after"] = loadavg()
    info["elapsed_s"] = time.monotonic() - t_start

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
    if "pyinstrument" in CONFIGS:
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
    print(f"cprof paired in one process ({PAIRS} alternations of {SEGMENT * args.seconds:g} s "
          "segments; mean +- standard error of the per-pair ratio to the unprofiled segment):")
    for w, segs in pair_results.items():
        parts = []
        for config in ("cprof-cpu-100", "cprof-cpu-1000"):
            for what, i in (("process", 0), ("main thread", 1)):
                xs = [a[i] / b[i] for a, b in zip(segs[config], segs["none"])]
                parts.append(f"{config.rsplit('-', 1)[1]} Hz {what} {statistics.mean(xs):.4f} "
                             f"+- {statistics.stdev(xs) / len(xs) ** 0.5:.4f}")
        print(f"  {w}: " + "; ".join(parts))
    print(f"load average after: {info['load_after']}; {info['elapsed_s']:.0f} s in all")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "results": results, "paired": pair_results}, f,
                      indent=2)


if __name__ == "__main__":
    main()
