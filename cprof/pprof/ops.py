"""ops: whole-profile operations as pure functions (merge, diff, subtract,
scale, select, aggregate, total, share), with google/pprof's meanings.

Each returns a new Profile and leaves its input alone. Operations on one
profile reuse its Location and Function objects where they are unchanged;
``merge`` (and ``diff`` and ``subtract``, which merge) makes fresh ones,
numbered anew, because objects from different profiles may share ids.

Work is done once per location and stacks are mapped through dicts keyed by
object identity, so that the per-frame work stays in C; the cyclic garbage
collector is paused meanwhile (see ``bulk``).
"""

from __future__ import annotations

import functools
import gc
import math
import operator

from .model import Function, LabelValue, Line, Location, Mapping, Sample, ValueType
from .profile import Profile
from .units import scale as scale_unit

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    import re
    from typing import Callable, Iterable, Literal, ParamSpec, Sequence, TypeVar, Union

    Pattern = Union[str, "re.Pattern[str]"]
    Granularity = Literal["function", "file", "line", "address"]
    P = ParamSpec("P")
    R = TypeVar("R")

DIFF_BASE_LABEL = "pprof::base"  # pprof's mark on the samples of a -diff_base profile

_LabelKey = tuple[tuple[tuple[str, tuple[str, ...]], ...],
                  tuple[tuple[str, tuple[tuple[int, str], ...]], ...]]


