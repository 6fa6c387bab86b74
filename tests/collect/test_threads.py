"""Thread and task dumps: lookup("goroutine") and lookup("threadcreate") on
real threads and asyncio tasks, read back by Go's pprof (issue 6, "Thread
and task dumps")."""

from __future__ import annotations

import asyncio
import io
import queue
import sys
import threading
import time
import types
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Awaitable, Callable, Generator, Iterator

import pytest

import cprof
from cprof.collect import threads as threaddump
from cpu_helpers import run_python
from gotools import pprof_raw, pprof_top


def parked_on_queue(q: queue.Queue[int]) -> None:
    q.get()


def parked_on_event(ev: threading.Event) -> None:
    ev.wait()


def start_parked(n: int) -> tuple[list[threading.Thread], queue.Queue[int], threading.Event]:
    q: queue.Queue[int] = queue.Queue()
    ev = threading.Event()
    threads = [threading.Thread(target=parked_on_queue, args=(q,), name=f"q-{i}", daemon=True)
               for i in range(n)]
    threads.append(threading.Thread(target=parked_on_event, args=(ev,), name="event-waiter"))
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # until every thread is parked in its wait
        states = {t.name: t.state for t in threaddump.dump().threads}
        if all(states.get(t.name, "").startswith("waiting") for t in threads):
            break
        time.sleep(0.01)
    return threads, q, ev


@pytest.fixture
def parked() -> Iterator[list[threading.Thread]]:
    # Who started a thread is recorded while a collector runs (patches.thread_creators).
    with cprof.cpu():
        threads, q, ev = start_parked(3)
    yield threads
    ev.set()
    for _ in range(3):
        q.put(0)
    for t in threads:
        t.join()


def test_dump_names_every_thread_its_state_stack_and_creator(
        parked: list[threading.Thread]) -> None:
    d = threaddump.dump()
    by_name = {t.name: t for t in d.threads}
    me = by_name[threading.current_thread().name]
    assert me.state == "running" and d.threads[0] is me
    assert me.stack[0].system_name == "test_dump_names_every_thread_its_state_stack_and_creator"
    for i in range(3):
        t = by_name[f"q-{i}"]
        assert t.daemon and t.native_id == parked[i].native_id
        assert t.state == "waiting on threading.Condition"
        names = [f.name for f in t.stack]
        # From the C function the wait calls (collect/leaf.py).
        assert names[:4] == ["_thread.lock.acquire", "threading.Condition.wait",
                             "queue.Queue.get", "test_threads.parked_on_queue"]
        assert t.created_by is not None and t.created_by[0].system_name == "start_parked"
        assert t.created_in == threading.get_ident()
    ev = by_name["event-waiter"]
    assert not ev.daemon and [f.system_name for f in ev.stack[:4]] == [
        "acquire", "wait", "wait", "parked_on_event"]


def test_full_dump_reads_like_gos(parked: list[threading.Thread]) -> None:
    buf = io.BytesIO()
    cprof.lookup("goroutine").write_to(buf, debug=2)
    text = buf.getvalue().decode()
    blocks = text.strip().split("\n\n")
    head = blocks[0].splitlines()[0]
    assert head.startswith(f"thread {threading.get_ident()} \"MainThread\"")
    assert head.endswith("[running]:")
    q0 = next(b for b in blocks if '"q-0"' in b).splitlines()
    assert q0[0].endswith(", daemon) [waiting on threading.Condition]:")
    assert q0[1] == "_thread.lock.acquire(...)" and q0[2].startswith("\t")
    assert q0[3] == "threading.Condition.wait(...)" and q0[4].startswith("\t/")
    assert q0[-2].startswith("created by test_threads.start_parked in thread ")
    assert "cprof.collect" not in text  # the dumping thread's own cprof frames are left out


