"""Analysis benchmark: cprof's load, top and flame graph against go tool pprof -top.

One run times, on two profiles,

  - cprof: load + top(10) printed; load + top(10) printed + the interactive
    HTML flame graph written; load + folded stacks written (what flamegraph.pl
    would read); load + the DOT call graph of -focus=decode (label boxes
    included), against go tool pprof -dot -focus=decode, whose text it must equal;
  - go tool pprof -top -symbolize=none FILE (the issue's target: cprof's load
    + top + HTML flame graph faster than this alone), and the same with
    -nodecount=10, which prints the very report cprof's top(10) prints;
  - flamegraph.pl on cprof's folded stacks, when it is installed (Debian 12
    does not package it: `apt-cache search flamegraph` finds nothing).

The profiles: benchmarks/large_profile.py's 300,000-sample file (many
distinct stacks), and a real Python CPU profile that cprof records once (a
mixed standard-library workload on two threads, --record-seconds of it at
1000 Hz, cached in benchmarks/.cache/), which has few distinct stacks.

Every run is a fresh process, timed from outside as a user at a shell would
see it (interpreter start-up and imports included); peak RSS is its
ru_maxrss from wait4 (descendants included, so `go tool`'s pprof child
counts), and "CPU s" its user + system time (Go's collector runs on every
core, so Go's CPU time exceeds its wall time). cprof's runs also report the
time of each step inside the process. Repeats are interleaved: round i runs
every measurement once, in an order rotated by i. "best" and "median" are
over --repeat rounds; "x go -top" is go tool pprof -top's best time over the
row's best: above 1, the row is faster.

    python benchmarks/analysis.py [--repeat N] [--json OUT] [--calm LOAD]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CACHE = os.path.join(HERE, ".cache")

sys.path.insert(0, HERE)
import large_profile  # noqa: E402

from _machine import cpu_model, markdown_table

RECORD_HZ = 1000
GO_TOP = "go tool pprof -top"
TARGET_ROW = "cprof load + top + HTML flame graph"
# Issue 16's target: all four in one process in <= 0.1x go tool pprof -top's
# time, with <= 0.5x its peak memory.
PIPELINE_ROW = "cprof load + top + HTML + folded"
FOCUS = "decode"  # a -focus that keeps most of the large profile's samples
# The call graph with its label boxes (every sample of the profile is labelled).
DOT_ROW = f"cprof load + DOT -focus={FOCUS}"
GO_DOT = f"go tool pprof -dot -focus={FOCUS}"


# --- cprof steps, each run in a fresh worker process ----------------------------
# A worker does one measurement once, writes the report to stdout as the CLI
# would, and prints the time of each step on stderr. It is `python -c` code
# importing nothing but cprof, so that its start-up is what a script's is.

WORKER = """
import os, sys, time
t0 = time.perf_counter()
import cprof
t1 = time.perf_counter()
steps, path, out = sys.argv[1].split(","), sys.argv[2], sys.argv[3]
p = cprof.load(path)
times = [("import", t1 - t0), ("load", time.perf_counter() - t1)]
for step in steps:
    t = time.perf_counter()
    if step == "top":
        sys.stdout.write(str(p.top(10)))
        sys.stdout.flush()
    elif step == "html":
        p.flamegraph(os.path.join(out, "flame.html"))
    elif step == "folded":
        with open(os.path.join(out, "folded.txt"), "w") as f:
            f.write(p.folded())
    elif step == "dot":  # go tool pprof -dot -focus=decode's text
        from cprof.export.dot import to_dot
        sys.stdout.write(to_dot(p.filter(focus="decode")))
        sys.stdout.flush()
    times.append((step, time.perf_counter() - t))
