"""Hostile and careless input to the pprof decoder (issue 14, items 11-15).

Each test reproduces one finding of the review: what a profile costs to
read (bytes, memory, time) must stay within what the caller allows, a long
decode must stop on a signal, sums must not wrap, and what is not a profile
must be called so. Memory is measured in child processes (peak RSS, peak
virtual size), so each figure is the decode's own; every child has a
timeout, every loop a bound.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import cprof
from cprof.pprof import textformat
from cprof._core import ProfileError, decode
from cprof.pprof.model import Function, Line, Location, Sample
from sanitizers import UNDER_ASAN

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from malformed import (LOCATION_ID, PROFILE_LOCATION, PROFILE_SAMPLE,  # noqa: E402
                       PROFILE_STRING_TABLE, f_bytes, f_varint, profile, sample,
                       zeros_gzip)

ROOT = Path(__file__).resolve().parents[2]
INT64_MAX = 2**63 - 1


def run_child(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run code in a fresh interpreter (the installed cprof), bounded in time."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, cwd="/")


def child_json(code: str, timeout: float = 60) -> dict[str, object]:
    """Run code whose last stdout line is JSON; that object."""
    r = run_child(code, timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    result: dict[str, object] = json.loads(r.stdout.strip().splitlines()[-1])
    return result


# A child's peak RSS (ru_maxrss, KiB) and virtual size (VmPeak) around a call.
MEASURE = """
import json, resource
from cprof._core import decode, ProfileError

def vm_peak():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmPeak:"))

def measure(data, **limits):
    rss0, vm0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, vm_peak()
    try:
        decode(data, **limits)
        error = None
    except (ProfileError, MemoryError) as e:
        error = f"{type(e).__name__}: {e}"
    rss1, vm1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, vm_peak()
    return {"rss_mib": (rss1 - rss0) / 1024, "vm_mib": (vm1 - vm0) / 1024, "error": error}
