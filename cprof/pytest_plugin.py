"""pytest_plugin: performance budgets on tests (registered as pytest11 "cprof").

::

    @pytest.mark.cprof(max_share={r"json\\.": "5%"}, max_cpu="2s", max_alloc="64MB")
    def test_export(): ...

profiles the test (CPU at 1000 Hz; the heap as well when a memory budget is
given) and fails it when a budget is exceeded, with a message naming the
budget and the measured value, the top of its profile and the path of its
flame graph. ``--cprof-dir DIR`` keeps every profiled test's profiles;
``--cprof`` profiles the whole session. Without the marker or the options
the plugin does nothing (pytest loads it in every session of an environment
where cprof is installed).
"""

from __future__ import annotations

import os
import re
import tempfile
from typing import TYPE_CHECKING, Any, Generator

import pytest

if TYPE_CHECKING:
    from .check import CheckResult
    from .profile import Profile

MARKER = "cprof"
_KEYS = ("max_share", "max_cpu", "max_alloc", "max_inuse", "hz", "heap_rate")
_DEFAULT_HZ = 1000
_DEFAULT_HEAP_RATE = 64 * 1024
_SESSION_HZ = 100


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cprof", "cprof: profiles and performance budgets")
    group.addoption("--cprof", action="store_true", default=False,
                    help="profile the whole session's CPU time; write cprof-session.prof (in "
                         "--cprof-dir, if given) and print its top")
    group.addoption("--cprof-dir", metavar="DIR", default=None,
                    help="keep the profiles (and failures' flame graphs) of every test marked "
                         "@pytest.mark.cprof in DIR")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cprof(max_share={regex: '5%'}, max_cpu='1s', max_alloc='64MB', "
        "max_inuse='8MB', hz=1000, heap_rate=65536): profile the test and fail it when a "
        "budget is exceeded")
    if config.getoption("cprof") and not hasattr(config, "workerinput"):
        config.stash[_SESSION] = _SessionProfile(config.getoption("cprof_dir"))


class _SessionProfile:
    """--cprof: the session's CPU profile, paused while a marked test runs
    its own (one CPU profile at a time) and made of the pieces."""

    def __init__(self, directory: str | None) -> None:
        self.directory = directory
        self.pieces: list[Profile] = []
        self.path: str | None = None
        self.resume()

    def pause(self) -> None:
        from . import collect
        if collect._session is not None:
            self.pieces.append(collect.stop_cpu_profile())

    def resume(self) -> None:
        from . import collect
        collect.start_cpu_profile(hz=_SESSION_HZ)

    def finish(self) -> Profile | None:
        from .ops import merge
        self.pause()
        if not self.pieces:
            return None
        profile = merge(self.pieces)
        directory = self.directory or "."
        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, "cprof-session.prof")
        profile.write(self.path)
        return profile


_SESSION = pytest.StashKey[_SessionProfile]()
_SESSION_PROFILE = pytest.StashKey["Profile"]()


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(_SESSION, None)
    if state is not None:
        profile = state.finish()
        if profile is not None:
            session.config.stash[_SESSION_PROFILE] = profile


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash.get(_SESSION, None)
    profile = config.stash.get(_SESSION_PROFILE, None)
    if state is None or profile is None:
        return
    terminalreporter.section("cprof")
    terminalreporter.write_line(f"session CPU profile: {state.path}")
    terminalreporter.write(str(profile.top(10)))


def _budgets(marker: pytest.Mark) -> dict[str, Any]:
    from .check import BudgetError
    if marker.args:
        raise BudgetError("@pytest.mark.cprof takes keyword arguments only: "
                          + ", ".join(_KEYS))
    unknown = set(marker.kwargs) - set(_KEYS)
    if unknown:
        raise BudgetError(f"@pytest.mark.cprof has no {', '.join(sorted(unknown))}: it takes "
                          + ", ".join(_KEYS))
    return dict(marker.kwargs)


