"""Codec benchmark: cprof against Go's profile.Parse and Python's protobuf, on the same bytes.

One run reads benchmarks/large_profile.py's profile (300,000 samples, 80,000
locations, about 20 MB gzipped; made and cached on first use) and times

  - cprof.load (gunzip + decode + validate), alone and followed by .total(),
    and the C decoder _core.decode alone, to show what the Python layer adds;
  - cprof encoding a loaded profile: to_bytes(level=1) and to_bytes(level=6);
  - Go's profile.Parse (gunzip + decode + checks), via benchmarks/go/parse;
  - Python's protobuf package on profile_pb2 generated from
    csrc/proto/profile.proto: gzip.decompress, Profile.FromString, both, and
    SerializeToString with and without gzip level 1.

Each measurement runs in its own subprocess; times are the best and median of
--repeat runs in one process ("warm": the allocator or Go heap already grown).
A further subprocess does the operation once: its time is the "1st run" a
command-line tool sees, and its peak RSS (ru_maxrss) is the one reported, so
that neither repeats nor other measurements inflate it. Ratios are
other / cprof: above 1 means cprof is faster.

    python benchmarks/codec.py [--repeat N] [--json OUT]

protobuf and grpcio-tools are pip-installed into the running interpreter's
environment if missing.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import gzip
import importlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CACHE = os.path.join(HERE, ".cache")
PROTO = os.path.join(ROOT, "csrc", "proto", "profile.proto")
PB2_DIR = os.path.join(CACHE, "pb2")

sys.path.insert(0, HERE)
import large_profile  # noqa: E402

from _machine import cpu_model, markdown_table


# --- measurements, each run in a worker subprocess ---------------------------
# A setup function gets the file's bytes and returns the operation to time;
# what setup makes (a loaded profile to encode, gunzipped bytes to parse) is
# in the baseline RSS, not in the operation's time.

def _cprof() -> Any:
    return large_profile.import_cprof()


def _pb2() -> Any:
    sys.path.insert(0, PB2_DIR)
    return importlib.import_module("profile_pb2")


def setup_cprof_load(data: bytes) -> Callable[[], object]:
    cprof = _cprof()
    return lambda: cprof.load(data)


def setup_cprof_load_total(data: bytes) -> Callable[[], object]:
    cprof = _cprof()
    return lambda: cprof.load(data).total()


def setup_core_decode(data: bytes) -> Callable[[], object]:
    core = _cprof()._core
    return lambda: core.decode(data)


def setup_cprof_encode(level: int) -> Callable[[bytes], Callable[[], object]]:
    def setup(data: bytes) -> Callable[[], object]:
        p = _cprof().load(data)
        return lambda: p.to_bytes(level)
    return setup


def setup_gunzip(data: bytes) -> Callable[[], object]:
    return lambda: gzip.decompress(data)


def setup_pb_parse(data: bytes) -> Callable[[], object]:
    pb2, raw = _pb2(), gzip.decompress(data)
    return lambda: pb2.Profile.FromString(raw)


def setup_pb_gunzip_parse(data: bytes) -> Callable[[], object]:
    pb2 = _pb2()
    return lambda: pb2.Profile.FromString(gzip.decompress(data))


def setup_pb_serialize(gzip_level: int) -> Callable[[bytes], Callable[[], object]]:
    def setup(data: bytes) -> Callable[[], object]:
        msg = _pb2().Profile.FromString(gzip.decompress(data))
        if not gzip_level:
            return msg.SerializeToString
        return lambda: gzip.compress(msg.SerializeToString(), compresslevel=gzip_level)
    return setup


# name -> (group, setup); group "parse" rows compare with cprof.load,
# "encode" rows with cprof.to_bytes(1).
PY_BENCHES: dict[str, tuple[str, Callable[[bytes], Callable[[], object]]]] = {
    "cprof.load": ("parse", setup_cprof_load),
    "cprof.load(...).total()": ("parse", setup_cprof_load_total),
    "cprof._core.decode": ("parse", setup_core_decode),
    "python gzip.decompress": ("parse", setup_gunzip),
    "protobuf FromString (gunzipped)": ("parse", setup_pb_parse),
    "protobuf gzip.decompress+FromString": ("parse", setup_pb_gunzip_parse),
    "cprof to_bytes(1)": ("encode", setup_cprof_encode(1)),
    "cprof to_bytes(6)": ("encode", setup_cprof_encode(6)),
    "protobuf SerializeToString": ("encode", setup_pb_serialize(0)),
    "protobuf Serialize+gzip.compress(1)": ("encode", setup_pb_serialize(1)),
}
GO_NAME = "Go profile.Parse"
PARSE_REF, ENCODE_REF = "cprof.load", "cprof to_bytes(1)"


def maxrss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def worker(name: str, path: str, repeat: int) -> dict[str, Any]:
    with open(path, "rb") as f:
        data = f.read()
    op = PY_BENCHES[name][1](data)
    gc.collect()
    base = maxrss_kb()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = op()
        times.append(time.perf_counter() - t0)
        # Free the result before the next run, cycles included (a loaded
        # Profile's tables form one), so that runs do not pile up.
        del result
        gc.collect()
    return {"best_s": min(times), "median_s": statistics.median(times), "times_s": times,
            "peak_rss_kb": maxrss_kb(), "base_rss_kb": base}


# --- the driver ------------------------------------------------------------------

def run_json(cmd: list[str]) -> dict[str, Any]:
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure_py(name: str, path: str, repeat: int) -> dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", name, "--input", path]
    timed = run_json(cmd + ["--repeat", str(repeat)])
    once = run_json(cmd + ["--repeat", "1"])
    timed.update(first_s=once["best_s"], peak_rss_kb=once["peak_rss_kb"],
                 base_rss_kb=once["base_rss_kb"])
    return timed


def measure_go(path: str, repeat: int) -> dict[str, Any]:
    parse = large_profile.go_parse()
    timed = run_json([parse, "-n", str(repeat), path])
    once = run_json([parse, "-n", "1", path])
    timed.update(first_s=once["best_s"], peak_rss_kb=once["peak_rss_kb"], base_rss_kb=None)
    return timed


def ensure_protobuf() -> tuple[str, str]:
    """Install protobuf and grpcio-tools if missing, generate profile_pb2 into
    the cache; return (protobuf version, backend)."""
    try:
        import google.protobuf  # noqa: F401
        import grpc_tools  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "protobuf",
                        "grpcio-tools"], check=True)
        importlib.invalidate_caches()
    os.makedirs(PB2_DIR, exist_ok=True)
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{os.path.dirname(PROTO)}",
                    f"--python_out={PB2_DIR}", PROTO], check=True)
    import google.protobuf
    from google.protobuf.internal import api_implementation
    return google.protobuf.__version__, api_implementation.Type()


def machine() -> dict[str, Any]:
    cpu = cpu_model()
    go = subprocess.run(["go", "version"], capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip()
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    return {"cpu": cpu, "cores": os.cpu_count(), "os": platform.platform(), "loadavg": load,
            "python": platform.python_version(), "go": go, "cprof_commit": commit,
            "date": datetime.date.today().isoformat()}


def table(results: dict[str, dict[str, Any]]) -> str:
    rows = [("measurement", "best s", "median s", "1st run s", "peak RSS MB", "base MB",
             "x cprof")]
    for name, r in results.items():
        ref = results[PARSE_REF if r["group"] == "parse" else ENCODE_REF]
        base = r.get("base_rss_kb")
        rows.append((name, f"{r['best_s']:.3f}", f"{r['median_s']:.3f}", f"{r['first_s']:.3f}",
                     f"{r['peak_rss_kb'] / 1024:.0f}",
                     f"{base / 1024:.0f}" if base else "-",
                     f"{r['best_s'] / ref['best_s']:.2f}"))
    return markdown_table(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per measurement")
    ap.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--input", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.input, args.repeat)))
        return

    # Made in a child: Linux carries a parent's RSS into a forked child's
    # ru_maxrss, so the driver itself must stay small.
    subprocess.run([sys.executable, large_profile.__file__], check=True, stdout=subprocess.DEVNULL)
    path = large_profile.cached()
    pb_version, pb_backend = ensure_protobuf()
    info = machine()
    info.update(protobuf=f"{pb_version} ({pb_backend} backend)", repeat=args.repeat,
                input=os.path.relpath(path, ROOT), input_bytes=os.path.getsize(path))
    print(f"input: {info['input']}, {info['input_bytes'] / 1e6:.1f} MB gzipped; "
          f"{large_profile.SAMPLES} samples, {large_profile.LOCATIONS} locations")
    print(f"machine: {info['cpu']}, {info['cores']} cores; {info['os']}; "
          f"load average {info['loadavg']}")
    print(f"python {info['python']}; {info['go']}; protobuf {info['protobuf']}; "
          f"cprof {info['cprof_commit']}; {info['date']}; best/median of {args.repeat}")

    results: dict[str, dict[str, Any]] = {}
    for name, (group, _) in PY_BENCHES.items():
        results[name] = dict(measure_py(name, path, args.repeat), group=group)
        if name == "cprof._core.decode":
            results[GO_NAME] = dict(measure_go(path, args.repeat), group="parse")
    print()
    print(table(results))
    print()
    load, go = results[PARSE_REF], results[GO_NAME]
    pb = results["protobuf gzip.decompress+FromString"]
    print(f"Go profile.Parse / cprof.load: {go['best_s'] / load['best_s']:.2f}x time "
          f"(1st run {go['first_s'] / load['first_s']:.2f}x), "
          f"{go['peak_rss_kb'] / load['peak_rss_kb']:.2f}x peak RSS")
    print(f"protobuf (gunzip+parse) / cprof.load: {pb['best_s'] / load['best_s']:.2f}x time "
          f"(1st run {pb['first_s'] / load['first_s']:.2f}x), "
          f"{pb['peak_rss_kb'] / load['peak_rss_kb']:.2f}x peak RSS")
    print("x cprof = best time / cprof.load's (parse rows) or cprof to_bytes(1)'s (encode "
          "rows); 1st run and peak RSS from a fresh process doing it once; base MB = RSS "
          "before the operation (interpreter, input, setup)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
