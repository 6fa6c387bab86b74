"""The C analysis engine against the Python it replaced, on the 300,000-sample profile.

Loads benchmarks/large_profile.py's profile and times, in one process, each
report through the C engine (csrc/analysis) and through the Python code it
replaced, kept as the test reference tests/report/report_reference.py,
checking that both print the same text; prints the times and their ratio.

- top: ``top(10)``; the Python path takes the distinct location stacks from C,
  then the Python Paths.
- list: ``list_source`` of one function name in 14 files (their sources are
  not on the machine: pprof's error lines); the Python path builds the Python
  line-granularity graph.
- traces: every merged sample's stack (278 MB of text); the Python path
  merges and names the samples one by one.

Each round loads the profile afresh, so the engine's time includes making
its paths. The whole pipeline against ``go tool pprof`` is benchmarks/analysis.py.

    python benchmarks/engine_reports.py [--repeat N] [--reports top,list,traces]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "report"))
import large_profile  # noqa: E402
import report_reference  # noqa: E402

import cprof  # noqa: E402
from cprof.report import graph, top as top_module  # noqa: E402
from cprof.report.listing import list_source  # noqa: E402
from cprof.report.traces import traces  # noqa: E402

LIST_REGEX = "^write_metric$"
Report = Callable[[cprof.Profile], str]


def python_top(profile: cprof.Profile) -> str:
    def python_paths(p: cprof.Profile, index: int,
                     granularity: str | None = None) -> report_reference.Paths:
        assert granularity in (None, "function")
        return report_reference.Paths.of(report_reference.profile_stacks(p, index))

    top_module.graph_paths = python_paths  # type: ignore[assignment]
    try:
        return str(profile.top(10))
    finally:
        top_module.graph_paths = graph.graph_paths


REPORTS: dict[str, tuple[Report, Report]] = {
    "top": (lambda p: str(p.top(10)), python_top),
    "list": (lambda p: str(list_source(p, LIST_REGEX)),
             lambda p: str(report_reference.list_source(p, LIST_REGEX))),
    "traces": (traces, report_reference.traces),
}


def timed(report: Report, profile: cprof.Profile) -> tuple[float, str]:
    t0 = time.perf_counter()
    text = report(profile)
    return time.perf_counter() - t0, text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--reports", default=",".join(REPORTS),
                    help=f"a comma-separated choice of {', '.join(REPORTS)}")
    args = ap.parse_args()
    path = large_profile.cached()
    t0 = time.perf_counter()
    p = cprof.load(path)
    print(f"load: {time.perf_counter() - t0:.3f} s ({len(p.samples)} samples)")
    for name in args.reports.split(","):
        engine, python = REPORTS[name]
        engine_times, python_times = [], []
        for _ in range(args.repeat):
            fresh = cprof.load(path)  # the engine's paths are cached per profile: time them too
            e, engine_text = timed(engine, fresh)
            py, python_text = timed(python, fresh)
            engine_times.append(e)
            python_times.append(py)
            if engine_text != python_text:
                sys.exit(f"the engine's {name} differs from the Python one's")
        e, py = statistics.median(engine_times), statistics.median(python_times)
        print(f"{name}, C engine: {e:.3f} s (median of {args.repeat}); Python: {py:.3f} s; "
              f"Python / engine: {py / e:.2f}x; same text")


if __name__ == "__main__":
    main()
