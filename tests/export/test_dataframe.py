"""cprof.export.dataframe: pandas DataFrames of samples and of functions.

pandas is an optional dependency of cprof but a test dependency: these tests
fail, naming the package, when it is missing. The function level agrees with
pprof's flat and cum (cprof.report.top, itself checked against
`go tool pprof -top`) on Go's profiles, for every sample type.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import cprof
from cprof import Function, Line, Location, Mapping, Profile, Sample
from cprof.export.dataframe import to_dataframe
from cprof.report.top import top

GO = Path(__file__).resolve().parents[1] / "testdata" / "go"
KINDS = ["cpu", "heap", "allocs", "mutex", "block", "goroutine", "threadcreate"]


@pytest.fixture(scope="module")
def pd() -> Any:
    try:
        import pandas  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        pytest.fail("pandas is not installed: the DataFrame export needs it for its tests "
                    "(pip install pandas)", pytrace=False)
    return pandas


PY = Mapping(1, filename="/usr/bin/python3", has_functions=True)
MAIN = Function(1, "app.main", "main", "/app/main.py", 1)
WORK = Function(2, "app.work", "work", "/app/main.py", 10)
FIB = Function(3, "app.fib", "fib", "/app/main.py", 20)
HELPER = Function(4, "app.helper", "helper", "/app/main.py", 30)
L_MAIN = Location(1, 0, PY, (Line(MAIN, 3),))
L_WORK = Location(2, 0, PY, (Line(WORK, 12),))
L_FIB = Location(3, 0, PY, (Line(FIB, 22),))
L_INLINED = Location(4, 0, PY, (Line(HELPER, 31), Line(WORK, 14)))  # helper inlined into work


def small() -> Profile:
    return Profile([("samples", "count"), ("cpu", "nanoseconds")], [
        Sample([1, 10], [L_WORK, L_MAIN], {"thread_id": 7, "thread_name": "MainThread"}),
        Sample([3, 30], [L_FIB, L_FIB, L_FIB, L_MAIN], {"thread_id": 8}),
        Sample([2, 20], [L_INLINED, L_MAIN], {"cpu": "clash"}),
        Sample([4, 0], []),
    ])


def test_sample_rows(pd: Any) -> None:
    df = to_dataframe(small())
    assert list(df.columns) == ["samples", "cpu", "leaf", "stack", "thread_id", "thread_name",
                                "label:cpu"]
    assert df["samples"].tolist() == [1, 3, 2, 4]
    assert df["cpu"].tolist() == [10, 30, 20, 0]
    assert str(df["cpu"].dtype) == "int64"
    assert df["leaf"].tolist()[:3] == ["app.work", "app.fib", "app.helper"]
    assert df["leaf"].isna().tolist() == [False, False, False, True]
    assert df["stack"].tolist() == [
        ("app.work", "app.main"), ("app.fib", "app.fib", "app.fib", "app.main"),
        ("app.helper", "app.work", "app.main"), ()]
    assert str(df["thread_id"].dtype) == "Int64"
    assert df["thread_id"].tolist()[:2] == [7, 8] and df["thread_id"].isna().tolist() == [
        False, False, True, True]
    assert df["thread_name"].tolist()[0] == "MainThread"
    assert df["thread_name"].isna().tolist() == [False, True, True, True]
    assert df["label:cpu"].tolist()[2] == "clash"
    # What a user does with it: CPU by thread.
    assert df.groupby("thread_id")["cpu"].sum().to_dict() == {7: 10, 8: 30}


def test_function_rows(pd: Any) -> None:
    df = to_dataframe(small(), level="function")
    assert list(df.columns) == ["function", "samples_flat", "samples_cum", "cpu_flat", "cpu_cum"]
    # By the default sample type's (cpu's) flat, then cum, then name; fib's
    # recursion counts once in its cum.
    assert df.values.tolist() == [
        ["app.fib", 3, 3, 30, 30],
        ["app.helper", 2, 2, 20, 20],
        ["app.work", 1, 3, 10, 30],
        ["app.main", 0, 6, 0, 60],
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_go_profiles_functions_agree_with_pprof(pd: Any, kind: str) -> None:
    p = cprof.load(GO / f"{kind}.prof")
    df = to_dataframe(p, level="function").set_index("function")
    for st in p.sample_types:
        rows = top(p, sample_type=st.type, node_fraction=0)
        got = {name: (flat, cum) for name, flat, cum in
               zip(df.index, df[f"{st.type}_flat"], df[f"{st.type}_cum"]) if flat or cum}
        assert got == {r.name: (r.flat, r.cum) for r in rows}


@pytest.mark.parametrize("kind", KINDS)
def test_go_profiles_samples_sum_to_totals(pd: Any, kind: str) -> None:
    p = cprof.load(GO / f"{kind}.prof")
    df = to_dataframe(p)
    assert len(df) == len(p.samples)
    assert [int(df[t.type].sum()) for t in p.sample_types] == p.totals()
    for leaf, stack in zip(df["leaf"], df["stack"]):
        assert leaf == stack[0] if stack else pd.isna(leaf)


def test_go_labels_become_columns(pd: Any) -> None:
    df = to_dataframe(cprof.load(GO / "heap.prof"))
    assert str(df["bytes"].dtype) == "Int64"
    large = df[df["leaf"] == "main.allocLarge"]
    assert large["bytes"].tolist() == [16384] and large["inuse_space"].tolist() == [655360]
    cpu = to_dataframe(cprof.load(GO / "cpu.prof"))
    assert set(cpu["worker"].dropna()) == {"a"}


def test_unknown_level() -> None:
    with pytest.raises(ValueError, match="level must be 'sample' or 'function'"):
        to_dataframe(small(), level="line")  # type: ignore[arg-type]


def test_missing_pandas_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # makes `import pandas` fail
    with pytest.raises(ImportError, match=r"pip install pandas"):
        to_dataframe(small())