def _safe_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:150] or "test"


def _directory(config: pytest.Config) -> str:
    chosen = config.getoption("cprof_dir")
    if chosen:
        os.makedirs(chosen, exist_ok=True)
        return str(chosen)
    if not hasattr(config, "_cprof_tmp"):
        config._cprof_tmp = tempfile.mkdtemp(prefix="cprof-pytest-")  # type: ignore[attr-defined]
    return str(config._cprof_tmp)  # type: ignore[attr-defined]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return (yield)
    from . import collect, heapprof
    from .check import Amount, BudgetError, check, parse_amount
    try:
        budgets = _budgets(marker)
        shares: dict[str, Amount] = dict(budgets.get("max_share") or {})
        cpu_limit = budgets.get("max_cpu")
        alloc_limit = budgets.get("max_alloc")
        inuse_limit = budgets.get("max_inuse")
        for value, unit in ((cpu_limit, "nanoseconds"), (alloc_limit, "bytes"),
                            (inuse_limit, "bytes")):
            if value is not None:
                parse_amount(value, unit)
    except BudgetError as e:
        pytest.fail(f"cprof: {e}", pytrace=False)
    memory = alloc_limit is not None or inuse_limit is not None
    session = item.config.stash.get(_SESSION, None)
    if session is not None:
        session.pause()
    if memory and heapprof.running():
        pytest.fail("cprof: a heap profile is already running, so the test's memory budget "
                    "cannot be measured", pytrace=False)
    collect.start_cpu_profile(hz=budgets.get("hz", _DEFAULT_HZ))
    if memory:
        heapprof.start_heap_profile(budgets.get("heap_rate", _DEFAULT_HEAP_RATE))
    try:
        result = yield
    finally:
        heap = heapprof.stop_heap_profile() if memory else None
        cpu = collect.stop_cpu_profile()
        if session is not None:
            session.pieces.append(cpu)
            session.resume()
    directory = _directory(item.config)
    stem = os.path.join(directory, _safe_name(item.nodeid))
    kept = item.config.getoption("cprof_dir") is not None
    if kept:
        cpu.write(stem + ".cpu.prof")
        if heap is not None:
            heap.write(stem + ".heap.prof")
    results = [check(cpu, max_share=shares,
                     max_total={"cpu": cpu_limit} if cpu_limit is not None else None,
                     source=item.nodeid)]
    if heap is not None:
        totals = {name: limit for name, limit in (("alloc_space", alloc_limit),
                                                   ("inuse_space", inuse_limit))
                  if limit is not None}
        results.append(check(heap, max_total=totals, source=item.nodeid))
    failed = [r for r in results if not r.passed]
    if failed:
        pytest.fail(_failure(item, failed, cpu, heap, stem, kept), pytrace=False)
    return result


def _failure(item: pytest.Item, failed: list[CheckResult], cpu: Profile, heap: Profile | None,
             stem: str, kept: bool) -> str:
    """The message of a test over budget: each budget exceeded, the top of
    the profile it concerns, and where its flame graph is."""
    lines = [f"cprof: {item.nodeid} is over its performance budget"]
    for result in failed:
        profile = cpu if result.sample_type == "cpu" else heap
        assert profile is not None
        flame = f"{stem}.{result.sample_type}.html"
        profile.flamegraph(flame, sample_type=result.sample_type,
                           title=f"{item.nodeid} ({result.sample_type})")
        result.flamegraph = flame
        lines += [f"  {f.message}" for f in result.failures]
        lines.append(f"top of its {result.sample_type} profile:")
        lines.append(str(profile.top(10, sample_type=result.sample_type)).rstrip("\n"))
        lines.append(f"flame graph: {flame}")
    if kept:
        lines.append(f"profiles: {stem}.cpu.prof" + (f", {stem}.heap.prof" if heap else ""))
    return "\n".join(lines)
