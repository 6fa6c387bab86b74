"""cprof.export.speedscope: speedscope's file format, checked against the facts
of its schema (https://www.speedscope.app/file-format-schema.json, generated
from speedscope's src/lib/file-format-spec.ts) and against the profile's
numbers: weights add up to the totals, stacks spell the folded stacks."""

from __future__ import annotations

import io
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

import cprof
from cprof import Function, Line, Location, Mapping, Profile, ProfileBuilder, Sample
from cprof.export.folded import folded_stacks
from cprof.export.speedscope import SCHEMA, speedscope_unit, to_speedscope, write_speedscope

GO = Path(__file__).resolve().parents[1] / "testdata" / "go"
KINDS = ["cpu", "heap", "allocs", "mutex", "block", "goroutine", "threadcreate"]
UNITS = {"none", "nanoseconds", "microseconds", "milliseconds", "seconds", "bytes"}


def check_schema(doc: dict[str, Any]) -> None:
    """What speedscope's schema requires of a file of sampled profiles."""
    assert doc["$schema"] == SCHEMA
    assert isinstance(doc["version"], str)
    assert isinstance(doc.get("name", ""), str)
    assert set(doc) <= {"$schema", "version", "exporter", "name", "activeProfileIndex",
                        "shared", "profiles"}
    frames = doc["shared"]["frames"]
    assert isinstance(frames, list)
    for f in frames:
        assert set(f) <= {"name", "file", "line", "col"} and isinstance(f["name"], str)
        assert isinstance(f.get("file", ""), str)
        assert isinstance(f.get("line", 1), int) and isinstance(f.get("col", 1), int)
    profiles = doc["profiles"]
    assert isinstance(profiles, list) and profiles
    assert 0 <= doc.get("activeProfileIndex", 0) < len(profiles)
    for p in profiles:
        assert set(p) == {"type", "name", "unit", "startValue", "endValue", "samples", "weights"}
        assert p["type"] == "sampled" and isinstance(p["name"], str) and p["unit"] in UNITS
        assert p["startValue"] <= p["endValue"]
        assert len(p["samples"]) == len(p["weights"])
        for stack in p["samples"]:
            assert all(isinstance(i, int) and 0 <= i < len(frames) for i in stack)
        # speedscope refuses negative weights.
        assert all(isinstance(w, int) and w >= 0 for w in p["weights"])
    json.dumps(doc)  # serializable as it is


def spelled(doc: dict[str, Any], i: int = 0) -> dict[str, int]:
    """A profile's stacks as folded text -> weight."""
    names = [f["name"] for f in doc["shared"]["frames"]]
    out: dict[str, int] = defaultdict(int)
    p = doc["profiles"][i]
    for stack, w in zip(p["samples"], p["weights"]):
        out[";".join(names[j] for j in stack)] += w
    return dict(out)


PY = Mapping(1, filename="/usr/bin/python3", has_functions=True)
MAIN = Function(1, "app.main", "main", "/app/main.py", 1)
WORK = Function(2, "app.work", "work", "/app/main.py", 10)
HELPER = Function(3, "app.helper", "helper", "/app/util.py", 0)
L_MAIN = Location(1, 0, PY, (Line(MAIN, 3),))
L_WORK_A = Location(2, 0, PY, (Line(WORK, 12),))
L_WORK_B = Location(3, 0, PY, (Line(WORK, 13),))
L_INLINED = Location(4, 0, PY, (Line(HELPER, 5), Line(WORK, 14)))


def small() -> Profile:
    return Profile([("samples", "count"), ("cpu", "nanoseconds")], [
        Sample([1, 10], [L_WORK_A, L_MAIN]),
        Sample([2, 20], [L_WORK_B, L_MAIN]),
        Sample([3, 30], [L_INLINED, L_MAIN]),
        Sample([4, 0], [L_MAIN]),
        Sample([5, 50], []),
    ])


def test_small_profile_exact_document() -> None:
    doc = to_speedscope(small())
    check_schema(doc)
    assert doc == {
        "$schema": SCHEMA,
        "version": "0.6.0",
        "exporter": f"cprof {cprof.__version__}",
        "name": "cpu",
        "activeProfileIndex": 0,
        "shared": {"frames": [  # in name order
            {"name": "app.helper", "file": "/app/util.py"},
            {"name": "app.main", "file": "/app/main.py", "line": 1},
            {"name": "app.work", "file": "/app/main.py", "line": 10},
        ]},
        "profiles": [{
            "type": "sampled", "name": "cpu", "unit": "nanoseconds",
            "startValue": 0, "endValue": 60,
            "samples": [[1, 2], [1, 2, 0]],
            "weights": [30, 30],
        }],
    }


def test_sample_type_and_name() -> None:
    doc = to_speedscope(small(), "samples", name="run 7")
    check_schema(doc)
    assert doc["name"] == "run 7"
    p = doc["profiles"][0]
    assert (p["name"], p["unit"], p["endValue"]) == ("run 7", "none", 10)
    assert spelled(doc) == {"app.main;app.work": 3, "app.main;app.work;app.helper": 3,
                            "app.main": 4}


