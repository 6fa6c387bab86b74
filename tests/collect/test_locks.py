"""Mutex and block profiles on real threads and locks: CPython's own lock
tests run against cprof's recording locks, and contention of known size is
found where it happened (issue 6, "Contention and blocking")."""

from __future__ import annotations

import asyncio
import concurrent.futures
import _thread
import pickle
import queue
import signal
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
from test import lock_tests  # CPython's tests of its lock types

import cprof
from cprof import _core
from cpu_helpers import cum
from gotools import pprof_raw


@pytest.fixture
def recording() -> Iterator[None]:
    """Both profiles on, recording every event, from a clean slate."""
    cprof.collect.locks.reset()
    cprof.set_mutex_profile_fraction(1)
    cprof.set_block_profile_rate(1)
    yield
    cprof.set_mutex_profile_fraction(0)
    cprof.set_block_profile_rate(0)
    cprof.collect.locks.reset()


# --- the locks behave as threading's own: CPython's lock tests --------------------------------


class _Recording:
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()  # type: ignore[misc]
        cprof.set_mutex_profile_fraction(1)
        cprof.set_block_profile_rate(1)

    @classmethod
    def tearDownClass(cls) -> None:
        cprof.set_mutex_profile_fraction(0)
        cprof.set_block_profile_rate(0)
        cprof.collect.locks.reset()
        super().tearDownClass()  # type: ignore[misc]


def _later(name: str) -> Callable[..., object]:
    """threading.NAME as it is when called (recording types while on)."""
    return staticmethod(lambda *args, **kwargs: getattr(threading, name)(*args, **kwargs))


class TestRecordingLock(_Recording, lock_tests.LockTests):
    locktype = _later("Lock")


class TestRecordingRLock(_Recording, lock_tests.RLockTests):
    locktype = _later("RLock")


class TestRecordingCondition(_Recording, lock_tests.ConditionTests):
    condtype = _later("Condition")


class TestRecordingEvent(_Recording, lock_tests.EventTests):
    eventtype = _later("Event")


class TestRecordingSemaphore(_Recording, lock_tests.SemaphoreTests):
    semtype = _later("Semaphore")


class TestRecordingBoundedSemaphore(_Recording, lock_tests.BoundedSemaphoreTests):
    semtype = _later("BoundedSemaphore")


class TestRecordingBarrier(_Recording, lock_tests.BarrierTests):
    barriertype = _later("Barrier")


def test_recording_locks_answer_as_the_interpreters_own(recording: None) -> None:
    """The recording locks stand in for _thread's: the same methods (RLock
    gained locked() in 3.14) and the same errors, word for word, for every
    timeout the interpreter refuses."""
    for made, real in ((threading.Lock(), _thread.allocate_lock()),
                       (threading.RLock(), _thread.RLock())):
        assert type(made) in (_core.Lock, _core.RLock)
        public = {name for name in dir(real) if not name.startswith("_")}
        assert public <= set(dir(made)), public - set(dir(made))
        for args in ((True, float("nan")), (True, -2.0), (True, 1e300), (False, 1.0)):
            errors = []
            for lock in (made, real):
                try:
                    lock.acquire(*args)
                except (ValueError, OverflowError) as e:
                    errors.append((type(e), str(e)))
                else:
                    lock.release()
                    errors.append(None)
            assert errors[0] == errors[1] and errors[0] is not None, (args, errors)
    for args, kwargs in (((1,), {}), ((), {"x": 1})):
        errors = []
        for make in (_core.RLock, _thread.RLock):
            try:
                make(*args, **kwargs)
            except TypeError as e:
                errors.append(str(e))
            else:
                errors.append(None)
        assert errors[0] == errors[1], (args, kwargs, errors)
    rlock = threading.RLock()
    if hasattr(_thread.RLock(), "locked"):
        assert not rlock.locked()
        with rlock, rlock:
            assert rlock.locked()
        assert not rlock.locked()


def test_types_repr_pickling_and_restoring(recording: None) -> None:
    lock, rlock = threading.Lock(), threading.RLock()
    assert type(lock) is _core.Lock and type(rlock) is _core.RLock
    assert repr(lock).startswith("<unlocked _thread.lock object at 0x")
    lock.acquire()
    assert repr(lock).startswith("<locked _thread.lock object at 0x")
    assert isinstance(lock, _core.Lock) and lock.locked()
    with pytest.raises(TypeError, match="cannot pickle '_thread.lock' object"):
        pickle.dumps(lock)
    with pytest.raises(TypeError, match="cannot pickle '_thread.RLock' object"):
        pickle.dumps(rlock)

    class Sub(_core.Lock):  # subclassing works, as for threading.Lock on 3.13
        pass
    assert Sub().acquire(False)

    cprof.set_mutex_profile_fraction(0)
    cprof.set_block_profile_rate(0)
    assert type(threading.Lock()) is not _core.Lock and type(threading.RLock()) is not _core.RLock
    lock.release()  # a lock made while recording keeps working
    with lock, rlock, rlock:
        assert lock.locked()


