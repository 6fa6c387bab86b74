"""The sampler under abuse (issue 14, items 1-4): stopping while handlers run
in a thousand threads, wall mode beside many idle threads, deep recursion
(tests/collect/test_cpu.py), and SIGPROF taken over mid-profile.

Each case runs in a child process, so that a crash is a failed test rather
than a lost test run."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import cprof
from sanitizers import UNDER_ASAN


def run_child(code: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    # -P: the installed cprof, not a checkout in the working directory
    return subprocess.run([sys.executable, "-P", "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout)


def test_stop_while_handlers_run_in_a_thousand_threads_frees_nothing_in_use() -> None:
    # Stop used to free the ring and the timer slots while other threads'
    # handlers were still writing them: SIGSEGV in 3 runs of 4 with 1,000
    # threads. Ten start/stop cycles in one process, every thread signalled.
    r = run_child("""
        import threading, time, cprof
        ev = threading.Event()
        threads = [threading.Thread(target=ev.wait, daemon=True) for _ in range(1000)]
        for t in threads:
            t.start()
        for cycle in range(10):
            cprof.start_cpu_profile(mode="wall", hz=1000)
            end = time.monotonic() + 0.1
            while time.monotonic() < end:
                pass
            p = cprof.stop_cpu_profile()
            assert p.samples, cycle
        ev.set()
        print("ok")
    """)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.returncode, r.stderr[-2000:])


def test_wall_mode_beside_two_thousand_idle_threads_costs_the_program_little() -> None:
    # Each signal woke a thread blocked in lock.acquire(), which retook the
    # GIL: with 1,000 idle threads a 1 s loop took ~15 s, with 2,000 it made
    # no progress in 60 s. Now the threads that do not run get no signal.
    # (The time is a guard against that livelock, not a benchmark: see
    # benchmarks/wall_threads.py for the overhead.)
    r = run_child("""
        import threading, time, cprof
        N = 2000
        ev = threading.Event()
        def idle():
            ev.wait()
        threads = [threading.Thread(target=idle, name=f"idle-{i}", daemon=True) for i in range(N)]
        for t in threads:
            t.start()
        def loop(n):
            x = 0
            for i in range(n):
                x += i
        t0 = time.perf_counter(); loop(1_000_000); n = int(1_000_000 / (time.perf_counter() - t0))
        t0 = time.perf_counter(); loop(n); unprofiled = time.perf_counter() - t0  # about 1 s
        cprof.start_cpu_profile(mode="wall", hz=100)
        t0 = time.perf_counter(); loop(n); profiled = time.perf_counter() - t0
        p = cprof.stop_cpu_profile()
        idle_ns = sum(s.values[1] for s in p.samples
                      if str(s.labels.get("thread_name", "")).startswith("idle-"))
        leaves = {tuple(l.lines[0].function.name for l in s.locations[:2]) for s in p.samples
                  if str(s.labels.get("thread_name", "")).startswith("idle-")}
        print(repr({"unprofiled": unprofiled, "profiled": profiled, "idle_ns": idle_ns,
                    "expected_ns": N * p.duration_ns, "leaves": sorted(leaves),
                    "samples": sum(s.values[0] for s in p.samples
                                   if str(s.labels.get("thread_name", "")).startswith("idle-")),
                    "duration_ns": p.duration_ns}))
        ev.set()
    """)
    assert r.returncode == 0, r.stderr[-2000:]
    out = eval(r.stdout.strip().splitlines()[-1])
    assert out["profiled"] < 3 * out["unprofiled"] + 0.5, out
    # Every idle thread's wall time is there, within 10%, where it waits.
    # Under ASan, where a tick over 2,000 threads costs several times more, a
    # whole-suite run found 89.9% once (cause not found): 20% there.
    low = 0.8 if UNDER_ASAN else 0.9
    assert low < out["idle_ns"] / out["expected_ns"] < 1.1, out
    # In the C function the wait calls (collect/leaf.py).
    assert out["leaves"] == [("_thread.lock.acquire", "threading.Condition.wait")], out
    # As many samples as 100 Hz gives, though the idle threads got no signal.
    expected_samples = 2000 * out["duration_ns"] / 1e9 * 100
    assert 0.8 < out["samples"] / expected_samples < 1.2, out


def test_wall_mode_follows_a_thread_from_one_wait_to_another() -> None:
    # A thread that spends almost no CPU but moves between two waits: its
    # stack is taken again whenever it ran, so each wait gets its share.
    r = run_child("""
        import queue, threading, time, cprof
        q = queue.Queue()
        stop = threading.Event()
        def in_queue():
            try:
                q.get(timeout=0.05)
            except queue.Empty:
                pass
        def in_sleep():
            time.sleep(0.05)
        def worker():
            while not stop.is_set():
                in_queue()
                in_sleep()
        t = threading.Thread(target=worker, name="mover")
        cprof.start_cpu_profile(mode="wall", hz=100)
        t.start()
        time.sleep(2.0)
        stop.set()
        t.join()
        p = cprof.stop_cpu_profile()
        share = {"in_queue": 0, "in_sleep": 0}
        for s in p.samples:
            if s.labels.get("thread_name") != "mover":
                continue
            names = [loc.lines[0].function.name for loc in s.locations]
            for k in share:
                if "<string>." + k in names:  # python -c's code
                    share[k] += s.values[1]
        print(repr(share))
    """)
    assert r.returncode == 0, r.stderr[-2000:]
    share = eval(r.stdout.strip().splitlines()[-1])
    total = share["in_queue"] + share["in_sleep"]
    assert total > 1.5e9, share
    assert 0.4 < share["in_queue"] / total < 0.6, share


TAKEOVER = """
    import signal, sys, time, cprof

    def burn(seconds):
        end = time.process_time() + seconds
        while time.process_time() < end:
            for _ in range(1000):  # Python's work, not the clock's (a C callee)
                pass

    def first():
        burn(0.3)

    def second():
        burn(0.7)

    theirs = []
    cprof.start_cpu_profile(hz=100)
    first()
    # Another profiler takes SIGPROF over, as a library would.
    signal.signal(signal.SIGPROF, lambda signo, frame: theirs.append(signo))
    signal.setitimer(signal.ITIMER_PROF, 0.01, 0.01)
    second()
    p = cprof.stop_cpu_profile()
    signal.setitimer(signal.ITIMER_PROF, 0, 0)
    flat = {}
    for s in p.samples:
        name = s.locations[0].lines[0].function.name
        flat[name] = flat.get(name, 0) + s.values[1]
    print(repr({"flat": flat, "comments": p.comments, "theirs": len(theirs),
                "handler": signal.getsignal(signal.SIGPROF) is not signal.SIG_DFL}))
