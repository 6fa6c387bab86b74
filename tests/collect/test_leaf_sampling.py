"""The C function a Python frame is calling, named in CPU and wall samples
(issue 18, part 1): time.sleep and select.select in wall mode, hashlib's
update in a hashing thread, sorted between its caller and the Python key
it calls, and go tool pprof reading the same names. Real sleeps, sockets,
hashing and sorting; known truth from the program's own structure.

Turned on by leaf.install() (each test here), on every supported version:
3.14 and later read the callable below the stack pointer their frames keep
during a call, 3.11-3.13 from the slot the code's places give."""

from __future__ import annotations

import hashlib
import json
import json.encoder
import select
import socket
import sys
import threading
import time
import types
import weakref
from pathlib import Path
from typing import Callable

import pytest

import cprof
from cprof.collect import leaf
from cprof.pprof.model import Sample
from cpu_helpers import thread_is
from gotools import pprof_top

def names(sample: Sample) -> list[str]:
    """The full names of a sample's frames, leaf first."""
    return [loc.lines[0].function.name for loc in sample.locations]


def flat(p: cprof.Profile, name: str, where: Callable[[Sample], bool]) -> int:
    return sum(s.values[1] for s in p.samples if where(s) and names(s)[0] == name)


def cum(p: cprof.Profile, name: str, where: Callable[[Sample], bool]) -> int:
    return sum(s.values[1] for s in p.samples if where(s) and name in names(s))


@pytest.fixture(autouse=True)
def c_callees_named() -> None:
    """Name C callees in the CPU profile each test starts (stopping it turns
    the naming off again)."""
    leaf.install()


HASH_UPDATE = f"{type(hashlib.sha256()).__module__}.{type(hashlib.sha256()).__qualname__}.update"


def sleep_then_select() -> dict[str, float]:
    """Sleep 0.5 s, then wait 0.3 s in select; how long each took, and the
    whole, by the program's own clock (a collection of the garbage between
    them, say, is the function's own time)."""
    start = time.perf_counter()
    time.sleep(0.5)
    slept = time.perf_counter()
    a, b = socket.socketpair()
    try:
        before = time.perf_counter()
        select.select([a], [], [], 0.3)
        waited = time.perf_counter() - before
    finally:
        a.close()
        b.close()
    return {"sleep": slept - start, "select": waited, "all": time.perf_counter() - start}


def test_wall_mode_names_the_sleep_and_the_select() -> None:
    main = threading.get_native_id()
    with cprof.cpu(mode="wall", hz=200) as c:
        took = sleep_then_select()
    p = c.profile
    total = cum(p, "test_leaf_sampling.sleep_then_select", thread_is(main))
    assert total > 0, p.top(10)
    sleep = flat(p, "time.sleep", thread_is(main)) / total
    waiting = flat(p, "select.select", thread_is(main)) / total
    top = [(r.name, r.flat) for r in p.top(10).rows]
    assert abs(took["sleep"] - 0.5) < 0.05 and abs(took["select"] - 0.3) < 0.05, took
    assert abs(sleep - took["sleep"] / took["all"]) <= 0.10, (sleep, took, top)
    assert abs(waiting - took["select"] / took["all"]) <= 0.10, (waiting, took, top)
    stack = names(next(s for s in p.samples if names(s)[0] == "time.sleep"))
    assert stack[1] == "test_leaf_sampling.sleep_then_select", stack


def work_then_wait(cycles: int) -> float:
    """cycles of 5 ms of CPU, then a 0.1 s select; the share of the whole
    spent in the selects, by the program's own clock."""
    a, b = socket.socketpair()
    waited = 0.0
    start = time.perf_counter()
    try:
        for _ in range(cycles):
            spin_until = time.thread_time() + 0.005
            while time.thread_time() < spin_until:
                sum(range(1000))
            before = time.perf_counter()
            select.select([a], [], [], 0.1)
            waited += time.perf_counter() - before
    finally:
        a.close()
        b.close()
    return waited / (time.perf_counter() - start)


def test_wall_mode_sees_a_thread_go_from_work_to_a_wait_within_periods() -> None:
    """A thread signalled as it works and then waiting at once keeps its
    working stack until a snapshot takes the wait's: when no thread runs,
    the helper takes it within a few periods, not after a drain's patience
    (up to 150 ms). 10 cycles of work and a 0.1 s select, three times: the
    selects' share was 8-10 points short in half the runs before (the spin's
    stack repeated into each select), within 3.5 points after on a quiet
    machine and 5 beside a CI run."""
    main = threading.get_native_id()
    for _ in range(3):
        with cprof.cpu(mode="wall", hz=200) as c:
            truth = work_then_wait(10)
        leaf.install()
        p = c.profile
        total = cum(p, "test_leaf_sampling.work_then_wait", thread_is(main))
        waiting = flat(p, "select.select", thread_is(main)) / total
        assert abs(waiting - truth) <= 0.075, (waiting, truth, p.top(5))