print(" ".join(f"{k}={v!r}" for k, v in times), file=sys.stderr)
"""

CPROF_ROWS: dict[str, list[str]] = {
    "cprof load + top(10)": ["top"],
    TARGET_ROW: ["top", "html"],
    "cprof load + folded written": ["folded"],
    PIPELINE_ROW: ["top", "html", "folded"],
    DOT_ROW: ["dot"],
}


# --- the realistic profile: cprof recording a mixed workload ----------------------

def _mixed_work(seed: int, stop: float) -> None:
    """Rotate through everyday standard-library work until time ``stop``."""
    import ast
    import difflib
    import hashlib
    import json as json_
    import pickle
    import random
    import re
    import textwrap
    import zlib
    from decimal import Decimal

    rng = random.Random(seed)
    source = open(os.path.join(os.path.dirname(json_.__file__), "decoder.py")).read()
    words = source.split()
    doc: dict[str, Any] = {"users": [
        {"id": i, "name": rng.choice(words), "tags": rng.sample(words, 5), "score": rng.random()}
        for i in range(300)]}

    def fib(n: int) -> int:
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    def json_roundtrip() -> object:
        return json_.loads(json_.dumps(doc))

    def regex_scan() -> object:
        return re.findall(r"\b[a-z_]+\(", source)

    def sort_records() -> object:
        return sorted(doc["users"], key=lambda u: (u["name"], -u["score"]))

    def diff_text() -> object:
        a = words[:400]
        return difflib.SequenceMatcher(None, a, a[::3] + a[1::3]).ratio()

    def compress() -> object:
        return zlib.decompress(zlib.compress(source.encode() * 4, 6))

    def parse_code() -> object:
        return compile(ast.parse(source), "decoder.py", "exec")

    def decimals() -> object:
        total = Decimal(0)
        for i in range(2000):
            total += Decimal(i) / Decimal(7)
        return total

    def pickle_roundtrip() -> object:
        return pickle.loads(pickle.dumps(doc))

    def format_report() -> object:
        return textwrap.fill(" ".join(f"{u['name']}={u['score']:.3f}" for u in doc["users"]))

    def digest() -> object:
        return hashlib.sha256(source.encode() * 20).hexdigest()

    tasks = [(json_roundtrip, 4), (regex_scan, 3), (sort_records, 3), (diff_text, 2),
             (compress, 2), (parse_code, 2), (decimals, 2), (pickle_roundtrip, 2),
             (format_report, 2), (digest, 1), (lambda: fib(16), 3)]
    population = [t for t, w in tasks for _ in range(w)]
    while time.monotonic() < stop:
        rng.choice(population)()


def record(path: str, seconds: float) -> None:
    cprof = large_profile.import_cprof()
    stop = time.monotonic() + seconds
    cprof.start_cpu_profile(path + ".tmp", hz=RECORD_HZ, mode="cpu")
    helper = threading.Thread(target=_mixed_work, args=(2, stop), name="worker")
    helper.start()
    _mixed_work(1, stop)
    helper.join()
    cprof.stop_cpu_profile()
    os.replace(path + ".tmp", path)


def python_profile(seconds: float) -> str:
    path = os.path.join(CACHE, f"python-mixed-{seconds:g}s-{RECORD_HZ}hz.pb.gz")
    if not os.path.exists(path):
        os.makedirs(CACHE, exist_ok=True)
        subprocess.run([sys.executable, os.path.abspath(__file__), "--record", path,
                        "--record-seconds", str(seconds)], check=True)
    return path


def describe(path: str) -> dict[str, Any]:
    """Samples, distinct stacks and tables of a profile (in a child, so that
    the driver's RSS, which forked children inherit in ru_maxrss, stays small)."""
    code = ("import json, sys; sys.path.insert(0, sys.argv[2]); import large_profile; "
            "p = large_profile.import_cprof().load(sys.argv[1]); "
            "print(json.dumps({'samples': p.total(0), 'records': len(p.samples), "
            "'locations': len(p.locations), "
            "'functions': len(p.functions), "
            "'distinct_stacks': len({tuple(map(id, s.locations)) for s in p.samples}), "
            "'folded_lines': p.folded().count(chr(10))}))")
    out = subprocess.run([sys.executable, "-c", code, path, HERE], check=True,
                         capture_output=True, text=True).stdout
    info: dict[str, Any] = json.loads(out)
    info["gzipped_bytes"] = os.path.getsize(path)
    return info


# --- the driver ------------------------------------------------------------------

def flamegraph_pl() -> str | None:
    return shutil.which("flamegraph.pl") or shutil.which("flamegraph")


def commands(path: str, out: str) -> dict[str, tuple[list[str], str | None]]:
    """Each row's command and the file its stdout goes to."""
    rows: dict[str, tuple[list[str], str | None]] = {}
    rows["python -c 'import cprof' (start-up)"] = ([sys.executable, "-c", "import cprof"],
                                                     None)
    for name, steps in CPROF_ROWS.items():
        rows[name] = ([sys.executable, "-c", WORKER, ",".join(steps), path, out],
                      os.path.join(out, name.replace(" ", "_") + ".txt"))
    rows["python -m cprof top -nodecount=10"] = (
        [sys.executable, "-m", "cprof", "top", "-nodecount=10", path],
        os.path.join(out, "cli-top.txt"))
    rows[f"python -m cprof top -focus={FOCUS}"] = (
        [sys.executable, "-m", "cprof", "top", f"-focus={FOCUS}", path],
        os.path.join(out, "cli-focus.txt"))
    rows[f"{GO_TOP} -focus={FOCUS}"] = (
        ["go", "tool", "pprof", "-top", f"-focus={FOCUS}", "-symbolize=none", path],
        os.path.join(out, "go-focus.txt"))
    rows[GO_DOT] = (["go", "tool", "pprof", "-dot", f"-focus={FOCUS}", "-symbolize=none", path],
                    os.path.join(out, "go-dot.txt"))
    rows[GO_TOP] = (["go", "tool", "pprof", "-top", "-symbolize=none", path], None)
    rows[GO_TOP + " -nodecount=10"] = (["go", "tool", "pprof", "-top", "-nodecount=10",
                                        "-symbolize=none", path],
                                       os.path.join(out, "go-top10.txt"))
    fg = flamegraph_pl()
    if fg:
        rows["flamegraph.pl on cprof's folded stacks"] = (
            ["sh", "-c", f'"{fg}" "{os.path.join(out, "folded.txt")}" > "{out}/flame.svg"'],
            None)
    return rows


def run_once(cmd: list[str], stdout: str | None, env: dict[str, str]) -> dict[str, Any]:
    with open(stdout or os.devnull, "w") as f:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.PIPE, env=env)
        assert proc.stderr is not None
        err = proc.stderr.read()
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {err.decode()[-2000:]}")
    r: dict[str, Any] = {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime,
                         "maxrss_kb": ru.ru_maxrss}
    if cmd[:2] == [sys.executable, "-c"] and len(cmd) > 3:
        last = err.decode().strip().splitlines()[-1]
        r["steps"] = {k: float(v) for k, v in (kv.split("=") for kv in last.split())}
    return r


