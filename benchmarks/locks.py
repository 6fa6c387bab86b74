"""Lock profiling overhead: cprof's recording locks against threading's own
and against dd-trace's lock profiler.

Two measurements, each configuration in a fresh subprocess, repeated:

  - "uncontended": ns per ``lock.acquire(); lock.release()`` (and per
    ``with lock:``) of a threading.Lock made after profiling started, in one
    thread: the cost every lock user pays;
  - "queue": CPU time of 4 producer and 4 consumer threads passing 100,000
    items through one queue.Queue, a lock-heavy program with real
    contention.

Configurations: off (threading's locks); cprof with the mutex fraction and
block rate at 1 (every event recorded); cprof at Go's usual settings
(mutex fraction 100, block rate 10 us); dd-trace's lock collector alone at
its default capture rate (ddtrace.profiling with the stack, memory and heap
collectors off and no upload), when ddtrace installs.

    python benchmarks/locks.py [--repeat N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable

from cpu_overhead import format_table, import_cprof, loadavg, machine

_thread_lock = type(threading.Lock())  # threading's own, before anything patches it
TARGET_NS = 50       # the issue's: at most 50 ns more per uncontended acquire+release
PAIRS = 1_000_000
ITEMS = 100_000


def setup(config: str) -> Callable[[], None]:
    """Turn config on; returns what turns it off."""
    if config == "off":
        return lambda: None
    if config.startswith("cprof"):
        cprof = import_cprof()
        fraction, rate = (1, 1) if config == "cprof-all" else (100, 10_000)
        cprof.set_mutex_profile_fraction(fraction)
        cprof.set_block_profile_rate(rate)

        def off() -> None:
            cprof.set_mutex_profile_fraction(0)
            cprof.set_block_profile_rate(0)
        return off
    from ddtrace.profiling import Profiler  # dd-trace; its environment is set by run()
    profiler = Profiler()
    profiler.start()
    return lambda: profiler.stop(flush=False)


def uncontended() -> dict[str, float]:
    lock = threading.Lock()
    acquire, release = lock.acquire, lock.release
    for _ in range(10_000):
        acquire()
        release()
    t = time.perf_counter_ns()
    for _ in range(PAIRS):
        acquire()
        release()
    pair = (time.perf_counter_ns() - t) / PAIRS
    t = time.perf_counter_ns()
    for _ in range(PAIRS):
        with lock:
            pass
    with_ns = (time.perf_counter_ns() - t) / PAIRS
    t = time.perf_counter_ns()
    for _ in range(PAIRS):
        pass
    loop = (time.perf_counter_ns() - t) / PAIRS
    kind = type(lock)
    name = ("cprof._core.Lock" if kind.__module__ == "_thread" and kind is not _thread_lock
            else f"{kind.__module__}.{kind.__qualname__}")
    return {"pair_ns": pair - loop, "with_ns": with_ns - loop, "type": name}


def queue_work() -> dict[str, float]:
    q: queue.Queue[int] = queue.Queue(maxsize=100)

    def produce() -> None:
        for i in range(ITEMS // 4):
            q.put(i)

    def consume() -> None:
        for _ in range(ITEMS // 4):
            q.get()
    threads = [threading.Thread(target=f) for f in (produce, consume) for _ in range(4)]
    c0 = time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"cpu_s": time.process_time() - c0}


def worker(config: str, what: str) -> dict[str, Any]:
    off = setup(config)
    try:
        return uncontended() if what == "uncontended" else queue_work()
    finally:
        off()


CONFIGS = {"off": "threading's locks (off)", "cprof-all": "cprof, fraction 1, rate 1 ns",
           "cprof-go": "cprof, fraction 100, rate 10 us", "ddtrace": "dd-trace lock collector"}
DDTRACE_ENV = {"DD_PROFILING_ENABLED": "true", "DD_PROFILING_LOCK_ENABLED": "true",
               "DD_PROFILING_STACK_ENABLED": "false", "DD_PROFILING_MEMORY_ENABLED": "false",
               "DD_PROFILING_HEAP_ENABLED": "false", "DD_PROFILING_UPLOAD_INTERVAL": "3600",
               "DD_TRACE_ENABLED": "false", "DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false"}


def run(config: str, what: str, tmp: str) -> dict[str, Any] | None:
    out = os.path.join(tmp, "r.json")
    env = dict(os.environ, PYTHONHASHSEED="0")
    if config == "ddtrace":
        env.update(DDTRACE_ENV)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [DDTRACE_DIR, env.get("PYTHONPATH")]))
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", config,
                        "--what", what, "--out", out], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        print(f"  {config} {what} failed: {r.stderr.strip().splitlines()[-1:]}")
        return None
    with open(out) as f:
        result: dict[str, Any] = json.load(f)
    return result


# ddtrace goes into a directory of its own, on the path of its runs only: in
# the environment it would register a pytest plugin that starts threads in
# forked children, which cprof's own fork tests would then see.
DDTRACE_DIR = os.path.join(tempfile.gettempdir(), "cprof-bench-ddtrace")


def ddtrace_version() -> str | None:
    """Install ddtrace into DDTRACE_DIR if it is not there; its version."""
    if not os.path.isdir(os.path.join(DDTRACE_DIR, "ddtrace")):
        r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target",
                            DDTRACE_DIR, "ddtrace"])
        if r.returncode != 0:
            return None
    from importlib.metadata import distributions
    for dist in distributions(path=[DDTRACE_DIR]):
        if dist.metadata["Name"] == "ddtrace":
            return dist.version
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", metavar="OUT")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--what", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        with open(args.out, "w") as f:
            json.dump(worker(args.worker, args.what), f)
        return
    info = machine()
    info["ddtrace"] = ddtrace_version()
    info["load_before"] = loadavg()
    configs = [c for c in CONFIGS if c != "ddtrace" or info["ddtrace"]]
    print(f"machine: {info['cpu']}, {info['cores']} cores; python {info['python']}; "
          f"cprof {info['cprof_commit']}; ddtrace {info['ddtrace']}; {info['date']}")
    results: dict[str, dict[str, list[dict[str, Any]]]] = {
        w: {c: [] for c in configs} for w in ("uncontended", "queue")}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            for what in results:
                for config in configs[i % len(configs):] + configs[:i % len(configs)]:
                    r = run(config, what, tmp)
                    if r is not None:
                        results[what][config].append(r)
    rows = [("configuration", "lock type", "acquire+release ns", "extra ns",
             "with lock: ns", "queue CPU s", "queue x")]
    base_pair = statistics.median(r["pair_ns"] for r in results["uncontended"]["off"])
    base_q = statistics.median(r["cpu_s"] for r in results["queue"]["off"])
    extra: dict[str, float] = {}
    for c in configs:
        un, qs = results["uncontended"][c], results["queue"][c]
        if not un or not qs:
            rows.append((CONFIGS[c], "-", "failed", "-", "-", "-", "-"))
            continue
        pair = statistics.median(r["pair_ns"] for r in un)
        extra[c] = pair - base_pair
        q = statistics.median(r["cpu_s"] for r in qs)
        rows.append((CONFIGS[c], un[0]["type"], f"{pair:.1f}", f"{pair - base_pair:+.1f}",
                     f"{statistics.median(r['with_ns'] for r in un):.1f}", f"{q:.3f}",
                     f"{q / base_q:.2f}"))
    print()
    print(format_table(rows))
    worst = max(extra.get("cprof-all", 1e9), extra.get("cprof-go", 1e9))
    print(f"\ntarget: at most {TARGET_NS} ns more per uncontended acquire+release; cprof: "
          f"{worst:+.1f} ns ({'met' if worst <= TARGET_NS else 'NOT met'}); medians of "
          f"{args.repeat} runs; load average after: {loadavg()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