"""


# --- item 11: max_size bounds reading ----------------------------------------------

def test_load_stops_reading_a_pipe_at_max_size() -> None:
    """load() of an endless stream reads max_size + 1 bytes, not all of it."""
    read_fd, write_fd = os.pipe()
    offered = 64 << 20
    written = [0]

    def feed() -> None:
        chunk = bytes(1 << 16)
        try:
            while written[0] < offered:
                written[0] += os.write(write_fd, chunk)
        except BrokenPipeError:
            pass
        finally:
            os.close(write_fd)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    with os.fdopen(read_fd, "rb") as pipe:
        with pytest.raises(ProfileError, match=r"more than 1048576 bytes \(the max_size limit\)"):
            cprof.load(pipe, max_size=1 << 20)
    writer.join(timeout=30)
    assert not writer.is_alive()
    # What was read, plus what the pipe buffers and the reader's last chunk.
    assert written[0] <= (1 << 20) + (2 << 20), f"{written[0]} bytes were read"


def test_cli_summary_of_dev_zero_is_a_one_line_error() -> None:
    """`cprof summary --max-size 1000 /dev/zero` ends with the limit's message.
    The child's address space is capped (except under ASan, whose shadow
    memory needs it), so that reading without a bound fails fast."""
    limit = "" if UNDER_ASAN else (
        "import resource; resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30)); ")
    r = run_child(f"""
        {limit}import sys
        from cprof.cli import main
        sys.argv = ["cprof", "summary", "--max-size", "1000", "/dev/zero"]
        sys.exit(main())
        """, timeout=60)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert re.search(r"/dev/zero: more than 1000 bytes \(the max_size limit\)", r.stderr), \
        r.stderr[-2000:]


def test_gzipped_input_larger_than_max_size_is_refused() -> None:
    data = gzip.compress(profile(), mtime=0) + gzip.compress(b"", mtime=0) * 100
    with pytest.raises(ProfileError, match=r"the profile is \d+ bytes \(gzipped\), more than "
                                           r"the max_size limit of 1000"):
        decode(data, max_size=1000)


# --- item 12: the id index cannot be flooded --------------------------------------

MIX_MUL = 0xff51afd7ed558ccd
MASK = (1 << 64) - 1


def _unmix(y: int) -> int:
    """The inverse of the id hash pprof.c used (x ^= x >> 33; x *= C; x ^= x >> 33)."""
    y ^= y >> 33
    y = (y * pow(MIX_MUL, -1, 1 << 64)) & MASK
    return y ^ (y >> 33)


def _locations_profile(ids: list[int]) -> bytes:
    strings = b"".join(f_bytes(PROFILE_STRING_TABLE, s) for s in (b"", b"samples", b"count"))
    locs = b"".join(f_bytes(PROFILE_LOCATION, f_varint(LOCATION_ID, i)) for i in ids)
    samples = f_bytes(PROFILE_SAMPLE, sample(ids[:1000], [1]))
    return f_bytes(1, f_varint(1, 1) + f_varint(2, 2)) + samples + locs + strings


def _decode_seconds(data: bytes) -> float:
    start = time.perf_counter()
    decode(data)
    return time.perf_counter() - start


def test_ids_chosen_to_collide_decode_as_fast_as_any() -> None:
    """60,000 location ids that all hashed to one slot of the old index (an
    O(n^2) probe: seconds) decode about as fast as ids in random order."""
    n = 60_000
    cap = 1 << 17  # the old index's size for n entries
    crafted = _locations_profile([_unmix(k * cap) for k in range(1, n + 1)])
    plain = _locations_profile([(k * 2654435761) % (1 << 40) + 1 for k in range(1, n + 1)])
    assert decode(crafted).counts()[1] == n
    baseline = min(_decode_seconds(plain) for _ in range(3))
    flooded = min(_decode_seconds(crafted) for _ in range(2))
    assert flooded < 5 * baseline + 0.25, \
        f"colliding ids took {flooded:.3f} s, ordinary ones {baseline:.3f} s"


def _unhash(y: int, key: int) -> int:
    """The inverse of the keyed id hash (csrc/codec/pprof.c, cprof_pprof_id_hash)."""
    y ^= (y >> 31) ^ (y >> 62)
    y = (y * pow(0x94d049bb133111eb, -1, 1 << 64)) & MASK
    y ^= (y >> 27) ^ (y >> 54)
    y = (y * pow(0xbf58476d1ce4e5b9, -1, 1 << 64)) & MASK
    y ^= (y >> 30) ^ (y >> 60)
    return y ^ key


def test_ids_colliding_under_the_secret_key_are_still_bounded() -> None:
    """Even ids chosen with the process's hash key in hand (all in one slot)
    cost no more than sorting: the table gives up past 64 probes."""
    from cprof._core import _id_hash_key
    key = _id_hash_key()
    assert key == _id_hash_key()  # drawn once per process
    n = 60_000
    ids = [_unhash(k << 17, key) for k in range(1, n + 1)]
    assert 0 not in ids
    crafted = _locations_profile(ids)
    plain = _locations_profile([(k * 2654435761) % (1 << 40) + 1 for k in range(1, n + 1)])
    assert decode(crafted).location_index(ids[-1]) == n - 1
    baseline = min(_decode_seconds(plain) for _ in range(3))
    flooded = min(_decode_seconds(crafted) for _ in range(2))
    assert flooded < 5 * baseline + 0.25, \
        f"colliding ids took {flooded:.3f} s, ordinary ones {baseline:.3f} s"


def test_the_hash_key_differs_between_processes() -> None:
    code = "from cprof._core import _id_hash_key; print(_id_hash_key())"
    keys = {run_child(code).stdout.strip() for _ in range(3)}
    assert len(keys) == 3, keys


def test_duplicate_ids_are_still_named_in_scan_order() -> None:
    """The sorted index names the duplicate a front-to-back scan meets first."""
    ids = [9, 5, 7, 3, 7, 5]
    with pytest.raises(ProfileError, match=r"^location\[2\] and location\[4\] share id 7"):
        decode(_locations_profile(ids))
    # The same rule when the ids collide and are sorted instead of hashed.
    from cprof._core import _id_hash_key
    colliding = [_unhash(k << 10, _id_hash_key()) for k in range(1, 200)]
    ids = colliding[:150] + [colliding[120], colliding[80]] + colliding[150:]
    with pytest.raises(ProfileError, match=r"^location\[120\] and location\[150\] share id"):
        decode(_locations_profile(ids))


# --- items 12 and 13: long decodes stop on a signal ----------------------------

BOMB_MIB = 256


def test_signal_handlers_run_during_a_long_decode() -> None:
    """A Python signal handler runs while the decode works (not after it),
    within a tenth of a second of its signal."""
    bomb = zeros_gzip(BOMB_MIB)
    fired: list[float] = []
    handled: list[float] = []

    def handler(signum: int, frame: object) -> None:
        handled.append(time.perf_counter())

    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.02)
        fired.append(time.perf_counter() + 0.02)
        start = time.perf_counter()
        with pytest.raises(ProfileError, match="max_size limit"):
            decode(bomb, max_size=(BOMB_MIB - 1) << 20, max_ratio=0)
        returned = time.perf_counter()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert handled, "the handler never ran"
    assert returned - start > 0.1, f"the decode took only {returned - start:.3f} s"
    assert handled[0] < returned, "the handler ran only once the decode had returned"
    assert handled[0] - fired[0] < 0.1 + (0.2 if UNDER_ASAN else 0)


def test_ctrl_c_stops_a_long_decode() -> None:
    """SIGINT (Ctrl-C) to a process decoding a 256 MiB bomb raises
    KeyboardInterrupt from decode() at once, not when inflating ends: the
    child times one whole decode, then is interrupted 50 ms into another."""
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT / 'tests' / 'support')!r})
        from malformed import zeros_gzip
        from cprof._core import decode, ProfileError
        bomb = zeros_gzip({BOMB_MIB})
        limits = dict(max_size={(BOMB_MIB - 1) << 20}, max_ratio=0)
        start = time.perf_counter()
        try:
            decode(bomb, **limits)
        except ProfileError:
            pass
        print(f"whole {{time.perf_counter() - start:.3f}}", flush=True)
        start = time.perf_counter()
        try:
            decode(bomb, **limits)
            print("not interrupted", flush=True)
        except KeyboardInterrupt:
            print(f"interrupted {{time.perf_counter() - start:.3f}}", flush=True)
        except ProfileError:
            print(f"finished {{time.perf_counter() - start:.3f}}", flush=True)
        """)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/")
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().split()
        assert first and first[0] == "whole", first
        whole = float(first[1])
        time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    word, _, seconds = out.strip().partition(" ")
    assert word == "interrupted", out + err[-2000:]
    assert float(seconds) < max(0.5 * whole, 0.2), \
        f"interrupted after {seconds} s of a {whole:.3f} s decode"


