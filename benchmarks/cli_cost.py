"""CLI cost benchmark (issue 16): cprof from the shell on small inputs, and record's fixed cost.

One run times, side by side, as a user at a shell would see them (fresh
processes, interpreter start-up and imports included):

  - ``cprof top SMALL`` against ``go tool pprof -top SMALL``, SMALL a small
    real profile that cprof records once (a short recursion at 1000 Hz,
    cached in benchmarks/.cache/); the issue's target: cprof <= 2x go's wall
    time;
  - an empty program bare (``python -c pass``, ``python empty.py``) against
    ``cprof record -o OUT empty.py`` and ``cprof record -o OUT -- python
    empty.py`` (which re-executes the interpreter to run cprof itself): the
    fixed cost of record (import, runner, building and writing the profile,
    the printed top); target: <= 30 ms over the bare run;
  - CPU-bound workloads of ~--seconds each (recursion, floating point,
    standard-library work; deterministic, sized by a calibration run) bare,
    under ``cprof record --hz 100`` and ``--hz 1000``, and under ``py-spy
    record -r 100`` (when py-spy is installed); target: cprof's process CPU
    <= 1.01x the bare run's (geometric mean over the workloads).

Wall time is from outside; "CPU s" is user + system time from os.wait4, so a
process's every thread counts (cprof's sampler helper too) and, for py-spy,
py-spy's own process plus the target it starts and waits for. "target CPU s"
is the workload's own process CPU, read by the program itself as it ends (for
cprof that is before the profile is built; for py-spy it leaves py-spy out).
Repeats are interleaved: round i runs every row once (the short rows
--short-repeat times), in an order rotated by i; each round of the workloads
runs with the interpreter's heap laid out differently (LAYOUTS, below: a
tight loop's speed moves by up to 15% with unrelated imports). Ratios are of
medians; "best" is the minimum. py-spy is pip-installed next to the
interpreter when missing (--no-py-spy leaves it out).

    python benchmarks/cli_cost.py [--repeat N] [--workload-repeat N] [--seconds S] [--json OUT]
        [--pythonpath DIR]   # time the cprof of another checkout (built in place)
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CACHE = os.path.join(HERE, ".cache")

sys.path.insert(0, HERE)
from _machine import cpu_model, markdown_table, py_spy  # noqa: E402

# The small profile's program: a recursion at 1000 Hz, ~0.3 s of CPU (a few
# hundred samples, a handful of functions).
SMALL_PROGRAM = """
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

def work():
    return [fib(22) for _ in range(30)]

work()
"""

# The workloads: WORK(n) does n units; the program prints its own process CPU
# (RUSAGE_SELF: every thread of it) to the file named by CLI_COST_CPU as it ends.
WORKLOAD = r"""
import os, resource, sys

def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

def calls(n):
    for _ in range(n):
        fib(20)

def floats(n):
    for _ in range(n):
        x = 0.0
        for i in range(20000):
            x += (i * 0.5) / (i + 1.0)

def stdlib(n):
    import json, re
    doc = {"rows": [{"id": i, "name": f"n{i % 97}", "v": i * 0.25} for i in range(300)]}
    text = json.dumps(doc) * 4
    for _ in range(n):
        json.loads(json.dumps(doc))
        re.findall(r'"name": "(n\d+)"', text)
        sorted(doc["rows"], key=lambda r: (r["name"], -r["v"]))

{"calls": calls, "floats": floats, "stdlib": stdlib}[sys.argv[1]](int(sys.argv[2]))
out = os.environ.get("CLI_COST_CPU")
if out:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    with open(out, "w") as f:
        f.write(repr(ru.ru_utime + ru.ru_stime))