def hash_buffers(buffers: int) -> None:
    buffer = bytes(64 << 20)
    h = hashlib.sha256()
    for _ in range(buffers):
        h.update(buffer)


def test_a_hashing_thread_shows_hashlibs_update_under_its_caller() -> None:
    worker = threading.Thread(target=hash_buffers, args=(6,))
    with cprof.cpu(hz=250) as c:
        worker.start()
        worker.join()
    p = c.profile
    where = thread_is(worker.native_id or 0)
    inside = cum(p, "test_leaf_sampling.hash_buffers", where)
    update = cum(p, HASH_UPDATE, where)
    assert update >= 0.8 * inside > 0, (HASH_UPDATE, p.top(10))
    for s in p.samples:
        stack = names(s)
        if HASH_UPDATE in stack:
            assert stack[stack.index(HASH_UPDATE) + 1] == "test_leaf_sampling.hash_buffers"


def hash_through_a_bound_method(buffers: int) -> None:
    buffer = bytes(16 << 20)
    update = hashlib.sha256().update  # a bound C method: no catalogue holds it
    for _ in range(buffers):
        update(buffer)


def encode(rounds: int) -> None:
    data = [{"a": i, "b": str(i), "c": [1.5, None, True]} for i in range(20_000)]
    for _ in range(rounds):
        json.dumps(data)


_ENCODER_TYPE: type = json.encoder.c_make_encoder  # type: ignore[attr-defined]
ENCODER = f"{_ENCODER_TYPE.__module__}.{_ENCODER_TYPE.__qualname__}.__call__"


def test_calls_of_c_instances_and_bound_c_methods_are_named() -> None:
    """A callable no catalogue can hold, made at run time: json's C encoder
    (an instance of a C type, named by its type's __call__), a bound C method
    (named by its method definition, as the method itself). Their first
    samples are unnamed on 3.11-3.13, taken before a drain works out where
    the code's calls keep their callables (a first profile here)."""
    with cprof.cpu(hz=500):
        hash_through_a_bound_method(2)
        encode(2)
    with cprof.cpu(hz=500) as c:
        hash_through_a_bound_method(12)
        encode(40)
    p = c.profile
    main = thread_is(threading.get_native_id())
    hashing = cum(p, "test_leaf_sampling.hash_through_a_bound_method", main)
    assert cum(p, HASH_UPDATE, main) >= 0.7 * hashing > 0, p.top(10)
    encoding = cum(p, "json.encoder.JSONEncoder.iterencode", main)
    assert flat(p, ENCODER, main) >= 0.7 * encoding > 0, (ENCODER, p.top(10))
    for s in p.samples:
        stack = names(s)
        if stack[0] == HASH_UPDATE and "test_leaf_sampling.hash_through_a_bound_method" in stack:
            assert stack[1] == "test_leaf_sampling.hash_through_a_bound_method", stack
        if stack[0] == ENCODER:
            assert stack[1] == "json.encoder.JSONEncoder.iterencode", stack


def test_the_catalogue_names_calls_by_type_and_by_method_definition() -> None:
    """The keys the sampler reads besides objects' addresses (leaf.h): a C
    type's id + 1 for its instances' calls, a method definition's address +
    2 for the functions and bound methods made from it (a class method
    called through its type is bound anew at each call). Not by type: the
    types of functions and methods, whose calls are named otherwise, and
    metatypes, whose instances are classes."""
    from cprof import _core
    hash_module = sys.modules[type(hashlib.sha256()).__module__]
    found = leaf.catalogue([json.encoder, sys.modules["builtins"], hash_module])
    by_type = {key: entry[1] for key, entry in found.items() if key & 15 == _core.LEAF_INSTANCE_CALL}
    assert by_type[id(_ENCODER_TYPE) + 1] == ENCODER
    for t in (types.FunctionType, types.BuiltinFunctionType, types.MethodType, type):
        assert id(t) + 1 not in found, t
    fromkeys = _core.method_def(vars(dict)["fromkeys"])
    update = _core.method_def(type(hashlib.sha256()).update)
    assert fromkeys is not None and update is not None
    assert found[fromkeys + 2][1] == "builtins.dict.fromkeys"
    assert found[update + 2][1] == HASH_UPDATE
    assert _core.method_def(hashlib.sha256().update) == update  # a bound method: the same
    assert _core.method_def(len) is not None and _core.method_def(encode) is None


