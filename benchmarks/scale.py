"""Scale benchmark: the 300,000-sample profile against one ten times as large.

Issue 16's scale target: on a profile of 3,000,000 samples (ten times
benchmarks/large_profile.py's default one, same generator and seed, so ten
times the sample records and the distinct stacks over the same 80,000
locations), ``top(10)`` and the HTML flame graph take at most 12 times as long
as on the 300,000-sample one, with peak memory bounded the same way.

One run times, on both profiles, each step in a fresh process of its own
(``python -c`` importing nothing but cprof): load alone; load + ``top(10)``
printed; load + ``Profile.flamegraph(path)``; load + ``Profile.folded()``
written. Each process reports its step's time and its RSS after loading
(``getrusage``); the driver takes its peak RSS (``ru_maxrss``) and wall time
from ``os.wait4``. ``go tool pprof -top -symbolize=none`` runs on both files
for reference, timed and measured the same way (its peak RSS includes the
pprof child that ``go tool`` starts). The ratios printed are 3M / 300k.

A step that fails or runs past --timeout is reported as such and the run
goes on (folded stacks are being moved onto the C engine, so their figures
move; the script reads whatever ``Profile.folded()`` does today). The 3M
profile (218 MB gzipped) is made on first use into benchmarks/.cache/ (~40 s);
``load`` is given ``max_size`` large enough for it (it decodes to more than
the 1 GiB default).

    python benchmarks/scale.py [--repeat N] [--go-repeat N] [--json OUT]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

sys.path.insert(0, HERE)
import large_profile  # noqa: E402

from _machine import cpu_model  # noqa: E402

FACTOR = 10
TARGET = 12.0  # issue 16: the 3M profile's time (and peak RSS) at most 12x the 300k one's
STEPS = ("load", "top", "html", "folded")
TARGET_STEPS = ("top", "html")

# One measurement in a fresh process: load, then at most one step. Prints
# "step_s=... load_s=... rss_after_load_kb=... out_bytes=..." on stderr.
WORKER = """
import os, resource, sys, time
import cprof
step, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
t = time.perf_counter()
p = cprof.load(path, max_size=1 << 40)
load_s = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
target = os.path.join(out, step + (".html" if step == "html" else ".out"))
if step == "top":
    text = str(p.top(10))
    sys.stdout.write(text)
elif step == "html":
    p.flamegraph(target)
elif step == "folded":
    with open(target, "w") as f:
        f.write(p.folded())
step_s = time.perf_counter() - t if step != "load" else load_s
size = os.path.getsize(target) if os.path.exists(target) else 0
print(f"step_s={step_s!r} load_s={load_s!r} rss_after_load_kb={rss} out_bytes={size}",
      file=sys.stderr)
