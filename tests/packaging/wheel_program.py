"""The program tests/packaging/test_wheels.py runs with an installed wheel, on
a bare Debian 12 and with the system's protobuf-c and libunwind hidden.

``python wheel_program.py`` is a workload whose hot function is ``hot`` (about
four fifths of its CPU time, ``cold`` the rest), for ``cprof record``.
``python wheel_program.py check`` profiles it in-process (CPU, CPU with native
frames around zlib's deflate, and the heap) and prints what a user would look
at first, as JSON, for the test to judge.
"""

from __future__ import annotations

import json
import os
import sys
import time
import zlib

DATA = os.urandom(1 << 20)


def hot(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def cold(n: int) -> int:
    total = 0
    for i in range(n):
        total ^= i
    return total


def workload(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        hot(200_000)
        cold(50_000)


def compress() -> None:
    zlib.compress(DATA, 9)


def allocate() -> list[bytes]:
    kept = []
    for _ in range(5_000):  # 20 MB kept alive
        kept.append(bytes(4096))
    return kept


def check() -> dict[str, object]:
    import cprof
    from cprof import _core

    with cprof.cpu(hz=500) as c:
        workload(1.0)
    assert c.profile is not None
    cpu = c.profile.top(1).rows[0]

    with cprof.cpu(hz=500, native=True) as n:
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            compress()
    assert n.profile is not None
    native = n.profile.top(3)

    with cprof.heap(rate=64 * 1024) as h:
        kept = allocate()
    assert h.profile is not None
    heap = h.profile.top(1).rows[0]
    del kept

    with open("/proc/self/maps") as maps:
        libraries = sorted({line.split()[-1] for line in maps
                            if "protobuf-c" in line or "unwind" in line})
    return {
        "version": cprof.__version__,
        "core": _core.__file__,
        "bench_hooks": hasattr(_core, "measure_record_ns"),
        "cpu_top": cpu.name, "cpu_top_pct": cpu.flat_pct,
        "native_top": [row.name for row in native.rows],
        "native_deflate_share": n.profile.share("deflate"),
        "native_under_compress": n.profile.share(r"^__main__\.compress$"),
        "native_build_ids": sorted({m.build_id for m in n.profile.mappings if m.build_id}),
        "heap_top": heap.name, "heap_top_pct": heap.flat_pct,
        "heap_under_allocate": h.profile.share(r"^__main__\.allocate$"),
        "libraries": libraries,
    }


if __name__ == "__main__":
    if sys.argv[1:] == ["check"]:
        print(json.dumps(check()))
    else:
        workload(float(sys.argv[1]) if len(sys.argv) > 1 else 1.5)
