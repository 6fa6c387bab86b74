"""Following child processes: `cprof record --follow` against `py-spy record --subprocesses`.

The workload is a multiprocessing.Pool (--workers processes, the platform's
default start method) mapping a pure-Python function (recursive fib) over
TASKS tasks, sized so that the whole map takes about --seconds of CPU
unprofiled. It runs, each time in a fresh process, under:

  - nothing ("bare");
  - cprof record --follow at 100 Hz: every worker profiles itself and the
    profiles are merged into one at the end;
  - py-spy record --subprocesses --rate 100 --nonblocking, which samples the
    program and its workers from outside.

For each run: the wall time of the whole command; the CPU time of the whole
process tree (getrusage of the waited-for children: the program, its workers,
cprof's work in them, and py-spy's own process); and the CPU the tasks
themselves took (each task's time.process_time, summed over tasks), which is
what profiling costs the work itself. Rounds are interleaved (round i runs
each configuration once, in an order rotated by i), each ratio is against the
bare run of the same round, and the table gives the medians and ranges.

    python benchmarks/follow_overhead.py [--repeat N] [--seconds S] [--workers W]

py-spy is pip-installed into the running interpreter's environment if missing.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from _machine import cpu_model, markdown_table, py_spy

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = ["bare", "cprof --follow", "py-spy --subprocesses"]
TASKS = 40

WORKLOAD = '''\
import json, multiprocessing, sys, time

def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

def task(n):
    start = time.process_time()
    fib(n)
    return time.process_time() - start

if __name__ == "__main__":
    n, tasks, workers, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    with multiprocessing.Pool(workers) as pool:
        spent = pool.map(task, [n] * tasks, chunksize=1)
    with open(out, "w") as f:
        json.dump({"tasks_cpu": sum(spent)}, f)
'''


def fib_n_for(seconds_per_task: float) -> int:
    """The fib argument whose call takes about ``seconds_per_task`` here."""
    def fib(n: int) -> int:
        return n if n < 2 else fib(n - 1) + fib(n - 2)
    n = 20
    while True:
        start = time.process_time()
        fib(n)
        took = time.process_time() - start
        if took >= seconds_per_task / 1.7 or n >= 35:
            return n + 1 if took < seconds_per_task / 1.3 else n
        n += 1


def run(config: str, argv: list[str], tmp: str, spy: str | None) -> dict[str, float]:
    """One run: wall seconds, the tree's CPU seconds, the tasks' CPU seconds."""
    out = os.path.join(tmp, "result.json")
    workload = [sys.executable, os.path.join(tmp, "workload.py"), *argv, out]
    if config == "bare":
        command = workload
    elif config == "cprof --follow":
        command = [sys.executable, "-m", "cprof", "record", "--follow", "--quiet", "--hz", "100",
                   "-o", os.path.join(tmp, "follow.prof"), "--", *workload]
    else:
        assert spy is not None
        command = [spy, "record", "--subprocesses", "--rate", "100", "--nonblocking",
                   "--format", "raw", "-o", os.path.join(tmp, "spy.txt"), "--", *workload]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   cwd=tmp)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    with open(out) as f:
        tasks_cpu = json.load(f)["tasks_cpu"]
    return {"wall": wall, "cpu": cpu, "tasks_cpu": tasks_cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=4.0,
                    help="CPU seconds of the whole map, unprofiled (about)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", help="also write the raw figures here")
    args = ap.parse_args()

    try:
        spy: str | None = py_spy(sys.executable)
        version = subprocess.run([spy, "--version"], capture_output=True, text=True,
                                 check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"py-spy unavailable ({e}): left out", file=sys.stderr)
        spy, version = None, "unavailable"
    configs = [c for c in CONFIGS if spy is not None or not c.startswith("py-spy")]
    n = fib_n_for(args.seconds / TASKS)
    argv = [str(n), str(TASKS), str(args.workers)]
    results: dict[str, list[dict[str, float]]] = {c: [] for c in configs}
    with tempfile.TemporaryDirectory(prefix="cprof-follow-bench-") as tmp:
        with open(os.path.join(tmp, "workload.py"), "w") as f:
            f.write(WORKLOAD)
        run("bare", argv, tmp, spy)  # warm the caches
        for i in range(args.repeat):
            order = configs[i % len(configs):] + configs[:i % len(configs)]
            for config in order:
                results[config].append(run(config, argv, tmp, spy))
            print(f"round {i + 1}/{args.repeat}: " + ", ".join(
                f"{c} {results[c][-1]['wall']:.2f} s" for c in configs), file=sys.stderr)

    print(f"# {platform.python_implementation()} {platform.python_version()}, "
          f"{cpu_model()}, {os.cpu_count()} CPUs, Linux {platform.release()}, "
          f"{datetime.date.today()}, py-spy {version}")
    print(f"# Pool({args.workers}) over {TASKS} tasks of fib({n}); {args.repeat} rounds; "
          f"load average {os.getloadavg()[0]:.2f}")
    bare = results["bare"]
    rows = [("configuration", "wall s", "wall ratio", "tree CPU s", "tree CPU ratio",
             "tasks' CPU ratio")]
    for config in configs:
        runs = results[config]
        ratios = {key: [r[key] / b[key] for r, b in zip(runs, bare)]
                  for key in ("wall", "cpu", "tasks_cpu")}

        def cell(key: str) -> str:
            values = ratios[key]
            return (f"{statistics.median(values):.3f} ({min(values):.3f}..{max(values):.3f})")
        rows.append((config, f"{statistics.median(r['wall'] for r in runs):.2f}", cell("wall"),
                     f"{statistics.median(r['cpu'] for r in runs):.2f}", cell("cpu"),
                     cell("tasks_cpu")))
    print(markdown_table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"fib": n, "tasks": TASKS, "workers": args.workers, "results": results}, f,
                      indent=1)


if __name__ == "__main__":
    main()
