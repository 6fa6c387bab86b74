"""The benchmarks' in-process workers run against the installed cprof.

The benchmarks are not timed in the suite, but their worker modes must keep
working: `import cprof` stopped loading cprof._core (start-up time), and the
CPU benchmark's workers then failed with AttributeError until they imported
it themselves. Each worker here does the smallest amount of its real work."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def worker(tmp_path: Path, script: str, *args: str) -> object:
    out = tmp_path / "out.json"
    r = subprocess.run([sys.executable, str(BENCHMARKS / script), *args, "--out", str(out)],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(out.read_text())


def test_cpu_overhead_paired_worker_samples(tmp_path: Path) -> None:
    result = worker(tmp_path, "cpu_overhead.py", "--worker", "paired", "--workload",
                    "arithmetic", "--units", "20", "--pairs", "2")
    assert isinstance(result, dict) and set(result) == {"none", "cprof-cpu-100", "cprof-cpu-1000"}
    assert all(len(segments) == 2 for segments in result.values())
    assert sum(seg[2] for seg in result["cprof-cpu-1000"]) > 0  # samples were taken


def test_cpu_overhead_record_worker_measures_the_handler(tmp_path: Path) -> None:
    from cprof import _core
    if not hasattr(_core, "measure_record_ns"):
        pytest.skip("cprof was built without CPROF_BENCH=1 (.ci/venv.sh builds it in)")
    ns = worker(tmp_path, "cpu_overhead.py", "--worker", "record")
    assert isinstance(ns, float) and 0 < ns < 1e6


def test_large_profile_imports_cprof_with_its_core(tmp_path: Path) -> None:
    # Run outside the checkout, whose cprof/ (no _core built in place) would shadow the installed one.
    r = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                        "import large_profile; print(large_profile.import_cprof()._core.__name__)",
                        str(BENCHMARKS)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "cprof._core", r.stderr[-3000:]
