"""Heap profiler overhead: cprof's sampled hooks against tracemalloc and memray.

One run times three allocation-heavy workloads, each a fixed amount of work
sized to take about --seconds of CPU unprofiled:

  - "objects": churn of small instances (a class with __slots__), lists of
    them built and dropped;
  - "containers": dicts of lists, sets and tuples built and dropped;
  - "strings": f-strings, join and split;

under every configuration in CONFIGS: unprofiled; cprof's heap profile at
its default rate (512 KiB, Go's MemProfileRate) and at 64 KiB; tracemalloc
keeping 1 and 25 frames (on a fraction of the work, see WORK_FRACTION);
memray's Tracker writing its file, as by default (it sees the system
allocator, not pymalloc's small objects) and with trace_python_allocators,
which sees what cprof sees.

Every run is a fresh subprocess; the profiler starts before and stops after
the timed region, whose process CPU time is the figure. Rounds are
interleaved and each ratio is profiled / unprofiled CPU time of the same
round (median, range, and best over best). Because runs in separate processes
vary by a few percent, cprof at its default rate is also measured paired in
one process: short segments alternating with and without the profile.

    python benchmarks/heap_overhead.py [--repeat N] [--seconds S] [--json OUT]

memray is pip-installed into the running interpreter's environment if
missing.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from typing import Any, Callable

from cpu_overhead import format_table, import_cprof, loadavg, machine

TARGET = 1.05        # the issue's: at most 5% more CPU at the default rate
PAIRS = 20           # alternations of the paired measurement
SEGMENT = 0.1        # its segments, as a fraction of the work

# tracemalloc slows these workloads 4x to 100x: it runs this fraction of the
# work and its CPU time is scaled back up (its ratios are large, so the
# shorter run costs no accuracy that matters).
WORK_FRACTION = {"tracemalloc-1": 1 / 4, "tracemalloc-25": 1 / 25, "memray-pymalloc": 1 / 4}


# --- workloads --------------------------------------------------------------------

class Point:
    __slots__ = ("x", "y")

    def __init__(self, x: int, y: int) -> None:
        self.x = x
        self.y = y


def objects(units: int) -> None:
    for i in range(units):
        points = [Point(i, j) for j in range(100)]
        del points


def containers(units: int) -> None:
    for i in range(units):
        d = {j: [j, i] for j in range(50)}
        s = set(d)
        t = tuple(d.values())
        del d, s, t


def strings(units: int) -> None:
    for i in range(units):
        parts = [f"item-{j}-{i}" for j in range(50)]
        joined = ",".join(parts)
        joined.split(",")


WORKLOADS: dict[str, Callable[[int], None]] = {
    "objects": objects, "containers": containers, "strings": strings}


# --- profilers: (start, stop) ---------------------------------------------------------

Profiler = tuple[Callable[[], None], Callable[[], dict[str, Any]]]


def setup_none(tmp: str) -> Profiler:
    return (lambda: None), (lambda: {})


def setup_cprof(rate: int) -> Callable[[str], Profiler]:
    def setup(tmp: str) -> Profiler:
        cprof = import_cprof()

        def stop() -> dict[str, Any]:
            p = cprof.stop_heap_profile()
            return {"samples": len(p.samples), "alloc_space": p.total("alloc_space")}
        return (lambda: cprof.start_heap_profile(rate)), stop
    return setup


def setup_tracemalloc(frames: int) -> Callable[[str], Profiler]:
    def setup(tmp: str) -> Profiler:
        def stop() -> dict[str, Any]:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            return {"peak": peak}
        return (lambda: tracemalloc.start(frames)), stop
    return setup


def setup_memray(python_allocators: bool) -> Callable[[str], Profiler]:
    def setup(tmp: str) -> Profiler:
        import memray
        path = os.path.join(tmp, "memray.bin")
        if os.path.exists(path):
            os.unlink(path)
        tracker = memray.Tracker(path, trace_python_allocators=python_allocators)

        def stop() -> dict[str, Any]:
            tracker.__exit__(None, None, None)
            return {"file_bytes": os.path.getsize(path)}
        return (lambda: tracker.__enter__()), stop
    return setup


CONFIGS: dict[str, tuple[str, Callable[[str], Profiler]]] = {
    "none": ("unprofiled", setup_none),
    "cprof-512k": ("cprof heap, rate 512 KiB (default)", setup_cprof(512 * 1024)),
    "cprof-64k": ("cprof heap, rate 64 KiB", setup_cprof(64 * 1024)),
    "tracemalloc-1": ("tracemalloc, 1 frame", setup_tracemalloc(1)),
    "tracemalloc-25": ("tracemalloc, 25 frames", setup_tracemalloc(25)),
    "memray": ("memray Tracker (system allocator)", setup_memray(False)),
    "memray-pymalloc": ("memray Tracker, trace_python_allocators", setup_memray(True)),
}


# --- workers (each in its own process) ---------------------------------------------

def worker(config: str, workload: str, units: int, tmp: str) -> dict[str, Any]:
    """CPU seconds of the whole work under config (scaled up from the
    fraction it ran, if any)."""
    work = WORKLOADS[workload]
    work(max(1, units // 20))  # warm up
    fraction = WORK_FRACTION.get(config, 1.0)
    n = max(1, round(units * fraction))
    start, stop = CONFIGS[config][1](tmp)
    start()
    c0 = time.process_time()
    work(n)
    c1 = time.process_time()
    extra = stop()
    return dict(extra, cpu_s=(c1 - c0) * units / n)


def calibrate(workload: str) -> float:
    """CPU seconds per unit of the workload, unprofiled."""
    work = WORKLOADS[workload]
    work(10)
    units = 16
    while True:
        t0 = time.process_time()
        work(units)
        t = time.process_time() - t0
        if t >= 0.5:
            return t / units
        units *= 2


def paired(workload: str, units: int) -> dict[str, list[float]]:
    """cprof at its default rate against no profiler in one process,
    alternating short segments (order reversed every other pair)."""
    cprof = import_cprof()
    work = WORKLOADS[workload]
    work(units)
    out: dict[str, list[float]] = {"none": [], "cprof-512k": []}

    def segment(profiled: bool) -> float:
        if profiled:
            cprof.start_heap_profile()
        c0 = time.process_time()
        work(units)
        c1 = time.process_time()
        if profiled:
            cprof.stop_heap_profile()
        return c1 - c0
    for i in range(PAIRS):
        for name in (list(out) if i % 2 == 0 else list(out)[::-1]):
            out[name].append(segment(name != "none"))
    return out


def ensure_memray() -> str:
    try:
        import memray  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "memray"], check=True)
        importlib.invalidate_caches()
    from importlib.metadata import version
    return version("memray")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="interleaved rounds")
    ap.add_argument("--seconds", type=float, default=2.0,
                    help="unprofiled CPU seconds of each workload")
    ap.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--workload", help=argparse.SUPPRESS)
    ap.add_argument("--units", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        if args.worker == "calibrate":
            result: Any = calibrate(args.workload)
        elif args.worker == "paired":
            result = paired(args.workload, args.units)
        else:
            result = worker(args.worker, args.workload, args.units, args.tmp)
        with open(args.out, "w") as f:
            json.dump(result, f)
        return

    t_start = time.monotonic()
    info = machine()
    info.update(memray=ensure_memray(), repeat=args.repeat, seconds=args.seconds,
                load_before=loadavg())
    print(f"machine: {info['cpu']}, {info['cores']} cores; {info['os']}")
    print(f"python {info['python']}; cprof {info['cprof_commit']}; memray {info['memray']}; "
          f"{info['date']}; load average before: {info['load_before']}")

    with tempfile.TemporaryDirectory() as tmp:
        def child(kind: str, workload: str, units: int = 0) -> Any:
            out = os.path.join(tmp, "result.json")
            subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", kind,
                            "--workload", workload, "--units", str(units), "--tmp", tmp,
                            "--out", out], check=True, env=dict(os.environ, PYTHONHASHSEED="0"))
            with open(out) as f:
                return json.load(f)

        units = {w: max(1, round(args.seconds / child("calibrate", w))) for w in WORKLOADS}
        info["units"] = units
        names = list(CONFIGS)
        results = {w: {c: [] for c in names} for w in WORKLOADS}
        for i in range(args.repeat):
            order = names[i % len(names):] + names[:i % len(names)]
            for w in WORKLOADS:
                for config in order:
                    results[w][config].append(child(config, w, units[w]))
            print(f"  round {i + 1}/{args.repeat} done, {time.monotonic() - t_start:.0f} s",
                  flush=True)
        pairs = {w: child("paired", w, max(1, round(units[w] * SEGMENT))) for w in WORKLOADS}
    info["load_after"] = loadavg()

    head = ["profiler"] + [f"{w}: median x (min-max)" for w in WORKLOADS] + ["best x, all"]
    rows = [tuple(head)]
    for config, (label, _) in CONFIGS.items():
        row = [label]
        bests = []
        for w in WORKLOADS:
            runs = results[w]
            if config == "none":
                row.append(f"{statistics.median(r['cpu_s'] for r in runs['none']):.3f} s CPU")
                continue
            xs = [r["cpu_s"] / b["cpu_s"] for r, b in zip(runs[config], runs["none"])]
            bests.append(min(r["cpu_s"] for r in runs[config]) /
                         min(r["cpu_s"] for r in runs["none"]))
            row.append(f"{statistics.median(xs):.3f} ({min(xs):.3f}-{max(xs):.3f})")
        row.append("-" if config == "none" else " ".join(f"{b:.3f}" for b in bests))
        rows.append(tuple(row))
    print()
    print(format_table(rows))
    print()
    paired_rows = [("workload", "paired x, median (min-max)", "segments")]
    paired_medians = []
    for w, out in pairs.items():
        xs = [p / n for p, n in zip(out["cprof-512k"], out["none"])]
        paired_medians.append(statistics.median(xs))
        paired_rows.append((w, f"{statistics.median(xs):.3f} ({min(xs):.3f}-{max(xs):.3f})",
                            str(len(xs))))
    print("cprof at 512 KiB against unprofiled, paired in one process:")
    print(format_table(paired_rows))
    worst = max(paired_medians)
    print(f"target: at most {TARGET:.2f}x at the default rate; worst paired median "
          f"{worst:.3f}x: {'met' if worst <= TARGET else 'NOT met'}")
    print(f"load average after: {info['load_after']}; "
          f"{time.monotonic() - t_start:.0f} s in all")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "results": results, "paired": pairs}, f, indent=1)


if __name__ == "__main__":
    main()
