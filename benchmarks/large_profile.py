"""A large, realistic CPU profile for the codec benchmarks, made deterministically.

``make(path)`` writes a gzipped profile.proto of 300,000 samples over 80,000
locations in 20,000 functions spread over a few thousand files: the size of a
long-running service's CPU profile, about 20 MB gzipped. Samples are
[count, nanoseconds] with thread_id (numeric), thread_name and, for some, an
``endpoint`` label.

Stacks come from a call graph, as in a real program: each function calls a
few others, drawn mostly from its own package and from a set of popular
helpers, so stacks share their root-side frames and differ towards the leaf.
A stack is made by cutting an earlier stack at some depth and continuing
from there through the call graph, 10 to 60 frames deep in all.

The bytes are written by the small protobuf encoder below rather than through
cprof's model, which would take minutes for 300,000 samples; ``check`` reads
the result back with cprof.load and with Go's profile.Parse.

``--samples`` scales the profile: ``--samples 3000000`` makes the ten-times
profile of benchmarks/scale.py (3,000,000 sample records, 1,200,000 call
paths over the same 80,000 locations; 218 MB gzipped, about 40 s and 2 GB of
memory to make). The default file is unchanged by the option.

    python benchmarks/large_profile.py [--check] [--samples N] [PATH]
"""

from __future__ import annotations

import argparse
import gzip
import importlib
import json
import os
import random
import subprocess
import sys
import time
from bisect import bisect
from itertools import accumulate
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(HERE, ".cache")
GO_PARSE = os.path.join(CACHE, "go-parse")

SAMPLES = 300_000
LOCATIONS = 80_000
FUNCTIONS = 20_000
FILES = 3_000
SEED = 20_240_611
PERIOD_NS = 10_000_000


# --- protobuf wire format ------------------------------------------------------
# Only what profile.proto needs: varints (wire type 0) and length-delimited
# fields (wire type 2), including packed repeated varints.

def varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64  # int64 is sent as its two's complement, ten bytes
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL = [varint(n) for n in range(1 << 14)]


def uvarint(n: int) -> bytes:
    return _SMALL[n] if n < 16384 else varint(n)


def field_varint(field: int, n: int) -> bytes:
    """A varint field; zero is the proto3 default and is left out."""
    return uvarint(field << 3) + uvarint(n) if n else b""


def field_bytes(field: int, data: bytes) -> bytes:
    return uvarint(field << 3 | 2) + uvarint(len(data)) + data


def field_packed(field: int, values: list[int]) -> bytes:
    return field_bytes(field, b"".join(uvarint(v) for v in values))


# profile.proto field numbers.
PROFILE_SAMPLE_TYPE = 1    # Profile.sample_type: ValueType
PROFILE_SAMPLE = 2         # Profile.sample: Sample
PROFILE_MAPPING = 3        # Profile.mapping: Mapping
PROFILE_LOCATION = 4       # Profile.location: Location
PROFILE_FUNCTION = 5       # Profile.function: Function
PROFILE_STRING_TABLE = 6   # Profile.string_table: string
PROFILE_TIME_NANOS = 9     # Profile.time_nanos
PROFILE_DURATION = 10      # Profile.duration_nanos
PROFILE_PERIOD_TYPE = 11   # Profile.period_type: ValueType
PROFILE_PERIOD = 12        # Profile.period
VALUE_TYPE_TYPE = 1        # ValueType.type: string index
VALUE_TYPE_UNIT = 2        # ValueType.unit: string index
SAMPLE_LOCATION_ID = 1     # Sample.location_id: packed uint64, leaf first
SAMPLE_VALUE = 2           # Sample.value: packed int64
SAMPLE_LABEL = 3           # Sample.label: Label
LABEL_KEY = 1              # Label.key: string index
LABEL_STR = 2              # Label.str: string index
LABEL_NUM = 3              # Label.num
MAPPING_ID = 1             # Mapping.id
MAPPING_FILENAME = 5       # Mapping.filename: string index
MAPPING_HAS_FUNCTIONS = 7  # Mapping.has_functions
MAPPING_HAS_FILENAMES = 8  # Mapping.has_filenames
MAPPING_HAS_LINES = 9      # Mapping.has_line_numbers
LOCATION_ID = 1            # Location.id
LOCATION_MAPPING_ID = 2    # Location.mapping_id
LOCATION_LINE = 4          # Location.line: Line
LINE_FUNCTION_ID = 1       # Line.function_id
LINE_LINE = 2              # Line.line
FUNCTION_ID = 1            # Function.id
FUNCTION_NAME = 2          # Function.name: string index
FUNCTION_SYSTEM_NAME = 3   # Function.system_name: string index
FUNCTION_FILENAME = 4      # Function.filename: string index
FUNCTION_START_LINE = 5    # Function.start_line