def measure(path: str, repeat: int, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="cprof-analysis-") as out:
        rows = commands(path, out)
        names = list(rows)
        runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
        for i in range(repeat):
            order = names[i % len(names):] + names[:i % len(names)]
            # flamegraph.pl reads the folded file the cprof row writes.
            order.sort(key=lambda n: n.startswith("flamegraph"))
            for name in order:
                runs[name].append(run_once(*rows[name], env))
        results: dict[str, dict[str, Any]] = {}
        for name, rs in runs.items():
            walls = [r["wall_s"] for r in rs]
            results[name] = {"best_s": min(walls), "median_s": statistics.median(walls),
                             "times_s": walls,
                             "cpu_median_s": statistics.median(r["cpu_s"] for r in rs),
                             "peak_rss_kb": max(r["maxrss_kb"] for r in rs)}
            if "steps" in rs[0]:
                results[name]["steps_median_s"] = {
                    k: statistics.median(r["steps"][k] for r in rs) for k in rs[0]["steps"]}
        with open(rows["cprof load + top(10)"][1] or os.devnull) as f:
            cprof_top = f.read()
        with open(os.path.join(out, "go-top10.txt")) as f:
            go_top = f.read()
        html = os.path.join(out, "flame.html")
        results[TARGET_ROW]["output_bytes"] = os.path.getsize(html)
        results["cprof load + folded written"]["output_bytes"] = os.path.getsize(
            os.path.join(out, "folded.txt"))
        with open(rows["python -m cprof top -nodecount=10"][1] or os.devnull) as f:
            cli_top = f.read()
        results[GO_TOP + " -nodecount=10"]["same_text_as_cprof_top"] = (
            cprof_top.strip() == go_top.strip() == cli_top.strip())
        with open(os.path.join(out, "cli-focus.txt")) as f, \
                open(os.path.join(out, "go-focus.txt")) as g:
            results[f"{GO_TOP} -focus={FOCUS}"]["same_text_as_cprof_top"] = (
                f.read().strip() == g.read().strip())
        with open(rows[DOT_ROW][1] or os.devnull) as f, \
                open(os.path.join(out, "go-dot.txt")) as g:
            results[GO_DOT]["same_text_as_cprof_top"] = f.read() == g.read()
    return results