def test_a_thousand_threads_are_all_dumped() -> None:
    threads, q, ev = start_parked(1000)
    try:
        d = threaddump.dump()
        assert sum(1 for t in d.threads if t.name.startswith("q-")) == 1000
        p = threaddump.goroutine_profile(d)  # what lookup("threads") gives, of this dump
        assert p.total() == len(d.threads) + len(d.tasks)
        parked = [s for s in p.samples if any(
            loc.lines[0].function.system_name == "parked_on_queue" for loc in s.locations)]
        # Identical stacks collapse into one sample, as in Go.
        assert [(s.values[0], s.labels["state"]) for s in parked] == [
            (1000, "waiting on threading.Condition")]
    finally:
        ev.set()
        for _ in range(1000):
            q.put(0)
        for t in threads:
            t.join()


def test_asyncio_tasks_with_their_await_chains() -> None:
    ready = threading.Event()
    release: list[asyncio.Event] = []
    loop_box: list[asyncio.AbstractEventLoop] = []

    async def innermost(ev: asyncio.Event) -> None:
        await ev.wait()

    async def middle(ev: asyncio.Event) -> None:
        await innermost(ev)

    async def main() -> None:
        ev = asyncio.Event()
        release.append(ev)
        loop_box.append(asyncio.get_running_loop())
        tasks = [asyncio.create_task(middle(ev), name=f"handler-{i}") for i in range(4)]
        await asyncio.sleep(0)
        ready.set()
        await asyncio.gather(*tasks)

    runner = threading.Thread(target=asyncio.run, args=(main(),), name="loop")
    runner.start()
    try:
        assert ready.wait(10)
        d = threaddump.dump()
        handlers = [t for t in d.tasks if t.name.startswith("handler-")]
        assert len(handlers) == 4
        for t in handlers:
            assert t.state == "pending" and t.thread == runner.ident
            assert [f.system_name for f in t.stack[:3]] == ["wait", "innermost", "middle"]
            assert t.awaiting == "Future"
        p = threaddump.goroutine_profile(d)
        tasks = sum(s.values[0] for s in p.samples if s.labels["kind"] == "task")
        assert tasks == len(d.tasks) >= 5  # the handlers and main()
    finally:
        loop_box[0].call_soon_threadsafe(release[0].set)
        runner.join()


# asyncio records who awaits a task (gather, TaskGroup, awaiting a task) from 3.14 on.
AWAITED_BY = sys.version_info >= (3, 14)


@contextmanager
def loop_thread(main: Callable[[asyncio.Event], Awaitable[None]]) -> Iterator[None]:
    """asyncio.run(main(stop)) on a thread of its own, in a task named "root",
    until the block ends: stop is set then, and the thread joined."""
    box: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
    started = threading.Event()

    async def root() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.set_name("root")
        box.append((asyncio.get_running_loop(), asyncio.Event()))
        started.set()
        await main(box[0][1])

    runner = threading.Thread(target=asyncio.run, args=(root(),), name="loop")
    runner.start()
    try:
        assert started.wait(10)
        yield
    finally:
        loop, stop = box[0]
        loop.call_soon_threadsafe(stop.set)
        runner.join(10)
        assert not runner.is_alive()


def dump_when(ready: Callable[[dict[str, threaddump.TaskDump]], bool]) -> threaddump.Dump:
    """A dump taken once the tasks, by name, are where the test wants them
    (the last one after 10 s: the asserts then say what is wrong)."""
    deadline = time.monotonic() + 10
    while True:
        d = threaddump.dump()
        if ready({t.name: t for t in d.tasks}) or time.monotonic() > deadline:
            return d
        time.sleep(0.01)


def awaiters(t: threaddump.TaskDump) -> list[tuple[str, bool, str]]:
    return [(a.name, a.is_task, a.frame.system_name if a.frame else "") for a in t.awaited_by]


async def waits_for(ev: asyncio.Event) -> None:
    await ev.wait()


async def worker(ev: asyncio.Event) -> None:
    await waits_for(ev)


