"""stats: the Mann-Whitney U test, for telling a regression from noise.

``cprof check --baseline`` compares per-run measurements of two sets of runs
(``cprof record --repeat N`` labels each run's samples ``run=i``): a change is
called real only when the new runs are larger than the baseline's more often
than chance allows. The test is rank-based, so it assumes nothing about the
shape of the noise (CI machines are noisy in lumps, not in bell curves).
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple  # MannWhitney is one

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Sequence

# Up to this many ways of choosing the first sample's ranks, the p-value is
# exact (every split enumerated, ties included); above, the normal
# approximation with tie correction is close enough (n > 20 or so).
EXACT_LIMIT = 200_000


class MannWhitney(NamedTuple):
    u: float        # pairs (x, y) with y > x, ties counting one half
    p_value: float  # one-sided: the chance of a U this large if y and x were alike
    exact: bool


def _midranks(values: Sequence[float]) -> list[float]:
    """Ranks 1..n of ``values``, tied values sharing their mean rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def mann_whitney_greater(x: Sequence[float], y: Sequence[float]) -> MannWhitney:
    """Whether ``y`` tends to be larger than ``x``: Mann-Whitney U of y over
    x, and the one-sided p-value P(U >= observed) when both come from one
    distribution. Exact (by enumerating every assignment of the pooled ranks)
    for small samples, normal approximation with tie correction otherwise."""
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        raise ValueError("Mann-Whitney U needs at least one value in each sample")
    ranks = _midranks([*x, *y])
    rank_sum_y = sum(ranks[n1:])
    u = rank_sum_y - n2 * (n2 + 1) / 2
    n = n1 + n2
    if math.comb(n, n2) <= EXACT_LIMIT:
        at_least = 0
        eps = 1e-9
        for chosen in itertools.combinations(ranks, n2):
            if sum(chosen) >= rank_sum_y - eps:
                at_least += 1
        return MannWhitney(u, at_least / math.comb(n, n2), True)
    ties: dict[float, int] = {}
    for r in ranks:
        ties[r] = ties.get(r, 0) + 1
    tie_term = sum(t**3 - t for t in ties.values()) / (n * (n - 1))
    variance = n1 * n2 / 12 * ((n + 1) - tie_term)
    if variance <= 0:  # every value equal: no evidence either way
        return MannWhitney(u, 1.0, False)
    z = (u - n1 * n2 / 2 - 0.5) / math.sqrt(variance)
    return MannWhitney(u, 0.5 * math.erfc(z / math.sqrt(2)), False)


def smallest_p_value(n1: int, n2: int) -> float:
    """The smallest one-sided p-value n1 and n2 runs can give (all of y above
    all of x): 1 / C(n1 + n2, n2). With 3 and 3 runs it is 0.05, so a test at
    0.05 can never call a change real; 5 and 5 give 0.004."""
    return 1 / math.comb(n1 + n2, n2)
