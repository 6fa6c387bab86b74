"""cprof.export.folded: folded stacks as flamegraph.pl and inferno read them.

Exact text for a small built profile; on Go's runtime/pprof profiles, the
lines parse as flamegraph.pl parses them and add up, function by function,
to the flat and cum that `go tool pprof -top` prints (cprof.report.top is
checked against it in test_report.py).
"""

from __future__ import annotations

import io
import re
from collections import defaultdict
from pathlib import Path

import pytest

import cprof
from cprof import Function, Line, Location, Mapping, Profile, Sample
from cprof.export.folded import folded, folded_stacks, stack_names, write_folded
from cprof.report.top import top

GO = Path(__file__).resolve().parents[1] / "testdata" / "go"
KINDS = ["cpu", "heap", "allocs", "mutex", "block", "goroutine", "threadcreate"]

# flamegraph.pl's reading of a line: everything up to the last blank is the
# stack, then a count.
FLAMEGRAPH_LINE = re.compile(r"^(.*)\s+?(\d+(?:\.\d*)?)$")

PY = Mapping(1, filename="/usr/bin/python3", has_functions=True)
LIBC = Mapping(2, start=0x7000, limit=0x9000, filename="/lib/x86_64-linux-gnu/libc.so.6")
MAIN = Function(1, "app.main", "main", "/app/main.py", 1)
WORK = Function(2, "app.work", "work", "/app/main.py", 10)
HELPER = Function(3, "app.helper", "helper", "/app/main.py", 20)
LEAF = Function(4, "app.leaf", "leaf", "/app/main.py", 30)
ODD = Function(5, "odd;name\nhere", "odd", "/app/odd.py", 1)


def loc(i: int, *lines: tuple[Function, int], mapping: Mapping = PY) -> Location:
    return Location(i, 0x7100 if mapping is LIBC else 0, mapping,
                    tuple(Line(f, n) for f, n in lines))


L_MAIN = loc(1, (MAIN, 3))
L_WORK = loc(2, (WORK, 12))
L_LEAF_A = loc(3, (LEAF, 31))
L_LEAF_B = loc(4, (LEAF, 35))  # another line of the same function
L_HELPER = loc(5, (HELPER, 21))
L_INLINED = loc(6, (HELPER, 22), (WORK, 14))  # helper inlined into work
L_NATIVE = Location(7, 0x7100, LIBC, ())
L_ODD = loc(8, (ODD, 2))


def small() -> Profile:
    return Profile([("samples", "count"), ("cpu", "nanoseconds")], [
        Sample([1, 10], [L_LEAF_A, L_WORK, L_MAIN]),
        Sample([2, 20], [L_LEAF_B, L_WORK, L_MAIN]),
        Sample([1, 5], [L_WORK, L_MAIN]),
        Sample([0, 7], [L_HELPER, L_MAIN]),
        Sample([4, 0], [L_HELPER, L_MAIN]),
        Sample([5, 50], [L_INLINED, L_MAIN]),
        Sample([1, 1], []),
        Sample([2, 2], [L_NATIVE, L_MAIN]),
        Sample([3, 4], [L_ODD]),
    ], period_type=("cpu", "nanoseconds"), period=1)


def test_small_profile_exact_text() -> None:
    assert folded(small()) == (
        "app.main;[libc.so.6] 2\n"
        "app.main;app.helper 7\n"
        "app.main;app.work 5\n"
        "app.main;app.work;app.helper 50\n"
        "app.main;app.work;app.leaf 30\n"
        "odd:name here 4\n")


def test_sample_type_by_name_or_index() -> None:
    expected = ("app.main;[libc.so.6] 2\n"
                "app.main;app.helper 4\n"
                "app.main;app.work 1\n"
                "app.main;app.work;app.helper 5\n"
                "app.main;app.work;app.leaf 3\n"
                "odd:name here 3\n")
    assert folded(small(), "samples") == expected
    assert folded(small(), 0) == expected
    with pytest.raises(ValueError, match="no sample type 'wall'"):
        folded(small(), "wall")


def test_stack_names_root_first_with_inlined_calls_expanded() -> None:
    s = small().samples[5]
    assert stack_names(s) == ("app.main", "app.work", "app.helper")
    assert stack_names(small().samples[7]) == ("app.main", "[libc.so.6]")


def test_zero_sums_are_left_out_and_negative_sums_refused() -> None:
    a, b = loc(1, (MAIN, 1)), loc(2, (WORK, 2))
    diff = Profile([("cpu", "nanoseconds")], [
        Sample([5], [b, a]), Sample([-5], [b, a]), Sample([3], [a])])
    assert folded(diff) == "app.main 3\n"
    assert folded_stacks(diff) == {"app.main": 3}
    worse = Profile([("cpu", "nanoseconds")], [Sample([-2], [b, a]), Sample([3], [a])])
    with pytest.raises(ValueError, match=r"1 of 2 stacks have a negative cpu total"):
        folded(worse)


def test_write_to_a_path_and_to_a_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "out.folded"
    write_folded(small(), path, "samples")
    assert path.read_text("utf-8") == folded(small(), "samples")
    buf = io.BytesIO()
    write_folded(small(), buf)
    assert buf.getvalue().decode("utf-8") == folded(small())
    assert [p.name for p in tmp_path.iterdir()] == ["out.folded"]  # no temporary left


def parse(text: str) -> dict[tuple[str, ...], int]:
    """The lines as flamegraph.pl reads them: stack -> count."""
    out: dict[tuple[str, ...], int] = {}
    for line in text.splitlines():
        m = FLAMEGRAPH_LINE.match(line)
        assert m is not None, f"flamegraph.pl would ignore {line!r}"
        stack = tuple(m.group(1).split(";"))
        assert stack not in out and all(stack)
        out[stack] = int(m.group(2))
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_go_profiles_add_up_to_pprof_flat_and_cum(kind: str) -> None:
    p = cprof.load(GO / f"{kind}.prof")
    for st in p.sample_types:
        text = folded(p, st.type)
        assert text.splitlines() == sorted(text.splitlines())
        stacks = parse(text)
        assert sum(stacks.values()) == sum(
            s.values[p.sample_index(st.type)] for s in p.samples if s.locations)
        flat: dict[str, int] = defaultdict(int)
        cum: dict[str, int] = defaultdict(int)
        for stack, value in stacks.items():
            flat[stack[-1]] += value
            for name in set(stack):
                cum[name] += value
        rows = top(p, sample_type=st.type, node_fraction=0)
        assert {r.name: (r.flat, r.cum) for r in rows} == {
            name: (flat.get(name, 0), cum[name]) for name in cum if cum[name]}


def test_go_cpu_profile_known_stacks() -> None:
    stacks = parse(folded(cprof.load(GO / "cpu.prof")))
    assert sum(stacks.values()) == 1_490_000_000
    hot = {stack[-1]: value for stack, value in stacks.items()}
    assert hot == {"main.hotA": 1_000_000_000, "main.hotB": 490_000_000}
    assert all(stack[0] == "runtime.main" for stack in stacks)


def test_same_text_after_a_round_trip_through_bytes() -> None:
    p = cprof.load(GO / "allocs.prof")
    assert folded(cprof.load(p.to_bytes())) == folded(p)
    assert folded(cprof.load(small().to_bytes())) == folded(small())