# --- item 13: amplification ---------------------------------------------------------

def _empty_samples(n: int) -> bytes:
    """A profile of n empty samples: 2 bytes each on the wire, ~100 in memory."""
    return f_bytes(PROFILE_STRING_TABLE, b"") + b"\x12\x00" * n


def test_gzipped_empty_samples_are_refused_early() -> None:
    """8 M empty samples gzip to 16 KiB; decoding them took 1 GB. Now the
    decoded memory is held to max_ratio times the input, past 16 MiB."""
    bomb = gzip.compress(_empty_samples(8_000_000), 9, mtime=0)
    assert len(bomb) < 64 << 10
    r = child_json(MEASURE + f"""
import sys
sys.path.insert(0, {str(ROOT / 'tests' / 'support')!r})
from malformed import f_bytes
import gzip
bomb = gzip.compress(f_bytes(6, b"") + b"\\x12\\x00" * 8_000_000, 9, mtime=0)
print(json.dumps(measure(bomb)))
""")
    assert r["error"] is not None and re.search(
        r"ProfileError: \d+ input bytes decode to more than \d+ bytes of memory, over "
        r"256-fold \(the max_ratio limit\)", str(r["error"])), r
    assert float(r["rss_mib"]) < 120, r  # 16 MiB of protobuf, 16 MiB decoded, slack


