"""Human-readable values, scaled as pprof scales them (ms, s, kB, MB, ...)."""

from __future__ import annotations

Scale = list[tuple[str, float]]

_TIME: Scale = [("ns", 1), ("us", 1e3), ("ms", 1e6), ("s", 1e9), ("hrs", 3600e9)]
_BYTES: Scale = [("B", 1), ("kB", 1024), ("MB", 1024**2), ("GB", 1024**3), ("TB", 1024**4)]
_SCALES: dict[str, Scale] = {"nanoseconds": _TIME, "ns": _TIME, "bytes": _BYTES, "B": _BYTES}


def format_value(value: int, unit: str) -> str:
    """``format_value(1_490_000_000, "nanoseconds")`` -> ``"1.49s"``."""
    scale = _SCALES.get(unit)
    if scale is None:
        return f"{value}" if unit in ("count", "") else f"{value} {unit}"
    name, size = scale[0]
    for n, s in scale:
        if abs(value) >= s:
            name, size = n, s
    scaled = value / size
    text = f"{scaled:.2f}".rstrip("0").rstrip(".") if size != 1 else str(value)
    return text + name
