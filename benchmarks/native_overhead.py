"""Native stacks' overhead: cprof cpu(native=True) against py-spy --native, at 100 Hz.

One run times a workload that spends its time in C as well as in Python --
zlib.compress, hashlib.sha256, numpy.sort and a pure-Python loop, below a
stack of NEST_DEPTH Python frames -- sized to take about --seconds of CPU
unprofiled, under each configuration:

  - unprofiled;
  - cprof at 100 Hz, Python frames only (the default);
  - cprof at 100 Hz with native=True (libunwind in the signal handler);
  - py-spy record --native --rate 100, which stops the target to unwind it
    from outside (native unwinding needs it stopped: no --nonblocking).

Every run is a fresh subprocess; the figure is the target process's CPU time
for the same work (for py-spy, the target's own, from wait4 on the target;
py-spy's own CPU is reported apart). Repeats are interleaved and each ratio is
profiled / unprofiled CPU time of the same round; the table gives the median
and range. The issue's target: native stacks at 100 Hz cost at most 3%.

    python benchmarks/native_overhead.py [--repeat N] [--seconds S]

py-spy is pip-installed into the running interpreter's environment if missing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import zlib
from typing import Any, Callable

from _hooks import measure_record_ns
from _machine import cpu_model, py_spy

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TARGET = 1.03
NEST_DEPTH = 30
CONFIGS = ["none", "cprof", "cprof-native", "py-spy-native"]
DATA = os.urandom(256 * 1024)


def unit() -> None:
    """One unit of mixed work: C in three libraries, then Python."""
    import numpy as np
    zlib.compress(DATA, 6)
    hashlib.sha256(DATA).digest()
    np.sort(np.random.default_rng(1).random(20_000))
    x = 0.0
    for i in range(20_000):
        x += i * 0.5


def nested(depth: int, units: int) -> None:
    if depth:
        return nested(depth - 1, units)
    for _ in range(units):
        unit()


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def worker(config: str, units: int) -> dict[str, Any]:
    sys.path.insert(0, ROOT)
    import cprof
    nested(0, 3)  # warm: imports, first-call costs
    if config.startswith("cprof"):
        cprof.start_cpu_profile(hz=100, native=config == "cprof-native")
    start = cpu_s()
    nested(NEST_DEPTH, units)
    used = cpu_s() - start
    samples = 0
    if config.startswith("cprof"):
        samples = len(cprof.stop_cpu_profile().samples)
    return {"cpu_s": used, "samples": samples}


def paired(units: int, pairs: int) -> list[float]:
    """Ratios native / unprofiled of segments run back to back in one
    process (what separate processes' noise hides): per pair, the CPU time
    of the work under cprof native at 100 Hz over the same work unprofiled."""
    sys.path.insert(0, ROOT)
    import cprof
    nested(0, 3)
    ratios = []
    for _ in range(pairs):
        start = cpu_s()
        nested(NEST_DEPTH, units)
        plain = cpu_s() - start
        cprof.start_cpu_profile(hz=100, native=True)
        start = cpu_s()
        nested(NEST_DEPTH, units)
        profiled = cpu_s() - start
        cprof.stop_cpu_profile()
        ratios.append(profiled / plain)
    return ratios


def record_hook() -> Callable[..., float]:
    """_core.measure_record_ns, or an exit saying how to build it in."""
    sys.path.insert(0, ROOT)
    from cprof import _core
    return measure_record_ns(_core)


def handler_ns(native: bool) -> float:
    """The signal handler's mean time to record one sample of this thread's
    stack (NEST_DEPTH Python frames deep), with its C frames if native."""
    measure = record_hook()

    def at(depth: int) -> float:
        if depth:
            return at(depth - 1)
        return float(measure(20_000, 128, None, native))
    runs = []
    for _ in range(5):  # a loop, not a generator: its frame would be on the measured stack
        runs.append(at(NEST_DEPTH))
    return statistics.median(runs)


def run(config: str, units: int, tmp: str) -> dict[str, Any]:
    code = (f"import sys, json; sys.path.insert(0, {HERE!r}); from native_overhead import "
            f"worker; print(json.dumps(worker({config!r}, {units})))")
    cmd = [sys.executable, "-c", code]
    if config != "py-spy-native":
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        return json.loads(out.splitlines()[-1])
    raw = os.path.join(tmp, "py-spy.txt")
    spy = [py_spy(sys.executable), "record", "--native", "--rate", "100", "--format", "raw",
           "-o", raw, "--", *cmd]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(spy, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"py-spy failed: {proc.stderr[-2000:]}")
    result = json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])
    both = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    result["spy_cpu_s"] = both - result["cpu_s"]  # py-spy's own, less the target's (approx.)
    return result


def calibrate(seconds: float) -> int:
    r = run("none", 20, tempfile.gettempdir())
    return max(1, int(20 * seconds / r["cpu_s"]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    record_hook()  # a build without it stops here, not after minutes of runs
    units = calibrate(args.seconds)
    ratios: dict[str, list[float]] = {c: [] for c in CONFIGS if c != "none"}
    spy_own: list[float] = []
    samples: dict[str, list[int]] = {c: [] for c in CONFIGS}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            order = CONFIGS[i % len(CONFIGS):] + CONFIGS[:i % len(CONFIGS)]
            results = {c: run(c, units, tmp) for c in order}
            for c in ratios:
                ratios[c].append(results[c]["cpu_s"] / results["none"]["cpu_s"])
                samples[c].append(results[c]["samples"])
            spy_own.append(results["py-spy-native"]["spy_cpu_s"])
    print(f"native_overhead: {units} units (~{args.seconds:g} s of CPU), {args.repeat} rounds, "
          f"CPython {sys.version.split()[0]}, {cpu_model()}")
    print(f"{'configuration':<28} {'median':>8} {'range':>17}")
    for c, rs in ratios.items():
        print(f"{c:<28} {statistics.median(rs):>8.3f} {min(rs):>8.3f}..{max(rs):<8.3f}")
    print(f"py-spy's own CPU per run: {statistics.median(spy_own):.2f} s (median)")
    code = (f"import sys, json; sys.path.insert(0, {HERE!r}); from native_overhead import "
            f"paired; print(json.dumps(paired({units}, {args.repeat * 2})))")
    pairs = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                      text=True, check=True).stdout.splitlines()[-1])
    print(f"{'cprof-native, paired':<28} {statistics.median(pairs):>8.3f} "
          f"{min(pairs):>8.3f}..{max(pairs):<8.3f}  ({len(pairs)} pairs in one process)")
    plain_ns, native_ns = handler_ns(False), handler_ns(True)
    print(f"handler per sample: {plain_ns:,.0f} ns Python only, {native_ns:,.0f} ns with C "
          f"frames; at 100 Hz the handler takes {native_ns * 100 / 1e9:.3%} of a CPU second")
    native = statistics.median(pairs)
    print(f"cprof native / py-spy --native (target CPU, separate processes): "
          f"{statistics.median(ratios['cprof-native']) / statistics.median(ratios['py-spy-native']):.3f}")
    print(f"target <= {TARGET:.2f} (paired median): {'met' if native <= TARGET else 'NOT met'} "
          f"({native:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
