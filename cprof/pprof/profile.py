"""Profile: a pprof profile in Python, read lazily from the C codec.

A loaded profile keeps its decoded message in C memory (``_core.ProfileData``)
and creates Python objects only for what is asked for, one sample, location or
function at a time. Writing a loaded profile whose header is unchanged encodes
straight from C; a profile built in Python is turned into string-indexed
tables and validated by the same C code before it is written.
"""

from __future__ import annotations

import gc
import os
import sys
import zlib
from collections.abc import Sequence

from .. import _core
from .io import write_bytes
from .model import Function, LabelValue, Line, Location, Mapping, Sample, ValueType

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import IO, Any, Callable, Iterable, Iterator, TypeVar, Union, overload

    from ..report.top import TopReport
    from .io import Dest

    Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes]]
    T = TypeVar("T")
else:
    T = "T"  # collections.abc's generic classes take any parameter at run time

ProfileError = _core.ProfileError

_BATCH = 4096

DEFAULT_MAX_SIZE: int = _core.DEFAULT_MAX_SIZE
DEFAULT_MAX_RATIO: int = _core.DEFAULT_MAX_RATIO


class _LazyList(Sequence[T]):
    """A read-only sequence whose items are made on first access and kept."""

    __slots__ = ("_make", "_items")

    def __init__(self, n: int, make: Callable[[int], T]) -> None:
        self._make = make
        self._items: list[T | None] = [None] * n

    def __len__(self) -> int:
        return len(self._items)

    if TYPE_CHECKING:
        @overload
        def __getitem__(self, i: int) -> T: ...
        @overload
        def __getitem__(self, i: slice) -> list[T]: ...

    def __getitem__(self, i: int | slice) -> T | list[T]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self._items)))]
        item = self._items[i]
        if item is None:
            if i < 0:
                i += len(self._items)
            item = self._items[i] = self._make(i)
        return item

    def __iter__(self) -> Iterator[T]:
        # Items are made a batch at a time with the cycle collector paused:
        # hundreds of thousands of new objects would otherwise trigger
        # collections that double the time, and none of them form cycles.
        n = len(self._items)
        for start in range(0, n, _BATCH):
            stop = min(start + _BATCH, n)
            if None in self._items[start:stop]:
                paused = gc.isenabled()
                gc.disable()
                try:
                    for i in range(start, stop):
                        self[i]
                finally:
                    if paused:
                        gc.enable()
            yield from self._items[start:stop]  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"<{len(self._items)} items, made on access>"

    def __eq__(self, other: object) -> bool:
        # Equal to a sequence of equal items, as the tuple it stands for would be.
        if not isinstance(other, (_LazyList, tuple, list)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]


class _Tables:
    """Python objects over one ProfileData, made on demand and cached.

    Each list's maker closes over the data and the lists it needs, never over
    this object, so a dropped profile frees its C memory at once instead of
    waiting for the cycle collector.
    """

    def __init__(self, data: _core.ProfileData) -> None:
        n_samples, n_locations, n_functions, n_mappings, _ = data.counts()
        mappings: _LazyList[Mapping] = _LazyList(
            n_mappings, lambda i: Mapping(*data.mapping(i)))
        functions: _LazyList[Function] = _LazyList(
            n_functions, lambda i: Function(*data.function(i)))

        def location(i: int) -> Location:
            id_, mapping_id, address, lines, folded = data.location(i)
            mapping = mappings[data.mapping_index(mapping_id)] if mapping_id else None
            made = tuple(
                Line(functions[data.function_index(fid)] if fid else None, line, col)
                for fid, line, col in lines)
            return Location(id_, address, mapping, made, folded)

        locations: _LazyList[Location] = _LazyList(n_locations, location)
        # A big profile's samples share few stacks and label lists (300,000
        # samples, 65,729 stacks, 1,706 label lists): each distinct one is made
        # once, on first use, and its tuple shared, keyed by the first sample
        # that has it (ProfileData.sample_keys, computed on first access).
        keys: list[memoryview] = []
        made_locations: Any = locations._items  # Location, or None where not made yet
        stacks: dict[int, tuple[Location, ...]] = {}
        labels_made: dict[int, tuple[tuple[str, LabelValue, str], ...]] = {}

        def sample(i: int) -> Sample:
            if not keys:
                keys.extend(memoryview(b).cast("I") for b in data.sample_keys())
            stack = stacks.get(keys[0][i])
            labels = labels_made.get(keys[1][i])
            if stack is None or labels is None:
                indices, values, raw_labels = data.sample(i)
                if stack is None:
                    stack = tuple(map(made_locations.__getitem__, indices))
                    if not all(stack):  # some not made yet (a Location is true)
                        stack = tuple(map(locations.__getitem__, indices))
                    stacks[keys[0][i]] = stack
                if labels is None:
                    labels = labels_made[keys[1][i]] = label_items(raw_labels)
                return Sample._raw(values, stack, labels)
            return Sample._raw(data.sample_values(i), stack, labels)

        self.mappings = mappings
        self.functions = functions
        self.locations = locations
        self.samples: _LazyList[Sample] = _LazyList(n_samples, sample)