def table(results: dict[str, dict[str, Any]]) -> str:
    rows = [("measurement", "best s", "median s", "CPU s", "in process s", "peak RSS MB",
             "x go -top")]
    go = results[GO_TOP]["best_s"]
    for name, r in results.items():
        steps = r.get("steps_median_s")
        inproc = f"{sum(v for k, v in steps.items() if k != 'import'):.3f}" if steps else "-"
        rows.append((name, f"{r['best_s']:.3f}", f"{r['median_s']:.3f}",
                     f"{r['cpu_median_s']:.3f}", inproc,
                     f"{r['peak_rss_kb'] / 1024:.0f}", f"{go / r['best_s']:.2f}"))
    if not flamegraph_pl():
        rows.append(("flamegraph.pl (not packaged by Debian)", "-", "-", "-", "-", "-", "-"))
    return markdown_table(rows)


def steps_line(results: dict[str, dict[str, Any]]) -> str:
    parts = []
    for name in CPROF_ROWS:
        steps = results[name]["steps_median_s"]
        parts.append(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in steps.items()))
    return "in-process steps, median s: " + "; ".join(parts)


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def wait_calm(limit: float, patience: float = 600) -> None:
    """Wait (up to ``patience`` s) for the 1-minute load average to drop below ``limit``."""
    deadline = time.monotonic() + patience
    while os.getloadavg()[0] > limit and time.monotonic() < deadline:
        time.sleep(10)


def apt_flamegraph() -> str:
    """What Debian's package lists say about flamegraph.pl."""
    found = subprocess.run(["apt-cache", "search", "flamegraph"], capture_output=True,
                           text=True).stdout.strip()
    return found or "no package (apt-cache search flamegraph finds nothing)"


