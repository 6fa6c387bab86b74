"""Thread and task dumps: lookup("goroutine") and lookup("threadcreate") on
real threads and asyncio tasks, read back by Go's pprof (issue 6, "Thread
and task dumps")."""

from __future__ import annotations

import asyncio
import io
import queue
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

import cprof
from cprof import threaddump
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
        assert names[:3] == ["threading.Condition.wait", "queue.Queue.get",
                             "test_threaddump.parked_on_queue"]
        assert t.created_by is not None and t.created_by[0].system_name == "start_parked"
        assert t.created_in == threading.get_ident()
    ev = by_name["event-waiter"]
    assert not ev.daemon and [f.system_name for f in ev.stack[:3]] == [
        "wait", "wait", "parked_on_event"]


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
    assert q0[1] == "threading.Condition.wait(...)" and q0[2].startswith("\t/")
    assert q0[-2].startswith("created by test_threaddump.start_parked in thread ")
    assert "cprof.lookup" not in text  # the dumping thread's own cprof frames are left out


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
    assert any(row.name == "threading.Condition.wait" and row.flat.value >= 4 for row in top.rows)


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