def test_errors_read_as_threadings(recording: None) -> None:
    lock = threading.Lock()
    with pytest.raises(RuntimeError, match="release unlocked lock"):
        lock.release()
    with pytest.raises(ValueError, match="can't specify a timeout for a non-blocking call"):
        lock.acquire(False, 1)
    with pytest.raises(ValueError, match="timeout value must be"):
        lock.acquire(True, -2)
    with pytest.raises(RuntimeError, match="cannot release un-acquired lock"):
        threading.RLock().release()


def test_a_wait_is_interrupted_by_a_signal_handler_that_raises(recording: None) -> None:
    lock = threading.Lock()
    lock.acquire()

    class Alarm(Exception):
        pass

    def raise_alarm(signum: int, frame: object) -> None:
        raise Alarm
    previous = signal.signal(signal.SIGALRM, raise_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        start = time.monotonic()
        with pytest.raises(Alarm):
            lock.acquire(timeout=5)
        assert time.monotonic() - start < 2
        assert lock.locked()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- contention of known size ------------------------------------------------------------------


def on_hot(lock: threading.Lock, waits: list[float], rounds: int) -> None:
    for _ in range(rounds):
        t = time.perf_counter()
        with lock:
            waits.append(time.perf_counter() - t)
            time.sleep(0.002)


def on_cold(lock: threading.Lock, waits: list[float], rounds: int) -> None:
    for _ in range(rounds):
        t = time.perf_counter()
        with lock:
            waits.append(time.perf_counter() - t)
            time.sleep(0.0002)
        time.sleep(0.001)


def test_hot_and_cold_locks_share_the_delay_as_measured(recording: None) -> None:
    hot, cold = threading.Lock(), threading.Lock()
    hot_waits: list[float] = []
    cold_waits: list[float] = []
    threads = ([threading.Thread(target=on_hot, args=(hot, hot_waits, 60)) for _ in range(3)]
               + [threading.Thread(target=on_cold, args=(cold, cold_waits, 60))
                  for _ in range(3)])
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    block = cprof.lookup("block").profile()
    hot_profiled, cold_profiled = cum(block, "on_hot", sample_type="delay"), cum(
        block, "on_cold", sample_type="delay")
    truth = sum(hot_waits) / (sum(hot_waits) + sum(cold_waits))
    share = hot_profiled / (hot_profiled + cold_profiled)
    assert abs(share - truth) <= 0.10, f"hot lock: {share:.1%} of the delay, {truth:.1%} measured"
    assert abs(hot_profiled / 1e9 - sum(hot_waits)) <= 0.2 * sum(hot_waits)
    mutex = cprof.lookup("mutex").profile()
    # The holders caused the waits: the mutex profile charges them, about as much.
    assert abs(cum(mutex, "on_hot", sample_type="delay") - hot_profiled) <= 0.2 * hot_profiled


def consumer(q: queue.Queue[int], got: list[float]) -> None:
    t = time.perf_counter()
    q.get()
    got.append(time.perf_counter() - t)


def test_a_consumer_blocked_on_queue_get(recording: None) -> None:
    q: queue.Queue[int] = queue.Queue()
    got: list[float] = []
    t = threading.Thread(target=consumer, args=(q, got))
    t.start()
    time.sleep(0.5)
    q.put(1)
    t.join()
    block = cprof.lookup("block").profile()
    waited = cum(block, "consumer", sample_type="delay") / 1e9
    assert abs(waited - got[0]) <= 0.2 * got[0], f"{waited:.3f} s profiled, {got[0]:.3f} s waited"
    assert cum(block, "get", sample_type="delay") / 1e9 >= 0.8 * got[0]
    # A Condition's waiter is not a mutex: notify() does not show in the mutex profile.
    assert cum(cprof.lookup("mutex").profile(), "put", sample_type="delay") == 0


def test_sampling_upscales_to_the_truth(recording: None) -> None:
    # 10 ms: the waits here (2-6 ms) are sampled, about half of them, and each
    # kept one counts rate/duration times (some 120 samples: a 25% bound is 4 sigma).
    cprof.set_block_profile_rate(10_000_000)
    lock = threading.Lock()
    waits: list[float] = []
    threads = [threading.Thread(target=on_hot, args=(lock, waits, 100)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    block = cprof.lookup("block").profile()
    profiled = cum(block, "on_hot", sample_type="delay") / 1e9
    truth = sum(waits)
    assert abs(profiled - truth) <= 0.25 * truth, f"{profiled:.3f} s profiled, {truth:.3f} s"


def test_mutex_fraction_samples_one_in_n_and_upscales(recording: None) -> None:
    cprof.set_mutex_profile_fraction(4)
    lock = threading.Lock()
    threads = [threading.Thread(target=on_hot, args=(lock, [], 150)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    mutex = cum(cprof.lookup("mutex").profile(), "on_hot", sample_type="delay")
    block = cum(cprof.lookup("block").profile(), "on_hot", sample_type="delay")
    assert abs(mutex - block) <= 0.35 * block, f"1 in 4 upscaled: {mutex / 1e9:.3f} s, " \
        f"every wait: {block / 1e9:.3f} s"
    contentions = cum(cprof.lookup("mutex").profile(), "on_hot", sample_type="contentions")
    assert contentions % 4 == 0  # each recorded event counts 4


def waits_on_future(pool: concurrent.futures.ThreadPoolExecutor) -> float:
    t = time.perf_counter()
    pool.submit(time.sleep, 0.3).result()
    return time.perf_counter() - t


def test_concurrent_futures_waits_are_recorded(recording: None) -> None:
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        waited = waits_on_future(pool)
    got = cum(cprof.lookup("block").profile(), "waits_on_future", sample_type="delay") / 1e9
    assert abs(got - waited) <= 0.2 * waited, f"{got:.3f} s profiled, {waited:.3f} s waited"


def test_settings_follow_go(recording: None) -> None:
    assert cprof.set_mutex_profile_fraction(-1) == 1  # negative: read only
    assert cprof.set_mutex_profile_fraction(5) == 1
    assert cprof.set_mutex_profile_fraction(1) == 5
    assert cprof.set_block_profile_rate(10) == 1
    with pytest.raises(TypeError):
        cprof.set_block_profile_rate(1.5)  # type: ignore[arg-type]


def test_go_pprof_reads_mutex_and_block(recording: None, tmp_path: Path) -> None:
    lock = threading.Lock()
    threads = [threading.Thread(target=on_hot, args=(lock, [], 40)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name in ("mutex", "block"):
        proto, text = tmp_path / f"{name}.prof", tmp_path / f"{name}.txt"
        cprof.lookup(name).write_to(proto)
        cprof.lookup(name).write_to(text, debug=1)
        ours = cprof.load(proto)
        raw = pprof_raw(proto)
        assert raw.sample_types == ["contentions/count", "delay/nanoseconds"]
        assert raw.period_type == ("contentions", "count")
        totals = [sum(s.values[i] for s in raw.samples) for i in range(2)]
        assert totals == [ours.total("contentions"), ours.total("delay")] and totals[1] > 0
        legacy = pprof_raw(text)
        assert [sum(s.values[i] for s in legacy.samples) for i in range(2)] == totals


async def event_waiter(ev: asyncio.Event) -> None:
    await ev.wait()


async def queue_consumer(q: asyncio.Queue[int]) -> None:
    await q.get()


async def lock_user(lock: asyncio.Lock, hold: float) -> None:
    async with lock:
        await asyncio.sleep(hold)


def test_asyncio_waits_go_to_the_block_profile(recording: None) -> None:
    async def main() -> float:
        ev, q, lock = asyncio.Event(), asyncio.Queue[int](), asyncio.Lock()
        tasks = [asyncio.create_task(event_waiter(ev)), asyncio.create_task(queue_consumer(q))]
        tasks += [asyncio.create_task(lock_user(lock, 0.1)) for _ in range(3)]
        start = time.perf_counter()
        await asyncio.sleep(0.4)
        ev.set()
        q.put_nowait(1)
        waited = time.perf_counter() - start
        await asyncio.gather(*tasks)
        await lock_user(lock, 0)  # uncontended: not a wait
        return waited
    waited = asyncio.run(main())
    block = cprof.lookup("block").profile()
    for name in ("event_waiter", "queue_consumer"):
        got = cum(block, name, sample_type="delay") / 1e9
        assert abs(got - waited) <= 0.2 * waited, f"{name}: {got:.3f} s for {waited:.3f} s"
    lock_waits = cum(block, "lock_user", sample_type="delay") / 1e9
    assert abs(lock_waits - 0.3) <= 0.2 * 0.3  # the second waited 0.1 s, the third 0.2 s
    assert cum(block, "lock_user", sample_type="contentions") == 2
    cprof.set_block_profile_rate(0)
    assert not hasattr(asyncio.Lock.acquire, "__cprof_original__")  # restored