"""


def run(cmd: list[str], env: dict[str, str], timeout: float,
        stdout: str | None = None, cwd: str | None = None) -> dict[str, Any]:
    """Run ``cmd``; its wall time, CPU time and peak RSS from wait4, and the
    last line of its stderr, or the reason it failed."""
    with open(stdout or os.devnull, "w") as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=cwd)
        deadline = t0 + timeout
        try:
            while True:
                pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.perf_counter() > deadline:
                    proc.kill()
                    _, status, ru = os.wait4(proc.pid, 0)
                    proc.returncode = -9
                    return {"error": f"timeout after {timeout:g} s",
                            "maxrss_kb": ru.ru_maxrss}
                time.sleep(0.02)
        except BaseException:
            # Ctrl-C or SIGTERM (see main): leave no worker running on.
            proc.kill()
            proc.wait()
            raise
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode(errors="replace").strip()
    r: dict[str, Any] = {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime,
                         "maxrss_kb": ru.ru_maxrss}
    if proc.returncode:
        r["error"] = f"exit {proc.returncode}: {text.splitlines()[-1] if text else ''}"
    else:
        r["last_line"] = text.splitlines()[-1] if text else ""
    return r


def cprof_step(step: str, path: str, env: dict[str, str], timeout: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cprof-scale-") as out:
        # Run in the temporary directory: `python -c` puts its working
        # directory first on sys.path, and from the checkout's root that would
        # import the source tree's cprof (unbuilt) instead of the installed one.
        r = run([sys.executable, "-c", WORKER, step, os.path.abspath(path), out], env, timeout,
                stdout=os.path.join(out, "stdout.txt"), cwd=out)
        if "error" not in r:
            fields = dict(kv.split("=") for kv in r.pop("last_line").split())
            r.update(step_s=float(fields["step_s"]), load_s=float(fields["load_s"]),
                     rss_after_load_kb=int(fields["rss_after_load_kb"]),
                     out_bytes=int(fields["out_bytes"]))
            if step == "top":
                with open(os.path.join(out, "stdout.txt")) as f:
                    r["out_bytes"] = len(f.read())
                if not r["out_bytes"]:
                    r["error"] = "top(10) printed nothing"
    return r


def go_top(path: str, env: dict[str, str], timeout: float) -> dict[str, Any]:
    r = run(["go", "tool", "pprof", "-top", "-symbolize=none", path], env, timeout)
    r.pop("last_line", None)
    return r


def summarise(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Median time and peak RSS over the runs that succeeded; the first error otherwise."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"error": runs[0]["error"], "maxrss_kb": max(r["maxrss_kb"] for r in runs)}
    s: dict[str, Any] = {"median_s": statistics.median(r[key] for r in ok),
                         "best_s": min(r[key] for r in ok),
                         "times_s": [r[key] for r in ok],
                         "peak_rss_kb": max(r["maxrss_kb"] for r in ok)}
    if "rss_after_load_kb" in ok[0]:
        s["rss_after_load_kb"] = statistics.median(r["rss_after_load_kb"] for r in ok)
        s["out_bytes"] = ok[0]["out_bytes"]
    if len(ok) < len(runs):
        s["failed_runs"] = len(runs) - len(ok)
    return s


def machine() -> dict[str, Any]:
    go = subprocess.run(["go", "version"], capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip()
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "memory_gib": round(mem_gib, 1),
            "os": platform.platform(), "python": platform.python_version(), "go": go,
            "cprof_commit": commit, "date": datetime.date.today().isoformat()}


def fmt_time(s: dict[str, Any]) -> str:
    return s["error"].split(":")[0] if "error" in s else f"{s['median_s']:.3f}"


def fmt_rss(s: dict[str, Any]) -> str:
    return f"{s['peak_rss_kb'] / 1024:.0f}" if "peak_rss_kb" in s else "-"


def ratio(a: dict[str, Any], b: dict[str, Any], key: str) -> float | None:
    return b[key] / a[key] if key in a and key in b and a[key] else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3,
                    help="fresh processes per cprof step and profile (median reported)")
    ap.add_argument("--go-repeat", type=int, default=1,
                    help="runs of go tool pprof -top per profile (0 to skip)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per process")
    ap.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    args = ap.parse_args()
    # SIGTERM raises SystemExit, so that run() kills the worker it waits for.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    # Made in children: a forked child starts with its parent's ru_maxrss,
    # so the driver must never hold a profile itself.
    small = large_profile.SAMPLES
    profiles = {}
    for samples in (small, small * FACTOR):
        out = subprocess.run([sys.executable, large_profile.__file__, "--samples", str(samples)],
                             check=True, capture_output=True, text=True).stdout
        profiles[samples] = out.split(":")[0]
    env = dict(os.environ)
    # go tool pprof keeps its state under $HOME/pprof: give it a throw-away home.
    home = tempfile.TemporaryDirectory(prefix="cprof-scale-home-")
    env.update(HOME=home.name, PPROF_TMPDIR=home.name)
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB; "
          f"{info['os']}")
    print(f"python {info['python']}; {info['go']}; cprof {info['cprof_commit']}; "
          f"{info['date']}; {args.repeat} runs per cprof step, {args.go_repeat} of go")
    for samples, path in profiles.items():
        print(f"{samples:>9,} samples: {os.path.relpath(path, ROOT)} "
              f"({os.path.getsize(path) / 1e6:.1f} MB gzipped)")

    results: dict[int, dict[str, Any]] = {n: {} for n in profiles}
    runs: dict[tuple[int, str], list[dict[str, Any]]] = {}
    # Rounds interleave the two profiles and the steps, so that a slow spell
    # of the machine does not fall on one profile only.
    for _ in range(args.repeat):
        for step in STEPS:
            for samples, path in profiles.items():
                r = cprof_step(step, path, env, args.timeout)
                runs.setdefault((samples, step), []).append(r)
                print(f"  {samples:>9,} {step:<7} "
                      + (r["error"][:200] if "error" in r else
                         f"{r['step_s']:.3f} s in process, {r['wall_s']:.3f} s wall, "
                         f"{r['maxrss_kb'] / 1024:.0f} MB peak"), flush=True)
    for samples, path in profiles.items():
        for step in STEPS:
            results[samples][step] = summarise(runs[samples, step], "step_s")
        if args.go_repeat:
            go_runs = [go_top(path, env, args.timeout) for _ in range(args.go_repeat)]
            results[samples]["go"] = summarise(go_runs, "wall_s")
            g = results[samples]["go"]
            print(f"  {samples:>9,} go tool pprof -top: " + (
                g["error"] if "error" in g else
                f"{g['median_s']:.3f} s wall, {g['peak_rss_kb'] / 1024:.0f} MB peak"), flush=True)

    a, b = (results[n] for n in profiles)
    names = {"load": "load", "top": "top(10)", "html": "HTML flame graph",
             "folded": "folded stacks", "go": "go tool pprof -top (wall)"}
    rows = [("step", "300k s", "3M s", "time 3M/300k", "300k peak MB", "3M peak MB",
             "RSS 3M/300k")]
    verdicts = []
    for step in [*STEPS, *(["go"] if args.go_repeat else [])]:
        tr, rr = ratio(a[step], b[step], "median_s"), ratio(a[step], b[step], "peak_rss_kb")
        rows.append((names[step], fmt_time(a[step]), fmt_time(b[step]),
                     f"{tr:.2f}x" if tr else "-", fmt_rss(a[step]), fmt_rss(b[step]),
                     f"{rr:.2f}x" if rr else "-"))
        if step in TARGET_STEPS:
            met = tr is not None and rr is not None and tr <= TARGET and rr <= TARGET
            verdicts.append(f"{names[step]} {'met' if met else 'MISSED'}")
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print()
    for k, r in enumerate(rows):
        print("| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                for i, (c, w) in enumerate(zip(r, widths))) + " |")
        if k == 0:
            print("|" + "|".join("-" * (w + 1) + ("-" if i == 0 else ":")
                                 for i, w in enumerate(widths)) + "|")
    print()
    print("cprof steps: median time of the step inside a fresh process (load excluded, "
          "except for load itself); peak MB: that process's ru_maxrss (load included).")
    for samples in profiles:
        r = results[samples]
        extras = [f"RSS after load {r['load'].get('rss_after_load_kb', 0) / 1024:.0f} MB"]
        for step in ("html", "folded"):
            if "out_bytes" in r[step]:
                extras.append(f"{step} output {r[step]['out_bytes'] / 1e6:.1f} MB")
        print(f"{samples:>9,} samples: " + "; ".join(extras))
    print(f"target (top(10) and HTML flame graph: 3M <= {TARGET:g}x 300k in time and peak "
          f"RSS): " + ", ".join(verdicts))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "repeat": args.repeat,
                       "profiles": {str(n): os.path.relpath(p, ROOT) for n, p in profiles.items()},
                       "results": {str(n): r for n, r in results.items()}}, f, indent=2)


if __name__ == "__main__":
    main()
