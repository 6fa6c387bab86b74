"""The C analysis engine against the Python graph, on the 300,000-sample profile.

Loads benchmarks/large_profile.py's profile once and times, in one process,
``top(10)`` through the C engine (csrc/analysis: paths, then call graphs)
and through the Python path it replaced (distinct location stacks from C,
then the Python Paths that report/graph.py had, kept as the test reference
tests/report/report_reference.py), checking that both print the same
text; prints the times and their ratio. The whole pipeline against
``go tool pprof`` is benchmarks/analysis.py.

    python benchmarks/engine_top.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "report"))
import report_reference  # noqa: E402
import large_profile  # noqa: E402

import cprof  # noqa: E402
from cprof.report import graph, top as top_module  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    path = large_profile.cached()
    t0 = time.perf_counter()
    p = cprof.load(path)
    print(f"load: {time.perf_counter() - t0:.3f} s ({len(p.samples)} samples)")
    engine_times, python_times = [], []
    engine_paths = graph.graph_paths

    def python_paths(profile: cprof.Profile, index: int) -> report_reference.Paths:
        return report_reference.Paths.of(report_reference.profile_stacks(profile, index))

    for _ in range(args.repeat):
        fresh = cprof.load(path)  # the engine's paths are cached per profile: time them too
        top_module.graph_paths = engine_paths
        t0 = time.perf_counter()
        engine_text = str(fresh.top(10))
        engine_times.append(time.perf_counter() - t0)
        top_module.graph_paths = python_paths
        t0 = time.perf_counter()
        python_text = str(fresh.top(10))
        python_times.append(time.perf_counter() - t0)
        top_module.graph_paths = engine_paths
        if engine_text != python_text:
            sys.exit("the engine's top differs from the Python graph's")
    e, py = statistics.median(engine_times), statistics.median(python_times)
    print(f"top(10), C engine:    {e:.3f} s (median of {args.repeat})")
    print(f"top(10), Python graph: {py:.3f} s")
    print(f"Python / engine: {py / e:.2f}x; same text")


if __name__ == "__main__":
    main()
