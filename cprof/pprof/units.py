"""Units: the one table of time and memory units, and the conversions over it.

``scale`` and ``scaled_label`` convert as google/pprof's internal/measurement
does (the names it reads, the names it prints, "auto" picking the largest unit
a value reaches); ``format_value`` is the short form cprof's own messages use;
``amount_units`` are the names a budget may be written with (``cprof check``).
"""

from __future__ import annotations


class Unit:
    __slots__ = ("name", "factor", "reads", "also")

    def __init__(self, name: str, factor: float, reads: tuple[str, ...],
                 also: tuple[str, ...] = ()) -> None:
        self.name = name        # as pprof prints it
        self.factor = factor    # in the family's smallest unit
        self.reads = reads      # the names pprof's measurement package accepts
        self.also = also        # more names a budget may use (never printed)


class Family:
    __slots__ = ("units", "default", "default_factor")

    def __init__(self, units: list[Unit], default: str, default_factor: float) -> None:
        self.units = units
        self.default = default  # pprof's name for a value with no better unit
        self.default_factor = default_factor


_FAMILIES: list[Family] = [
    Family([Unit("B", 1.0, ("b", "byte")),
            Unit("kB", 2.0**10, ("kb", "kbyte", "kilobyte"), ("kib",)),
            Unit("MB", 2.0**20, ("mb", "mbyte", "megabyte"), ("mib",)),
            Unit("GB", 2.0**30, ("gb", "gbyte", "gigabyte"), ("gib",)),
            Unit("TB", 2.0**40, ("tb", "tbyte", "terabyte"), ("tib",)),
            Unit("PB", 2.0**50, ("pb", "pbyte", "petabyte"))],
           "B", 1.0),
    Family([Unit("ns", 1.0, ("ns", "nanosecond")),
            Unit("us", 1e3, ("μs", "us", "microsecond")),
            Unit("ms", 1e6, ("ms", "millisecond")),
            Unit("s", 1e9, ("s", "sec", "second")),
            Unit("min", 60e9, (), ("m", "min")),  # not pprof's: budgets only
            Unit("hrs", 3600e9, ("hour", "hr"), ("h",))],
           "s", 1e9),
]


def _sniff(unit: str) -> tuple[Family, Unit] | None:
    """The family and unit pprof reads ``unit`` as ("bytes", "nanoseconds",
    "kB", ...), or None."""
    unit = unit.lower()
    if len(unit) > 2:
        unit = unit.removesuffix("s")
    for family in _FAMILIES:
        for u in family.units:
            if unit in u.reads:
                return family, u
    return None


def scale(value: int, from_unit: str, to_unit: str) -> tuple[float, str]:
    """``value`` in ``from_unit`` expressed in ``to_unit`` ("minimum" or "auto":
    the largest unit the value reaches), with the unit's printed name."""
    if value < 0:
        magnitude, name = scale(-value, from_unit, to_unit)
        return -magnitude, name
    src = _sniff(from_unit)
    if src is None:
        if to_unit in ("count", "sample", "unit", "minimum", "auto"):
            return float(value), ""
        return float(value), to_unit
    family, unit = src
    v = value * unit.factor
    if to_unit in ("minimum", "auto"):
        best: Unit | None = None
        for candidate in family.units:
            if (candidate.reads and (best is None or candidate.factor >= best.factor)
                    and v / candidate.factor >= 1.0):
                best = candidate
        if best is None:
            return v / family.default_factor, family.default
        return v / best.factor, best.name
    dst = _sniff(to_unit)
    if dst is None or dst[0] is not family:
        return v / family.default_factor, family.default
    return v / dst[1].factor, dst[1].name


def scaled_label(value: int, from_unit: str, to_unit: str) -> str:
    """pprof's ScaledLabel: two decimals, ".00" dropped, a bare "0" for zero."""
    v, u = scale(value, from_unit, to_unit)
    text = f"{v:.2f}".removesuffix(".00")
    return "0" if text in ("0", "-0") else text + u


def format_value(value: int, unit: str) -> str:
    """``format_value(1_490_000_000, "nanoseconds")`` -> ``"1.49s"``: the
    largest unit the value reaches, trailing zeros dropped; a count or an
    unknown unit as the number itself."""
    src = _sniff(unit)
    if src is None:
        return f"{value}" if unit in ("count", "") else f"{value} {unit}"
    family, base = src
    v = value * base.factor
    printed = [u for u in family.units if u.reads]
    best = printed[0]
    for u in printed:
        if abs(v) >= u.factor:
            best = u
    if best.factor == base.factor:
        return f"{value}{best.name}"
    return f"{v / best.factor:.2f}".rstrip("0").rstrip(".") + best.name


def amount_units(unit: str) -> dict[str, float] | None:
    """The names an amount of ``unit`` may be written with, lower case, each
    to its factor in ``unit`` ("" is the plain number: seconds for time, bytes
    for memory); None when ``unit`` is neither."""
    src = _sniff(unit)
    if src is None:
        return None
    family, base = src
    names: dict[str, float] = {"": family.default_factor / base.factor}
    for u in family.units:
        for name in (u.name.lower(), *u.reads, *u.also):
            names[name] = u.factor / base.factor
    return names
