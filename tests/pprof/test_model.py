"""The model's values (cprof/pprof/model.py) behave as frozen dataclasses did:
compared, hashed and printed field by field, immutable, copied with changes,
and pickled."""

from __future__ import annotations

import copy
import pickle

import pytest

from cprof.pprof.model import PYTHON_MAPPING, Function, Line, Location, Mapping, ValueType
from cprof.report.top import TopReport, TopRow

VALUES = [
    ValueType("cpu", "nanoseconds"),
    Function(3, "pkg.f", "f", "pkg.py", 10),
    Line(Function(1, "g"), 12, 4),
    Mapping(2, 0x1000, 0x2000, 0, "libc.so.6", "abc", True, False, True, False),
    Location(7, 0x1234, PYTHON_MAPPING, (Line(Function(1, "g"), 5),), True),
    TopRow("pkg.f", 10, 50.0, 50.0, 20, 100.0, "(inline)"),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_equal_values_compare_and_hash_alike(value: object) -> None:
    twin = copy.copy(value)
    assert twin == value and hash(twin) == hash(value)
    assert pickle.loads(pickle.dumps(value)) == value
    changed = value.replace(**{value.__slots__[0]: "other"})  # type: ignore[attr-defined]
    assert changed != value and type(changed) is type(value)
    assert {value, twin, changed} == {value, changed}


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_values_are_immutable(value: object) -> None:
    name = value.__slots__[0]  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match=f"cannot assign to field '{name}'"):
        setattr(value, name, 1)
    with pytest.raises(AttributeError, match=f"cannot delete field '{name}'"):
        delattr(value, name)
    with pytest.raises(AttributeError):
        value.extra = 1  # type: ignore[attr-defined]


def test_repr_and_defaults_are_the_dataclass_ones() -> None:
    assert repr(ValueType("cpu", "nanoseconds")) == "ValueType(type='cpu', unit='nanoseconds')"
    assert str(ValueType("cpu", "nanoseconds")) == "cpu/nanoseconds"
    assert repr(Function()) == ("Function(id=0, name='', system_name='', filename='', "
                                "start_line=0)")
    assert repr(Line(None)) == "Line(function=None, line=0, column=0)"
    assert Location() == Location(0, 0, None, (), False)
    assert Mapping(filename="x").has_functions is False


def test_values_of_different_classes_differ() -> None:
    assert Function(1) != Mapping(1)
    assert Function(1) != (1, "", "", "", 0)
    assert Function(1).__eq__(Mapping(1)) is NotImplemented


def test_replace_refuses_an_unknown_field() -> None:
    with pytest.raises(TypeError, match="Function has no field 'nmae'"):
        Function(1, "f").replace(nmae="g")
    assert Function(1, "f").replace(name="g") == Function(1, "g")


def test_a_top_report_is_a_value_too() -> None:
    rows = [TopRow("f", 1, 100.0, 100.0, 1, 100.0)]
    report = TopReport(rows, "cpu", "nanoseconds", 1, 1, 0, 1, 0, "ns")
    assert report.profile_labels == [] and report == TopReport(
        list(rows), "cpu", "nanoseconds", 1, 1, 0, 1, 0, "ns", [])
    assert "f" in str(report) and report[0] is rows[0] and len(report) == 1
