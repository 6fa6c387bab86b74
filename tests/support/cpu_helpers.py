"""Workloads with a known cost and small readers of CPU profiles, for
test_cpu.py. Helpers only, no tests.

The workloads burn CPU in their own frames (no helper call below them), so a
profile's flat time for a function is the time spent in that function's code.
"""

from __future__ import annotations

import inspect
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

import cprof
from cprof import Profile, Sample

# --- workloads ------------------------------------------------------------------------------------


def burn_cpu(seconds: float) -> float:
    """Burn `seconds` of this thread's CPU in this frame; returns the CPU used."""
    start = time.thread_time()
    x = 0
    while True:
        for i in range(2000):
            x += i * i % 7
        used = time.thread_time() - start
        if used >= seconds:
            return used


def burn_wall(seconds: float) -> float:
    """Busy for `seconds` of wall-clock time in this frame; returns the time."""
    start = time.perf_counter()
    x = 0
    while True:
        for i in range(2000):
            x += i * i % 7
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return elapsed


# --- reading profiles -----------------------------------------------------------------------------


def names(sample: Sample) -> list[str]:
    """The code names (system_name) of a sample's frames, leaf first; the name
    of cprof's synthetic frames ("<lost>"), which have no code name."""
    return [loc.lines[0].function.system_name or loc.lines[0].function.name
            for loc in sample.locations]


def leaf(sample: Sample) -> str:
    return names(sample)[0]


def value(profile: Profile, sample: Sample, sample_type: str | None = None) -> int:
    return sample.values[profile.sample_index(sample_type)]


def flat(profile: Profile, code_name: str, where: Callable[[Sample], bool] = lambda s: True,
         sample_type: str | None = None) -> int:
    """Sum of the samples whose leaf frame is `code_name`."""
    return sum(value(profile, s, sample_type) for s in profile.samples
               if where(s) and leaf(s) == code_name)


def cum(profile: Profile, code_name: str, where: Callable[[Sample], bool] = lambda s: True,
        sample_type: str | None = None) -> int:
    """Sum of the samples with `code_name` anywhere on the stack."""
    return sum(value(profile, s, sample_type) for s in profile.samples
               if where(s) and code_name in names(s))


def on_stack(profile: Profile, code_name: str) -> list[Sample]:
    return [s for s in profile.samples if code_name in names(s)]


def count(samples: list[Sample]) -> int:
    """How many samples were taken: cprof merges equal stacks with equal
    labels into one Sample whose first value is the count."""
    return sum(s.values[0] for s in samples)


def by_thread(profile: Profile, sample_type: str | None = None) -> dict[int, int]:
    """Each thread_id label with the sum of its samples."""
    totals: dict[int, int] = defaultdict(int)
    for s in profile.samples:
        tid = s.labels.get("thread_id", 0)
        totals[tid] += value(profile, s, sample_type)  # type: ignore[index]
    return dict(totals)


def thread_is(tid: int) -> Callable[[Sample], bool]:
    return lambda s: s.labels.get("thread_id") == tid


_COMMENT = re.compile(r"(\d+) samples, (\d+) lost, (\d+) threads")


def sampler_stats(profile: Profile) -> tuple[int, int, int]:
    """(samples, lost, threads) from the comment cprof writes into a CPU profile."""
    for comment in profile.comments:
        m = _COMMENT.search(comment)
        if m:
            return int(m.group(1)), int(m.group(2)), int(m.group(3))
    raise AssertionError(f"no sampler statistics in the comments {profile.comments!r}")


def line_of(func: Callable[..., object], statement: str) -> int:
    """The line number in its file of the line of `func` that is `statement`."""
    lines, first = inspect.getsourcelines(func)
    hits = [first + i for i, text in enumerate(lines) if text.strip() == statement]
    assert len(hits) == 1, f"{statement!r} found {len(hits)} times in {func.__name__}"
    return hits[0]


# --- the process ----------------------------------------------------------------------------------

SIGPROF_BIT = 1 << (signal.SIGPROF - 1)


def sigprof_disposition() -> str:
    """SIGPROF's disposition as the kernel sees it ("default", "ignored" or
    "handled"): Python's signal.getsignal only knows what Python installed."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines()
                  if ":" in line)
    if int(fields["SigCgt"], 16) & SIGPROF_BIT:
        return "handled"
    if int(fields["SigIgn"], 16) & SIGPROF_BIT:
        return "ignored"
    return "default"


def rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_python(source: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `source` in a fresh interpreter that imports the cprof under test."""
    script = cwd / "child.py"
    script.write_text(textwrap.dedent(source))
    env = dict(os.environ)
    package_root = str(Path(cprof.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([package_root, str(Path(__file__).resolve().parent)])
    return subprocess.run([sys.executable, str(script)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
