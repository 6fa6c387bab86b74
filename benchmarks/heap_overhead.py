"""Heap profiler overhead: cprof's sampled hooks against tracemalloc and memray.

One run times three allocation-heavy workloads, each a fixed amount of work
sized to take about --seconds of CPU unprofiled:

  - "objects": churn of small instances (a class with __slots__), lists of
    them built and dropped;
  - "containers": dicts of lists, sets and tuples built and dropped;
  - "strings": f-strings, join and split;

under every configuration in CONFIGS: unprofiled; the floor (below); cprof's
heap profile at its default rate (512 KiB, Go's MemProfileRate) and at
64 KiB; tracemalloc keeping 1 and 25 frames (on a fraction of the work, see
WORK_FRACTION); memray's Tracker writing its file, as by default (it sees the
system allocator, not pymalloc's small objects) and with
trace_python_allocators, which sees what cprof sees.

The floor is what any allocator hook costs before it does anything:
_forward.c, beside this file, installs hooks on the RAW, MEM and OBJ domains
(as cprof does, with PyMem_SetAllocator) that only call the allocator they
replaced. Installing any hook costs the interpreter its inlined pymalloc:
PyObject_Malloc and PyObject_Free call pymalloc directly only while the
domain's function is pymalloc's own (in an LTO+PGO build such as Debian's
3.14, a compare and a jump at the top of PyObject_Free), else through the
hook. So besides cprof / unprofiled, the report gives floor / unprofiled and
cprof / floor: cprof's own cost above any hook, judged against the same 5%.
The benchmark builds _forward.c for each interpreter it measures (gcc, -O2,
that interpreter's headers); where it cannot, the floor is reported
unavailable with the reason, and the rest runs.

Every run is a fresh subprocess; the profiler starts before and stops after
the timed region, whose process CPU time is the figure. Rounds are
interleaved and each ratio is profiled / unprofiled CPU time of the same
round (median, range, and best over best). Because runs in separate processes
vary by a few percent, cprof at its default rate is also measured paired in
one process: short segments of unprofiled, floor and cprof in turn, the
order rotated every round, each ratio between segments of the same round.

    python benchmarks/heap_overhead.py [--repeat N] [--seconds S] [--json OUT]
                                       [--python 3.11,3.14,... | PATH ...]

memray is pip-installed into the benchmarked interpreter's environment if
missing; a peer that cannot be installed or does not run there (memray, or
tracemalloc, or the floor) is reported unavailable, with the reason, and left
out.

--python (repeatable, or comma-separated) runs the whole benchmark once for
each interpreter named, in turn, and ends with a table of cprof's ratios side
by side: "3.14" means this checkout's .venv/3.14/bin/python (as .ci/venv.sh
makes it, cprof installed), anything else is a path to a python or a command
on PATH. Without it the benchmark runs on the interpreter running the script.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from typing import Any, Callable, Sequence

from cpu_overhead import (HERE, Peer, PeerError, check_code, common_arguments, ensure_peers,
                          format_table, import_cprof, loadavg, machine, machine_rows,
                          python_headers, run_checked, run_peer, side_by_side)

TARGET = 1.05        # the issue's: at most 5% more CPU at the default rate
PAIRS = 24           # rounds of the paired measurement (a multiple of 2 and 3: each
                     # configuration as often in each place of the rotated order)
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


def floor_path(tmp: str) -> str:
    """Where measure() builds _forward.c for the benchmarked interpreter."""
    return os.path.join(tmp, "_forward.so")


def load_floor(tmp: str) -> Any:
    path = floor_path(tmp)
    loader = importlib.machinery.ExtensionFileLoader("_forward", path)
    spec = importlib.util.spec_from_file_location("_forward", path, loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def setup_floor(tmp: str) -> Profiler:
    forward = load_floor(tmp)

    def stop() -> dict[str, Any]:
        forward.stop()
        return {}
    return forward.start, stop


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
    "floor": ("floor: forwarding hooks only", setup_floor),
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


def paired(workload: str, units: int, tmp: str, floor: bool) -> dict[str, list[float]]:
    """cprof at its default rate, the floor (if built in tmp) and no profiler
    in one process: a short segment of each per round, in an order rotated
    every round. Per configuration, the CPU seconds of its segment in each
    round."""
    cprof = import_cprof()
    work = WORKLOADS[workload]
    work(units)
    switches: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
        "none": ((lambda: None), (lambda: None))}
    if floor:
        forward = load_floor(tmp)
        switches["floor"] = (forward.start, forward.stop)
    switches["cprof-512k"] = (cprof.start_heap_profile, cprof.stop_heap_profile)
    names = list(switches)
    out: dict[str, list[float]] = {name: [] for name in names}
    for i in range(PAIRS):
        for name in names[i % len(names):] + names[:i % len(names)]:
            start, stop = switches[name]
            start()
            c0 = time.process_time()
            work(units)
            c1 = time.process_time()
            stop()
            out[name].append(c1 - c0)
    return out


def check_floor(python: str, tmp: str) -> None:
    """Build _forward.c for python at floor_path(tmp), where the runs load
    it, and check that a worker runs under it."""
    include, _ = python_headers(python, tmp)
    # The parent too, as tests/collect/test_native.py: Debian's
    # multiarch pyconfig.h is there for an interpreter unpacked outside /usr
    # (see python_headers); for one in /usr it is a directory gcc searches
    # anyway.
    run_checked(["gcc", "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror",
                 f"-I{include}", f"-I{os.path.dirname(include)}", "-o", floor_path(tmp),
                 os.path.join(HERE, "_forward.c")], tmp)
    out = os.path.join(tmp, "floor-check.json")
    run_checked([python, os.path.abspath(__file__), "--worker", "floor", "--workload", "strings",
                 "--units", "20", "--tmp", tmp, "--out", out], tmp)
    if not os.path.exists(out):
        raise PeerError("the floor's check run wrote no result")


PEERS = [
    Peer("floor", None, ("floor",), check_floor),
    Peer("tracemalloc", None, ("tracemalloc-1", "tracemalloc-25"), check_code(
        "import tracemalloc\ntracemalloc.start(25)\nx = [object() for _ in range(10_000)]\n"
        "tracemalloc.stop()")),
    Peer("memray", "memray", ("memray", "memray-pymalloc"), check_code(
        "import os, memray\npath = 'memray-check.bin'\n"
        "if os.path.exists(path): os.unlink(path)\n"
        "with memray.Tracker(path, trace_python_allocators=True):\n"
        "    x = [object() for _ in range(10_000)]")),
]


def measure(python: str, args: argparse.Namespace) -> dict[str, Any]:
    """The benchmark on one interpreter, printing its header and progress as
    it goes; returns what report() prints and --json writes."""
    t_start = time.monotonic()
    info = machine(python)
    with tempfile.TemporaryDirectory() as tmp:
        # In tmp: the floor's check leaves there the build the runs load.
        versions, unavailable = ensure_peers(python, PEERS, tmp)
        info.update(memray=versions.get("memray", "unavailable"),
                    floor="unavailable" if "floor" in unavailable else "_forward.c, gcc -O2",
                    repeat=args.repeat, seconds=args.seconds, load_before=loadavg())
        print(f"machine: {info['cpu']}, {info['cores']} cores; {info['os']}")
        print(f"python {info['python']}; cprof {info['cprof_commit']}; memray {info['memray']}; "
              f"floor {info['floor']}; {info['date']}; load average before: "
              f"{info['load_before']}")
        for name, why in unavailable.items():
            print(f"{name} unavailable: {why}")

        def child(kind: str, workload: str, units: int = 0, *extra: str) -> Any:
            out = os.path.join(tmp, "result.json")
            if os.path.exists(out):
                os.unlink(out)
            cmd = [python, os.path.abspath(__file__), "--worker", kind, "--workload", workload,
                   "--units", str(units), "--tmp", tmp, "--out", out, *extra]
            # stderr passed on as it comes, and kept for the one-line reason
            # should a peer's run fail.
            proc = subprocess.run(cmd, stderr=subprocess.PIPE, text=True,
                                  env=dict(os.environ, PYTHONHASHSEED="0"))
            sys.stderr.write(proc.stderr)
            if proc.returncode != 0:
                raise subprocess.CalledProcessError(proc.returncode, cmd, stderr=proc.stderr)
            with open(out) as f:
                return json.load(f)

        units = {w: max(1, round(args.seconds / child("calibrate", w))) for w in WORKLOADS}
        info["units"] = units

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
                    r = run_peer(lambda: child(config, w, units[w]), config, w, PEERS,
                                 unavailable)
                    if r is not None:
                        results[w][config].append(r)
            print(f"  round {i + 1}/{args.repeat} done, {time.monotonic() - t_start:.0f} s",
                  flush=True)
        # A peer that failed part-way has rounds missing: none of it is shown.
        for c in left_out():
            for runs in results.values():
                runs.pop(c, None)
        floor = ["--floor"] if "floor" not in unavailable else []
        pairs = {w: child("paired", w, max(1, round(units[w] * SEGMENT)), *floor)
                 for w in WORKLOADS}
    info["load_after"] = loadavg()
    if unavailable:
        info["unavailable"] = unavailable
    return {"machine": info, "results": results, "paired": pairs,
            "elapsed_s": time.monotonic() - t_start}


def separate_ratios(runs: dict[str, list[dict[str, Any]]], config: str,
                    base: str = "none") -> list[float]:
    """Per round, the configuration's CPU over base's (unprofiled, or the
    floor)."""
    return [r["cpu_s"] / b["cpu_s"] for r, b in zip(runs[config], runs[base])]


def paired_ratios(out: dict[str, list[float]], config: str = "cprof-512k",
                  base: str = "none") -> list[float]:
    return [p / n for p, n in zip(out[config], out[base])]


def separate(m: dict[str, Any], w: str, config: str, base: str = "none") -> list[float] | None:
    """One interpreter's separate-process ratios, None if either
    configuration did not run there (its peer, or the floor, unavailable)."""
    runs = m["results"][w]
    return separate_ratios(runs, config, base) if config in runs and base in runs else None


def pair(m: dict[str, Any], w: str, config: str = "cprof-512k",
         base: str = "none") -> list[float] | None:
    """One interpreter's paired ratios, None if either did not run."""
    out = m["paired"][w]
    return paired_ratios(out, config, base) if config in out and base in out else None