# --- the program being profiled ------------------------------------------------

WORDS = ("request", "handler", "session", "cache", "query", "result", "parse", "render",
         "token", "user", "order", "item", "price", "stock", "event", "queue", "worker",
         "task", "batch", "stream", "buffer", "frame", "codec", "schema", "field",
         "record", "index", "table", "row", "column", "model", "view", "form", "auth",
         "policy", "rule", "graph", "node", "edge", "path", "route", "client", "server",
         "socket", "pool", "lock", "timer", "retry", "config", "loader", "store", "blob",
         "image", "thumb", "mail", "notify", "report", "metric", "trace", "log", "audit")
VERBS = ("get", "set", "load", "save", "build", "make", "run", "apply", "check", "find",
         "update", "delete", "create", "read", "write", "encode", "decode", "merge",
         "split", "resolve", "validate", "dispatch", "handle", "process", "compute")
PACKAGES = ("app", "core", "api", "billing", "search", "accounts", "inventory", "jobs",
            "django", "sqlalchemy", "requests", "urllib3", "jinja2", "json", "asyncio",
            "concurrent", "email", "http", "logging", "re", "ssl", "psycopg2", "redis",
            "celery", "kombu", "pydantic", "numpy", "pandas", "werkzeug", "flask")
THREADS = 48
ENDPOINTS = 40


