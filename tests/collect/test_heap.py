"""The heap profiler against known truth: allocations of known sizes, real
threads (with and without the GIL), NumPy, tracemalloc, fork, and Go's pprof
reading what cprof writes (issue 5, "Tests (known truth)")."""

from __future__ import annotations

import ctypes
import gc
import io
import itertools
import os
import subprocess
import sys
import textwrap
import threading
import tracemalloc
from pathlib import Path
from typing import Iterator

import pytest

import cprof
from cprof import _core
from cprof.collect.heap import scale_heap_sample
from cpu_helpers import cum, run_python
from gotools import pprof_raw, pprof_top

BYTES_1000 = sys.getsizeof(bytes(1000))  # one bytes object of 1000 bytes, header included

# Called through ctypes.CDLL, these run without the GIL: the raw domain's hook
# must then record the Python stack of the thread that called them.
_libpython = ctypes.CDLL(None)
_raw_malloc = _libpython.PyMem_RawMalloc
_raw_malloc.restype = ctypes.c_void_p
_raw_malloc.argtypes = [ctypes.c_size_t]
_raw_free = _libpython.PyMem_RawFree
_raw_free.restype = None
_raw_free.argtypes = [ctypes.c_void_p]


@pytest.fixture(autouse=True)
def no_heap_profile_left_running() -> Iterator[None]:
    yield
    if _core.heap_running():
        cprof.stop_heap_profile()
        pytest.fail("the test left a heap profile running")


def inuse(p: cprof.Profile, code_name: str) -> int:
    return cum(p, code_name, sample_type="inuse_space")


def allocated(p: cprof.Profile, code_name: str) -> int:
    return cum(p, code_name, sample_type="alloc_space")


# --- live memory, churn, rate=1 ------------------------------------------------------------------


def keeps_sixty(n: int) -> list[bytes]:
    return [bytes(1000) for _ in range(n)]


def keeps_forty(n: int) -> list[bytes]:
    return [bytes(1000) for _ in range(n)]


def test_live_memory_splits_between_two_functions_as_allocated() -> None:
    with cprof.heap(rate=32 * 1024) as h:
        a = keeps_sixty(60_000)
        b = keeps_forty(40_000)
    p = h.profile
    assert p.sample_types[3].type == "inuse_space" and p.period == 32 * 1024
    sixty, forty = inuse(p, "keeps_sixty"), inuse(p, "keeps_forty")
    truth_sixty = 60_000 * BYTES_1000 + sys.getsizeof(a)
    truth_forty = 40_000 * BYTES_1000 + sys.getsizeof(b)
    share = sixty / (sixty + forty)
    truth = truth_sixty / (truth_sixty + truth_forty)
    assert abs(share - truth) <= 0.05, f"{share:.1%} of live memory, truly {truth:.1%}"
    assert abs(sixty + forty - truth_sixty - truth_forty) <= 0.1 * (truth_sixty + truth_forty)
    del a, b


def churns(rounds: int) -> None:
    """rounds * 1000 objects of BYTES_1000 bytes, each freed at once, and no
    other allocation (a growing list would add its reallocations)."""
    for _ in itertools.repeat(None, rounds * 1000):
        chunk = bytes(1000)
        del chunk


def test_freed_memory_counts_as_allocated_and_not_in_use() -> None:
    with cprof.heap() as h:  # the default rate, 512 KiB
        churns(400)
    p = h.profile
    truth = 400 * 1000 * BYTES_1000
    assert abs(allocated(p, "churns") - truth) <= 0.15 * truth, (
        f"alloc_space {allocated(p, 'churns')} for {truth} bytes allocated")
    assert inuse(p, "churns") == 0


def counted(n: int) -> list[bytes]:
    out = [b""] * n
    for i in range(n):
        out[i] = bytes(100)
    return out


def test_rate_one_records_every_allocation() -> None:
    size = sys.getsizeof(bytes(100))
    with cprof.heap(rate=1) as h:
        kept = counted(5000)
    p = h.profile
    alloc_objects = p.sample_index("alloc_objects")
    exact = sum(s.values[alloc_objects] for s in p.samples
                if s.labels.get("bytes") == size
                and any(loc.lines[0].function.system_name == "counted" for loc in s.locations))
    assert exact == 5000
    assert allocated(p, "counted") >= 5000 * size
    del kept


def large_ones(n: int) -> list[bytes]:
    out = [b""] * n
    for i in range(n):
        out[i] = bytes(1000)  # over pymalloc's 512 bytes: passed on to the raw domain
    return out


