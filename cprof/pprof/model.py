"""The pprof data model: plain, immutable values mirroring profile.proto.

Names follow google/pprof's Go model so that a user who knows one knows the
other. Locations are listed leaf first in a sample; a location with several
lines is a chain of inlined calls whose last line is the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping as MappingType, Sequence, Union

LabelValue = Union[str, int]


@dataclass(frozen=True, slots=True)
class ValueType:
    """What a sample value measures: ``ValueType("cpu", "nanoseconds")``."""

    type: str
    unit: str

    def __str__(self) -> str:
        return f"{self.type}/{self.unit}"


@dataclass(frozen=True, slots=True)
class Function:
    """A function: ``name`` is human readable (a qualified name), ``system_name``
    the name the system knows it by, ``filename`` its source file."""

    id: int = 0
    name: str = ""
    system_name: str = ""
    filename: str = ""
    start_line: int = 0


@dataclass(frozen=True, slots=True)
class Line:
    """One (function, line) inside a Location."""

    function: Function | None
    line: int = 0
    column: int = 0


@dataclass(frozen=True, slots=True)
class Mapping:
    """A binary or interpreter image mapped into the profiled process."""

    id: int = 0
    start: int = 0
    limit: int = 0
    offset: int = 0
    filename: str = ""
    build_id: str = ""
    has_functions: bool = False
    has_filenames: bool = False
    has_line_numbers: bool = False
    has_inline_frames: bool = False


@dataclass(frozen=True, slots=True)
class Location:
    """A place in the program: an address and/or the lines it maps to."""

    id: int = 0
    address: int = 0
    mapping: Mapping | None = None
    lines: tuple[Line, ...] = ()
    is_folded: bool = False


class Sample:
    """One sample: ``values`` (one per sample type), ``locations`` (leaf
    first) and labels.

    ``labels`` maps each key to its value (``str`` or ``int``); pprof allows a
    key several times, which ``label_items`` keeps in full as
    ``(key, value, unit)`` triples (unit is "" for string labels and for
    numbers without one). Pass a list as a value to give a key several values.
    """

    __slots__ = ("values", "locations", "label_items")

    values: tuple[int, ...]
    locations: tuple[Location, ...]
    label_items: tuple[tuple[str, LabelValue, str], ...]

    def __init__(
        self,
        values: Iterable[int],
        locations: Iterable[Location] = (),
        labels: MappingType[str, LabelValue | Sequence[LabelValue]] | None = None,
        *,
        num_units: MappingType[str, str] | None = None,
    ) -> None:
        self.values = tuple(int(v) for v in values)
        self.locations = tuple(locations)
        units = num_units or {}
        items: list[tuple[str, LabelValue, str]] = []
        for key, value in (labels or {}).items():
            many = value if isinstance(value, (list, tuple)) else (value,)
            for v in many:
                if isinstance(v, bool) or not isinstance(v, (str, int)):
                    raise TypeError(f"label {key!r}: value {v!r} is neither str nor int")
                items.append((key, v, units.get(key, "") if isinstance(v, int) else ""))
        self.label_items = tuple(items)

    @classmethod
    def _raw(cls, values: tuple[int, ...], locations: tuple[Location, ...],
             label_items: tuple[tuple[str, LabelValue, str], ...]) -> Sample:
        self = cls.__new__(cls)
        self.values, self.locations, self.label_items = values, locations, label_items
        return self

    @property
    def labels(self) -> dict[str, LabelValue]:
        """Each label key with its (first) value."""
        out: dict[str, LabelValue] = {}
        for key, value, _ in self.label_items:
            out.setdefault(key, value)
        return out

    @property
    def num_units(self) -> dict[str, str]:
        """The unit of each numeric label key that has one."""
        return {k: u for k, v, u in self.label_items if u and isinstance(v, int)}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sample):
            return NotImplemented
        return (self.values, self.locations, self.label_items) == (
            other.values, other.locations, other.label_items)

    def __hash__(self) -> int:
        return hash((self.values, self.locations, self.label_items))

    def __repr__(self) -> str:
        names = [ln.function.name for loc in self.locations[:3] for ln in loc.lines[:1]
                 if ln.function is not None]
        more = ", ..." if len(self.locations) > 3 else ""
        return f"Sample(values={list(self.values)}, stack=[{', '.join(names)}{more}], " \
               f"labels={self.labels})"