@pytest.mark.parametrize(("unit", "expected"), [
    ("nanoseconds", ("nanoseconds", 1)), ("ns", ("nanoseconds", 1)),
    ("microseconds", ("microseconds", 1)), ("milliseconds", ("milliseconds", 1)),
    ("seconds", ("seconds", 1)), ("bytes", ("bytes", 1)), ("kilobytes", ("bytes", 1024)),
    ("MB", ("bytes", 1 << 20)), ("hours", ("seconds", 3600)), ("count", ("none", 1)),
    ("objects", ("none", 1)), ("", ("none", 1))])
def test_units(unit: str, expected: tuple[str, int]) -> None:
    assert speedscope_unit(unit) == expected


def test_values_are_converted_to_the_unit() -> None:
    b = ProfileBuilder([("space", "kilobytes")])
    b.add([3], [("f", "/a.py", 1)])
    doc = to_speedscope(b.build())
    assert (doc["profiles"][0]["unit"], doc["profiles"][0]["weights"]) == ("bytes", [3072])


@pytest.mark.parametrize("kind", KINDS)
def test_go_profiles_weights_sum_to_totals_and_spell_the_folded_stacks(kind: str) -> None:
    p = cprof.load(GO / f"{kind}.prof")
    for i, st in enumerate(p.sample_types):
        doc = to_speedscope(p, st.type)
        check_schema(doc)
        prof = doc["profiles"][0]
        unit, factor = speedscope_unit(st.unit)
        assert prof["unit"] == unit
        total = sum(s.values[i] for s in p.samples if s.locations) * factor
        assert sum(prof["weights"]) == prof["endValue"] == total
        assert spelled(doc) == {k: v * factor for k, v in folded_stacks(p, i).items() if v}


def test_go_units() -> None:
    units = {k: to_speedscope(cprof.load(GO / f"{k}.prof"))["profiles"][0]["unit"]
             for k in ("cpu", "heap", "mutex", "goroutine")}
    assert units == {"cpu": "nanoseconds", "heap": "bytes", "mutex": "nanoseconds",
                     "goroutine": "none"}


def diff_profile() -> Profile:
    # new - base: work grew by 40, helper shrank by 25, main's own time cancelled out.
    return Profile([("cpu", "nanoseconds")], [
        Sample([100], [L_WORK_A, L_MAIN]),
        Sample([-60], [L_WORK_A, L_MAIN], {"pprof::base": "true"}),
        Sample([-25], [L_INLINED, L_MAIN], {"pprof::base": "true"}),
        Sample([7], [L_MAIN]),
        Sample([-7], [L_MAIN]),
    ])


def test_negative_weights_are_an_error_naming_the_way_out() -> None:
    with pytest.raises(ValueError, match=r"1 stacks of 'cpu' have a negative cpu total.*"
                                         r"split_diff=True"):
        to_speedscope(diff_profile())


def test_split_diff_gives_the_positive_part_and_the_negative_magnitude() -> None:
    doc = to_speedscope(diff_profile(), split_diff=True, name="after vs before")
    check_schema(doc)
    names = [p["name"] for p in doc["profiles"]]
    assert names == ["after vs before (positive)", "after vs before (negative, magnitude)"]
    assert spelled(doc, 0) == {"app.main;app.work": 40}
    assert spelled(doc, 1) == {"app.main;app.work;app.helper": 25}
    assert [p["endValue"] for p in doc["profiles"]] == [40, 25]
    # A profile without negative stacks still gives the pair, the second empty.
    plain = to_speedscope(small(), split_diff=True)
    check_schema(plain)
    assert plain["profiles"][1]["weights"] == [] and plain["profiles"][1]["endValue"] == 0


def threads_profile() -> Profile:
    b = ProfileBuilder([("cpu", "nanoseconds")])
    main = ("app.main", "/app/main.py", 3)
    b.add([10], [("app.work", "/app/main.py", 12), main],
          {"thread_id": 1, "thread_name": "MainThread"})
    b.add([30], [("app.io", "/app/main.py", 40), main], {"thread_id": 2, "thread_name": "pool-1"})
    b.add([5], [("app.work", "/app/main.py", 12), main],
          {"thread_id": 1, "thread_name": "MainThread"})
    b.add([2], [main])
    return b.build()


def test_by_thread_one_profile_per_thread_heaviest_first() -> None:
    doc = to_speedscope(threads_profile(), by_thread=True)
    check_schema(doc)
    assert [(p["name"], p["endValue"]) for p in doc["profiles"]] == [
        ("cpu [pool-1 (thread 2)]", 30), ("cpu [MainThread (thread 1)]", 15),
        ("cpu [no thread label]", 2)]
    assert spelled(doc, 1) == {"app.main;app.work": 15}
    one = to_speedscope(threads_profile())
    assert len(one["profiles"]) == 1 and one["profiles"][0]["endValue"] == 47


def test_write_to_a_path_and_to_a_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "p.speedscope.json"
    write_speedscope(small(), path, "samples", name="x")
    assert json.loads(path.read_text("utf-8")) == to_speedscope(small(), "samples", name="x")
    buf = io.BytesIO()
    write_speedscope(diff_profile(), buf, split_diff=True)
    assert json.loads(buf.getvalue()) == to_speedscope(diff_profile(), split_diff=True)