def test_an_allocation_passed_to_another_domain_counts_once() -> None:
    with cprof.heap(rate=1) as h:
        kept = large_ones(3000)
    p = h.profile
    objects = sum(s.values[0] for s in p.samples
                  if s.labels.get("bytes") == BYTES_1000
                  and any(loc.lines[0].function.system_name == "large_ones"
                          for loc in s.locations))
    assert objects == 3000
    del kept


@pytest.mark.parametrize("allocator", ["pymalloc", "debug", "malloc"])
def test_every_python_allocator_setting_gives_the_same_profile(allocator: str,
                                                              tmp_path: Path) -> None:
    """PYTHONMALLOC=debug (python -X dev) puts a header before each block;
    malloc bypasses pymalloc: frees of sampled blocks are seen either way."""
    script = tmp_path / "alloc.py"
    script.write_text(textwrap.dedent("""
        import itertools, sys, cprof
        N = 300_000
        def kept(n):
            return [bytes(100) for _ in range(n)]
        def churned(n):
            for _ in itertools.repeat(None, n):
                x = bytes(100)
                del x
        with cprof.heap(rate=16 * 1024) as h:  # ~2,400 samples a function: +-2%
            k = kept(N)
            churned(N)
        p = h.profile
        def total(name, index):
            return sum(s.values[index] for s in p.samples
                       if any(loc.lines[0].function.system_name == name for loc in s.locations))
        size = sys.getsizeof(bytes(100))
        print(total("kept", 3) / (N * size), total("churned", 3),
              total("churned", 1) / (N * size))
    """))
    env = {**os.environ, "PYTHONMALLOC": allocator,
           "PYTHONPATH": str(Path(cprof.__file__).resolve().parents[1])}
    r = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    kept, churned_inuse, churned_alloc = (float(v) for v in r.stdout.split())
    assert 0.9 <= kept <= 1.15  # the list of pointers adds 8 of every 133 bytes
    assert churned_inuse == 0
    assert 0.9 <= churned_alloc <= 1.1


def test_unsampling_follows_go() -> None:
    # runtime/pprof's scaleHeapSample: 1 / (1 - exp(-avg/rate)), truncated.
    assert scale_heap_sample(1, 1024, 512 * 1024) == (512, 524800)
    assert scale_heap_sample(3, 3 * 100 << 20, 512 * 1024) == (3, 3 * 100 << 20)
    assert scale_heap_sample(7, 700, 1) == (7, 700)
    assert scale_heap_sample(0, 0, 512) == (0, 0)
    assert scale_heap_sample(1, 16, 2**60) == (2**56, 2**60)  # no division by zero


# --- NumPy ----------------------------------------------------------------------------------------


def makes_array() -> object:
    import numpy
    return numpy.ones(100 * 2**20, dtype=numpy.uint8)  # 100 MiB of array data


def test_numpy_array_is_attributed_to_its_line() -> None:
    with cprof.heap() as h:
        array = makes_array()
    p = h.profile
    assert "NumPy array data is included" in p.comments
    got = inuse(p, "makes_array")
    assert abs(got - 100 * 2**20) <= 0.10 * 100 * 2**20, f"{got} bytes for a 100 MiB array"
    line = makes_array.__code__.co_firstlineno + 2
    at_line = sum(s.values[3] for s in p.samples
                  if any(loc.lines[0].function.system_name == "makes_array"
                         and loc.lines[0].line == line for loc in s.locations))
    assert at_line >= 0.9 * 100 * 2**20
    del array


def test_numpy_imported_while_profiling_is_wrapped_then(tmp_path: Path) -> None:
    r = run_python("""
        import sys, cprof
        cprof.start_heap_profile()
        assert "numpy" not in sys.modules, "cprof imported numpy itself"
        import numpy
        array = numpy.zeros(64 * 2**20, dtype=numpy.uint8)
        p = cprof.stop_heap_profile()
        print("NumPy array data is included" in p.comments, p.total() >= 64 * 2**20)
    """, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "True"]


# --- threads, with and without the GIL ------------------------------------------------------------


def thread_keeps(n: int, out: list[object]) -> None:
    out.append([bytes(1000) for _ in range(n)])


def raw_without_gil(n: int, size: int, out: list[int]) -> None:
    for _ in range(n):
        out.append(_raw_malloc(size))