def spread(xs: list[float] | None) -> str:
    return "-" if not xs else f"{statistics.median(xs):.3f} ({min(xs):.3f}-{max(xs):.3f})"


def worst_median(m: dict[str, Any],
                 ratios: Callable[[dict[str, Any], str], list[float] | None]) -> float | None:
    """The largest median over the workloads; None when a workload has no
    figures."""
    xs = [ratios(m, w) for w in WORKLOADS]
    return max(statistics.median(x) for x in xs if x) if all(xs) else None


def verdict(worst: float | None) -> str:
    return "-" if worst is None else f"{worst:.3f} {'met' if worst <= TARGET else 'NOT met'}"


def report(measured: dict[str, Any]) -> None:
    info, results = measured["machine"], measured["results"]
    head = ["profiler"] + [f"{w}: median x (min-max)" for w in WORKLOADS] + ["best x, all"]
    rows = [tuple(head)]
    for config, (label, _) in CONFIGS.items():
        if any(config not in results[w] for w in WORKLOADS):
            continue  # its peer unavailable
        row = [label]
        bests = []
        for w in WORKLOADS:
            runs = results[w]
            if config == "none":
                row.append(f"{statistics.median(r['cpu_s'] for r in runs['none']):.3f} s CPU")
                continue
            bests.append(min(r["cpu_s"] for r in runs[config]) /
                         min(r["cpu_s"] for r in runs["none"]))
            row.append(spread(separate_ratios(runs, config)))
        row.append("-" if config == "none" else " ".join(f"{b:.3f}" for b in bests))
        rows.append(tuple(row))
    print()
    print(format_table(rows))
    print()
    why_no_floor = info.get("unavailable", {}).get("floor")
    if why_no_floor is None:
        rows = [("over the floor", *(f"{w}: median x (min-max)" for w in WORKLOADS))]
        for config in ("cprof-512k", "cprof-64k"):
            rows.append((f"{CONFIGS[config][0]} / floor",
                         *(spread(separate(measured, w, config, "floor")) for w in WORKLOADS)))
        print("cprof over the floor of the same round, separate processes:")
        print(format_table(rows))
        print()
    paired_rows = [("workload", "cprof / none", "floor / none", "cprof / floor", "rounds")]
    for w, out in measured["paired"].items():
        paired_rows.append((w, spread(pair(measured, w)), spread(pair(measured, w, "floor")),
                            spread(pair(measured, w, "cprof-512k", "floor")),
                            str(len(out["none"]))))
    print("cprof at 512 KiB, the floor and unprofiled, paired in one process (order rotated "
          "every round; median (min-max) of the per-round ratios):")
    print(format_table(paired_rows))
    worst = worst_median(measured, pair)
    assert worst is not None
    print(f"target: at most {TARGET:.2f}x at the default rate; worst paired median "
          f"{worst:.3f}x: {'met' if worst <= TARGET else 'NOT met'}")
    worst = worst_median(measured, lambda m, w: pair(m, w, "cprof-512k", "floor"))
    if worst is not None:
        print(f"cprof's own cost above any allocator hook: cprof / floor at most {TARGET:.2f}x; "
              f"worst paired median {worst:.3f}x: {'met' if worst <= TARGET else 'NOT met'}")
    else:
        print(f"cprof's own cost above any allocator hook: not measured (floor unavailable: "
              f"{why_no_floor})")
    print(f"load average after: {info['load_after']}; {measured['elapsed_s']:.0f} s in all")