def machine() -> dict[str, Any]:
    cpu = cpu_model()
    go = subprocess.run(["go", "version"], capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip()
    debian = ""
    if os.path.exists("/etc/debian_version"):
        with open("/etc/debian_version") as f:
            debian = f.read().strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "os": platform.platform(), "debian": debian,
            "python": platform.python_version(), "go": go, "cprof_commit": commit,
            "date": datetime.date.today().isoformat()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="rounds (fresh processes per row)")
    ap.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    ap.add_argument("--calm", type=float, metavar="LOAD",
                    help="first wait (up to 10 min) for the load average to fall below LOAD")
    ap.add_argument("--record-seconds", type=float, default=30,
                    help="length of the recorded Python profile")
    ap.add_argument("--record", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.record:
        record(args.record, args.record_seconds)
        return

    # Made in children: Linux carries a parent's RSS into a forked child's
    # ru_maxrss, so the driver itself must stay small.
    subprocess.run([sys.executable, large_profile.__file__], check=True, stdout=subprocess.DEVNULL)
    profiles = {"large": large_profile.cached(),
                "python": python_profile(args.record_seconds)}
    info = machine()
    info.update(repeat=args.repeat, flamegraph_pl=flamegraph_pl(), apt=apt_flamegraph())
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT] + ([os.environ["PYTHONPATH"]] if "PYTHONPATH" in os.environ else [])))
    # go tool pprof keeps its state under $HOME/pprof: give it a throw-away home.
    home = tempfile.TemporaryDirectory(prefix="cprof-analysis-home-")
    # TZ: DOT's legend prints the profile's time in the local zone, and is compared.
    env.update(HOME=home.name, PPROF_TMPDIR=home.name, TZ="UTC")
    if args.calm:
        wait_calm(args.calm)
    print(f"machine: {info['cpu']}, {info['cores']} cores; {info['os']}; Debian {info['debian']}")
    print(f"python {info['python']}; {info['go']}; cprof {info['cprof_commit']}; "
          f"{info['date']}; {args.repeat} rounds")
    print(f"flamegraph.pl: {info['flamegraph_pl'] or 'not installed'}; Debian: {info['apt']}")

    all_results: dict[str, Any] = {}
    for label, path in profiles.items():
        desc = describe(path)
        info["load_before_" + label] = loadavg()
        results = measure(path, args.repeat, env)
        info["load_after_" + label] = loadavg()
        all_results[label] = {"input": dict(desc, path=os.path.relpath(path, ROOT)),
                              "results": results}
        print()
        print(f"{os.path.relpath(path, ROOT)}: {desc['gzipped_bytes'] / 1e6:.2f} MB gzipped; "
              f"{desc['samples']} samples in {desc['records']} sample records, "
              f"{desc['distinct_stacks']} distinct stacks "
              f"({desc['folded_lines']} folded lines), {desc['locations']} locations, "
              f"{desc['functions']} functions; load average {info['load_before_' + label]} "
              f"before, {info['load_after_' + label]} after")
        print(table(results))
        print(steps_line(results))
        b, go = results[TARGET_ROW], results[GO_TOP]
        met = "met" if b["best_s"] < go["best_s"] and b["median_s"] < go["median_s"] else "MISSED"
        print(f"target (cprof load + top + HTML flame graph faster than go tool pprof -top): "
              f"{go['best_s'] / b['best_s']:.2f}x best, {go['median_s'] / b['median_s']:.2f}x "
              f"median, {go['peak_rss_kb'] / b['peak_rss_kb']:.2f}x peak RSS: {met}")
        a = results[PIPELINE_ROW]
        t_ratio, m_ratio = a["best_s"] / go["best_s"], a["peak_rss_kb"] / go["peak_rss_kb"]
        met = "met" if t_ratio <= 0.1 and m_ratio <= 0.5 else "MISSED"
        print(f"issue 16 target ({PIPELINE_ROW} in <= 0.1x go tool pprof -top's time, <= 0.5x "
              f"its peak RSS): {t_ratio:.3f}x time (best), "
              f"{a['median_s'] / go['median_s']:.3f}x (median), {m_ratio:.2f}x peak RSS: {met}")
        same = {k: v["same_text_as_cprof_top"] for k, v in results.items()
                if "same_text_as_cprof_top" in v}
        print(f"same text as go tool pprof: {same}")
        same = results[GO_TOP + " -nodecount=10"]["same_text_as_cprof_top"]
        print(f"cprof top(10) and cprof top -nodecount=10 text identical to go tool pprof "
              f"-top -nodecount=10: "
              f"{'yes' if same else 'NO'}; HTML flame graph "
              f"{b['output_bytes'] / 1e6:.1f} MB")
    print()
    print("times are whole fresh processes (start-up included), best/median over rounds; "
          "CPU s = user + system time of the process and its children (median); "
          "'in process s' = cprof's load and steps inside the process (median); "
          "x go -top = go tool pprof -top best / row best (above 1: faster)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "profiles": all_results}, f, indent=2)


if __name__ == "__main__":
    main()