def test_threads_allocating_concurrently_are_each_counted() -> None:
    kept: list[object] = []
    raw: list[int] = []
    with cprof.heap(rate=64 * 1024) as h:
        threads = [threading.Thread(target=thread_keeps, args=(30_000, kept)) for _ in range(3)]
        threads.append(threading.Thread(target=raw_without_gil, args=(400, 64 * 1024, raw)))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    p = h.profile
    for address in raw:
        _raw_free(address)
    truth = 3 * 30_000 * BYTES_1000
    assert abs(inuse(p, "thread_keeps") - truth) <= 0.1 * truth
    raw_truth = 400 * 64 * 1024
    assert abs(inuse(p, "raw_without_gil") - raw_truth) <= 0.15 * raw_truth, (
        "allocations made without the GIL keep their Python stack")
    assert any("made without the GIL)" in c and "(0 made" not in c for c in p.comments)


def churn_forever(stop: threading.Event) -> None:
    while not stop.is_set():
        chunk = [bytes(2000) for _ in range(200)]
        del chunk
        addresses = [_raw_malloc(4096) for _ in range(20)]
        for a in addresses:
            _raw_free(a)


def test_start_and_stop_while_other_threads_allocate() -> None:
    stop = threading.Event()
    workers = [threading.Thread(target=churn_forever, args=(stop,)) for _ in range(3)]
    for w in workers:
        w.start()
    try:
        for _ in range(30):
            cprof.start_heap_profile(rate=4096)
            kept = keeps_sixty(2000)
            p = cprof.stop_heap_profile()
            assert inuse(p, "keeps_sixty") > 0
            assert p.total("alloc_space") > 0
            del kept
    finally:
        stop.set()
        for w in workers:
            w.join()


# --- tracemalloc ----------------------------------------------------------------------------------


def traced(n: int) -> list[bytes]:
    return [bytes(1000) for _ in range(n)]


@pytest.mark.parametrize("order", ["tracemalloc first", "cprof first"])
def test_tracemalloc_and_cprof_both_see_allocations(order: str) -> None:
    if order == "tracemalloc first":
        tracemalloc.start()
        cprof.start_heap_profile(rate=8 * 1024)
    else:
        cprof.start_heap_profile(rate=8 * 1024)
        tracemalloc.start()
    try:
        kept = traced(20_000)
        traced_now, _ = tracemalloc.get_traced_memory()
        # With tracemalloc above cprof, its own tables come through cprof's
        # hooks too, and count where they were allocated.
        own = tracemalloc.get_tracemalloc_memory() if order == "cprof first" else 0
        p = cprof.collect.heap.heap_profile()
    finally:
        if order == "tracemalloc first":
            cprof.stop_heap_profile()
            tracemalloc.stop()
        else:
            tracemalloc.stop()
            cprof.stop_heap_profile()
    truth = 20_000 * BYTES_1000
    assert traced_now >= truth
    assert -0.1 * truth <= inuse(p, "traced") - truth <= 0.1 * truth + own
    assert not any("removed" in c for c in p.comments)
    # Both gone, both can start again and see allocations.
    with cprof.heap(rate=8 * 1024) as h:
        kept2 = traced(20_000)
    assert abs(inuse(h.profile, "traced") - truth) <= 0.1 * truth
    del kept, kept2


def test_hooks_removed_by_tracemalloc_are_reported() -> None:
    tracemalloc.start()
    cprof.start_heap_profile(rate=8 * 1024)
    tracemalloc.stop()  # restores the allocators it found, dropping cprof's
    kept = traced(5000)
    p = cprof.stop_heap_profile()
    assert any("removed by another hook" in c for c in p.comments)
    with cprof.heap(rate=8 * 1024) as h:  # a new profile installs its hooks again
        kept = traced(20_000)
    assert inuse(h.profile, "traced") > 0.9 * 20_000 * BYTES_1000
    del kept


# --- API, fork ------------------------------------------------------------------------------------


def makes_and_drops_code(n: int) -> int:
    total = 0
    for i in range(n):
        namespace: dict[str, object] = {}
        exec(f"def f{i}():\n    return [bytes(2000) for _ in range(50)]", namespace)
        total += len(namespace[f"f{i}"]())  # type: ignore[operator]
    return total


