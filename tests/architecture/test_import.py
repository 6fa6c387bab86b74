"""Importing cprof changes nothing in the interpreter; collectors patch it
while they run, and only through collect/patches.py, which undoes it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import cprof
from cprof import _core
from cprof.collect import patches

# The interpreter's state that cprof could change, as JSON-able values.
SNAPSHOT = textwrap.dedent("""
    import atexit, json, signal, sys, threading
    def snapshot():
        return {
            "Thread.start": repr(threading.Thread.start),
            "Thread._bootstrap_inner": repr(threading.Thread._bootstrap_inner),
            "locks": [repr(getattr(threading, n)) for n in ("Lock", "RLock", "_allocate_lock")],
            "meta_path": [repr(f) for f in sys.meta_path],
            "atexit": atexit._ncallbacks(),
            "signals": [repr(signal.getsignal(s)) for s in (signal.SIGPROF, signal.SIGALRM,
                                                            signal.SIGVTALRM)],
            "threads": threading.active_count(),
            "trace": [repr(sys.gettrace()), repr(sys.getprofile())],
        }
""")


def run(code: str, tmp_path: Path) -> dict[str, object]:
    script = SNAPSHOT + textwrap.dedent(code)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    result: dict[str, object] = json.loads(r.stdout.splitlines()[-1])
    return result


def test_import_cprof_loads_two_modules_and_changes_nothing(tmp_path: Path) -> None:
    out = run("""
        before = snapshot()
        import cprof
        loaded = sorted(m for m in sys.modules if m.startswith("cprof"))
        print(json.dumps({"same": snapshot() == before, "loaded": loaded}))
    """, tmp_path)
    assert out == {"same": True, "loaded": ["cprof", "cprof._version"]}


def test_importing_every_module_of_cprof_changes_nothing(tmp_path: Path) -> None:
    out = run("""
        import pytest  # the plugin's own dependency, whose import registers an atexit callback
        before = snapshot()
        import importlib, pkgutil, cprof
        names = [m.name for m in pkgutil.walk_packages(cprof.__path__, "cprof.")
                 if m.name != "cprof.__main__"]  # that one runs the command line
        for name in names:
            importlib.import_module(name)
        after = snapshot()
        print(json.dumps({"count": len(names),
                          "changed": {k: [before[k], after[k]] for k in before
                                      if before[k] != after[k]}}))
    """, tmp_path)
    assert out["changed"] == {}
    assert isinstance(out["count"], int) and out["count"] > 40


def test_a_cpu_profile_patches_while_it_runs_and_undoes_it() -> None:
    start, bootstrap = threading.Thread.start, threading.Thread._bootstrap_inner  # type: ignore[attr-defined]
    assert [p for p in patches.applied() if p != "fork_handlers"] == []
    with cprof.cpu():
        assert {"thread_timing", "thread_creators", "exit_stop"} <= set(patches.applied())
        assert threading.Thread.start is not start
        assert threading.Thread._bootstrap_inner is not bootstrap  # type: ignore[attr-defined]
    assert [p for p in patches.applied() if p != "fork_handlers"] == []
    assert threading.Thread.start is start
    assert threading.Thread._bootstrap_inner is bootstrap  # type: ignore[attr-defined]


def test_a_patch_two_collectors_use_stays_until_the_last_stops() -> None:
    start = threading.Thread.start
    cprof.start_heap_profile()
    try:
        with cprof.cpu():
            assert patches.thread_creators.users == 2
        assert "thread_creators" in patches.applied() and "thread_timing" not in patches.applied()
        assert threading.Thread.start is not start
        assert any(isinstance(f, patches._ImportWatch) for f in sys.meta_path) or (
            patches.numpy_wrapped())
    finally:
        cprof.stop_heap_profile()
    assert threading.Thread.start is start
    assert not any(isinstance(f, patches._ImportWatch) for f in sys.meta_path)


def test_lock_profiles_swap_the_lock_types_only_while_on() -> None:
    lock, rlock = threading.Lock, threading.RLock
    cprof.set_mutex_profile_fraction(1)
    try:
        assert threading.Lock is _core.Lock and threading.RLock is _core.RLock
        cprof.set_block_profile_rate(1)
        assert "asyncio_waits" in patches.applied()
        cprof.set_mutex_profile_fraction(0)
        assert threading.Lock is _core.Lock  # the block profile still needs them
    finally:
        cprof.set_mutex_profile_fraction(0)
        cprof.set_block_profile_rate(0)
    assert threading.Lock is lock and threading.RLock is rlock
    assert [p for p in patches.applied() if p != "fork_handlers"] == []


def test_pytest_loads_little_of_cprof_when_no_test_is_marked(tmp_path: Path) -> None:
    """The plugin is loaded in every pytest session of every project with
    cprof installed: unmarked, it imports the plugin and nothing else."""
    (tmp_path / "test_plain.py").write_text(textwrap.dedent("""
        import sys
        def test_plain():
            loaded = sorted(m for m in sys.modules if m.startswith("cprof"))
            assert loaded == ["cprof", "cprof._version", "cprof.ci", "cprof.ci.pytest_plugin"], loaded
    """))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        str(tmp_path / "test_plain.py")], capture_output=True, text=True,
                       cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
