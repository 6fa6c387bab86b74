"""The line listing on the C engine (csrc/analysis/listing.c) against the
Python graph it replaced (report_reference.py, stack by stack), on random
profiles with recursion, inlined lines, lines without a function, functions
of one name in several files and start lines, negative values, and files
that -trim_path and path cleaning make one: the same text, or the same
error."""

from __future__ import annotations

import array
import os
import random
import sys
from pathlib import Path

import pytest

import cprof
from cprof import Function, Line, Location, Mapping, Profile, Sample
from cprof.report.listing import list_source

sys.path.insert(0, os.path.dirname(__file__))
import report_reference  # noqa: E402

NAMES = ["main", "work", "helper", "", "pkg.work", "work"]
PATTERNS = ["work", "^main$", "", "^$", "helper|main", "pkg", "nothing-matches-this"]


def sources(root: Path) -> list[str]:
    """Function file names: two that trimming makes one ("src/app.py"), one
    found through the source path, absolute ones that exist or not, and none."""
    (root / "src" / "lib").mkdir(parents=True)
    for rel in ("src/app.py", "src/lib/util.py", "other.py"):
        (root / rel).write_text("".join(f"line {n} of {rel}\n" for n in range(1, 81)))
    return ["/build/a/src/app.py", "/build/b/src/app.py", "lib/util.py", "lib//./util.py",
            str(root / "other.py"), "/nowhere/gone.py", ""]


def random_profile(rng: random.Random, files: list[str]) -> Profile:
    mappings = [Mapping(1, 0x400000, 0x500000, filename="/usr/bin/python3"),
                Mapping(2, 0x7F0000, 0x7F8000, filename="/usr/lib/libz.so")]
    functions = [Function(i + 1, rng.choice(NAMES), "", rng.choice(files),
                          rng.choice([0, 0, 1, 3, 12, 40]))
                 for i in range(rng.randrange(1, 10))]
    locations = []
    for i in range(rng.randrange(1, 14)):
        lines = tuple(Line(rng.choice(functions + [None]), rng.randrange(0, 70))
                      for _ in range(rng.choice([0, 1, 1, 1, 2, 3])))
        locations.append(Location(i + 1, 0x1000 + i, rng.choice(mappings + [None]), lines))
    samples = []
    for _ in range(rng.randrange(0, 40)):
        stack = [rng.choice(locations) for _ in range(rng.randrange(0, 7))]
        samples.append(Sample([rng.randrange(-40, 100), rng.choice([0, 10_000_000, -5])], stack))
    return Profile([("samples", "count"), ("cpu", "nanoseconds")], samples, mappings=mappings)


def listing(fn: object, p: Profile, **opts: object) -> str:
    try:
        return str(fn(p, **opts))  # type: ignore[operator]
    except ValueError as e:
        return f"ValueError: {e}"


@pytest.mark.parametrize("seed", range(200))
def test_the_engine_lists_what_the_python_graph_listed(seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    files = sources(tmp_path)
    p = random_profile(rng, files)
    opts = {"regex": rng.choice(PATTERNS), "sample_type": rng.choice(["samples", "cpu"]),
            "source_path": str(tmp_path / rng.choice(["src", "src/lib", ""])),
            "trim_path": rng.choice(["", "/build/a", "/build/b:/nowhere"])}
    for profile in (p, cprof.load(p.to_bytes())):
        want = listing(report_reference.list_source, profile, **opts)
        assert listing(list_source, profile, **opts) == want


def test_the_binding_refuses_bad_arguments(tmp_path: Path) -> None:
    p = random_profile(random.Random(1), sources(tmp_path))
    data = cprof.load(p.to_bytes())._analysis_data()
    n = data.counts()[2]
    with pytest.raises(ValueError, match=rf"fn_file \(int32 each\) has {4 * n + 4} bytes"):
        data.listing(0, array.array("i", [0] * (n + 1)), True)
    with pytest.raises(IndexError, match="sample type index 2 out of range"):
        data.listing(2, array.array("i", [0] * n), True)