def label_items(raw_labels: Iterable[tuple[str, str | None, int, str | None]]
                ) -> tuple[tuple[str, LabelValue, str], ...]:
    """Sample.label_items from ProfileData's labels (key, str or None, num,
    unit or None)."""
    labels: list[tuple[str, LabelValue, str]] = []
    for key, s, num, unit in raw_labels:
        if s is not None:
            labels.append((key, s, ""))
        elif num or unit:
            labels.append((key, num, unit or ""))
        # A label with neither value nor unit carries nothing: pprof drops it too.
    return tuple(labels)


HEADER_FIELDS = ("sample_types", "period_type", "period", "time_ns", "duration_ns",
                  "comments", "default_sample_type", "drop_frames", "keep_frames", "doc_url")


class Profile:
    """A pprof profile.

    Build one from Python with sample types and samples (locations, functions
    and mappings are gathered from the samples unless given), or get one from
    :func:`load` or a collector. Header fields may be reassigned; samples and
    the tables they refer to are immutable.
    """

    sample_types: list[ValueType]
    period_type: ValueType | None
    period: int
    time_ns: int
    duration_ns: int
    comments: list[str]
    default_sample_type: str
    drop_frames: str
    keep_frames: str
    doc_url: str

    def __init__(
        self,
        sample_types: Sequence[ValueType | tuple[str, str]],
        samples: Sequence[Sample] = (),
        *,
        period_type: ValueType | tuple[str, str] | None = None,
        period: int = 0,
        time_ns: int = 0,
        duration_ns: int = 0,
        comments: Sequence[str] = (),
        default_sample_type: str = "",
        drop_frames: str = "",
        keep_frames: str = "",
        doc_url: str = "",
        mappings: Sequence[Mapping] | None = None,
        locations: Sequence[Location] | None = None,
        functions: Sequence[Function] | None = None,
    ) -> None:
        self.sample_types = [_value_type(t) for t in sample_types]
        self.period_type = _value_type(period_type) if period_type is not None else None
        self.period = period
        self.time_ns = time_ns
        self.duration_ns = duration_ns
        self.comments = list(comments)
        self.default_sample_type = default_sample_type
        self.drop_frames = drop_frames
        self.keep_frames = keep_frames
        self.doc_url = doc_url
        self._samples: Sequence[Sample] = tuple(samples)
        self._locations: Sequence[Location] | None = (
            tuple(locations) if locations is not None else None)
        self._functions: Sequence[Function] | None = (
            tuple(functions) if functions is not None else None)
        self._mappings: Sequence[Mapping] | None = (
            tuple(mappings) if mappings is not None else None)
        self._data: _core.ProfileData | None = None
        self._loaded_header: tuple[Any, ...] | None = None
        self._scope: _Scope | None = None
        n = len(self.sample_types)
        for i, s in enumerate(self._samples):
            if len(s.values) != n:
                raise ProfileError(f"sample[{i}] has {len(s.values)} values but the profile "
                                   f"has {n} sample types")

    @classmethod
    def _from_data(cls, data: _core.ProfileData) -> Profile:
        h = data.header()
        self = cls.__new__(cls)
        self.sample_types = [ValueType(t, u) for t, u in h["sample_types"]]
        self.period_type = ValueType(*h["period_type"]) if h["period_type"] else None
        self.period = h["period"]
        self.time_ns = h["time_nanos"]
        self.duration_ns = h["duration_nanos"]
        self.comments = list(h["comments"])
        self.default_sample_type = h["default_sample_type"]
        self.drop_frames = h["drop_frames"]
        self.keep_frames = h["keep_frames"]
        self.doc_url = h["doc_url"]
        tables = _Tables(data)
        self._samples = tables.samples
        self._locations = tables.locations
        self._functions = tables.functions
        self._mappings = tables.mappings
        self._data = data
        self._loaded_header = self._header()
        self._scope = None
        return self

    def _header(self) -> tuple[Any, ...]:
        return tuple(
            tuple(v) if isinstance(v, list) else v
            for v in (getattr(self, f) for f in HEADER_FIELDS))

    # --- tables ---------------------------------------------------------------

    @property
    def samples(self) -> Sequence[Sample]:
        return self._samples

    @property
    def locations(self) -> Sequence[Location]:
        if self._locations is None:
            self._locations = tuple(_unique(loc for s in self._samples for loc in s.locations))
        return self._locations

    @property
    def functions(self) -> Sequence[Function]:
        if self._functions is None:
            self._functions = tuple(_unique(
                ln.function for loc in self.locations for ln in loc.lines
                if ln.function is not None))
        return self._functions

    @property
    def mappings(self) -> Sequence[Mapping]:
        if self._mappings is None:
            self._mappings = tuple(_unique(
                loc.mapping for loc in self.locations if loc.mapping is not None))
        return self._mappings

    # --- simple queries ---------------------------------------------------------

    def sample_index(self, sample_type: str | int | None = None) -> int:
        """Index of a sample type given by name or index; None means the
        default (default_sample_type, else the last one, as pprof chooses)."""
        names = [t.type for t in self.sample_types]
        if sample_type is None:
            sample_type = self.default_sample_type or (names[-1] if names else "")
        if isinstance(sample_type, int):
            if not 0 <= sample_type < len(names):
                raise ValueError(f"sample index {sample_type} is out of range: the profile "
                                 f"has {len(names)} sample types")
            return sample_type
        if sample_type in names:
            return names.index(sample_type)
        raise ValueError(f"no sample type {sample_type!r}; the profile has "
                         f"{', '.join(names) or 'none'}")

    def totals(self) -> list[int]:
        """The sum of every sample type's values, in sample_types order."""
        if self._data is not None:
            return list(self._data.totals())
        sums = [0] * len(self.sample_types)
        for s in self._samples:
            for j, v in enumerate(s.values):
                sums[j] += v
        return sums

    def total(self, sample_type: str | int | None = None) -> int:
        """The sum of one sample type (the default one unless named)."""
        return self.totals()[self.sample_index(sample_type)]

    def report_total(self, sample_type: str | int | None = None) -> int:
        """What reports take percentages of, as pprof's: the sum of the
        absolute values of one sample type (the default one unless named),
        over the base's samples alone in a -diff_base profile (those labelled
        pprof::base=true), and, for a profile made by ``filter``, taken
        before the filters, as ``go tool pprof -focus`` does. As pprof merges
        equal samples (stack and labels) when it reads a profile, a sample
        and its negation cancel out of the total."""
        index = self.sample_index(sample_type)
        if self._scope is not None:
            return self._scope[0][index]
        return self._analysis_data().abs_total(index)  # csrc/analysis/total.c

    @property
    def active_filters(self) -> list[str]:
        """The filters ``filter`` applied to make this profile, as pprof's
        "Active filters:" legend lists them (``focus=work``)."""
        return list(self._scope[1]) if self._scope is not None else []

    def __len__(self) -> int:
        return len(self._samples)

    def __repr__(self) -> str:
        types = " ".join(str(t) for t in self.sample_types)
        return (f"<cprof.Profile [{types}] {len(self._samples)} samples, "
                f"{len(self.locations)} locations, {len(self.functions)} functions>")

    def _unchanged_data(self) -> _core.ProfileData | None:
        """The C data behind a loaded profile whose header nobody changed
        (samples cannot change), for code that can work on it directly; else
        None."""
        if self._data is not None and self._header() == self._loaded_header:
            return self._data
        return None

    def _analysis_data(self) -> _core.ProfileData:
        """The C data the analysis engine reads: a loaded profile's, or one
        built once from this profile's tables (samples cannot change, and the
        engine reads no header field)."""
        if self._data is None:
            self._data = _core.build(*_tables(self))
            self._loaded_header = self._header()
        return self._data

    # --- bytes ----------------------------------------------------------------

    def to_bytes(self, level: int = 1) -> bytes:
        """The profile as gzipped profile.proto (raw protobuf when level is 0).
        Level 1 is fast; 9 is smallest."""
        data = self._unchanged_data()
        if data is None:
            data = self._data = _core.build(*_tables(self))
            self._loaded_header = self._header()
        return data.encode(level)

    def write(self, dest: Dest, level: int = 1) -> None:
        """Write the profile to a path (atomically: a temporary file renamed
        into place) or to an open binary file."""
        write_bytes(dest, self.to_bytes(level))

    # --- analysis: thin doors onto pprof/ (filter, ops) and, the one upward reference
    # of the data layer (docs/ARCHITECTURE.md), onto report/ and export/: each is
    # imported when its method is first called, so loading a profile stays light and
    # no module of this layer imports one above it ---

    def top(self, n: int | None = None, **options: Any) -> TopReport:
        """The heaviest functions, as `go tool pprof -top` lists them
        (cprof.report.top): ``cum``, ``sample_type``, ``node_fraction``, and
        pprof's filters and ``granularity`` by their names, as ``cprof top``
        takes them (cprof.report.driver)."""
        from ..report.driver import top_of
        return top_of(self, n, **options)

    def filter(self, **options: Any) -> Profile:
        """A new profile keeping what pprof's -focus, -ignore, -hide, -show,
        -show_from, -prune_from, -tagfocus and -tagignore keep (cprof.pprof.filter)."""
        from .filter import filter as filter_
        return filter_(self, **options)

    def diff(self, base: Profile) -> Profile:
        """This profile against ``base``, as ``go tool pprof -diff_base``: base
        samples negated and labelled pprof::base (cprof.pprof.ops.diff)."""
        from .ops import diff
        return diff(self, base)

    def subtract(self, base: Profile) -> Profile:
        """This profile less ``base``, as ``go tool pprof -base`` (cprof.pprof.ops.subtract)."""
        from .ops import subtract
        return subtract(self, base)

    def scale(self, factor: float | Sequence[float]) -> Profile:
        """Every value multiplied by factor (one per sample type, or one for all)."""
        from .ops import scale
        return scale(self, factor)

    def select(self, sample_type: str | int | None = None) -> Profile:
        """A profile of one sample type, as ``-sample_index`` (cprof.pprof.ops.select)."""
        from .ops import select
        return select(self, sample_type)

    def aggregate(self, by: str = "function") -> Profile:
        """Locations merged by "function", "file", "line" or "address", as pprof's
        -functions, -files, -lines and -addresses (cprof.pprof.ops.aggregate)."""
        from .ops import aggregate
        return aggregate(self, by)  # type: ignore[arg-type]

    def share(self, pattern: str, sample_type: str | int | None = None) -> float:
        """The fraction (0..1) of the total in samples with a function matching
        the regular expression anywhere on their stack (cum share)."""
        from .ops import share
        return share(self, pattern, sample_type)

    def folded(self, sample_type: str | int | None = None) -> str:
        """Folded stacks, one line per stack (flamegraph.pl and inferno read them)."""
        from ..export.folded import folded
        return folded(self, sample_type)

    def flamegraph(self, path: str | os.PathLike[str], **options: Any) -> None:
        """Write a flame graph: interactive self-contained HTML for a .html path,
        static SVG for a .svg one."""
        target = os.fspath(path)
        if target.endswith(".svg"):
            from ..export.flamegraph.svg import write_svg
            write_svg(self, target, **options)
        elif target.endswith((".html", ".htm")):
            from ..export.flamegraph.html import write_html
            write_html(self, target, **options)
        else:
            raise ValueError(f"flamegraph: {target!r} ends neither in .html nor in .svg")

    def to_speedscope(self, dest: Dest, **options: Any) -> None:
        """Write speedscope's JSON format (cprof.export.speedscope)."""
        from ..export.speedscope import write_speedscope
        write_speedscope(self, dest, **options)

    def to_dot(self, **options: Any) -> str:
        """A DOT call graph with pprof's node and edge trimming (cprof.export.dot)."""
        from ..export.dot import to_dot
        return to_dot(self, **options)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """Notebooks show a profile as its top and an inline flame graph."""
        from ..export.notebook import mimebundle
        return mimebundle(self, include, exclude)

    def to_dataframe(self, level: str = "sample") -> Any:
        """A pandas DataFrame (pandas is optional; cprof.export.dataframe)."""
        from ..export.dataframe import to_dataframe
        return to_dataframe(self, level=level)  # type: ignore[arg-type]