def bulk(func: Callable[P, R]) -> Callable[P, R]:
    """Run ``func`` with the cyclic garbage collector paused. Transforming a
    profile makes millions of tuples and samples, none in a cycle, and each
    collection the allocations trigger would walk the whole profile again:
    more than half the time of a merge of 300,000 samples."""

    @functools.wraps(func)
    def paused(*args: P.args, **kwargs: P.kwargs) -> R:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return func(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()

    return paused


def with_samples(profile: Profile, samples: Iterable[Sample], **header: object) -> Profile:
    """A profile with ``profile``'s header (overridden by ``header``) and
    mappings, and ``samples``; locations and functions are those the samples
    use. The mappings stay as they were so that the first one still names
    the main binary, as pprof's reports expect."""
    fields: dict[str, object] = dict(
        sample_types=profile.sample_types, period_type=profile.period_type,
        period=profile.period, time_ns=profile.time_ns, duration_ns=profile.duration_ns,
        comments=profile.comments, default_sample_type=profile.default_sample_type,
        drop_frames=profile.drop_frames, keep_frames=profile.keep_frames,
        doc_url=profile.doc_url, mappings=profile.mappings)
    fields.update(header)
    sample_types = fields.pop("sample_types")
    return Profile(sample_types, tuple(samples), **fields)  # type: ignore[arg-type]


def without_thread(profile: Profile, thread_id: int | None) -> Profile:
    """The profile without the samples of the thread whose native id is
    ``thread_id`` (a thread of cprof's own: cprof record's live count, cprof
    attach's waiter); the profile itself when None."""
    if thread_id is None:
        return profile
    return with_samples(profile, [s for s in profile.samples
                                  if s.labels.get("thread_id") != thread_id])


def with_labels(profile: Profile, labels: dict[str, LabelValue]) -> Profile:
    """Every sample of ``profile`` labelled with ``labels`` (a number or a
    string each, without unit), in place of any values it had for those keys."""
    added = tuple((key, value, "") for key, value in labels.items())
    made: dict[tuple[tuple[str, LabelValue, str], ...], tuple[tuple[str, LabelValue, str], ...]] = {}
    samples = []
    for s in profile.samples:
        items = made.get(s.label_items)
        if items is None:
            items = made[s.label_items] = tuple(
                it for it in s.label_items if it[0] not in labels) + added
        samples.append(Sample._raw(s.values, s.locations, items))
    return with_samples(profile, samples)


def keep_scope(source: Profile, made: Profile, index: int | None = None) -> Profile:
    """``made`` reporting as ``source`` does (its report totals and filter
    legend, when ``source`` was made by filter), of sample type ``index``
    alone when given: for what changes the stacks' shape but not what they
    are a part of (granularity, one sample type)."""
    if source._scope is not None:
        totals, legend = source._scope
        made._scope = ((totals[index],) if index is not None else totals, legend)
    return made


def compile_pattern(option: str, pattern: Pattern) -> re.Pattern[str]:
    """A regular expression given as text or compiled; a bad one raises
    ValueError naming the option."""
    import re  # here, not at the top: cprof top without a filter has no use for re
    if isinstance(pattern, re.Pattern):
        return pattern
    if not isinstance(pattern, str):
        raise TypeError(f"{option}: expected a regular expression (str or re.Pattern), "
                        f"not {type(pattern).__name__}")
    try:
        return re.compile(pattern)
    except re.error as e:
        raise ValueError(f"{option}: invalid regular expression {pattern!r}: {e}") from None


def unique_locations(samples: Iterable[Sample]) -> dict[int, Location]:
    """Every location the samples use, by object identity, in order of first
    use. Transformations work once per location, then map stacks through a
    dict, which keeps the per-frame work in C."""
    seen: dict[int, Location] = {}
    for s in samples:
        seen.update(zip(map(id, s.locations), s.locations))
    return seen


def map_stack(s: Sample, new: dict[int, Location]) -> tuple[Location, ...]:
    """The sample's locations replaced through ``new`` (by object identity)."""
    return tuple(map(new.__getitem__, map(id, s.locations)))


# --- total and share ------------------------------------------------------------------


def total(profile: Profile, sample_type: str | int | None = None) -> int:
    """The sum of one sample type's values (the default type unless named)."""
    return profile.total(sample_type)


@bulk
def share(profile: Profile, regex: Pattern, sample_type: str | int | None = None) -> float:
    """The cum fraction (0..1) of functions whose name matches ``regex``
    (``re.search``): the values of the samples with such a frame anywhere on
    their stack, inlined frames included and each sample counted once, over
    the profile's report total (pprof's cum% / 100: the sum of the absolute
    values, of the base's alone in a -diff_base profile, taken before the
    filters of a filtered profile)."""
    rx = compile_pattern("share", regex)
    index = profile.sample_index(sample_type)
    samples = profile.samples
    hits = {i for i, loc in unique_locations(samples).items() if any(
        ln.function is not None and rx.search(ln.function.name) is not None for ln in loc.lines)}
    matched = 0
    for s in samples:
        v = s.values[index]
        if v and not hits.isdisjoint(map(id, s.locations)):
            matched += v
    whole = profile.report_total(index)
    return matched / whole if whole else 0.0


# --- scale and select -------------------------------------------------------------------


def _round(x: float) -> int:
    """Go's math.Round: halves away from zero."""
    t = math.trunc(x)
    if abs(x - t) >= 0.5:
        t += 1 if x > 0 else -1
    return int(t)


def _scale_samples(samples: Iterable[Sample], ratios: Sequence[float]) -> list[Sample]:
    out = []
    for s in samples:
        values = tuple(v if r == 1 else _round(v * r) for v, r in zip(s.values, ratios))
        if any(v for v, r in zip(values, ratios) if r != 1):
            out.append(Sample._raw(values, s.locations, s.label_items))
    return out


@bulk
def scale(profile: Profile, factor: float | Sequence[float]) -> Profile:
    """Every value multiplied by ``factor`` (or by one factor per sample
    type) and rounded half away from zero, as pprof's Profile.Scale; samples
    whose scaled values all become zero are dropped."""
    n = len(profile.sample_types)
    ratios = [float(factor)] * n if isinstance(factor, (int, float)) else [
        float(r) for r in factor]
    if len(ratios) != n:
        raise ValueError(f"scale: {len(ratios)} factors for {n} sample types")
    if all(r == 1 for r in ratios):
        return with_samples(profile, profile.samples)
    return with_samples(profile, _scale_samples(profile.samples, ratios))


@bulk
def select(profile: Profile, sample_type: str | int | None = None) -> Profile:
    """A profile with one sample type (by name or index; the default when
    None), which becomes its default; samples whose value is zero are
    dropped, as pprof drops all-zero samples."""
    index = profile.sample_index(sample_type)
    vt = profile.sample_types[index]
    samples = [Sample._raw((s.values[index],), s.locations, s.label_items)
               for s in profile.samples if s.values[index]]
    return keep_scope(profile, with_samples(profile, samples, sample_types=[vt],
                                            default_sample_type=vt.type), index)


# --- merge, diff, subtract ------------------------------------------------------------------


def _label_key(items: tuple[tuple[str, LabelValue, str], ...]) -> _LabelKey:
    """Labels as pprof compares them: per key, the values in order; keys sorted."""
    if not items:
        return ((), ())
    strings: dict[str, list[str]] = {}
    numbers: dict[str, list[tuple[int, str]]] = {}
    for key, value, unit in items:
        if isinstance(value, str):
            strings.setdefault(key, []).append(value)
        else:
            numbers.setdefault(key, []).append((value, unit))
    return (tuple(sorted((k, tuple(v)) for k, v in strings.items())),
            tuple(sorted((k, tuple(v)) for k, v in numbers.items())))


class _Combiner:
    """Sums samples with the same locations and labels into the first of
    them and drops those whose values are all zero, as pprof's merge."""

    def __init__(self) -> None:
        self.label_keys: dict[tuple[tuple[str, LabelValue, str], ...], _LabelKey] = {}
        self.index: dict[tuple[tuple[int, ...], _LabelKey], int] = {}
        self.firsts: list[Sample] = []
        self.stacks: list[tuple[Location, ...] | None] = []  # None: the first's own
        self.sums: list[list[int] | None] = []  # None: the first's values

    def add(self, samples: Iterable[Sample], new: dict[int, Location] | None = None) -> None:
        """Add samples; with ``new``, their locations are replaced through it
        (by object identity) first."""
        new_ids = {i: id(loc) for i, loc in new.items()} if new is not None else None
        label_keys, index, firsts, sums = self.label_keys, self.index, self.firsts, self.sums
        for s in samples:
            items = s.label_items
            labels = label_keys.get(items)
            if labels is None:
                labels = label_keys[items] = _label_key(items)
            ids = map(id, s.locations)
            key = (tuple(ids if new_ids is None else map(new_ids.__getitem__, ids)), labels)
            i = index.get(key)
            if i is None:
                index[key] = len(firsts)
                firsts.append(s)
                self.stacks.append(None if new is None else map_stack(s, new))
                sums.append(None)
            else:
                acc = sums[i]
                sums[i] = list(map(operator.add, firsts[i].values if acc is None else acc,
                                   s.values))

    def samples(self) -> list[Sample]:
        """The sums; a sample nothing was added to or changed in is kept as it is."""
        out = []
        for first, stack, acc in zip(self.firsts, self.stacks, self.sums):
            values = first.values if acc is None else tuple(acc)
            if not any(values):
                continue
            if acc is None and stack is None:
                out.append(first)
            else:
                out.append(Sample._raw(values, first.locations if stack is None else stack,
                                       first.label_items))
        return out


def _combine(samples: Iterable[Sample], new: dict[int, Location] | None = None) -> list[Sample]:
    combiner = _Combiner()
    combiner.add(samples, new)
    return combiner.samples()


def _family(unit: str) -> str | None:
    """The kind of quantity pprof recognises a unit as: bytes, time or None."""
    name = scale_unit(1, unit, "minimum")[1]
    if name in ("B", "kB", "MB", "GB", "TB", "PB"):
        return "bytes"
    if name in ("ns", "us", "ms", "s", "hrs"):
        return "time"
    return None


def _finest(types: Sequence[ValueType], what: str) -> ValueType | None:
    """pprof's CommonValueType: the type with the finest unit, when every
    type measures the same thing."""
    if len(types) <= 1:
        return None
    finest = types[0]
    for t in types[1:]:
        same = finest.type.removesuffix("s") == t.type.removesuffix("s") and (
            finest.unit == t.unit or _family(finest.unit) is not None
            and _family(finest.unit) == _family(t.unit))
        if not same:
            raise ValueError(f"cannot merge profiles: {what} {finest} and {t} differ")
        if scale_unit(1, t.unit, finest.unit)[0] < 1:
            finest = t
    return finest


def _common_units(profiles: list[Profile]) -> list[Profile]:
    """pprof's ScaleProfiles: values of compatible units (ms and ns, kB and
    B) converted to the finest of them before merging."""
    counts = {len(p.sample_types) for p in profiles}
    if len(counts) > 1:
        raise ValueError("cannot merge profiles: their sample types differ: " + "; ".join(
            f"profile {i} has [{' '.join(map(str, p.sample_types))}]"
            for i, p in enumerate(profiles)))
    period = _finest([p.period_type for p in profiles if p.period_type is not None],
                     "period types")
    common = [_finest([p.sample_types[i] for p in profiles], "sample types")
              for i in range(counts.pop())]
    out = []
    for p in profiles:
        header: dict[str, object] = {}
        if p.period_type is not None and period is not None and p.period_type.unit != period.unit:
            header["period"] = int(scale_unit(p.period, p.period_type.unit, period.unit)[0])
            header["period_type"] = ValueType(p.period_type.type, period.unit)
        ratios = [1.0 if c is None else scale_unit(1, t.unit, c.unit)[0]
                  for t, c in zip(p.sample_types, common)]
        if any(r != 1 for r in ratios):
            header["sample_types"] = [t if c is None else ValueType(t.type, c.unit)
                                      for t, c in zip(p.sample_types, common)]
            p = with_samples(p, _scale_samples(p.samples, ratios), **header)
        elif header:
            p = with_samples(p, p.samples, **header)
        out.append(p)
    return out


class _Merger:
    """Fresh Mapping, Function and Location objects shared by equal ones of
    every source, as pprof's profileMerger keys them."""

    def __init__(self) -> None:
        self.mappings: dict[tuple[int, int, str], Mapping] = {}
        self.functions: dict[tuple[int, str, str, str], Function] = {}
        self.locations: dict[tuple[int, int, tuple[tuple[int, int, int], ...], bool],
                             Location] = {}
        self.mapping_order: list[Mapping] = []
        self.start_source()

    def start_source(self) -> None:
        # Per source, by object identity: (new mapping, address offset), ...
        self.mapping_of: dict[int, tuple[Mapping, int]] = {}
        self.function_of: dict[int, Function] = {}
        self.location_of: dict[int, Location] = {}

    def mapping(self, src: Mapping) -> tuple[Mapping, int]:
        got = self.mapping_of.get(id(src))
        if got is not None:
            return got
        # Sizes rounded up to 4 KiB and addresses made relative to the start
        # let the same binary loaded at two addresses merge.
        size = -(-(src.limit - src.start) // 0x1000) * 0x1000
        key = (size, src.offset, src.build_id or src.filename)
        m = self.mappings.get(key)
        if m is None:
            m = self.mappings[key] = src.replace(id=len(self.mappings) + 1)
            self.mapping_order.append(m)
            got = (m, 0)
        else:
            got = (m, m.start - src.start)
        self.mapping_of[id(src)] = got
        return got

    def function(self, src: Function) -> Function:
        f = self.function_of.get(id(src))
        if f is None:
            key = (src.start_line, src.name, src.system_name, src.filename)
            f = self.functions.get(key)
            if f is None:
                f = self.functions[key] = src.replace(id=len(self.functions) + 1)
            self.function_of[id(src)] = f
        return f

    def location(self, src: Location) -> Location:
        loc = self.location_of.get(id(src))
        if loc is not None:
            return loc
        mapping, offset = self.mapping(src.mapping) if src.mapping is not None else (None, 0)
        lines = tuple(Line(self.function(ln.function) if ln.function is not None else None,
                           ln.line, ln.column) for ln in src.lines)
        address = src.address + offset
        key = (address - (mapping.start if mapping is not None else 0),
               mapping.id if mapping is not None else 0,
               tuple((ln.function.id if ln.function is not None else 0, ln.line, ln.column)
                     for ln in lines),
               src.is_folded)
        loc = self.locations.get(key)
        if loc is None:
            loc = self.locations[key] = Location(len(self.locations) + 1, address, mapping,
                                                 lines, src.is_folded)
        self.location_of[id(src)] = loc
        return loc


@bulk
def merge(profiles: Iterable[Profile]) -> Profile:
    """One profile holding the samples of all ``profiles``, as pprof merges
    several sources (google/pprof profile.Merge after ScaleProfiles).

    Sample types (and period types) must match; compatible units (ms and
    ns, kB and B) are first converted to the finest. Samples with the same
    stack and labels are summed, all-zero samples dropped. The result takes
    the largest period, the earliest non-zero time, the sum of the durations,
    the comments of all (each once), the first non-empty default sample
    type, and drop/keep frames from the first profile."""
    sources = list(profiles)
    if not sources:
        raise ValueError("merge: no profiles to merge")
    sources = _common_units(sources)
    first = sources[0]
    for i, p in enumerate(sources[1:], 1):
        if p.period_type != first.period_type:
            raise ValueError(f"cannot merge profiles: profile 0 has period type "
                             f"{first.period_type}, profile {i} has {p.period_type}")
        if p.sample_types != first.sample_types:
            raise ValueError(
                f"cannot merge profiles: profile 0 has sample types "
                f"[{' '.join(map(str, first.sample_types))}], profile {i} has "
                f"[{' '.join(map(str, p.sample_types))}]")
    merger = _Merger()
    combiner = _Combiner()
    for p in sources:
        merger.start_source()
        if not merger.mappings and p.mappings:
            merger.mapping(p.mappings[0])  # the first mapping names the main binary
        nonzero = [s for s in p.samples if any(s.values)]
        combiner.add(nonzero, {i: merger.location(loc)
                               for i, loc in unique_locations(nonzero).items()})
    times = [p.time_ns for p in sources if p.time_ns]
    comments: dict[str, None] = {}
    for p in sources:
        comments.update(dict.fromkeys(p.comments))
    return with_samples(
        first, combiner.samples(), mappings=merger.mapping_order,
        time_ns=min(times, default=0), duration_ns=sum(p.duration_ns for p in sources),
        period=max(p.period for p in sources), comments=list(comments),
        default_sample_type=next((p.default_sample_type for p in sources
                                  if p.default_sample_type), ""),
        doc_url=next((p.doc_url for p in sources if p.doc_url), ""))


def _negated(base: Profile, mark: bool) -> Profile:
    samples = []
    for s in base.samples:
        items = s.label_items
        if mark:
            items = tuple(it for it in items if it[0] != DIFF_BASE_LABEL) + (
                (DIFF_BASE_LABEL, "true", ""),)
        samples.append(Sample._raw(tuple(-v for v in s.values), s.locations, items))
    return with_samples(base, samples)


@bulk
def diff(profile: Profile, base: Profile) -> Profile:
    """``profile`` compared with ``base``, as pprof's -diff_base: base's
    samples negated, marked with the label ``pprof::base=true`` and merged
    in. Reports show each function's change (new minus base); pprof takes
    percentages of the base's total (the sum of the marked samples' absolute
    values) and hides the mark."""
    return merge([profile, _negated(base, mark=True)])


@bulk
def subtract(profile: Profile, base: Profile) -> Profile:
    """``profile`` minus ``base``, as pprof's -base: base's samples negated
    and merged in, so equal samples cancel out (and are dropped at zero)."""
    return merge([profile, _negated(base, mark=False)])


# --- aggregate ----------------------------------------------------------------------------


@bulk
def aggregate(profile: Profile, by: Granularity = "function", *,
              inlines: bool = True) -> Profile:
    """Locations collapsed to one granularity, as pprof's -functions,
    -files, -lines and -addresses: "function" drops line numbers and
    addresses; "line" drops addresses; "file" also replaces each function
    by its file (a Function named after the file, so reports and flame
    graphs show files); "address" keeps everything. Equal locations, then
    equal samples, are combined. ``inlines=False`` (pprof's -noinlines)
    keeps only the outermost function of each chain of inlined calls."""
    if by not in ("function", "file", "line", "address"):
        raise ValueError(f"aggregate: by must be 'function', 'file', 'line' or 'address', "
                         f"not {by!r}")
    keep_lines = by in ("line", "address")
    keep_address = by == "address"
    mappings: dict[int, Mapping] = {}

    def mapping(m: Mapping) -> Mapping:
        made = mappings.get(id(m))
        if made is None:
            made = mappings[id(m)] = m.replace(
                has_line_numbers=m.has_line_numbers and keep_lines,
                has_inline_frames=m.has_inline_frames and inlines)
        return made

    for m in profile.mappings:
        mapping(m)
    files: dict[str, Function] = {}

    def function(f: Function | None) -> Function | None:
        if by != "file" or f is None:
            return f
        made = files.get(f.filename)
        if made is None:
            made = files[f.filename] = Function(len(files) + 1, f.filename, "", f.filename, 0)
        return made

    collapsed: dict[object, Location] = {}

    def location(loc: Location) -> Location:
        lines = loc.lines if inlines or len(loc.lines) <= 1 else loc.lines[-1:]
        new_lines = tuple(Line(function(ln.function), ln.line if keep_lines else 0,
                               ln.column if keep_address else 0) for ln in lines)
        m = mapping(loc.mapping) if loc.mapping is not None else None
        address = loc.address if keep_address else 0
        key = (id(m), address,
               tuple((id(ln.function), ln.line, ln.column) for ln in new_lines), loc.is_folded)
        new = collapsed.get(key)
        if new is None:
            new = collapsed[key] = Location(loc.id, address, m, new_lines, loc.is_folded)
        return new

    new = {i: location(loc) for i, loc in unique_locations(profile.samples).items()}
    return keep_scope(profile, with_samples(profile, _combine(profile.samples, new),
                                            mappings=list(mappings.values())))


__all__ = ["DIFF_BASE_LABEL", "aggregate", "bulk", "diff", "keep_scope",
           "map_stack", "merge", "scale", "select", "share", "subtract", "total",
           "unique_locations", "with_labels", "with_samples"]