def test_decoded_memory_is_bounded_by_max_size() -> None:
    """Raw input has no ratio to check: max_size bounds the decoded memory."""
    raw = _empty_samples(4_000_000)  # 8 MB of protobuf, ~400 MB decoded
    with pytest.raises(ProfileError, match=r"^the decoded profile needs more than 67108864 "
                                           r"bytes of memory \(the max_size limit\); raise "
                                           r"max_size"):
        decode(raw, max_size=64 << 20)
    r = child_json(MEASURE + """
raw = b"\\x32\\x00" + b"\\x12\\x00" * 4_000_000
print(json.dumps(measure(raw, max_size=64 << 20)))
""")
    assert float(r["rss_mib"]) < 64 + 40, r


def test_a_real_profile_decodes_within_the_default_limits() -> None:
    """The limits leave real profiles alone: Go's decode to ~10x their protobuf."""
    data = (ROOT / "tests" / "testdata" / "go" / "heap.prof").read_bytes()
    raw = gzip.decompress(data)
    assert decode(data).counts() == decode(raw, max_size=16 * len(raw)).counts()


# --- item 14: forged ISIZE, limit ranges, totals ---------------------------------

def test_a_forged_isize_allocates_nothing_large() -> None:
    """A 300-byte gzip claiming 4 GiB (or more than max_size) inflated is
    refused for what it is, without reserving what it claims."""
    gz = bytearray(gzip.compress(profile(), mtime=0))
    gz[-4:] = struct.pack("<I", 0xFFFFFFF0)
    r = child_json(MEASURE + f"""
gz = bytes.fromhex({bytes(gz).hex()!r})
print(json.dumps([measure(gz), measure(gz, max_size=1 << 40), measure(gz, max_size=3 << 30)]))
""")
    for m in r if isinstance(r, list) else []:
        assert m["error"].startswith("ProfileError: gzip: corrupt data"), m
        assert m["vm_mib"] < 128, m


@pytest.mark.parametrize("name,value", [("max_ratio", -1), ("max_ratio", 2**32),
                                        ("max_size", -1), ("max_size", 2**63)])
def test_limits_out_of_range_are_refused(name: str, value: int) -> None:
    with pytest.raises(ValueError, match=rf"^{name} must be between 0 and \d+, not {value}$"):
        decode(profile(), **{name: value})
    with pytest.raises(ValueError, match=rf"^{name} must be between 0 and \d+, not {value}$"):
        cprof.load(profile(), **{name: value})


def test_ratio_2_to_the_32_does_not_turn_the_check_off() -> None:
    with pytest.raises(ValueError, match="^max_ratio must be between 0 and 4294967295"):
        decode(zeros_gzip(20), max_ratio=2**32)
    assert decode(profile(), max_ratio=2**32 - 1).counts()[0] == 1


@pytest.mark.parametrize("values", [[INT64_MAX, INT64_MAX], [INT64_MAX] * 3,
                                    [-2**63, -2**63, -1], [INT64_MAX, -2**63, INT64_MAX]])
def test_totals_do_not_wrap(values: list[int]) -> None:
    fn = Function(1, "f", "f", "f.py")
    loc = Location(1, 0, None, (Line(fn, 1),))
    built = cprof.Profile([("samples", "count")], [Sample([v], [loc]) for v in values])
    loaded = cprof.load(built.to_bytes())
    assert loaded.totals() == [sum(values)] == built.totals()
    # One stack, no labels: with a negative value, pprof merges the samples first.
    want = abs(sum(values)) if min(values) < 0 else sum(values)
    assert loaded.report_total(0) == want == built.report_total(0)


# --- item 15: what is not a profile -------------------------------------------------

