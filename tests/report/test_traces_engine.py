"""-traces on the C engine (csrc/analysis/traces.c: pprof's merge of the
samples, the stacks' text) against the Python it replaced
(report_reference.py, sample by sample), on random profiles with locations
equal by content under different ids, labels alike in another key order,
numeric labels with units, samples summing to nothing, inlined lines and
lines without a function: the same text."""

from __future__ import annotations

import array
import os
import random
import sys

import pytest

import cprof
from cprof import Function, Line, Location, Mapping, Profile, Sample
from cprof.report.traces import traces

sys.path.insert(0, os.path.dirname(__file__))
import report_reference  # noqa: E402


def random_profile(rng: random.Random) -> Profile:
    mappings = [Mapping(1, 0x400000, 0x500000, filename="/usr/bin/python3"),
                Mapping(2, 0x7F0000, 0x7F8000, 0x1000, "/usr/lib/libz.so", "abc123"),
                Mapping(3, 0x900000, 0x900800, 0x1000, "/usr/lib/libz.so.1", "abc123")]
    functions = [Function(i + 1, rng.choice(["main", "work", "", "helper"]), "",
                          rng.choice(["/a.py", ""]), rng.randrange(2))
                 for i in range(6)]
    locations: list[Location] = []
    for i in range(rng.randrange(1, 8)):
        if locations and rng.random() < 0.4:  # the same content under another id
            twin = rng.choice(locations)
            locations.append(Location(i + 1, twin.address, twin.mapping, twin.lines))
            continue
        lines = tuple(Line(rng.choice(functions + [None]), rng.randrange(1, 4))
                      for _ in range(rng.choice([0, 1, 1, 2, 3])))
        mapping = rng.choice(mappings + [None])
        start = mapping.start if mapping is not None else 0
        locations.append(Location(i + 1, start + rng.randrange(3), mapping, lines,
                                  rng.random() < 0.1))
    samples = []
    for _ in range(rng.randrange(0, 60)):
        stack = [rng.choice(locations) for _ in range(rng.randrange(0, 4))]
        items: list[tuple[str, str | int, str]] = []
        for key, values in (("phase", ["a", "b"]), ("thread", ["t1", "t2"]), ("phase", ["c"])):
            if rng.random() < 0.5:  # a key twice, now and then: its values keep their order
                items.append((key, rng.choice(values), ""))
        if rng.random() < 0.4:
            items.append(("bytes", rng.choice([0, 512, 4096]), rng.choice(["", "bytes"])))
        if rng.random() < 0.2:
            items.append(("n", rng.randrange(3), "count"))
        rng.shuffle(items)
        value = rng.choice([0, 0, 3, -3, 10_000_000, 7])
        samples.append(Sample._raw((value, rng.choice([0, value, 1])), tuple(stack),
                                   tuple(items)))  # type: ignore[arg-type]
    return Profile([("samples", "count"), ("cpu", "nanoseconds")], samples, mappings=mappings)


@pytest.mark.parametrize("seed", range(200))
def test_the_engine_prints_the_traces_the_reference_printed(seed: int) -> None:
    rng = random.Random(seed)
    p = cprof.load(random_profile(rng).to_bytes())
    sample_type = rng.choice(["samples", "cpu"])
    assert traces(p, sample_type=sample_type) == report_reference.traces(p, sample_type=sample_type)


def test_the_bindings_refuse_bad_arguments() -> None:
    data = cprof.load(random_profile(random.Random(2)).to_bytes())._analysis_data()
    n_samples, n_nodes = data.counts()[0], len(data.nodes(0))
    with pytest.raises(ValueError, match=r"label_class \(uint32 each\) has 4 bytes"):
        data.merged_samples(0, array.array("I", [0]))
    names = [b"f"] * n_nodes
    with pytest.raises(ValueError, match="first has 4 bytes for 0 heads"):
        data.traces_text(array.array("I", [0]), [], names)
    with pytest.raises(ValueError, match=f"{n_nodes + 1} names for {n_nodes} nodes"):
        data.traces_text(array.array("I", []), [], names + [b"g"])
    with pytest.raises(IndexError, match=f"sample index {n_samples} out of range"):
        data.traces_text(array.array("I", [n_samples]), [b"h"], names)
    with pytest.raises(TypeError, match="head 0 is not a bytes"):
        data.traces_text(array.array("I", [0]), ["h"], names)