"""


def test_sigprof_taken_over_stops_sampling_and_says_so() -> None:
    # 0.3 s in first(), then another handler takes SIGPROF and 0.7 s go to
    # second(): that time used to be added to first()'s last sample (100%
    # first, "0 lost"). Now it is <sampling stopped>, said in the profile's
    # comments and on stderr, and the other handler keeps the signal.
    r = run_child(TAKEOVER)
    assert r.returncode == 0, r.stderr[-2000:]
    out = eval(r.stdout.strip().splitlines()[-1])
    flat = out["flat"]
    first = flat.get("<string>.burn", 0)  # python -c's code is named after <string>
    stopped = flat.get("<sampling stopped>", 0)
    assert 0.2e9 < first < 0.45e9, flat
    assert 0.5e9 < stopped < 0.9e9, flat
    assert any("SIGPROF's handler was replaced" in c for c in out["comments"]), out["comments"]
    assert "cprof: warning: SIGPROF's handler was replaced" in r.stderr, r.stderr
    assert out["theirs"] > 10, out  # their profiler kept working: no timer of ours fed it
    assert out["handler"], out  # and their handler stayed installed


def test_profile_without_takeover_says_nothing_of_it() -> None:
    with cprof.cpu(hz=200) as c:
        sum(i * i for i in range(300_000))
    assert c.profile is not None
    assert not any("replaced" in x for x in c.profile.comments)
    assert all(s.locations[0].lines[0].function.name != "<sampling stopped>"
               for s in c.profile.samples)


def test_cprofs_threads_take_no_signal_meant_for_the_program() -> None:
    # A signal sent to the process goes to any thread that does not block it.
    # Taken by one of cprof's threads, it interrupts none of the program's
    # waits: a main thread blocked in lock.acquire() until SIGTERM's handler
    # runs waited for ever. With the program's only thread blocking SIGUSR1,
    # the signal must stay pending for it, not be taken by cprof's threads:
    # the sampler's (cpu and wall) and the live server's with a request
    # being served.
    r = run_child("""
        import os, signal, time, urllib.request, cprof
        seen = []
        signal.signal(signal.SIGUSR1, lambda *a: seen.append("handled"))

        def sent_while_blocked():
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
            os.kill(os.getpid(), signal.SIGUSR1)
            time.sleep(0.1)  # time for another thread to take it
            pending = signal.SIGUSR1 in signal.sigpending()
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
            for _ in range(1000):  # the handler runs at the eval loop's next look
                pass
            return pending

        for mode in ("cpu", "wall"):
            seen.clear()
            cprof.start_cpu_profile(mode=mode, hz=100)
            pending = sent_while_blocked()
            cprof.stop_cpu_profile()
            assert pending, f"{mode}: SIGUSR1 was taken by another thread"
            assert seen == ["handled"], (mode, seen)
        seen.clear()
        with cprof.serve(port=0) as server:
            urllib.request.urlopen(server.url + "goroutine?debug=1").read()
            pending = sent_while_blocked()
        assert pending, "live server: SIGUSR1 was taken by another thread"
        assert seen == ["handled"], seen
        print("ok")
    """)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr
