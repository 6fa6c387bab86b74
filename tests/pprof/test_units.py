"""Scaled values as pprof prints them."""

import pytest

from cprof.pprof.units import format_value


@pytest.mark.parametrize("value, unit, text", [
    (1_490_000_000, "nanoseconds", "1.49s"),
    (490_000_000, "nanoseconds", "490ms"),
    (1_500, "nanoseconds", "1.5us"),
    (999, "nanoseconds", "999ns"),
    (0, "nanoseconds", "0ns"),
    (3_349_008, "bytes", "3.19MB"),
    (842_224, "bytes", "822.48kB"),
    (512, "bytes", "512B"),
    (149, "count", "149"),
    (7, "widgets", "7 widgets"),
    (-2_000_000, "nanoseconds", "-2ms"),
])
def test_format_value(value: int, unit: str, text: str) -> None:
    assert format_value(value, unit) == text