"""
WORKLOADS = ("calls", "floats", "stdlib")


def cprof_command(python: str) -> list[str]:
    """The ``cprof`` console script next to the interpreter, as a shell runs it."""
    script = os.path.join(os.path.dirname(python), "cprof")
    return [script] if os.path.exists(script) else [python, "-m", "cprof"]


def small_profile(python: str, env: dict[str, str]) -> str:
    """SMALL: recorded once by cprof itself, then cached."""
    path = os.path.join(CACHE, "cli-small-fib-1000hz.prof")
    if not os.path.exists(path):
        os.makedirs(CACHE, exist_ok=True)
        program = os.path.join(CACHE, "cli_small_program.py")
        with open(program, "w") as f:
            f.write(SMALL_PROGRAM)
        subprocess.run([*cprof_command(python), "record", "--quiet", "--hz", "1000", "-o",
                        path, program], check=True, env=env)
    return path


def run_once(cmd: list[str], env: dict[str, str], cwd: str) -> dict[str, float]:
    cpu_file = os.path.join(cwd, "target-cpu")
    if os.path.exists(cpu_file):
        os.unlink(cpu_file)
    run_env = dict(env, CLI_COST_CPU=cpu_file)
    with open(os.path.join(cwd, "stdout"), "w") as out, open(os.path.join(cwd, "stderr"),
                                                             "w") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=run_env, cwd=cwd)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code:
        with open(os.path.join(cwd, "stderr")) as f:
            raise RuntimeError(f"{' '.join(cmd)} exited {code}: {f.read()[-2000:]}")
    r = {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime}
    if os.path.exists(cpu_file):
        with open(cpu_file) as f:
            r["target_cpu_s"] = float(f.read())
    return r


def calibrate(python: str, program: str, seconds: float, cwd: str,
              env: dict[str, str]) -> dict[str, int]:
    """Units of each workload for ~``seconds`` of CPU, bare."""
    units = {}
    for name in WORKLOADS:
        n = 20
        while True:
            t = run_once([python, program, name, str(n)], env, cwd)["target_cpu_s"]
            if t > 0.3:
                break
            n *= 4
        units[name] = max(1, int(n * seconds / t))
    return units


def rows(python: str, small: str, work: str, units: dict[str, int],
         pyspy: str | None) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(short rows, workload rows): each row's command."""
    cprof = cprof_command(python)
    empty = os.path.join(work, "empty.py")
    program = os.path.join(work, "workload.py")
    out = os.path.join(work, "out.prof")
    short = {
        "cprof top SMALL": [*cprof, "top", small],
        "go tool pprof -top SMALL": ["go", "tool", "pprof", "-top", small],
        "python -c pass": [python, "-c", "pass"],
        "python empty.py": [python, empty],
        "cprof record empty.py": [*cprof, "record", "-o", out, empty],
        "cprof record -- python empty.py": [*cprof, "record", "-o", out, "--", python, empty],
    }
    long: dict[str, list[str]] = {}
    for name in WORKLOADS:
        args = [program, name, str(units[name])]
        long[f"{name}: bare"] = [python, *args]
        for hz in (100, 1000):
            long[f"{name}: cprof record --hz {hz}"] = [*cprof, "record", "--quiet", "--hz",
                                                      str(hz), "-o", out, *args]
        if pyspy:
            long[f"{name}: py-spy record -r 100"] = [pyspy, "record", "-r", "100", "-o",
                                                    os.path.join(work, "py-spy.out"), "--",
                                                    python, *args]
    return short, long


# Round i of the workloads runs every row with the interpreter's heap laid out
# by LAYOUTS[i]: a sitecustomize (on PYTHONPATH, so imported by site before
# the program, cprof or not) that keeps that many small objects alive.
# Unrelated imports move a tight loop's speed by up to 15% here (the floats
# workload: 1.29 ms a unit run as `python workload.py` in a venv whose site
# runs setuptools' distutils .pth, 1.13 ms with -S, 1.10-1.17 ms with any
# sitecustomize), and cprof's own imports are such a move: a ratio of one
# layout measures where the loop's code happened to land. The median over
# several layouts measures cprof.
LAYOUTS = (0, 1, 3, 10, 30, 100, 300, 1000, 3000)
SITECUSTOMIZE = """\
import os
_cli_cost_layout = [bytes(i % 64) for i in range(int(os.environ.get("CLI_COST_LAYOUT", 0)))]
"""


def layout_env(env: dict[str, str], work: str, layout: int) -> dict[str, str]:
    where = os.path.join(work, "layout")
    if not os.path.exists(where):
        os.makedirs(where)
        with open(os.path.join(where, "sitecustomize.py"), "w") as f:
            f.write(SITECUSTOMIZE)
    path = os.pathsep.join(p for p in (where, env.get("PYTHONPATH")) if p)
    return dict(env, PYTHONPATH=path, CLI_COST_LAYOUT=str(layout))


