"""Wall-mode sampling beside many idle threads: what it costs the thread that runs.

A thread blocked in lock.acquire() that gets a signal wakes and retakes the
GIL before it waits again: a wall-clock sampler that signals every thread
every period made a 1 s loop take ~15 s beside 1,000 idle threads. cprof's
wall mode signals only the threads that ran (docs/CPU_PROFILER.md, "Wall
mode"). The issue's target: a 1 s loop beside 2,000 idle threads at 100 Hz
wall takes at most 1.05 s, and the idle threads' wall time is still in the
profile within 10%.

Every run is a fresh subprocess that starts N threads blocked in
threading.Event().wait() (N from --threads, 0, 1000 and 2000 by default), then
times a floating-point loop calibrated to take --seconds (1 s) unprofiled,
under each configuration in CONFIGS: unprofiled; cprof wall and cpu at 100 Hz
(cpu for reference: it never looks at a thread that does not run); py-spy
record --idle --rate 100 with and without --nonblocking, started on the
child's pid from outside and sampling before the loop starts; yappi on the
wall clock, profile_threads=True. The figure is the loop's wall time, over
the unprofiled run's with as many threads in the same round. Rounds are
interleaved (round i runs every configuration once, in an order rotated by
i); the table gives the median and the range of those ratios.

For the samplers that say which thread a sample is of, "idle share" is the
idle threads' wall time in the profile over N x the profile's duration: for
cprof, their samples' wall_ns over N x duration_ns; for py-spy, the samples
of its raw output whose stack passes through idle_thread, over the rate,
over N x the time from py-spy's first output line to its SIGINT (so a
start-up slower than that line, or samples py-spy fell behind on, show as a
share below 1).

    python benchmarks/wall_threads.py [--repeat N] [--threads 0,1000,2000]
                                      [--seconds S] [--json OUT]
                                      [--python 3.11,3.14,... | PATH ...]

yappi and py-spy are pip-installed into the benchmarked interpreter's
environment if missing; a peer that cannot be installed or does not run there
is reported unavailable, with the reason. A configuration that fails or does
not finish in --timeout seconds at some N is reported so, and not run at
that N or above again.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import IO, Any, Callable, Sequence

from cpu_overhead import (NEST_DEPTH, Peer, arithmetic_work, at_depth, calibrate,
                          check_code, check_py_spy, common_arguments, ensure_peers, failure,
                          format_table, import_cprof, loadavg, machine, machine_rows, print_header,
                          py_spy, side_by_side)

HZ = 100
TARGET_LOOP = 1.05   # the issue's: cprof wall at 2,000 threads, loop time over unprofiled
TARGET_IDLE = 0.10   # and the idle threads' wall time within 10%
TARGET_N = 2000
IDLE_PREFIX = "idle-"

CONFIGS: dict[str, str] = {
    "none": "unprofiled",
    "cprof-wall": f"cprof wall {HZ} Hz",
    "cprof-cpu": f"cprof cpu {HZ} Hz (reference)",
    "py-spy-nonblocking": f"py-spy --idle --rate {HZ} --nonblocking",
    "py-spy-blocking": f"py-spy --idle --rate {HZ} (blocking)",
    "yappi-wall": "yappi (wall clock, profile_threads)",
}
PY_SPY = {"py-spy-nonblocking": True, "py-spy-blocking": False}  # config: --nonblocking

PEERS = [
    # Two entries for one package: one mode failing (blocking py-spy stops
    # every thread each sample) leaves the other.
    Peer("py-spy --nonblocking", "py-spy", ("py-spy-nonblocking",), check_py_spy),
    Peer("py-spy blocking", "py-spy", ("py-spy-blocking",), check_py_spy),
    Peer("yappi", "yappi", ("yappi-wall",), check_code(
        "import yappi\nyappi.set_clock_type('wall')\nyappi.start(profile_threads=True)\n"
        "sum(i * i for i in range(300_000))\nyappi.stop()")),
]


# --- the worker: N idle threads, a timed loop -------------------------------------

def idle_thread(ev: threading.Event) -> None:
    ev.wait()  # py-spy's samples are told apart by this function in their stack


def start_idle(n: int) -> threading.Event:
    ev = threading.Event()
    for i in range(n):
        threading.Thread(target=idle_thread, args=(ev,), name=f"{IDLE_PREFIX}{i}",
                         daemon=True).start()
    time.sleep(0.2 + n * 1e-4)  # every one of them inside wait(), not still on its way
    return ev


def cprof_figures(profile: Any, n: int) -> dict[str, Any]:
    idle_ns = idle_samples = 0
    for s in profile.samples:
        if str(s.labels.get("thread_name", "")).startswith(IDLE_PREFIX):
            idle_samples += s.values[0]
            idle_ns += s.values[1]
    count, ns = profile.totals()
    return {"duration_s": profile.duration_ns / 1e9, "idle_s": idle_ns / 1e9,
            "idle_samples": idle_samples, "samples": count, "profile_s": ns / 1e9,
            "idle_share": idle_ns / (n * profile.duration_ns) if n else None}


def setup(config: str, n: int) -> tuple[Callable[[], None], Callable[[], dict[str, Any]]]:
    if config.startswith("cprof-"):
        cprof = import_cprof()
        mode = config.split("-", 1)[1]

        def stop_cprof() -> dict[str, Any]:
            figures = cprof_figures(cprof.stop_cpu_profile(), n)
            if mode == "cpu":
                figures["idle_share"] = None  # idle threads use no CPU: nothing to find
            return figures
        return (lambda: cprof.start_cpu_profile(mode=mode, hz=HZ)), stop_cprof
    if config == "yappi-wall":
        import yappi
        yappi.set_clock_type("wall")

        def stop_yappi() -> dict[str, Any]:
            yappi.stop()
            return {}
        return (lambda: yappi.start(profile_threads=True)), stop_yappi
    return (lambda: None), (lambda: {})


def allow_ptrace() -> None:
    """Let py-spy, a sibling rather than a parent, attach where Yama's
    ptrace_scope is 1; without Yama the call fails, harmlessly."""
    import ctypes
    PR_SET_PTRACER, PR_SET_PTRACER_ANY = 0x59616D61, -1
    ctypes.CDLL(None).prctl(PR_SET_PTRACER, ctypes.c_ulong(PR_SET_PTRACER_ANY & 0xFFFFFFFFFFFFFFFF),
                            0, 0, 0)


def worker(config: str, n: int, units: int, out: str) -> None:
    """One run. For py-spy, tell the parent "ready" on stdout, wait for "go"
    on stdin (py-spy sampling by then), say "done" after the loop and wait
    for "exit" before the threads go."""
    ev = start_idle(n)
    at_depth(NEST_DEPTH, arithmetic_work, 1)  # warm up
    handshake = config in PY_SPY
    if handshake:
        allow_ptrace()
        print("ready", flush=True)
        sys.stdin.readline()
    start, stop = setup(config, n)
    c0 = time.process_time()
    start()
    c1, w1 = time.process_time(), time.perf_counter()
    at_depth(NEST_DEPTH, arithmetic_work, units)
    c2, w2 = time.process_time(), time.perf_counter()
    extra = stop()
    c3 = time.process_time()
    with open(out, "w") as f:
        json.dump(dict(extra, loop_s=w2 - w1, loop_cpu_s=c2 - c1,
                       start_stop_s=(c1 - c0) + (c3 - c2)), f)
    if handshake:
        print("done", flush=True)
        sys.stdin.readline()
    ev.set()


# --- the driver -------------------------------------------------------------------

def read_line(stream: IO[str], deadline: float, what: str) -> str:
    """The next line of stream, or RuntimeError once the deadline passes."""
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(max(0.0, deadline - time.monotonic()))
    if not result:
        raise RuntimeError(f"no {what} in time")
    return result[0]


def py_spy_idle(raw: str) -> int:
    """Samples in py-spy's raw (folded) output whose stack passes through
    idle_thread."""
    total = 0
    with open(raw) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if "idle_thread (" in stack:
                total += int(count)
    return total


def run_py_spy(python: str, config: str, n: int, units: int, tmp: str, out: str,
               timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    cmd = [python, os.path.abspath(__file__), "--worker", config, "--threads", str(n),
           "--units", str(units), "--out", out]
    child = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONHASHSEED="0"))
    spy: subprocess.Popen[str] | None = None
    assert child.stdin is not None and child.stdout is not None
    try:
        if read_line(child.stdout, deadline, "ready from the child").strip() != "ready":
            raise RuntimeError(f"child exited ({child.wait()}) before it was ready")
        raw = os.path.join(tmp, "py-spy.txt")
        spy = subprocess.Popen(
            [py_spy(python), "record", "--pid", str(child.pid), "--idle", "--rate", str(HZ),
             *(["--nonblocking"] if PY_SPY[config] else []), "--format", "raw", "-o", raw],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert spy.stdout is not None
        # Its first line ("Sampling process 100 times a second...") comes
        # once it has attached.
        first = read_line(spy.stdout, deadline, "output from py-spy")
        t0 = time.monotonic()
        if spy.poll() is not None or "Sampling" not in first:
            raise RuntimeError(f"py-spy: {first.strip() or 'exited'} ({spy.wait()})")
        # The rest drained as it comes: "behind in sampling" warnings would
        # fill the pipe and stall it.
        said: list[str] = []
        drain = threading.Thread(target=lambda: said.extend(spy.stdout or ()), daemon=True)
        drain.start()
        child.stdin.write("go\n")
        child.stdin.flush()
        if read_line(child.stdout, deadline, "end of the loop").strip() != "done":
            raise RuntimeError(f"child exited ({child.wait()}) before the end of its loop")
        spy.send_signal(signal.SIGINT)
        t1 = time.monotonic()
        spy.wait(timeout=max(5.0, deadline - time.monotonic()))
        drain.join(5)
        rest = "".join(said)
        child.stdin.write("exit\n")
        child.stdin.flush()
        child.wait(timeout=30)
        with open(out) as f:
            r: dict[str, Any] = json.load(f)
        if not os.path.exists(raw):
            raise RuntimeError(f"py-spy wrote no profile: {rest.strip()[-200:]}")
        idle = py_spy_idle(raw)
        r.update(duration_s=t1 - t0, behind="behind in sampling" in rest, idle_samples=idle, idle_s=idle / HZ,
                 idle_share=idle / HZ / (n * (t1 - t0)) if n else None)
        return r
    finally:
        for p in (spy, child):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()


def run(python: str, config: str, n: int, units: int, tmp: str, timeout: float) -> dict[str, Any]:
    out = os.path.join(tmp, "result.json")
    if os.path.exists(out):
        os.unlink(out)
    if config in PY_SPY:
        return run_py_spy(python, config, n, units, tmp, out, timeout)
    cmd = [python, os.path.abspath(__file__), "--worker", config, "--threads", str(n),
           "--units", str(units), "--out", out]
    try:
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=timeout, env=dict(os.environ, PYTHONHASHSEED="0"))
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"did not finish in {timeout:.0f} s") from None
    with open(out) as f:
        result: dict[str, Any] = json.load(f)
    return result


def measure(python: str, args: argparse.Namespace) -> dict[str, Any]:
    t_start = time.monotonic()
    versions, unavailable = ensure_peers(python, PEERS)
    info = machine(python)
    info.update(versions=versions, repeat=args.repeat, seconds=args.seconds,
                threads=args.threads, load_before=loadavg())
    print_header(info, PEERS, versions, unavailable)
    left_out = {c for p in PEERS if p.name in unavailable for c in p.configs}
    names = [c for c in CONFIGS if c not in left_out]
    failed: dict[str, str] = {}  # "config@N": why; not run at N or above again
    results: dict[str, dict[str, list[dict[str, Any]]]] = {
        str(n): {c: [] for c in names} for n in args.threads}

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "calibrate.json")
        subprocess.run([python, os.path.abspath(__file__), "--worker", "calibrate", "--out", out],
                       check=True)
        with open(out) as f:
            units = max(1, round(args.seconds / json.load(f)))
        info["units"] = units
        print(f"loop: {units} x arith() below {NEST_DEPTH} frames, ~{args.seconds:g} s "
              f"unprofiled; threads {', '.join(map(str, args.threads))}; "
              f"{args.repeat} interleaved rounds", flush=True)
        for i in range(args.repeat):
            order = names[i % len(names):] + names[:i % len(names)]
            for n in args.threads:
                for config in order:
                    if any(k.split("@")[0] == config and int(k.split("@")[1]) <= n
                           for k in failed):
                        continue
                    try:
                        results[str(n)][config].append(
                            run(python, config, n, units, tmp, args.timeout))
                    except (RuntimeError, OSError, ValueError, KeyError,
                            subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
                        if config.startswith("cprof") or config == "none":
                            raise  # cprof's own failure is the news
                        failed[f"{config}@{n}"] = failure(e)
                        print(f"{CONFIGS[config]} at {n} threads: {failed[f'{config}@{n}']}",
                              flush=True)
            print(f"  round {i + 1}/{args.repeat} done, {time.monotonic() - t_start:.0f} s",
                  flush=True)
    info["load_after"] = loadavg()
    info["elapsed_s"] = time.monotonic() - t_start
    info["unavailable"] = unavailable
    return {"machine": info, "results": results, "failed": failed}


def ratios(runs: dict[str, list[dict[str, Any]]], config: str) -> list[float]:
    """Per round: the loop's wall time over the unprofiled run's, as many
    threads, same round (a configuration that failed later has fewer)."""
    return [r["loop_s"] / base["loop_s"] for r, base in zip(runs[config], runs["none"])]


def spread(xs: Sequence[float], fmt: str = "{:.3f}") -> str:
    return f"{fmt.format(statistics.median(xs))} ({fmt.format(min(xs))}-{fmt.format(max(xs))})"


def verdict(measured: dict[str, Any]) -> str:
    runs = measured["results"].get(str(TARGET_N), {}).get("cprof-wall")
    if not runs:
        return f"target: no cprof wall runs at {TARGET_N} threads (--threads must include it)"
    loop = statistics.median(ratios(measured["results"][str(TARGET_N)], "cprof-wall"))
    idle = statistics.median(r["idle_share"] for r in runs)
    ok = loop <= TARGET_LOOP and abs(idle - 1) <= TARGET_IDLE
    return (f"target (cprof wall {HZ} Hz, {TARGET_N} idle threads: loop <= {TARGET_LOOP:.2f}x, "
            f"idle share within {TARGET_IDLE:.0%}): loop {loop:.3f}x median, idle share "
            f"{idle:.3f} median: {'met' if ok else 'MISSED'}")


def report(measured: dict[str, Any]) -> None:
    info, results, failed = measured["machine"], measured["results"], measured["failed"]
    rows = [("threads", "profiler", "loop s", "loop x unprofiled, median (min-max)",
             "idle share, median (min-max)", "samples", "runs")]
    for n, runs in results.items():
        for config, rs in runs.items():
            if not rs:
                rows.append((n, CONFIGS[config], "-", failed.get(f"{config}@{n}", "not run")[:60],
                             "-", "-", "0"))
                continue
            shares = [r["idle_share"] for r in rs if r.get("idle_share") is not None]
            samples = [r["samples"] for r in rs if "samples" in r]
            rows.append((n, CONFIGS[config], f"{statistics.median(r['loop_s'] for r in rs):.3f}",
                         "-" if config == "none" else spread(ratios(runs, config)),
                         spread(shares) if shares else "-",
                         f"{statistics.median(samples):.0f}" if samples else "-",
                         str(len(rs))))
    print()
    print(format_table(rows))
    print("loop s: median wall time of the loop; idle share: the idle threads' wall time in the "
          "profile over N x its duration; samples: cprof's profile, all threads")
    for key, why in failed.items():
        config, n = key.split("@")
        print(f"{CONFIGS[config]} at {n} threads and above: {why}")
    for n, runs in results.items():
        for config in PY_SPY:
            behind = sum(bool(r.get("behind")) for r in runs.get(config, []))
            if behind:
                print(f"{CONFIGS[config]} at {n} threads: 'behind in sampling' in {behind} of "
                      f"{len(runs[config])} runs")
    print(verdict(measured))
    print(f"load average after: {info['load_after']}; {info['elapsed_s']:.0f} s in all")


def summary_table(measured: Sequence[dict[str, Any]]) -> str:
    rows: list[tuple[str, ...]] = [("cprof", *(m["machine"]["python"] for m in measured))]
    threads = list(measured[0]["results"])
    for config in ("cprof-wall", "cprof-cpu"):
        for n in threads:
            rows.append((f"{CONFIGS[config]}, {n} threads: loop x",
                         *(spread(ratios(m["results"][n], config)) for m in measured)))
    for n in threads:
        if n != "0":
            rows.append((f"{CONFIGS['cprof-wall']}, {n} threads: idle share", *(
                spread([r["idle_share"] for r in m["results"][n]["cprof-wall"]])
                for m in measured)))
    rows.append(("target", *(verdict(m).rsplit(": ", 1)[1] for m in measured)))
    return format_table(rows + machine_rows(measured))


def thread_counts(text: str) -> list[int]:
    counts = [int(x) for x in text.split(",") if x.strip()]
    if not counts or min(counts) < 0:
        raise argparse.ArgumentTypeError("comma-separated thread counts, 0 or more")
    return sorted(set(counts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_arguments(ap)
    ap.set_defaults(seconds=1.0)
    ap.add_argument("--threads", type=thread_counts, default=[0, 1000, 2000],
                    help="idle thread counts, comma-separated (default 0,1000,2000)")
    ap.add_argument("--timeout", type=float, default=300.0,
                    help="seconds a run may take before its configuration is given up at that "
                         "thread count")
    args = ap.parse_args()
    if args.worker:
        if args.worker == "calibrate":
            with open(args.out, "w") as f:
                json.dump(calibrate("arithmetic"), f)
        else:
            worker(args.worker, args.threads[0], args.units, args.out)
        return
    if not args.python:
        measured = measure(sys.executable, args)
        report(measured)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(measured, f, indent=2)
        return
    side_by_side(ap, args, measure, report, summary_table, "cprof wall beside idle threads")


if __name__ == "__main__":
    main()