def test_heap_and_cpu_profiles_run_together() -> None:
    """Both watch code objects die (exec'd functions here) and both hold
    samples of their stacks: neither may confuse the other."""
    with cprof.cpu(hz=1000) as c, cprof.heap(rate=8 * 1024) as h:
        assert makes_and_drops_code(2000) == 100_000
    assert allocated(h.profile, "makes_and_drops_code") > 0.8 * 100_000 * 2033
    assert c.profile is not None and c.profile.total() > 0


def test_one_heap_profile_at_a_time_and_clear_errors() -> None:
    with cprof.heap():
        with pytest.raises(RuntimeError, match="heap profiling already in use"):
            cprof.start_heap_profile()
    with pytest.raises(RuntimeError, match="no heap profile is running"):
        cprof.stop_heap_profile()
    with pytest.raises(ValueError, match="rate must be at least 1"):
        cprof.start_heap_profile(rate=0)
    with pytest.raises(TypeError, match="rate must be an int"):
        cprof.start_heap_profile(rate=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown profile 'nope'"):
        cprof.lookup("nope")


def test_lookup_heap_and_allocs_and_write_heap_profile(tmp_path: Path) -> None:
    cprof.start_heap_profile(rate=32 * 1024)
    try:
        kept = keeps_sixty(20_000)
        churns(20)
        written = cprof.write_heap_profile(tmp_path / "now.prof", gc=True)
        assert cprof.load(tmp_path / "now.prof").total() == written.total()
    finally:
        final = cprof.stop_heap_profile()
    heap = cprof.lookup("heap").profile()
    allocs = cprof.lookup("allocs").profile()
    assert heap.total() == final.total()  # the stopped profile stays readable
    assert heap.sample_index() == 3 and allocs.sample_index() == 1  # inuse_space, alloc_space
    assert allocs.total() > heap.total()
    assert cprof.lookup("allocs").count() == len(allocs.samples) > 0
    del kept


def test_heap_profile_of_a_forked_child_starts_clean(tmp_path: Path) -> None:
    r = run_python("""
        import os, cprof
        from cprof import _core
        cprof.start_heap_profile(rate=4096)
        kept = [bytes(1000) for _ in range(1000)]
        pid = os.fork()
        if pid == 0:
            try:
                cprof.lookup("heap").profile()
                os._exit(2)  # the parent's profile leaked into the child
            except RuntimeError:
                pass
            if _core.heap_running():
                os._exit(3)
            with cprof.heap(rate=4096) as h:
                mine = [bytes(1000) for _ in range(500)]
            os._exit(0 if h.profile.total() >= 250 * 1000 else 4)
        _, status = os.waitpid(pid, 0)
        p = cprof.stop_heap_profile()
        print(os.waitstatus_to_exitcode(status), p.total() >= 500 * 1000)
    """, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", "True"]


# --- Go's pprof reads it --------------------------------------------------------------------------


def test_go_pprof_reads_the_heap_profile_and_its_text(tmp_path: Path) -> None:
    with cprof.heap(rate=32 * 1024) as h:
        kept = keeps_sixty(30_000)
        churns(30)
    proto, text = tmp_path / "heap.prof", tmp_path / "heap.txt"
    cprof.lookup("heap").write_to(proto)
    cprof.lookup("heap").write_to(text, debug=1)
    head = text.read_text().splitlines()[0]
    assert head.startswith("heap profile: ") and head.endswith(f"@ heap/{2 * 32 * 1024}")

    raw = pprof_raw(proto)
    assert raw.period_type == ("space", "bytes") and raw.period == 32 * 1024
    assert raw.sample_types == ["alloc_objects/count", "alloc_space/bytes",
                                "inuse_objects/count", "inuse_space/bytes"]
    assert all(s.num_labels.get("bytes") for s in raw.samples)
    ours = [h.profile.total(t.type) for t in h.profile.sample_types]
    assert [sum(s.values[i] for s in raw.samples) for i in range(4)] == ours

    # pprof parses Go's legacy text and unsamples it with the same formula.
    legacy = pprof_raw(text)
    legacy_totals = [sum(s.values[i] for s in legacy.samples) for i in range(4)]
    for got, want in zip(legacy_totals, ours):
        assert abs(got - want) <= 1e-6 * want + len(legacy.samples)

    top = pprof_top(proto)
    assert any(row.name.endswith("keeps_sixty") for row in top.rows)
    del kept


def test_debug_text_matches_gos_layout() -> None:
    with cprof.heap(rate=1):
        kept = counted(10)
    buf = io.BytesIO()
    cprof.lookup("heap").write_to(buf, debug=1)
    lines = buf.getvalue().decode().splitlines()
    totals = [int(v) for v in lines[0].split(" @ ")[0].removeprefix("heap profile: ")
              .replace(":", " ").replace("[", " ").replace("]", " ").split()]
    records = [line for line in lines[1:] if line[:1].isdigit()]
    sums = [0, 0, 0, 0]
    for record in records:
        counts = record.split(" @ ")[0].replace(":", " ").replace("[", " ").replace("]", " ")
        sums = [a + int(b) for a, b in zip(sums, counts.split())]
    assert totals == sums and totals[2] >= 10
    inuse_bytes = [int(r.split()[1]) for r in records]
    assert inuse_bytes == sorted(inuse_bytes, reverse=True)  # Go's order
    frame = next(line for line in lines if line.startswith("#\t0x"))
    cell, address, function, where = [c for c in frame.split("\t") if c]
    assert cell == "#" and int(address, 16) > 0 and function.endswith("+0x0")
    assert where.rsplit(":", 1)[1].isdigit()
    assert "# Python memory" in lines and "# MemProfileRate = 1" in lines
    del kept


FRESH_PROCESS = """\
import threading, time, cprof

def allocates():
    return [bytes(1000) for _ in range(20000)]

with cprof.heap(rate=4096) as h:
    kept = allocates()
print(h.profile.share("allocates", sample_type="alloc_space"))
cprof.set_block_profile_rate(1)
lock = threading.Lock()

def waits():
    with lock:
        pass

lock.acquire()
t = threading.Thread(target=waits)
t.start()
time.sleep(0.1)
lock.release()
t.join()
print(cprof.lookup("block").profile().share("waits"))
"""


def test_a_fresh_process_profiles_stacks_before_any_cpu_profile(tmp_path: Path) -> None:
    """The stack walks' set-up (on 3.12, where a call's entry frame lies) is
    done at import, not only when a CPU profile starts: heap and lock
    profiles of a process that never ran one have their stacks."""
    r = run_python(FRESH_PROCESS, tmp_path)
    assert r.returncode == 0, r.stderr
    heap_share, block_share = (float(x) for x in r.stdout.split())
    assert heap_share > 0.9 and block_share > 0.9


@pytest.mark.parametrize("order", ["tracemalloc first", "cprof first"])
def test_naming_a_c_callee_inside_an_allocator_hook_allocates_nothing(order: str,
                                                                     tmp_path: Path) -> None:
    """Each allocation (rate 1) in a C function not named before makes the
    heap hook name it, and work out its caller's places (3.11-3.13), while
    tracemalloc's hook, above or below cprof's, may hold its lock: an
    allocation made there through Python's allocators re-entered it and hung
    (2 runs in 8). A child process, so that a hang fails the test."""
    script = f"""
import tracemalloc, cprof
def fresh():
    return [bytearray(64), bytes(64), str(64), list(range(3)), sorted([3, 1, 2])]
if {order == "tracemalloc first"!r}:
    tracemalloc.start()
cprof.start_heap_profile(rate=1)
if {order == "cprof first"!r}:
    tracemalloc.start()
for _ in range(200):
    fresh()
p = cprof.collect.heap.heap_profile()
tracemalloc.stop()
cprof.stop_heap_profile()
leaves = {{s.locations[0].lines[0].function.name for s in p.samples
          if any(l.lines[0].function.name.endswith("fresh") for l in s.locations)}}
assert {{"builtins.bytearray", "builtins.sorted"}} <= leaves, leaves
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_an_allocation_while_the_program_raises_keeps_its_exception(tmp_path: Path) -> None:
    """The heap hook may name a stack (collect/leaf.py) while the program has
    an exception in flight: a Python error cleared or set in there crashed
    the program. A followed child started its heap profile and then converted
    signals to enums (whose lookups raise and catch KeyError): 1 child in ~30
    died of SIGSEGV, where the first sampled stack that needed its code's
    places came amid a raise. 60 children, each afresh (before the fix, a
    child of this script died of SIGSEGV in each of 3 runs)."""
    script = """
import signal, cprof
cprof.start_heap_profile(rate=16 * 1024)
for _ in range(20):
    signal.valid_signals()
keep = [bytearray(4000) for _ in range(2000)]
cprof.stop_heap_profile()
print("ok")
"""
    for _ in range(60):
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              timeout=60, cwd=tmp_path)
        assert done.returncode == 0 and done.stdout.strip() == "ok", (
            done.returncode, done.stderr[-2000:])