# What a filtered profile's reports keep of the profile it was filtered from:
# the report total of each sample type, and the legend of the filters.
_Scope = tuple[tuple[int, ...], tuple[str, ...]]


def _value_type(t: ValueType | tuple[str, str]) -> ValueType:
    return t if isinstance(t, ValueType) else ValueType(*t)


def _unique(items: Any) -> list[Any]:
    seen: dict[Any, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)


class _Interner:
    """Assigns ids: keeps an object's own non-zero id, numbers the rest."""

    def __init__(self, objects: Sequence[Any]) -> None:
        taken = {o.id for o in objects if o.id}
        self.ids: dict[Any, int] = {}
        next_id = 1
        for o in objects:
            if o in self.ids:
                continue
            if o.id:
                self.ids[o] = o.id
                continue
            while next_id in taken:
                next_id += 1
            taken.add(next_id)
            self.ids[o] = next_id


def _tables(p: Profile) -> tuple[Any, ...]:
    """The arguments of _core.build: every string interned, every object an id."""
    strings: dict[str, int] = {"": 0}

    def s(text: str) -> int:
        i = strings.get(text)
        if i is None:
            i = strings[text] = len(strings)
        return i

    mappings = _Interner(p.mappings)
    functions = _Interner(p.functions)
    locations = _Interner(p.locations)
    for loc in p.locations:
        if loc.mapping is not None and loc.mapping not in mappings.ids:
            raise ProfileError(f"location {loc.id} refers to a mapping missing from "
                               "profile.mappings")
        for ln in loc.lines:
            if ln.function is not None and ln.function not in functions.ids:
                raise ProfileError(f"location {loc.id} refers to function "
                                   f"{ln.function.name!r}, missing from profile.functions")
    sample_types = [(s(t.type), s(t.unit)) for t in p.sample_types]
    header = (
        (s(p.period_type.type), s(p.period_type.unit)) if p.period_type else None,
        p.period, p.time_ns, p.duration_ns, [s(c) for c in p.comments],
        s(p.default_sample_type), s(p.drop_frames), s(p.keep_frames), s(p.doc_url))
    loc_ids = locations.ids
    samples = []
    for i, smp in enumerate(p.samples):
        try:
            ids = [loc_ids[loc] for loc in smp.locations]
        except KeyError:
            raise ProfileError(f"sample[{i}] refers to a location missing from "
                               "profile.locations") from None
        labels = [(s(k), s(v), 0, 0) if isinstance(v, str) else (s(k), 0, v, s(u))
                  for k, v, u in smp.label_items]
        samples.append((ids, smp.values, labels))
    mapping_rows = [
        (mappings.ids[m], m.start, m.limit, m.offset, s(m.filename), s(m.build_id),
         m.has_functions, m.has_filenames, m.has_line_numbers, m.has_inline_frames)
        for m in mappings.ids]
    function_rows = [
        (functions.ids[f], s(f.name), s(f.system_name), s(f.filename), f.start_line)
        for f in functions.ids]
    location_rows = [
        (loc_ids[loc], mappings.ids[loc.mapping] if loc.mapping is not None else 0,
         loc.address,
         [(functions.ids[ln.function] if ln.function is not None else 0, ln.line, ln.column)
          for ln in loc.lines],
         loc.is_folded)
        for loc in loc_ids]
    return (list(strings), header, sample_types, samples, mapping_rows, location_rows,
            function_rows)