def test_a_thread_dump_names_a_bound_c_method_a_thread_waits_in() -> None:
    from cprof.collect import threads
    import queue
    q: queue.SimpleQueue[int] = queue.SimpleQueue()
    get = q.get  # bound: the thread's frame calls an object no catalogue holds

    def consumer() -> None:
        get()

    worker = threading.Thread(target=consumer, name="consumer")
    worker.start()
    time.sleep(0.2)
    try:
        dump = {t.name: t for t in threads.dump().threads}
    finally:
        q.put(1)
        worker.join()
    stack = dump["consumer"].stack
    assert stack[0].name == "_queue.SimpleQueue.get" and stack[0].callee, stack[:2]
    assert stack[1].name.endswith("consumer"), stack[:2]


def slow_key(x: int) -> int:
    s = 0
    for i in range(40):
        s += i
    return -x


def test_sorted_is_between_its_caller_and_the_key_it_calls() -> None:
    with cprof.cpu(hz=1000) as c:
        sorted(range(150_000), key=slow_key)
    p = c.profile
    keyed = [names(s) for s in p.samples if "test_leaf_sampling.slow_key" in names(s)]
    assert keyed, p.top(10)
    for stack in keyed:
        at = stack.index("test_leaf_sampling.slow_key")
        assert stack[at + 1:at + 3] == [
            "builtins.sorted", "test_leaf_sampling.test_sorted_is_between_its_caller_and_the_key_it_calls"], stack


def test_go_tool_pprof_prints_the_same_names(tmp_path: Path) -> None:
    with cprof.cpu(mode="wall", hz=200) as c:
        sleep_then_select()
    c.profile.write(tmp_path / "leaf.prof")
    rows = {row.name for row in pprof_top(tmp_path / "leaf.prof").rows}
    assert {"time.sleep", "select.select"} <= rows, rows


def test_native_mode_names_c_frames_once() -> None:
    """With native=True libunwind names the C frames; the catalogue's names
    are not added on top of them."""
    with cprof.cpu(mode="wall", hz=200, native=True) as c:
        time.sleep(0.3)
    p = c.profile
    stacks = [names(s) for s in p.samples]
    assert not any("time.sleep" in stack for stack in stacks), stacks[:3]
    assert any(any("sleep" in name for name in stack) for stack in stacks), stacks[:3]


def fresh_function(source: str) -> Callable[[], None]:
    """A function whose code the sampler has never seen (no places kept yet
    for it, on 3.11-3.13: its first samples carry candidates)."""
    namespace: dict[str, object] = {"time": time, "select": select}
    exec(compile(source, "<fresh>", "exec"), namespace)
    return namespace["fresh"]  # type: ignore[return-value]


def test_the_first_samples_of_a_new_code_name_the_right_callee() -> None:
    """All of a call's samples are named, its first ones too (taken before
    any drain, 40 ms into a profile that drains every 50 ms), and the callee
    is the one being called, not another catalogued callable the value stack
    holds: max and len lie below time.sleep here. (The program's own time
    around the call, max's included, is its own: at most 10%.)"""
    fresh = fresh_function("def fresh():\n    max(len, time.sleep(0.04), key=id)\n")
    main = threading.get_native_id()
    with cprof.cpu(mode="wall", hz=500) as c:
        fresh()
    p = c.profile
    ours = [s for s in p.samples if thread_is(main)(s) and "fresh" in names(s)]
    assert sum(s.values[0] for s in ours) >= 5, p.top(10)
    stacks = [names(s) for s in ours]
    assert all(stack[0] in ("time.sleep", "builtins.max", "fresh") for stack in stacks), stacks
    asleep = sum(s.values[1] for s in ours if names(s)[:2] == ["time.sleep", "fresh"])
    assert asleep >= 0.9 * sum(s.values[1] for s in ours), stacks


def test_a_code_that_dies_before_the_drain_keeps_its_callee() -> None:
    """A code object dying (here: deleted at once after its only call) has
    its samples taken before it goes; their callee is chosen then, from the
    code still alive."""
    fresh = fresh_function("def fresh():\n    time.sleep(0.04)\n")
    main = threading.get_native_id()
    code = weakref.ref(fresh.__code__)
    with cprof.cpu(mode="wall", hz=500) as c:
        fresh()
        fresh.__globals__.clear()  # the function's namespace held it
        del fresh
        assert code() is None
    p = c.profile
    ours = [s for s in p.samples if thread_is(main)(s) and "fresh" in names(s)]
    assert sum(s.values[0] for s in ours) >= 5, p.top(10)
    asleep = sum(s.values[1] for s in ours if names(s)[0] == "time.sleep")
    assert asleep >= 0.9 * sum(s.values[1] for s in ours), [names(s) for s in ours]


def allocate_big() -> bytes:
    return bytes(8 << 20)