def measure(commands: dict[str, list[str]], rounds: int, per_round: int, env: dict[str, str],
            cwd: str, layouts: bool = False) -> dict[str, dict[str, Any]]:
    names = list(commands)
    runs: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    for i in range(rounds):
        order = names[i % len(names):] + names[:i % len(names)]
        round_env = layout_env(env, cwd, LAYOUTS[i % len(LAYOUTS)]) if layouts else env
        for _ in range(per_round):
            for name in order:
                runs[name].append(run_once(commands[name], round_env, cwd))
    results: dict[str, dict[str, Any]] = {}
    for name, rs in runs.items():
        r: dict[str, Any] = {
            "command": commands[name], "runs": len(rs),
            "wall_best_s": min(x["wall_s"] for x in rs),
            "wall_median_s": statistics.median(x["wall_s"] for x in rs),
            "cpu_median_s": statistics.median(x["cpu_s"] for x in rs),
            "cpu_best_s": min(x["cpu_s"] for x in rs)}
        if all("target_cpu_s" in x for x in rs):
            r["target_cpu_median_s"] = statistics.median(x["target_cpu_s"] for x in rs)
        results[name] = r
    return results


def table(header: tuple[str, ...], body: Sequence[tuple[str, ...]]) -> str:
    return markdown_table([header, *body])


def short_table(r: dict[str, dict[str, Any]]) -> str:
    go = r["go tool pprof -top SMALL"]
    bare = r["python empty.py"]
    body = []
    for name, x in r.items():
        vs_go = (f"{x['wall_median_s'] / go['wall_median_s']:.2f}"
                 if "top" in name else "-")
        over = (f"{(x['wall_median_s'] - bare['wall_median_s']) * 1000:.1f} / "
                f"{(x['cpu_median_s'] - bare['cpu_median_s']) * 1000:.1f}"
                if "record" in name else "-")
        body.append((name, f"{x['wall_best_s'] * 1000:.1f}", f"{x['wall_median_s'] * 1000:.1f}",
                     f"{x['cpu_median_s'] * 1000:.1f}", vs_go, over))
    return table(("command", "best ms", "median ms", "CPU ms", "x go -top (median)",
                  "over python empty.py: wall / CPU ms"), body)


def long_table(r: dict[str, dict[str, Any]]) -> tuple[str, dict[str, float]]:
    body = []
    ratios: dict[str, list[float]] = {}
    for name, x in r.items():
        workload, config = name.split(": ", 1)
        bare = r[f"{workload}: bare"]
        ratio = x["cpu_median_s"] / bare["cpu_median_s"]
        target = x.get("target_cpu_median_s")
        target_ratio = target / bare["target_cpu_median_s"] if target else None
        if config != "bare":
            ratios.setdefault(config, []).append(ratio)
            if config.startswith("py-spy") and target_ratio is not None:
                ratios.setdefault(config + " (target only)", []).append(target_ratio)
        body.append((name, f"{x['wall_median_s']:.3f}", f"{x['cpu_median_s']:.3f}",
                     f"{target:.3f}" if target else "-",
                     f"{x['wall_median_s'] / bare['wall_median_s']:.3f}", f"{ratio:.3f}",
                     f"{target_ratio:.3f}" if target_ratio else "-"))
    geo = {k: math.exp(statistics.fmean(math.log(v) for v in vs)) for k, vs in ratios.items()}
    return table(("workload: configuration", "wall s", "CPU s", "target CPU s", "x wall",
                  "x CPU", "x target CPU"), body), geo