def _read_capped(f: IO[bytes], cap: int, name: str) -> bytes | bytearray:
    """All of f, a MiB at a time, refused as soon as it passes cap bytes: a
    device or pipe without end (/dev/zero) costs at most cap + 1 MiB."""
    data = bytearray()
    while True:
        chunk = f.read(min(1 << 20, cap + 1 - len(data)))
        if isinstance(chunk, str) or not isinstance(chunk, (bytes, bytearray)):
            raise TypeError(f"{name}: the file must be opened in binary mode ('rb')")
        if not chunk:
            return data
        data += chunk
        if len(data) > cap:
            raise ProfileError(f"{name}: more than {cap} bytes (the max_size limit); raise "
                               f"max_size if this input is trusted")


def _check_limit(name: str, value: int, most: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value <= most:
        raise ValueError(f"{name} must be between 0 and {most}, not {value}")


def _legacy_text(data: bytes | bytearray | memoryview, max_size: int) -> bytes | None:
    """The text of a (possibly gzipped) input that is Go's legacy heap text,
    inflated to at most max_size bytes, or None when it is not."""
    if bytes(data[:2]) != b"\x1f\x8b":
        return bytes(data) if _is_heap_text(bytes(data[:64])) else None
    try:  # its first bytes first: a gzip bomb is not inflated here
        if not _is_heap_text(zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, 64)):
            return None
        text = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, max_size + 1)
    except zlib.error:
        return None
    if len(text) > max_size:
        raise ProfileError(f"the heap text inflates to more than {max_size} bytes (the "
                           f"max_size limit); raise max_size if this input is trusted")
    return text


