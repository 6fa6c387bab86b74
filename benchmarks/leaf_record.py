"""The sampler's record path with and without naming the C function a frame
is calling (collect/leaf.py): _core.measure_record_ns from a frame 50 deep
that is calling a C function (measure_record_ns itself, which the catalogue
names), rounds alternating off / on, medians of each. On 3.11-3.13 also the
path of a code's first samples, taken before any drain has worked out where
its calls keep their callables (each catalogued callable of the frame's
value stack kept as a candidate).

    python benchmarks/leaf_record.py [--rounds N] [--records N]

Needs a CPROF_BENCH=1 build (.ci/venv.sh makes one): wheels leave the
measuring hook out.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from cprof import _core
from cprof.collect import leaf


def deep(n: int, records: int) -> float:
    return deep(n - 1, records) if n else _core.measure_record_ns(records, 128)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--records", type=int, default=20000)
    args = parser.parse_args()
    places = sys.version_info < (3, 14)
    off, on, first = [], [], []
    for _ in range(args.rounds):
        _core.leaf_clear()
        off.append(deep(48, args.records))
        leaf.install()  # anew: no code has places
        if places:
            first.append(deep(48, args.records))
            _core.leaf_call_places(deep.__code__)  # what a drain does: now it has
        on.append(deep(48, args.records))
    _core.leaf_clear()
    print(f"python {sys.version.split()[0]}: record path, 50 frames, {args.rounds} rounds of "
          f"{args.records} records")
    print(f"  without the C callee: {statistics.median(off):.1f} ns "
          f"({min(off):.1f}-{max(off):.1f})")
    print(f"  with the C callee:    {statistics.median(on):.1f} ns ({min(on):.1f}-{max(on):.1f})")
    print(f"  difference of the medians: {statistics.median(on) - statistics.median(off):+.1f} ns")
    if places:
        print(f"  a code's first samples: {statistics.median(first):.1f} ns "
              f"({min(first):.1f}-{max(first):.1f}), "
              f"{statistics.median(first) - statistics.median(off):+.1f} ns")


if __name__ == "__main__":
    main()
