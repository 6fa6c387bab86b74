"""Wall mode on a program that works in short bursts between waits.

Such a program (a server handling small requests, a poller) goes still
between its bursts, and wall mode credits a thread that did not run with its
latest stack (docs/CPU_PROFILER.md, "Wall mode"). This measures what wall
mode costs such a program, and how close the profile's share of the wait
comes to the program's own clock.

Each run is a fresh subprocess doing --cycles cycles of --work-ms of Python
work then a --wait-ms select.select, under each configuration: unprofiled;
cprof wall at 100 Hz and 1000 Hz; pyinstrument (interval 10 ms and 1 ms,
its wall-clock sampling); yappi on the wall clock. Rounds are interleaved
(order rotated each round). Figures, medians of the per-round ratios to the
unprofiled run of the same round, of the cycles alone (the profilers'
start and stop left out): their wall time, and the process's CPU time
meanwhile (every thread's, cprof's helper included); for cprof, the wait's
share in the profile minus its share by the program's clock (points).

    python benchmarks/wall_bursts.py [--repeat N] [--cycles N] [--work-ms W]
                                     [--wait-ms W]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import select
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

from cpu_overhead import Peer, check_code, ensure_peers, format_table, import_cprof, loadavg

CONFIGS = {
    "none": "unprofiled",
    "cprof-100": "cprof wall 100 Hz",
    "cprof-1000": "cprof wall 1000 Hz",
    "pyinstrument-10": "pyinstrument, 10 ms",
    "pyinstrument-1": "pyinstrument, 1 ms",
    "yappi": "yappi, wall clock",
}
PEERS = [
    Peer("pyinstrument", "pyinstrument", ("pyinstrument-10", "pyinstrument-1"),
         check_code("import pyinstrument\np = pyinstrument.Profiler()\np.start()\n"
                    "sum(range(100_000))\np.stop()")),
    Peer("yappi", "yappi", ("yappi",), check_code(
        "import yappi\nyappi.set_clock_type('wall')\nyappi.start()\nsum(range(100_000))\n"
        "yappi.stop()")),
]


def bursts(cycles: int, work_s: float, wait_s: float) -> float:
    """The cycles; the share of the whole spent waiting, by the program's clock."""
    a, b = socket.socketpair()
    waited = 0.0
    start = time.perf_counter()
    for _ in range(cycles):
        until = time.thread_time() + work_s
        while time.thread_time() < until:
            sum(range(200))
        before = time.perf_counter()
        select.select([a], [], [], wait_s)
        waited += time.perf_counter() - before
    share = waited / (time.perf_counter() - start)
    a.close()
    b.close()
    return share


def worker(config: str, args: argparse.Namespace) -> dict[str, Any]:
    start_stop: tuple[Any, Any] = (lambda: None, lambda: None)
    if config.startswith("cprof-"):
        cprof = import_cprof()
        hz = int(config.split("-")[1])
        start_stop = (lambda: cprof.start_cpu_profile(mode="wall", hz=hz),
                      cprof.stop_cpu_profile)
    elif config.startswith("pyinstrument-"):
        import pyinstrument
        profiler = pyinstrument.Profiler(interval=int(config.split("-")[1]) / 1000)
        start_stop = (profiler.start, profiler.stop)
    elif config == "yappi":
        import yappi
        yappi.set_clock_type("wall")
        start_stop = (yappi.start, yappi.stop)
    start_stop[0]()
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    truth = bursts(args.cycles, args.work_ms / 1000, args.wait_ms / 1000)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    profile = start_stop[1]()
    error = None
    if config.startswith("cprof-"):
        mine = [s for s in profile.samples if "__main__.bursts" in
                [loc.lines[0].function.name for loc in s.locations]]
        total = sum(s.values[1] for s in mine)
        waiting = sum(s.values[1] for s in mine
                      if s.locations[0].lines[0].function.name == "select.select")
        error = (waiting / total - truth) * 100 if total else None
    return {"wall_s": wall, "cpu_s": cpu, "error_points": error}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--cycles", type=int, default=200)
    ap.add_argument("--work-ms", type=float, default=1.0)
    ap.add_argument("--wait-ms", type=float, default=4.0)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args)))
        return
    versions, unavailable = ensure_peers(sys.executable, PEERS)
    configs = [c for c in CONFIGS
               if not any(c in p.configs and p.name in unavailable for p in PEERS)]
    print(f"python {sys.version.split()[0]}; {args.cycles} cycles of {args.work_ms} ms work "
          f"and a {args.wait_ms} ms select; peers {versions}; unavailable {unavailable}; "
          f"load average before {loadavg()}")
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in configs}
    here = os.path.abspath(__file__)
    for r in range(args.repeat):
        for config in configs[r % len(configs):] + configs[:r % len(configs)]:
            out = subprocess.run([sys.executable, here, "--worker", config, "--cycles",
                                  str(args.cycles), "--work-ms", str(args.work_ms),
                                  "--wait-ms", str(args.wait_ms)],
                                 check=True, capture_output=True, text=True)
            runs[config].append(json.loads(out.stdout.strip().splitlines()[-1]))
    rows = [("configuration", "wall x unprofiled", "CPU x unprofiled",
             "wait's share, profile - program (points)")]
    for config in configs:
        walls = [r["wall_s"] / b["wall_s"] for r, b in zip(runs[config], runs["none"])]
        cpus = [r["cpu_s"] / b["cpu_s"] for r, b in zip(runs[config], runs["none"])]
        errors = [r["error_points"] for r in runs[config] if r["error_points"] is not None]
        rows.append((CONFIGS[config],
                     f"{statistics.median(walls):.3f} ({min(walls):.3f}-{max(walls):.3f})",
                     f"{statistics.median(cpus):.3f} ({min(cpus):.3f}-{max(cpus):.3f})",
                     f"{statistics.median(errors):+.1f} ({min(errors):+.1f} to {max(errors):+.1f})"
                     if errors else "-"))
    print(format_table(rows))
    print(f"load average after {loadavg()}; max RSS of the runs "
          f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024} MiB")


if __name__ == "__main__":
    main()
