"""The pprof data model: plain, immutable values mirroring profile.proto.

Names follow google/pprof's Go model so that a user who knows one knows the
other. Locations are listed leaf first in a sample; a location with several
lines is a chain of inlined calls whose last line is the caller.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Iterable, Mapping as MappingType, Self, Sequence

LabelValue = str | int


class Frozen:
    """An immutable value whose fields are its ``__slots__``: compared, hashed
    and printed field by field, as a frozen dataclass is (written out, since
    importing dataclasses costs every command several ms of start-up).
    ``replace(**changes)`` is a copy with some fields changed."""

    # The hash, once computed (profiles hash their locations, lines and
    # functions over and over as they are merged and written). Not a field:
    # a subclass's __slots__ names its fields alone.
    __slots__: tuple[str, ...] = ("_hash",)
    _hash: int

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def replace(self, **changes: Any) -> Self:
        fields = {name: getattr(self, name) for name in self.__slots__}
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {sorted(unknown)[0]!r}")
        fields.update(changes)
        return type(self)(**fields)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        try:
            return self._hash
        except AttributeError:
            value = hash(self._fields())
            set_field(self, "_hash", value)
            return value

    def __repr__(self) -> str:
        body = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({body})"

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r} of an immutable "
                             f"{type(self).__name__}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} of an immutable "
                             f"{type(self).__name__}")

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), self._fields()


# How a Frozen value's __init__ sets its fields.
set_field = object.__setattr__


class ValueType(Frozen):
    """What a sample value measures: ``ValueType("cpu", "nanoseconds")``."""

    __slots__ = ("type", "unit")
    type: str
    unit: str

    def __init__(self, type: str, unit: str) -> None:
        set_field(self, "type", type)
        set_field(self, "unit", unit)

    def __str__(self) -> str:
        return f"{self.type}/{self.unit}"


class Function(Frozen):
    """A function: ``name`` is human readable (a qualified name), ``system_name``
    the name the system knows it by, ``filename`` its source file."""

    __slots__ = ("id", "name", "system_name", "filename", "start_line")
    id: int
    name: str
    system_name: str
    filename: str
    start_line: int

    def __init__(self, id: int = 0, name: str = "", system_name: str = "", filename: str = "",
                 start_line: int = 0) -> None:
        set_field(self, "id", id)
        set_field(self, "name", name)
        set_field(self, "system_name", system_name)
        set_field(self, "filename", filename)
        set_field(self, "start_line", start_line)


class Line(Frozen):
    """One (function, line) inside a Location."""

    __slots__ = ("function", "line", "column")
    function: Function | None
    line: int
    column: int

    def __init__(self, function: Function | None, line: int = 0, column: int = 0) -> None:
        set_field(self, "function", function)
        set_field(self, "line", line)
        set_field(self, "column", column)


class Mapping(Frozen):
    """A binary or interpreter image mapped into the profiled process."""

    __slots__ = ("id", "start", "limit", "offset", "filename", "build_id", "has_functions",
                 "has_filenames", "has_line_numbers", "has_inline_frames")
    id: int
    start: int
    limit: int
    offset: int
    filename: str
    build_id: str
    has_functions: bool
    has_filenames: bool
    has_line_numbers: bool
    has_inline_frames: bool

    def __init__(self, id: int = 0, start: int = 0, limit: int = 0, offset: int = 0,
                 filename: str = "", build_id: str = "", has_functions: bool = False,
                 has_filenames: bool = False, has_line_numbers: bool = False,
                 has_inline_frames: bool = False) -> None:
        set_field(self, "id", id)
        set_field(self, "start", start)
        set_field(self, "limit", limit)
        set_field(self, "offset", offset)
        set_field(self, "filename", filename)
        set_field(self, "build_id", build_id)
        set_field(self, "has_functions", has_functions)
        set_field(self, "has_filenames", has_filenames)
        set_field(self, "has_line_numbers", has_line_numbers)
        set_field(self, "has_inline_frames", has_inline_frames)


# The interpreter's one mapping: Python frames come with names, files and lines,
# so pprof must never try to symbolize them.
PYTHON_MAPPING = Mapping(id=1, filename="python", has_functions=True, has_filenames=True,
                         has_line_numbers=True)


class Location(Frozen):
    """A place in the program: an address and/or the lines it maps to."""

    __slots__ = ("id", "address", "mapping", "lines", "is_folded")
    id: int
    address: int
    mapping: Mapping | None
    lines: tuple[Line, ...]
    is_folded: bool

    def __init__(self, id: int = 0, address: int = 0, mapping: Mapping | None = None,
                 lines: tuple[Line, ...] = (), is_folded: bool = False) -> None:
        set_field(self, "id", id)
        set_field(self, "address", address)
        set_field(self, "mapping", mapping)
        set_field(self, "lines", lines)
        set_field(self, "is_folded", is_folded)


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