def test_the_heap_profile_names_the_c_function_that_allocated() -> None:
    with cprof.heap() as h:
        kept = allocate_big()
    stacks = [names(s) for s in h.profile.samples if "test_leaf_sampling.allocate_big" in names(s)]
    assert stacks, h.profile.top(10)
    assert any(stack[:2] == ["builtins.bytes", "test_leaf_sampling.allocate_big"]
               for stack in stacks), stacks
    del kept


def test_a_thread_dump_names_the_c_function_each_thread_waits_in() -> None:
    """The innermost frame's C callee, and the thread's state from it; and a
    C function between two Python frames (sorted calling a key), as a CPU
    sample names it."""
    from cprof.collect import threads
    ready = threading.Barrier(4)

    def napper() -> None:
        ready.wait()
        time.sleep(0.5)

    def napping_key(x: int) -> int:
        time.sleep(0.5)
        return x

    def sorter() -> None:
        ready.wait()
        sorted([1], key=napping_key)

    def waiter() -> None:
        a, b = socket.socketpair()
        try:
            ready.wait()
            select.select([a], [], [], 0.5)
        finally:
            a.close()
            b.close()

    workers = [threading.Thread(target=napper, name="napper"),
               threading.Thread(target=waiter, name="waiter"),
               threading.Thread(target=sorter, name="sorter")]
    for worker in workers:
        worker.start()
    ready.wait()
    time.sleep(0.1)
    try:
        dump = {t.name: t for t in threads.dump().threads}
    finally:
        for worker in workers:
            worker.join()
    napping, waiting = dump["napper"], dump["waiter"]
    assert [f.name for f in napping.stack[:2]] == [
        "time.sleep", "test_leaf_sampling.test_a_thread_dump_names_the_c_function_each_thread_waits_in.<locals>.napper"]
    assert napping.state == "sleeping (time.sleep)"
    assert waiting.stack[0].name == "select.select" and waiting.state == "IO wait (select)"
    # A C function further out is named too, between the key and its caller.
    assert [f.name.rpartition(".")[2] for f in dump["sorter"].stack[:4]] == [
        "sleep", "napping_key", "sorted", "sorter"], dump["sorter"].stack[:4]
    assert [f.callee for f in dump["sorter"].stack[:4]] == [True, False, True, False]
    main = dump[threading.current_thread().name]
    assert main.state == "running" and not main.stack[0].callee, main.stack[:2]


def blocked_on_a_held_lock(*waiters: Callable[[threading.Lock], None]) -> cprof.Profile:
    """The block profile (every event) of threads running each waiter, which
    takes a lock another thread holds for 0.2 s (made while the profile
    runs: a lock made before it is not recorded)."""
    from cprof.collect import locks
    locks.set_block_profile_rate(1)
    lock = threading.Lock()
    taken = threading.Event()

    def holder() -> None:
        with lock:
            taken.set()
            time.sleep(0.2)

    def waiting(waiter: Callable[[threading.Lock], None]) -> None:
        taken.wait()
        waiter(lock)

    try:
        workers = [threading.Thread(target=holder)]
        workers += [threading.Thread(target=waiting, args=(w,)) for w in waiters]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return cprof.lookup("block").profile()
    finally:
        locks.set_block_profile_rate(0)


def with_block(lock: threading.Lock) -> None:
    with lock:
        pass


def by_call(lock: threading.Lock) -> None:
    lock.acquire()
    lock.release()


def test_a_block_profile_ends_at_the_program_whether_it_calls_acquire_or_uses_with() -> None:
    """The wait's own lock call is the event itself: lock.acquire() gives the
    stack `with lock:` gives (no _thread.lock.acquire on top)."""
    p = blocked_on_a_held_lock(with_block, by_call)
    leaves = {names(s)[0].rpartition(".")[2] for s in p.samples
              if any(n.endswith(("with_block", "by_call")) for n in names(s))}
    assert leaves == {"with_block", "by_call"}, [names(s)[:3] for s in p.samples]


def waiting_key(lock: threading.Lock) -> Callable[[int], int]:
    def key(x: int) -> int:
        with lock:
            return -x
    return key


def sorts(lock: threading.Lock) -> None:
    sorted([1], key=waiting_key(lock))


def test_a_block_profile_keeps_the_c_function_a_wait_is_under() -> None:
    """Only the wait's own lock call is left out of a block stack: a C
    function further out, here sorted calling a key that waits, stays between
    the key and sorted's caller, as in a CPU profile."""
    p = blocked_on_a_held_lock(sorts)
    stacks = [[n.rpartition(".")[2] for n in names(s)] for s in p.samples
              if any(n.endswith(".key") for n in names(s))]
    assert stacks, [names(s)[:4] for s in p.samples]
    for stack in stacks:
        assert stack[:3] == ["key", "sorted", "sorts"], stack
