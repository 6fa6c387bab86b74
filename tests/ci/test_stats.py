"""The Mann-Whitney U test that tells a regression from noise (cprof.stats)."""

from __future__ import annotations

import math
import random

import pytest

from cprof.ci.stats import mann_whitney_greater, smallest_p_value


def test_all_larger_gives_the_smallest_p_value() -> None:
    r = mann_whitney_greater([1, 2, 3], [4, 5, 6])
    assert r.exact and r.u == 9 and r.p_value == pytest.approx(1 / 20)
    r = mann_whitney_greater([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    assert r.p_value == pytest.approx(1 / 252) == smallest_p_value(5, 5)


def test_all_smaller_gives_one_and_interleaved_about_a_half() -> None:
    assert mann_whitney_greater([4, 5, 6], [1, 2, 3]).p_value == 1.0
    r = mann_whitney_greater([1, 3, 5, 7], [2, 4, 6, 8])
    # U = 10 of 16; P(U >= 10) for 4 and 4 is 24/70 (by enumeration of C(8, 4) splits).
    assert r.u == 10 and r.p_value == pytest.approx(24 / 70)


def test_ties_count_one_half() -> None:
    r = mann_whitney_greater([1, 2, 2], [2, 3, 4])
    assert r.u == 8  # y=2 beats 1 and ties the two 2s (0.5 each); 3 and 4 beat all three
    assert 0 < r.p_value < 0.5
    same = mann_whitney_greater([5, 5, 5], [5, 5, 5])
    assert same.u == 4.5 and same.p_value == 1.0  # every split gives U = 4.5


def test_the_normal_approximation_agrees_with_the_exact_test() -> None:
    rng = random.Random(1)
    for shift in (0.0, 0.5, 1.0):
        x = [rng.gauss(0, 1) for _ in range(9)]
        y = [rng.gauss(shift, 1) for _ in range(9)]
        exact = mann_whitney_greater(x, y)
        assert exact.exact  # C(18, 9) = 48620 splits
        import cprof.ci.stats as stats
        limit, stats.EXACT_LIMIT = stats.EXACT_LIMIT, 0
        try:
            approx = mann_whitney_greater(x, y)
        finally:
            stats.EXACT_LIMIT = limit
        assert not approx.exact and approx.u == exact.u
        assert abs(approx.p_value - exact.p_value) < 0.02


def test_large_samples_use_the_approximation_and_find_a_shift() -> None:
    rng = random.Random(2)
    x = [rng.gauss(100, 5) for _ in range(30)]
    assert mann_whitney_greater(x, [v * 1.1 for v in x]).p_value < 1e-6
    same = mann_whitney_greater(x, [rng.gauss(100, 5) for _ in range(30)])
    assert not same.exact and same.p_value > 0.01


def test_empty_samples_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        mann_whitney_greater([], [1.0])
    assert math.isclose(smallest_p_value(3, 3), 0.05)