NOT_PROFILES = [
    ("README.md", (ROOT / "README.md").read_bytes(), "text"),
    ("json", json.dumps({"samples": [1, 2, 3], "name": "x" * 20}).encode(), "JSON"),
    ("html", b"<!DOCTYPE html>\n<html><body>404 page not found</body></html>\n", "HTML"),
    ("gzipped json", gzip.compress(b'[{"a": 1}, {"b": 2}, {"c": 3}]', mtime=0),
     "gzipped JSON"),
    ("go goroutine debug=1",
     (ROOT / "tests" / "testdata" / "go" / "goroutine.debug1.txt").read_bytes(),
     r"Go's goroutine profile text \(debug=1\)"),
]


@pytest.mark.parametrize("name,data,kind", NOT_PROFILES, ids=[n[0] for n in NOT_PROFILES])
def test_text_is_called_not_a_profile(name: str, data: bytes, kind: str) -> None:
    with pytest.raises(ProfileError, match=rf"^<bytes>: not a pprof profile: it looks like "
                                           rf"{kind}; a pprof profile is a protobuf message"):
        cprof.load(data)


def test_real_profiles_are_never_taken_for_text() -> None:
    for path in sorted((ROOT / "tests" / "testdata" / "go").glob("*.prof")):
        raw = gzip.decompress(path.read_bytes())
        for cut in (len(raw) // 2, len(raw) - 1):
            with pytest.raises(ProfileError) as info:
                decode(raw[:cut])
            assert "not a pprof profile" not in str(info.value), path.name


def _heap_records() -> list[textformat.HeapRecord]:
    main = Function(1, "main", "main", "app.py")
    work = Function(2, "work", "work", "lib/work.py")
    outer, inner = Location(1, 0, None, (Line(main, 3),)), Location(2, 0, None, (Line(work, 7),))
    return [textformat.HeapRecord(2, 1024, 10, 4096, (inner, outer)),
            textformat.HeapRecord(0, 0, 5, 500, (outer,)),
            textformat.HeapRecord(3, 3 << 20, 3, 3 << 20, (inner,))]


def test_cprof_reads_its_own_heap_text_as_go_pprof_does(tmp_path: Path) -> None:
    """What /debug/pprof/heap?debug=1 serves loads with pprof's sample types,
    scaled values and block-size labels, checked against `go tool pprof`,
    plus the function names of its frame lines."""
    from gotools import pprof_raw
    text = textformat.heap_text(_heap_records(), 512 * 1024)
    path = tmp_path / "heap.txt"
    path.write_text(text)
    p = cprof.load(path)
    raw = pprof_raw(path)
    assert [f"{t.type}/{t.unit}" for t in p.sample_types] == raw.sample_types
    assert (p.period_type.type, p.period_type.unit) if p.period_type else None == \
        raw.period_type
    assert p.period == raw.period == 512 * 1024
    ours = sorted((s.values, tuple(loc.address for loc in s.locations), s.labels["bytes"])
                  for s in p.samples)
    theirs = sorted((s.values, tuple(raw.locations[i].address for i in s.location_ids),
                     s.num_labels["bytes"][0][0]) for s in raw.samples)
    assert ours == theirs
    names = {s.values[1]: [loc.lines[0].function.name for loc in s.locations if loc.lines]
             for s in p.samples}
    assert ["work", "main"] in names.values() and ["main"] in names.values()
    assert cprof.load(gzip.compress(text.encode(), mtime=0)).totals() == p.totals()


def test_the_heap_text_of_a_live_heap_profile_loads() -> None:
    """The text cprof's endpoint serves for a real heap profile reads back
    with the same totals as the binary profile of the same moment."""
    from cprof.collect import heap as heapprof
    heapprof.start_heap_profile(rate=1024)
    try:
        keep = [bytearray(2000 + i) for i in range(2000)]
        text = heapprof.heap_text()
    finally:
        profile_now = heapprof.stop_heap_profile()
    del keep
    loaded = cprof.load(text.encode())
    assert [t.type for t in loaded.sample_types] == [
        "alloc_objects", "alloc_space", "inuse_objects", "inuse_space"]
    assert loaded.total("inuse_space") > 2000 * 2000 * 0.5
    assert profile_now is not None
    # cprof prints one frame line per location, at the location's own
    # address: each location gets that line alone, not its neighbour's too
    # (ids are consecutive, and Go's frames sit at address - 1).
    locations = {loc.address: loc for s in loaded.samples for loc in s.locations}
    assert all(len(loc.lines) == 1 for loc in locations.values()), \
        [loc for loc in locations.values() if len(loc.lines) != 1][:3]
    name = "test_the_heap_text_of_a_live_heap_profile_loads"
    assert any(loc.lines[0].function.name.endswith(name) for loc in locations.values())


def test_heap_text_frames_follow_their_addresses() -> None:
    """Go's frames sit at address - 1, with inlined calls sharing one; a
    recursive call repeats an address, and each repeat keeps its one line."""
    go = ("heap profile: 1: 64 [1: 64] @ heap/1024\n"
          "1: 64 [1: 64] @ 0x11 0x21 0x21 0x31\n"
          "#\t0x10\tinner+0x1\ta.go:1\n#\t0x10\tinlined_into+0x1\ta.go:2\n"
          "#\t0x20\trec+0x2\tb.go:3\n#\t0x20\trec+0x2\tb.go:3\n"
          "#\t0x30\tmain+0x3\tc.go:4\n")
    p = cprof.load(go.encode())
    stack = [[(ln.function.name if ln.function else "", ln.line) for ln in loc.lines]
             for loc in p.samples[0].locations]
    assert stack == [[("inner", 1), ("inlined_into", 2)], [("rec", 3)], [("rec", 3)],
                     [("main", 4)]]
    assert [loc.address for loc in p.samples[0].locations] == [0x10, 0x20, 0x20, 0x30]


def test_bad_heap_text_is_a_one_line_error() -> None:
    with pytest.raises(ProfileError, match=r"^<bytes>: heap text line 2: 'garbage' is not a "
                                           r"record"):
        cprof.load(b"heap profile: 1: 2 [3: 4] @ heap/1024\ngarbage\n")
    with pytest.raises(ProfileError, match=r"inuse count was 0 but inuse bytes was 5"):
        cprof.load(b"heap profile: 1: 2 [3: 4] @ heap/1024\n0: 5 [0: 0] @ 0x1\n")


def test_heap_text_is_held_to_max_size() -> None:
    """Heap text turns into Python objects (~32 bytes per byte of text), and a
    gzipped one is not inflated past max_size to find out."""
    text = textformat.heap_text(_heap_records(), 512 * 1024).encode()
    assert cprof.load(text, max_size=32 * len(text)).samples
    with pytest.raises(ProfileError, match=r"takes about 32 times that in memory, more than "
                                           r"the max_size limit"):
        cprof.load(text, max_size=32 * len(text) - 1)
    big = text + b"1: 2 [1: 2] @ 0x1\n" * 200_000
    with pytest.raises(ProfileError, match=r"the heap text inflates to more than 100000 bytes"):
        cprof.load(gzip.compress(big, mtime=0), max_size=100_000)


@pytest.mark.parametrize("values", [[INT64_MAX, INT64_MAX], [-2**63, -2**63, -1]])
def test_reports_and_the_call_graph_do_not_wrap_either(values: list[int]) -> None:
    # The same mistake as totals' in the analysis engine (csrc/analysis): per-stack sums
    # (tree, list) and the call graph's flat and cum (top of a loaded profile).
    fn = Function(1, "f", "f", "f.py")
    loc = Location(1, 0, None, (Line(fn, 1),))
    built = cprof.Profile([("samples", "count")], [Sample([v], [loc]) for v in values])
    loaded = cprof.load(built.to_bytes())
    data = loaded._unchanged_data()
    assert data is not None  # the C path
    row = loaded.top()[0]
    assert (row.flat, row.cum) == (sum(values), sum(values)) == (built.top()[0].flat,
                                                                 built.top()[0].cum)
    nodes, flat, cum, _, _ = data.call_graph(0)
    assert [(n[0], f, c) for n, f, c in zip(nodes, flat, cum)] == [("f", sum(values),
                                                                    sum(values))]
