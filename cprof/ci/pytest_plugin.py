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

import hashlib
import os
import re
import tempfile

import pytest

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Generator

    from ..pprof.profile import Profile
    from .check import CheckResult

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
    if config.getoption("cprof"):
        # Under pytest-xdist each worker profiles its own tests into a file of
        # its own (cprof merge joins them); the controller runs none.
        worker = getattr(config, "workerinput", {}).get("workerid")
        name = f"cprof-session-{worker}.prof" if worker else "cprof-session.prof"
        config.stash[_SESSION] = _SessionProfile(config.getoption("cprof_dir"), name)


class _SessionProfile:
    """--cprof: the session's CPU profile, paused while a marked test runs
    its own (one CPU profile at a time) and made of the pieces."""

    def __init__(self, directory: str | None, name: str) -> None:
        self.directory = directory
        self.name = name
        self.pieces: list[Profile] = []
        self.path: str | None = None
        self.resume()

    def pause(self) -> None:
        from ..collect import cpu
        if cpu._session is not None:
            self.pieces.append(cpu.stop_cpu_profile())

    def resume(self) -> None:
        from ..collect import cpu
        cpu.start_cpu_profile(hz=_SESSION_HZ)

    def finish(self) -> Profile | None:
        from ..pprof.ops import merge
        self.pause()
        if not self.pieces:
            return None
        profile = merge(self.pieces)
        directory = self.directory or "."
        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, self.name)
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
    """A file name for a test id: readable, and unique (test[a b] and
    test[a/b] read alike, so a short hash of the id follows)."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:120] or "test"
    digest = hashlib.sha1(nodeid.encode()).hexdigest()[:8]
    return f"{readable}-{digest}"


def _directory(config: pytest.Config) -> str:
    chosen = config.getoption("cprof_dir")
    if chosen:
        os.makedirs(chosen, exist_ok=True)
        return str(chosen)
    if not hasattr(config, "_cprof_tmp"):
        config._cprof_tmp = tempfile.mkdtemp(prefix="cprof-pytest-")  # type: ignore[attr-defined]
    return str(config._cprof_tmp)  # type: ignore[attr-defined]


class _Budgets:
    """A marker's budgets, every one checked before the test runs."""

    def __init__(self, marker: pytest.Mark) -> None:
        from .check import BudgetError, parse_amount, parse_fraction
        kwargs = _budgets(marker)
        shares = kwargs.get("max_share") or {}
        if not isinstance(shares, dict):
            raise BudgetError(f"max_share must be a dict of regex to budget, such as "
                              f"{{r'json\\.': '5%'}}, not {shares!r}")
        for regex, budget in shares.items():
            try:
                re.compile(regex)
            except (re.error, TypeError) as e:
                raise BudgetError(f"max_share: {regex!r} is not a regular expression: {e}")
            parse_fraction(budget, f"max_share budget for {regex!r}", most=1.0)
        self.shares: dict[str, Any] = dict(shares)
        self.cpu, self.alloc, self.inuse = (kwargs.get(k) for k in ("max_cpu", "max_alloc",
                                                                    "max_inuse"))
        for key, value, unit in (("max_cpu", self.cpu, "nanoseconds"),
                                 ("max_alloc", self.alloc, "bytes"),
                                 ("max_inuse", self.inuse, "bytes")):
            if value is not None:
                parse_amount(value, unit, key)
        self.hz = kwargs.get("hz", _DEFAULT_HZ)
        if isinstance(self.hz, bool) or not isinstance(self.hz, (int, float)) or not (
                1 <= self.hz <= 100_000):
            raise BudgetError(f"hz must be a number from 1 to 100000, not {self.hz!r}")
        self.heap_rate = kwargs.get("heap_rate", _DEFAULT_HEAP_RATE)
        if isinstance(self.heap_rate, bool) or not isinstance(self.heap_rate, int) or (
                self.heap_rate < 1):
            raise BudgetError(f"heap_rate must be a positive int, not {self.heap_rate!r}")
        self.memory = self.alloc is not None or self.inuse is not None


# Frames of the test harness (pytest, pluggy, python -m's runpy, which is
# frozen: bare names): left out of shares, tops and flame graphs, so that
# they speak of the test ("main" must not match _pytest.main._main).
HARNESS = (r"^(_pytest|pluggy|pytest|runpy)\.|^__main__\.<module>$"
           r"|^(_run_module_as_main|_run_code)$")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return (yield)
    from ..collect import cpu as cpu_collector, heap as heap_collector
    from .check import BudgetError, check
    try:
        budgets = _Budgets(marker)
    except BudgetError as e:
        pytest.fail(f"cprof: {e}", pytrace=False)
    if budgets.memory and heap_collector.running():
        pytest.fail("cprof: a heap profile is already running, so the test's memory budget "
                    "cannot be measured", pytrace=False)
    session = item.config.stash.get(_SESSION, None)
    if session is not None:
        session.pause()
    try:
        cpu_collector.start_cpu_profile(hz=budgets.hz)
        if budgets.memory:
            heap_collector.start_heap_profile(budgets.heap_rate)
    except BaseException:
        if session is not None:
            session.resume()
        raise
    try:
        result = yield
    finally:
        heap = heap_collector.stop_heap_profile() if budgets.memory else None
        cpu = cpu_collector.stop_cpu_profile()
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
    cpu = cpu.filter(hide=HARNESS)
    results = []
    if budgets.shares or budgets.cpu is not None:
        results.append(check(cpu, max_share=budgets.shares, source=item.nodeid,
                             max_total={"cpu": budgets.cpu} if budgets.cpu is not None else None))
    if heap is not None:
        heap = heap.filter(hide=HARNESS)
        totals = {name: limit for name, limit in (("alloc_space", budgets.alloc),
                                                   ("inuse_space", budgets.inuse))
                  if limit is not None}
        results.append(check(heap, max_total=totals, source=item.nodeid))
    failed = [r for r in results if not r.passed]
    if failed:
        pytest.fail(_failure(item, failed, cpu, heap, stem, kept), pytrace=False)
    return result


def _top(profile: Profile, sample_type: str) -> str:
    """The table of profile.top(10), without pprof's header lines."""
    lines = str(profile.top(10, sample_type=sample_type)).splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("flat")), 0)
    return "\n".join(lines[start:])


def _failure(item: pytest.Item, failed: list[CheckResult], cpu: Profile, heap: Profile | None,
             stem: str, kept: bool) -> str:
    """The message of a test over budget: each budget exceeded, the top of
    the profile (and sample type) it concerns, and where its flame graph is."""
    lines = [f"cprof: {item.nodeid} is over its performance budget"]
    for result in failed:
        profile = cpu if result.sample_type == "cpu" else heap
        assert profile is not None
        for f in result.failures:
            lines.append(f"  {f.message}")
        types = dict.fromkeys(f.subject if f.kind == "total" else result.sample_type
                              for f in result.failures)
        for sample_type in types:
            flame = f"{stem}.{sample_type}.html"
            profile.flamegraph(flame, sample_type=sample_type,
                               title=f"{item.nodeid} ({sample_type})")
            result.flamegraph = flame
            lines.append(f"top of its {sample_type} profile:")
            lines.append(_top(profile, sample_type))
            lines.append(f"flame graph: {flame}")
    if kept:
        lines.append(f"profiles: {stem}.cpu.prof" + (f", {stem}.heap.prof" if heap else ""))
    return "\n".join(lines)