def summary_table(measured: Sequence[dict[str, Any]]) -> str:
    """The heap profiler's figures, a column per interpreter (as in
    cpu_overhead.summary_table); "-" where the floor was unavailable."""
    rows: list[tuple[str, ...]] = [("cprof heap", *(m["machine"]["python"] for m in measured))]
    for w in WORKLOADS:
        lines: list[tuple[str, Callable[[dict[str, Any]], list[float] | None]]] = [
            ("512 KiB", lambda m: separate(m, w, "cprof-512k")),
            ("64 KiB", lambda m: separate(m, w, "cprof-64k")),
            ("512 KiB paired", lambda m: pair(m, w)),
            ("floor", lambda m: separate(m, w, "floor")),
            ("floor paired", lambda m: pair(m, w, "floor")),
            ("512 KiB / floor", lambda m: separate(m, w, "cprof-512k", "floor")),
            ("512 KiB / floor paired", lambda m: pair(m, w, "cprof-512k", "floor")),
        ]
        for label, ratios in lines:
            rows.append((f"{w}: {label}, median x (min-max)",
                         *(spread(ratios(m)) for m in measured)))
    targets: list[tuple[str, str, Callable[[dict[str, Any], str], list[float] | None]]] = [
        ("512 KiB", "paired", pair),
        ("512 KiB", "separate", lambda m, w: separate(m, w, "cprof-512k")),
        ("512 KiB / floor", "paired", lambda m, w: pair(m, w, "cprof-512k", "floor")),
        ("512 KiB / floor", "separate", lambda m, w: separate(m, w, "cprof-512k", "floor"))]
    for label, how, per_workload in targets:
        rows.append((f"target {label} <= {TARGET:.2f}x: worst {how} median",
                     *(verdict(worst_median(m, per_workload)) for m in measured)))
    return format_table(rows + machine_rows(measured))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_arguments(ap)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    ap.add_argument("--floor", action="store_true", help=argparse.SUPPRESS)  # paired: with it
    args = ap.parse_args()
    if args.worker:
        if args.worker == "calibrate":
            result: Any = calibrate(args.workload)
        elif args.worker == "paired":
            result = paired(args.workload, args.units, args.tmp, args.floor)
        else:
            result = worker(args.worker, args.workload, args.units, args.tmp)
        with open(args.out, "w") as f:
            json.dump(result, f)
        return

    if not args.python:
        measured = measure(sys.executable, args)
        report(measured)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({k: measured[k] for k in ("machine", "results", "paired")}, f,
                          indent=1)
        return

    side_by_side(ap, args, measure, report, summary_table, "cprof heap",
                 "each ratio to the same interpreter's unprofiled runs, or to its floor where "
                 "the row says / floor; paired: median (min-max) of the per-round ratios")


if __name__ == "__main__":
    main()