class Program:
    """Files, functions, their lines, and who calls whom."""

    def __init__(self, rng: random.Random, n_functions: int, n_locations: int,
                 n_files: int) -> None:
        self.files = []
        for i in range(n_files):
            pkg = PACKAGES[i % len(PACKAGES)]
            root = ("/srv/app/src" if i % len(PACKAGES) < 8
                    else "/usr/lib/python3.11/site-packages")
            sub = "/".join(rng.choice(WORDS) for _ in range(rng.randint(0, 2)))
            self.files.append(f"{root}/{pkg}/{sub + '/' if sub else ''}"
                              f"{rng.choice(WORDS)}_{i}.py")
        # Files of one package are numbered i, i + len(PACKAGES), ...: functions
        # are laid out file by file so that a package's functions are close.
        order = sorted(range(n_files), key=lambda i: (i % len(PACKAGES), i))
        self.function_file = [order[f * n_files // n_functions] for f in range(n_functions)]
        self.function_name = []
        self.function_start = []
        last_file, next_line = -1, 1
        for f in range(n_functions):
            if self.function_file[f] != last_file:
                last_file, next_line = self.function_file[f], rng.randint(1, 40)
            cls = rng.choice(WORDS).capitalize() + rng.choice(WORDS).capitalize()
            name = f"{rng.choice(VERBS)}_{rng.choice(WORDS)}"
            self.function_name.append(f"{cls}.{name}" if rng.random() < 0.6 else name)
            self.function_start.append(next_line)
            next_line += rng.randint(8, 90)
        # Locations: every function has at least one line; the rest go to
        # functions at random, so long functions have many call sites.
        owners = list(range(n_functions)) + [rng.randrange(n_functions)
                                             for _ in range(n_locations - n_functions)]
        owners.sort()
        self.location_function = owners
        self.location_line = []
        self.function_locations: list[list[int]] = [[] for _ in range(n_functions)]
        for loc, f in enumerate(owners):
            self.function_locations[f].append(loc)
            self.location_line.append(self.function_start[f] + 1
                                      + 2 * len(self.function_locations[f])
                                      + rng.randint(0, 1))
        # The call graph: a function calls 2 to 10 others, half from nearby
        # (its own package), a quarter from popular helpers (low ids of a
        # Zipf-like draw), a quarter anywhere.
        weights = list(accumulate(1.0 / (k + 10) for k in range(n_functions)))
        popular = rng.sample(range(n_functions), n_functions)  # which ids are popular
        self.callees = []
        for f in range(n_functions):
            out = []
            for _ in range(rng.randint(2, 10)):
                r = rng.random()
                if r < 0.5:
                    out.append(min(n_functions - 1, max(0, f + rng.randint(-60, 120))))
                elif r < 0.75:
                    out.append(popular[bisect(weights, rng.random() * weights[-1])])
                else:
                    out.append(rng.randrange(n_functions))
            self.callees.append(out)


def _stacks(rng: random.Random, prog: Program, n: int) -> list[list[int]]:
    """n distinct-ish call paths, root first, as location indexes."""
    n_functions = len(prog.function_name)
    # A handful of entry points every thread starts from.
    entries = [rng.randrange(n_functions) for _ in range(12)]
    paths: list[list[int]] = []
    fl = prog.function_locations
    callees = prog.callees
    for i in range(n):
        depth = rng.randint(10, 60)
        if paths and rng.random() < 0.97:
            # Continue an earlier path from a cut point: shared prefixes.
            base = paths[int(len(paths) * rng.random() ** 0.6)]
            cut = min(len(base) - 1, depth - 1, int(rng.triangular(1, len(base), len(base) * 0.7)))
            path = base[:cut]
            f = prog.location_function[path[-1]]
        else:
            f = entries[rng.randrange(len(entries))]
            path = [fl[f][rng.randrange(len(fl[f]))]]
        while len(path) < depth:
            f = callees[f][rng.randrange(len(callees[f]))]
            locs = fl[f]
            path.append(locs[rng.randrange(len(locs))])
        paths.append(path)
    return paths


def encode(samples: int = SAMPLES, locations: int = LOCATIONS, seed: int = SEED,
           functions: int | None = None, files: int | None = None) -> bytes:
    """The raw profile.proto bytes (not gzipped)."""
    rng = random.Random(seed)
    n_functions = functions or max(1, locations // 4)
    n_files = files or max(1, n_functions * 3 // 20)
    prog = Program(rng, n_functions, locations, n_files)

    strings: dict[str, int] = {"": 0}

    def s(text: str) -> int:
        i = strings.get(text)
        if i is None:
            i = strings[text] = len(strings)
        return i

    def value_type(t: str, u: str) -> bytes:
        return field_varint(VALUE_TYPE_TYPE, s(t)) + field_varint(VALUE_TYPE_UNIT, s(u))

    out = [field_bytes(PROFILE_SAMPLE_TYPE, value_type("samples", "count")),
           field_bytes(PROFILE_SAMPLE_TYPE, value_type("cpu", "nanoseconds"))]

    # Samples: distinct stacks, each seen on a few threads, hot ones more often.
    n_paths = max(1, samples * 2 // 5)
    paths = _stacks(rng, prog, n_paths)
    encoded = [uvarint(loc + 1) for loc in range(locations)]
    stack_field = [b"".join(encoded[loc] for loc in reversed(p)) for p in paths]
    stack_field = [uvarint(SAMPLE_LOCATION_ID << 3 | 2) + uvarint(len(b)) + b
                   for b in stack_field]
    k_thread_id, k_thread_name, k_endpoint = s("thread_id"), s("thread_name"), s("endpoint")
    thread_ids = [139_700_000_000_000 + rng.randrange(1 << 32) for _ in range(THREADS)]
    thread_names = [s("MainThread")] + [s(f"ThreadPoolExecutor-0_{t}") for t in range(THREADS - 1)]
    endpoints = [s(f"/api/v1/{rng.choice(WORDS)}/{rng.choice(VERBS)}") for _ in range(ENDPOINTS)]
    thread_labels = [
        field_bytes(SAMPLE_LABEL, field_varint(LABEL_KEY, k_thread_id)
                    + field_varint(LABEL_NUM, thread_ids[t]))
        + field_bytes(SAMPLE_LABEL, field_varint(LABEL_KEY, k_thread_name)
                      + field_varint(LABEL_STR, thread_names[t]))
        for t in range(THREADS)]
    endpoint_labels = [field_bytes(SAMPLE_LABEL, field_varint(LABEL_KEY, k_endpoint)
                                   + field_varint(LABEL_STR, e)) for e in endpoints]
    path_weights = list(accumulate(1.0 / (k + 50) for k in range(n_paths)))
    total = path_weights[-1]
    total_ns = 0
    for _ in range(samples):
        p = bisect(path_weights, rng.random() * total)
        count = 1 if rng.random() < 0.7 else rng.randint(2, 40)
        ns = count * PERIOD_NS + rng.randrange(-200_000, 200_000)
        total_ns += ns
        t = min(THREADS - 1, int(rng.expovariate(0.15)))
        body = stack_field[p] + field_packed(SAMPLE_VALUE, [count, ns]) + thread_labels[t]
        if t and rng.random() < 0.4:
            body += endpoint_labels[rng.randrange(ENDPOINTS)]
        out.append(field_bytes(PROFILE_SAMPLE, body))

    out.append(field_bytes(PROFILE_MAPPING, field_varint(MAPPING_ID, 1)
                           + field_varint(MAPPING_FILENAME, s("python"))
                           + field_varint(MAPPING_HAS_FUNCTIONS, 1)
                           + field_varint(MAPPING_HAS_FILENAMES, 1)
                           + field_varint(MAPPING_HAS_LINES, 1)))
    for loc in range(locations):
        line = (field_varint(LINE_FUNCTION_ID, prog.location_function[loc] + 1)
                + field_varint(LINE_LINE, prog.location_line[loc]))
        out.append(field_bytes(PROFILE_LOCATION, field_varint(LOCATION_ID, loc + 1)
                               + field_varint(LOCATION_MAPPING_ID, 1)
                               + field_bytes(LOCATION_LINE, line)))
    for f in range(n_functions):
        name = s(prog.function_name[f])
        out.append(field_bytes(PROFILE_FUNCTION, field_varint(FUNCTION_ID, f + 1)
                               + field_varint(FUNCTION_NAME, name)
                               + field_varint(FUNCTION_SYSTEM_NAME, name)
                               + field_varint(FUNCTION_FILENAME,
                                              s(prog.files[prog.function_file[f]]))
                               + field_varint(FUNCTION_START_LINE, prog.function_start[f])))

    out.append(field_varint(PROFILE_TIME_NANOS, 1_717_000_000_000_000_000))
    out.append(field_varint(PROFILE_DURATION, total_ns // 8))
    out.append(field_bytes(PROFILE_PERIOD_TYPE, value_type("cpu", "nanoseconds")))
    out.append(field_varint(PROFILE_PERIOD, PERIOD_NS))
    # The string table last, once every string has been interned; field order
    # does not matter on the wire.
    out.extend(field_bytes(PROFILE_STRING_TABLE, text.encode()) for text in strings)
    return b"".join(out)


def make(path: str, samples: int = SAMPLES, locations: int = LOCATIONS,
         seed: int = SEED) -> str:
    """Write the profile, gzipped at level 6 as Go's pprof does, to ``path``."""
    data = gzip.compress(encode(samples, locations, seed), compresslevel=6, mtime=0)
    tmp = path + ".tmp"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return path


def cached(samples: int = SAMPLES, locations: int = LOCATIONS, seed: int = SEED) -> str:
    """The path of the profile under benchmarks/.cache/, made on first use."""
    path = os.path.join(CACHE, f"large-{samples}s-{locations}l-{seed}.pb.gz")
    if not os.path.exists(path):
        make(path, samples, locations, seed)
    return path


def go_parse() -> str:
    """benchmarks/go/parse, built into the cache on first use."""
    if not os.path.exists(GO_PARSE):
        subprocess.run(["sh", os.path.join(HERE, "go", "build.sh"), GO_PARSE], check=True)
    return GO_PARSE


def import_cprof() -> Any:
    """cprof as installed (make bench's venv), else this checkout's in-place build,
    with its C core loaded (``import cprof`` alone leaves cprof._core for the first
    use that needs it)."""
    try:
        importlib.import_module("cprof._core")
    except ImportError:
        sys.path.insert(0, os.path.dirname(HERE))
        importlib.import_module("cprof._core")
    return importlib.import_module("cprof")


def check(path: str, samples: int, locations: int) -> dict[str, object]:
    """Read the file with cprof and with Go's parser; raise if either
    disagrees with what was written."""
    # max_size: the 3,000,000-sample profile decodes to more than load's 1 GiB default.
    p = import_cprof().load(path, max_size=1 << 40)
    got = (len(p.samples), len(p.locations))
    if got != (samples, locations):
        raise AssertionError(f"cprof read {got} samples/locations, expected "
                             f"{(samples, locations)}")
    out = subprocess.run([go_parse(), "-n", "1", path], check=True, capture_output=True,
                         text=True).stdout
    go = json.loads(out)
    if (go["samples"], go["locations"]) != (samples, locations):
        raise AssertionError(f"Go read {go['samples']} samples, {go['locations']} "
                             f"locations, expected {(samples, locations)}")
    return {"samples": got[0], "locations": got[1], "functions": len(p.functions),
            "total_cpu_ns": p.total("cpu"), "gzipped_bytes": os.path.getsize(path)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("path", nargs="?", help="output file (default: the cache)")
    ap.add_argument("--samples", type=int, default=SAMPLES)
    ap.add_argument("--locations", type=int, default=LOCATIONS)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--check", action="store_true",
                    help="read the file back with cprof and Go's profile.Parse")
    args = ap.parse_args()
    t0 = time.perf_counter()
    if args.path:
        path = make(args.path, args.samples, args.locations, args.seed)
    else:
        path = cached(args.samples, args.locations, args.seed)
    print(f"{path}: {os.path.getsize(path) / 1e6:.1f} MB gzipped "
          f"({time.perf_counter() - t0:.1f} s)")
    if args.check:
        print(json.dumps(check(path, args.samples, args.locations)))


if __name__ == "__main__":
    main()