def machine(python: str, pythonpath: str | None) -> dict[str, Any]:
    go = subprocess.run(["go", "version"], capture_output=True, text=True).stdout.strip()
    where = pythonpath or ROOT
    commit = subprocess.run(["git", "-C", where, "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip()
    pyver = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                           capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "os": platform.platform(),
            "python": pyver, "go": go, "cprof": pythonpath or "installed",
            "cprof_commit": commit, "date": datetime.date.today().isoformat(),
            "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="rounds (fresh processes per row)")
    ap.add_argument("--workload-repeat", type=int,
                    help="rounds of the workloads, each in a heap layout of its own "
                         "(default: --repeat)")
    ap.add_argument("--short-repeat", type=int, default=10,
                    help="runs of each short row per round")
    ap.add_argument("--seconds", type=float, default=3.0, help="CPU of each workload, bare")
    ap.add_argument("--python", default=sys.executable,
                    help="the interpreter with cprof installed (default: this one)")
    ap.add_argument("--pythonpath", metavar="DIR",
                    help="run the cprof of this checkout (built in place) instead")
    ap.add_argument("--no-workloads", action="store_true", help="the short rows only")
    ap.add_argument("--no-py-spy", action="store_true",
                    help="leave py-spy out (else pip-installed next to --python if missing)")
    ap.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    args = ap.parse_args()

    env = dict(os.environ)
    if args.pythonpath:
        env["PYTHONPATH"] = os.path.abspath(args.pythonpath)
        # Start from bytecode, as an installed package does (pip compiles it),
        # even where PYTHONDONTWRITEBYTECODE keeps the runs from writing it.
        subprocess.run([args.python, "-m", "compileall", "-q",
                        os.path.join(env["PYTHONPATH"], "cprof")], check=True)
    # go tool pprof keeps its state under $HOME/pprof: give it a throw-away home.
    home = tempfile.TemporaryDirectory(prefix="cprof-cli-cost-home-")
    env.update(HOME=home.name, PPROF_TMPDIR=home.name)
    info = machine(args.python, args.pythonpath)
    pyspy = None if args.no_py_spy else py_spy(args.python)
    info["py_spy"] = subprocess.run([pyspy, "--version"], capture_output=True,
                                    text=True).stdout.strip() if pyspy else None
    small = small_profile(args.python, env)
    print(f"machine: {info['cpu']}, {info['cores']} cores; {info['os']}")
    print(f"python {info['python']}; {info['go']}; {info['py_spy'] or 'py-spy not installed'}; "
          f"cprof {info['cprof']} at {info['cprof_commit']}; {info['date']}; load average "
          f"{info['load_average']}; {args.repeat} rounds")
    with tempfile.TemporaryDirectory(prefix="cprof-cli-cost-") as work:
        with open(os.path.join(work, "empty.py"), "w") as f:
            f.write("pass\n")
        with open(os.path.join(work, "workload.py"), "w") as f:
            f.write(WORKLOAD)
        units = ({n: 1 for n in WORKLOADS} if args.no_workloads else
                 calibrate(args.python, os.path.join(work, "workload.py"), args.seconds, work,
                           env))
        short, long = rows(args.python, small, work, units, pyspy)
        results: dict[str, Any] = {"machine": info, "small_profile": os.path.relpath(small, ROOT),
                                   "units": units}
        results["short"] = measure(short, args.repeat, args.short_repeat, env, work)
        print()
        print(f"SMALL = {os.path.relpath(small, ROOT)}; {args.repeat} x {args.short_repeat} "
              f"runs a row")
        print(short_table(results["short"]))
        r = results["short"]
        top_x = r["cprof top SMALL"]["wall_median_s"] / r["go tool pprof -top SMALL"][
            "wall_median_s"]
        fixed = {k: (r[k]["wall_median_s"] - r["python empty.py"]["wall_median_s"],
                     r[k]["cpu_median_s"] - r["python empty.py"]["cpu_median_s"])
                 for k in ("cprof record empty.py", "cprof record -- python empty.py")}
        print(f"target cprof top <= 2x go tool pprof -top: {top_x:.2f}x "
              f"({'met' if top_x <= 2 else 'MISSED'})")
        for k, (w, c) in fixed.items():
            print(f"target {k} fixed cost <= 30 ms: {w * 1000:.1f} ms wall, {c * 1000:.1f} ms "
                  f"CPU ({'met' if max(w, c) <= 0.030 else 'MISSED'})")
        results["targets"] = {"top_vs_go": top_x, "record_fixed_s": fixed}
        if not args.no_workloads:
            rounds = args.workload_repeat or args.repeat
            results["long"] = measure(long, rounds, 1, env, work, layouts=True)
            results["layouts"] = [LAYOUTS[i % len(LAYOUTS)] for i in range(rounds)]
            text, geo = long_table(results["long"])
            print()
            print(f"workloads, units for ~{args.seconds:g} s bare: {units}; {rounds} rounds, "
                  f"heap layouts {results['layouts']}")
            print(text)
            print("geometric mean of CPU ratios: " + "; ".join(
                f"{k} {v:.3f}x" for k, v in geo.items()))
            results["targets"]["geomean_cpu_ratio"] = geo
    info["load_average_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average after: {info['load_average_after']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
