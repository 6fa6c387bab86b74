"""ProfileBuilder: assemble a profile from stacks of (function, file, line).

Tests and collectors describe each sample as values plus a stack, leaf first,
and labels; the builder shares one Function per (name, file, start line) and
one Location per (function, line), so the profile stays compact.
"""

from __future__ import annotations

from typing import NamedTuple  # Frame is one

from .model import PYTHON_MAPPING, Function, LabelValue, Line, Location, Mapping, Sample, ValueType
from .profile import Profile

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Iterable, Mapping as MappingType, Sequence, Union


class Frame(NamedTuple):
    """One Python frame: ``name`` is the qualified name, ``system_name`` the
    code name (defaults to ``name``)."""

    name: str
    filename: str = ""
    line: int = 0
    start_line: int = 0
    system_name: str = ""


if TYPE_CHECKING:
    FrameLike = Union[Frame, tuple[Any, ...]]


class ProfileBuilder:
    """Collect samples, then :meth:`build` a :class:`Profile`.

    >>> b = ProfileBuilder([("samples", "count"), ("cpu", "nanoseconds")],
    ...                    period_type=("cpu", "nanoseconds"), period=10_000_000)
    >>> b.add([1, 10_000_000], [("work", "/app/w.py", 12), ("main", "/app/w.py", 3)])
    >>> b.build().total("cpu")
    10000000
    """

    def __init__(
        self,
        sample_types: Sequence[ValueType | tuple[str, str]],
        *,
        period_type: ValueType | tuple[str, str] | None = None,
        period: int = 0,
        default_sample_type: str = "",
        mapping: Mapping = PYTHON_MAPPING,
    ) -> None:
        self._sample_types = list(sample_types)
        self._period_type = period_type
        self._period = period
        self._default = default_sample_type
        self._mapping = mapping
        self._functions: dict[tuple[str, str, str, int], Function] = {}
        self._locations: dict[tuple[Function, int], Location] = {}
        self._samples: list[Sample] = []

    def _location(self, frame: FrameLike) -> Location:
        f = Frame(*frame)
        fkey = (f.name, f.system_name or f.name, f.filename, f.start_line)
        function = self._functions.get(fkey)
        if function is None:
            function = self._functions[fkey] = Function(
                len(self._functions) + 1, f.name, fkey[1], f.filename, f.start_line)
        lkey = (function, f.line)
        location = self._locations.get(lkey)
        if location is None:
            location = self._locations[lkey] = Location(
                len(self._locations) + 1, 0, self._mapping, (Line(function, f.line),))
        return location

    def add(
        self,
        values: Iterable[int],
        stack: Iterable[FrameLike],
        labels: MappingType[str, LabelValue | Sequence[LabelValue]] | None = None,
        *,
        num_units: MappingType[str, str] | None = None,
    ) -> None:
        """Add one sample; ``stack`` is leaf first."""
        self._samples.append(Sample(values, [self._location(f) for f in stack], labels,
                                    num_units=num_units))

    def build(self, **header: object) -> Profile:
        """The profile so far; keyword arguments set header fields
        (time_ns, duration_ns, comments, ...)."""
        return Profile(
            self._sample_types, self._samples, period_type=self._period_type,
            period=self._period, default_sample_type=self._default,
            mappings=[self._mapping], locations=list(self._locations.values()),
            functions=list(self._functions.values()), **header)  # type: ignore[arg-type]