def test_tasks_name_the_tasks_that_await_them() -> None:
    async def fan_out(stop: asyncio.Event) -> None:
        await asyncio.gather(*(asyncio.create_task(worker(stop), name=f"gathered-{i}")
                               for i in range(2)))

    async def grouping(stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(worker(stop), name="grouped")
            tg.create_task(fan_out(stop), name="fan-out")

    async def main(stop: asyncio.Event) -> None:
        await asyncio.create_task(grouping(stop), name="grouping")

    leaves = ("grouped", "gathered-0", "gathered-1")
    with loop_thread(main):
        d = dump_when(lambda tasks: all(
            n in tasks and tasks[n].awaiting for n in leaves + ("fan-out", "grouping", "root")))
        tasks = {t.name: t for t in d.tasks}
        for name in leaves:
            assert [f.system_name for f in tasks[name].stack[:3]] == ["wait", "waits_for", "worker"]
            assert tasks[name].awaiting == "Future" and tasks[name].state == "pending"
        assert tasks["fan-out"].stack[0].system_name == "fan_out"
        assert tasks["fan-out"].awaiting == "GatheringFuture"
        assert tasks["grouping"].stack[-1].system_name == "grouping"
        assert tasks["root"].awaiting == "task grouping"
        if AWAITED_BY:
            # Where each awaits is its innermost frame outside asyncio: the
            # program's "async with" line, not TaskGroup.__aexit__'s frames.
            assert awaiters(tasks["grouping"]) == [("root", True, "main")]
            for name in ("grouped", "fan-out"):
                assert awaiters(tasks[name]) == [("grouping", True, "grouping")]
            for name in ("gathered-0", "gathered-1"):
                assert awaiters(tasks[name]) == [("fan-out", True, "fan_out")]
            assert awaiters(tasks["root"]) == []
        else:
            assert all(t.awaited_by == [] for t in d.tasks)
        text = threaddump.full_text(d)
    block = next(b for b in text.split("\n\n") if b.startswith('task "gathered-0"')).splitlines()
    assert block[1:4:2] == ["asyncio.locks.Event.wait(...)", "test_threads.waits_for(...)"]
    if AWAITED_BY:
        assert block[-2] == ("awaited by test_threads.test_tasks_name_the_tasks_that_await_them"
                             '.<locals>.fan_out in task "fan-out"')
        assert block[-1].startswith("\t/") and "test_threads.py:" in block[-1]
    else:
        assert not any(line.startswith("awaited by") for line in text.splitlines())


def dump_in_a_sync_call() -> threaddump.Dump:
    return threaddump.dump()


def test_a_task_dumping_itself_shows_the_frames_it_runs() -> None:
    async def inner() -> threaddump.Dump:
        return dump_in_a_sync_call()

    async def outer() -> threaddump.Dump:
        return await inner()

    d = asyncio.run(outer())
    me = next(t for t in d.tasks if t.stack and t.stack[-1].system_name == "outer")
    assert me.awaiting == ""
    if AWAITED_BY:
        # asyncio's call graph walks the running task from its caller's frame:
        # every frame down to the dump, cprof's own left out.
        assert [f.system_name for f in me.stack] == ["dump_in_a_sync_call", "inner", "outer"]
    else:  # a running coroutine does not say what it awaits
        assert [f.system_name for f in me.stack] == ["outer"]


@types.coroutine
def generator_based(fut: asyncio.Future[None]) -> Generator[Any, None, None]:
    yield from fut


async def awaits_a_generator(fut: asyncio.Future[None]) -> None:
    await generator_based(fut)


def test_a_generator_based_coroutine_keeps_its_frame() -> None:
    # asyncio's call graph stops at the first awaitable that is no native
    # coroutine: the generator's frame and what it waits on come from beyond it.
    async def main(stop: asyncio.Event) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(awaits_a_generator(fut), name="generator")
        await stop.wait()
        fut.set_result(None)
        await task

    with loop_thread(main):
        d = dump_when(lambda tasks: "generator" in tasks and tasks["generator"].awaiting != "")
    task = next(t for t in d.tasks if t.name == "generator")
    assert [f.system_name for f in task.stack] == ["generator_based", "awaits_a_generator"]
    assert task.awaiting == "Future"


async def awaits_task(other: list[asyncio.Task[None]]) -> None:
    await asyncio.sleep(0)
    await other[0]


async def waits_on_task(other: list[asyncio.Task[None]]) -> None:
    await asyncio.sleep(0)
    await asyncio.wait(other)


def test_tasks_awaiting_each_other_are_dumped() -> None:
    # A deadlock of tasks: asyncio's call graph follows awaited_by round the
    # cycle without end, and the dump must still come out.
    async def main(stop: asyncio.Event) -> None:
        a: list[asyncio.Task[None]] = []
        b: list[asyncio.Task[None]] = []
        a.append(asyncio.create_task(awaits_task(b), name="cycle-a"))
        b.append(asyncio.create_task(waits_on_task(a), name="cycle-b"))
        await stop.wait()
        b[0].cancel()  # b waits in asyncio.wait, which does not cancel a: the cycle ends
        await asyncio.gather(a[0], b[0], return_exceptions=True)

    with loop_thread(main):
        d = dump_when(lambda tasks: all(n in tasks and tasks[n].awaiting
                                        for n in ("cycle-a", "cycle-b")))
        text = threaddump.full_text(d)
    tasks = {t.name: t for t in d.tasks}
    assert tasks["cycle-a"].awaiting == "task cycle-b"
    assert tasks["cycle-a"].stack[0].system_name == "awaits_task"
    assert "waits_on_task" in [f.system_name for f in tasks["cycle-b"].stack]
    if AWAITED_BY:
        assert awaiters(tasks["cycle-a"]) == [("cycle-b", True, "waits_on_task")]
        assert awaiters(tasks["cycle-b"]) == [("cycle-a", True, "awaits_task")]
        assert 'in task "cycle-b"' in text and 'in task "cycle-a"' in text


def test_go_pprof_reads_goroutine_and_threadcreate(parked: list[threading.Thread],
                                                   tmp_path: Path) -> None:
    for name in ("goroutine", "threadcreate"):
        proto, text = tmp_path / f"{name}.prof", tmp_path / f"{name}.txt"
        cprof.lookup(name).write_to(proto)
        cprof.lookup(name).write_to(text, debug=1)
        ours = cprof.load(proto)
        assert [t.type for t in ours.sample_types] == [name]
        raw = pprof_raw(proto)
        assert raw.sample_types == [f"{name}/count"] and raw.period == 1
        assert sum(s.values[0] for s in raw.samples) == ours.total() >= 5
        # pprof parses Go's legacy text form too. (Text and proto are two dumps:
        # threads of earlier tests may have ended in between.)
        legacy = pprof_raw(text)
        head = text.read_text().splitlines()[0]
        assert head.startswith(f"{name} profile: total ")
        assert sum(s.values[0] for s in legacy.samples) == int(head.rsplit(" ", 1)[1]) >= 5
    top = pprof_top(tmp_path / "goroutine.prof")
    assert any(row.name == "_thread.lock.acquire" and row.flat.value >= 4 for row in top.rows)
    assert any(row.name == "threading.Condition.wait" and row.cum.value >= 4 for row in top.rows)


def test_a_thread_started_while_nothing_records_has_no_known_creator() -> None:
    threads, q, ev = start_parked(1)
    try:
        by_name = {t.name: t for t in threaddump.dump().threads}
        assert by_name["q-0"].created_by is None
    finally:
        ev.set()
        q.put(0)
        for t in threads:
            t.join()


def test_the_main_thread_was_started_by_no_python_code() -> None:
    p = threaddump.threadcreate_profile()
    names = {s.locations[0].lines[0].function.name: s.values[0] for s in p.samples}
    assert names.get("<main thread>") == 1


def test_a_deadlock_names_both_locks_and_their_holders(tmp_path: Path) -> None:
    r = run_python("""
        import io, os, threading, time
        import cprof
        cprof.set_block_profile_rate(1)
        accounts = threading.Lock()
        ledger = threading.Lock()
        def transfer():
            with accounts:
                time.sleep(0.2)
                with ledger:
                    pass
        def audit():
            with ledger:
                time.sleep(0.2)
                with accounts:
                    pass
        for name, target in (("transfer", transfer), ("audit", audit)):
            threading.Thread(target=target, name=name, daemon=True).start()
        time.sleep(1.0)
        buf = io.BytesIO()
        cprof.lookup("goroutine").write_to(buf, debug=2)
        print(buf.getvalue().decode(), flush=True)
        os._exit(0)
    """, tmp_path)
    assert r.returncode == 0, r.stderr
    text = r.stdout
    script = str(tmp_path / "child.py")
    assert text.startswith("deadlock between 2 threads:\n")
    head = text.split("\n\n")[0]
    idents = {line.split('"')[1]: line.split()[1] for line in head.splitlines()[1:]}
    assert len(idents) == 2
    accounts_at, ledger_at = f"{script}:5 (<module>)", f"{script}:6 (<module>)"
    assert (f'"audit" is waiting on lock made at {accounts_at}, held by thread '
            f'{idents["transfer"]} "transfer"') in head
    assert (f'"transfer" is waiting on lock made at {ledger_at}, held by thread '
            f'{idents["audit"]} "audit"') in head
    assert f'thread {idents["audit"]} "audit" (native ' in text


def test_a_recorded_wait_says_what_it_waits_on() -> None:
    cprof.set_block_profile_rate(1)
    try:
        q: queue.Queue[int] = queue.Queue()
        t = threading.Thread(target=parked_on_queue, args=(q,), name="recorded")
        t.start()
        deadline = time.monotonic() + 10
        state = ""
        while time.monotonic() < deadline and not state.startswith("waiting on a Condition"):
            state = next(x.state for x in threaddump.dump().threads if x.name == "recorded")
            time.sleep(0.01)
        assert state == "waiting on a Condition"
        q.put(0)
        t.join()
    finally:
        cprof.set_block_profile_rate(0)


def test_a_task_running_in_another_thread_is_dumped_without_reading_what_it_awaits() -> None:
    """A dump from one thread catches another thread's task inside a
    blocking call made from its coroutine: the task shows its frames and
    awaits nothing. Its awaitable is not asked for: 3.11 and 3.12 find a
    running coroutine's by reading the instruction after its current one
    (a call's inline cache, which may read as a RESUME) and then its value
    stack, whose top a running frame does not keep (a dump crashed in CI)."""
    inside, release = threading.Event(), threading.Event()

    async def blocking_in_a_coroutine() -> None:
        inside.set()
        release.wait()  # a sync wait: the coroutine runs, its thread waits

    def loop_thread() -> None:
        asyncio.run(blocking_in_a_coroutine())

    worker = threading.Thread(target=loop_thread)
    worker.start()
    assert inside.wait(10)
    try:
        dump = threaddump.dump()
    finally:
        release.set()
        worker.join()
    tasks = [t for t in dump.tasks if any(f.name.endswith("blocking_in_a_coroutine")
                                          for f in t.stack)]
    assert len(tasks) == 1, dump.tasks
    assert tasks[0].state == "pending" and tasks[0].awaiting == "", tasks[0]

    class Running:
        """What the walk may ask of a running coroutine (cr_await would be
        read from a running frame: asking for it fails this test)."""
        cr_running = True
        cr_frame = sys._getframe()
        cr_code = cr_frame.f_code

        @property
        def cr_await(self) -> None:
            raise AssertionError("asked a running coroutine what it awaits")

    stack, awaiting = threaddump._await_chain(Running(), {})
    assert len(stack) == 1 and awaiting == "", stack