# Python objects take about this many bytes per byte of heap text (a
# 20-byte record line becomes a Sample with its tuples and label).
_HEAP_TEXT_MEMORY = 32


def _read_heap(text: bytes, max_size: int) -> Profile:
    """Go's legacy heap text as a Profile, when what it takes in memory fits
    max_size (text is small: Go's and cprof's are a few MB at most)."""
    if len(text) * _HEAP_TEXT_MEMORY > max_size:
        raise ProfileError(f"the heap text is {len(text)} bytes and takes about "
                           f"{_HEAP_TEXT_MEMORY} times that in memory, more than the max_size "
                           f"limit of {max_size}; raise max_size if this input is trusted")
    from .textformat import read_heap_text
    return read_heap_text(text.decode("utf-8", "surrogateescape"))


def _is_heap_text(data: bytes) -> bool:
    """is_heap_text, imported late: textformat imports this module."""
    from .textformat import is_heap_text
    return is_heap_text(data)


def load(source: Source, *, max_size: int = DEFAULT_MAX_SIZE,
         max_ratio: int = DEFAULT_MAX_RATIO) -> Profile:
    """Read a pprof profile from a path, bytes or a binary file; gzipped or
    raw, from any producer; or Go's legacy heap text (what ``heap?debug=1``
    serves, from Go or cprof), as pprof reads it.

    ``max_size`` (1 GiB by default) bounds every stage: the bytes read from
    the source, the bytes they inflate to, and the memory the decoded profile
    takes (about 10 times its protobuf size). Past 16 MiB, an input inflating
    or decoding to more than ``max_ratio`` times its size (256) is refused
    too: real profiles inflate 1-10 fold and decode to 10-20 times their
    gzipped size, a decompression bomb about 1000 fold or more, and this
    refuses one in milliseconds (0 turns the ratio check off). Ctrl-C stops a
    long decode. Raises :class:`ProfileError`, naming the source and what is
    wrong, for malformed or oversized input."""
    _check_limit("max_size", max_size, sys.maxsize)
    _check_limit("max_ratio", max_ratio, 2**32 - 1)
    name: str
    data: bytes | bytearray | memoryview
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name = source, "<bytes>"
    elif isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        with open(name, "rb") as f:
            data = _read_capped(f, max_size, name)
    elif hasattr(source, "read"):
        name = getattr(source, "name", "<file>")
        data = _read_capped(source, max_size, name)
    else:
        raise TypeError(f"load() takes a path, bytes or a binary file, not "
                        f"{type(source).__name__}")
    try:
        # Gzipped data (what every producer writes) is never heap text: the
        # check, and textformat's import, are for the rest.
        if bytes(data[:2]) != b"\x1f\x8b" and _is_heap_text(bytes(data[:64])):
            return _read_heap(bytes(data), max_size)
        try:
            parsed = _core.decode(data, max_size, max_ratio)
        except ProfileError:
            text = _legacy_text(data, max_size)
            if text is None:
                raise
            return _read_heap(text, max_size)
    except ProfileError as e:
        raise ProfileError(f"{name}: {e}") from None
    return Profile._from_data(parsed)


__all__ = ["Profile", "ProfileError", "load", "DEFAULT_MAX_SIZE", "DEFAULT_MAX_RATIO"]
