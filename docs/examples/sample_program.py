"""A small program with a known CPU split, for ``make demo`` and the README.

For about 3 seconds (``--seconds``), the main thread takes turns at three
kinds of work, in the proportions of the weights below, while a second thread
hashes large buffers with hashlib (which releases the GIL, so that thread's
CPU runs beside the main thread's):

    json_roundtrip   encode and decode a nested document with json   weight 3
    regex_scan       find every match of a pattern in a log text     weight 2
    arithmetic       pure-Python integer arithmetic                  weight 5
    hash_buffers     (thread "hasher") sha256 of 4 MiB buffers       all along

Profile it with ``cprof record -- python docs/examples/sample_program.py``
and the top shows those functions with about those shares.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import threading
import time

WEIGHTS = {"json_roundtrip": 3, "regex_scan": 2, "arithmetic": 5}
SLICE = 0.01  # seconds of work per unit of weight, per round

DOCUMENT = {"users": [{"id": i, "name": f"user{i}", "tags": ["a", "b", "c"],
                       "scores": [i * 0.5, i * 1.5, i * 2.5], "active": i % 2 == 0}
                      for i in range(200)]}
LOG = "\n".join(f"2024-05-{d % 28 + 1:02d} 12:{d % 60:02d}:00 INFO request id={d} "
                f"path=/api/v{d % 3}/items status={200 + d % 5} took={d % 97}ms"
                for d in range(2000))
PATTERN = re.compile(r"path=(/api/v\d/\w+) status=(\d+) took=(\d+)ms")


def json_roundtrip(deadline: float) -> int:
    n = 0
    while time.perf_counter() < deadline:
        n += len(json.loads(json.dumps(DOCUMENT))["users"])
    return n


def regex_scan(deadline: float) -> int:
    n = 0
    while time.perf_counter() < deadline:
        n += sum(1 for _ in PATTERN.finditer(LOG))
    return n


def arithmetic(deadline: float) -> int:
    total = 0
    while time.perf_counter() < deadline:
        for i in range(10_000):
            total = (total + i * i) % 1_000_003
    return total


def hash_buffers(stop: threading.Event) -> int:
    data = bytes(range(256)) * (4 * 1024 * 1024 // 256)
    rounds = 0
    while not stop.is_set():
        hashlib.sha256(data).digest()
        rounds += 1
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    seconds = parser.parse_args().seconds
    work = {"json_roundtrip": json_roundtrip, "regex_scan": regex_scan,
            "arithmetic": arithmetic}
    stop = threading.Event()
    hasher = threading.Thread(target=hash_buffers, args=(stop,), name="hasher")
    hasher.start()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for name, weight in WEIGHTS.items():
            work[name](time.perf_counter() + SLICE * weight)
    stop.set()
    hasher.join()
    print(f"sample_program: ran {seconds:g}s of json, regex and arithmetic work beside "
          f"a hashing thread")


if __name__ == "__main__":
    main()
