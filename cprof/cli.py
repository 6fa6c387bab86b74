"""The cprof command line: ``cprof COMMAND ...`` and ``python -m cprof``.

``cprof record`` profiles a Python program as ``python -m cProfile`` does:
in-process, with the program seeing the ``sys.argv``, ``sys.path[0]`` and
``__main__`` it would see unprofiled, and its exit status passed through.

The analysis commands (top, tree, peek, list, traces, flame, speedscope,
folded, diff, merge, web) work on pprof files from any producer, with the
options of ``go tool pprof`` under its names (``-focus``, ``-sample_index``,
``-diff_base`` ...) as well as ``--kebab-case`` ones, and print what it
prints: several PROFILE arguments are merged, the bases applied, then the
filters and the granularity, and reports take percentages of the total
before the filters (of the base's samples for a -diff_base profile).
Reports go to stdout; what was written, and warnings, to stderr.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import webbrowser
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Callable, Sequence

from . import _core, runner
from .check import DEFAULT_ALPHA, BudgetError, CheckResult, as_runs, check
from .collect import MAX_DEPTH, MAX_HZ, start_cpu_profile, stop_cpu_profile
from .heapprof import DEFAULT_RATE
from .http import DEFAULT_MAX_SECONDS
from .locks import MAX_RATE, set_block_profile_rate, set_mutex_profile_fraction
from .model import Function, Line, Location, Sample
from .filter import filter as filter_profile
from .ops import (DIFF_BASE_LABEL, aggregate, diff, map_stack, merge, subtract, unique_locations,
                  with_samples)
from .profile import Profile, check_writable, load
from .report import list_source, peek, top, traces, tree
from .report_format import active_filters, output_unit, profile_labels, scaled_label
from .report_graph import EDGE_FRACTION, NODE_FRACTION, printable_name
from .runner import ProgramError
from .server import (DEFAULT_MAX_CONNECTIONS, DEFAULT_REQUEST_TIMEOUT, TOKEN_ENV_VAR,
                     ExposedWarning, serve)
from .units import format_value


def summary(p: Profile, source: str, top: int = 10) -> str:
    """A few lines that say what a profile holds."""
    out = [f"File: {source}"]
    if p.period_type is not None:
        out.append(f"Period: {format_value(p.period, p.period_type.unit)} of "
                   f"{p.period_type.type}")
    if p.duration_ns:
        out.append(f"Duration: {format_value(p.duration_ns, 'nanoseconds')}")
    out += [f"Comment: {c}" for c in p.comments]
    out.append(f"Samples: {len(p.samples)}   Locations: {len(p.locations)}   "
               f"Functions: {len(p.functions)}   Mappings: {len(p.mappings)}")
    default = p.sample_index() if p.sample_types else -1
    for i, (t, total) in enumerate(zip(p.sample_types, p.totals())):
        mark = "  (default)" if i == default else ""
        out.append(f"  {t.type}/{t.unit}: {format_value(total, t.unit)}{mark}")
    if default >= 0 and top > 0:
        flat: dict[str, int] = {}
        for s in p.samples:
            if s.locations and s.locations[0].lines:
                fn = s.locations[0].lines[0].function
                name = fn.name if fn is not None else f"{s.locations[0].address:#x}"
                flat[name] = flat.get(name, 0) + s.values[default]
        rows = sorted(flat.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        if rows:
            unit = p.sample_types[default].unit
            out.append(f"Heaviest functions by {p.sample_types[default].type} (flat):")
            out += [f"  {format_value(v, unit):>12}  {name}" for name, v in rows]
    return "\n".join(out)


def _cmd_summary(args: argparse.Namespace) -> int:
    p = load(args.profile, max_size=args.max_size)
    print(summary(p, args.profile, args.top))
    if args.output:
        p.write(args.output, level=args.level)
        print(f"Wrote {args.output}", file=sys.stderr)
    return 0


# --- record -----------------------------------------------------------------------

class _LiveCount:
    """A sample count on the terminal, refreshed 4 times a second and
    cleared at the end; nothing when ``stream`` is not a terminal."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.done = threading.Event()
        self.thread: threading.Thread | None = None
        self.native_id: int | None = None
        try:
            tty = stream.isatty()
        except (AttributeError, ValueError):
            tty = False
        if tty:
            self.thread = threading.Thread(target=self._loop, name="cprof-live-count", daemon=True)

    def start(self) -> None:
        if self.thread is not None:
            self.thread.start()

    def _loop(self) -> None:
        self.native_id = threading.get_native_id()
        start = time.monotonic()
        while not self.done.wait(0.25):
            self._write(f"\r\x1b[Kcprof: recording, {_core.cpu_sample_count()} samples in "
                        f"{time.monotonic() - start:.1f}s")
        self._write("\r\x1b[K")

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def stop(self, timeout: float | None = None) -> None:
        """Stop and clear the count; ``timeout``: wait no longer for it (a
        signal handler's case: the thread may be blocked on a stderr write
        the signal interrupted)."""
        if self.thread is not None:
            self.done.set()
            self.thread.join(timeout)


def _default_output(name: str, mode: str) -> str:
    """``work.py`` -> ``work.cpu.prof`` (``work.wall.prof`` in wall mode), in
    the current directory; ``-m pkg.mod`` -> ``pkg.mod.cpu.prof``."""
    stem = os.path.basename(name)
    stem = stem[:-3] if stem.endswith(".py") else stem
    return f"{stem or 'cprof'}.{mode}.prof"


def _program_only(p: Profile, live_count_thread: int | None) -> Profile:
    """The profile without the samples of cprof's live-count thread (the
    frames that ran the program are cut by the collectors: tables.ROOT_FRAMES)."""
    if live_count_thread is None:
        return p
    return with_samples(p, [s for s in p.samples
                            if s.labels.get("thread_id") != live_count_thread])


def _require_collectors() -> None:
    """Stop before the program runs where cprof cannot read this
    interpreter's frames (a version it does not know, a moved layout)."""
    problem = _core.layout_problem()
    if problem is not None:
        raise ProgramError(problem)


def _check_output(out: str) -> None:
    """Refuse, before the program runs, an output the profile could not be
    written to: it would be lost at the end."""
    try:
        check_writable(out)
    except OSError as e:
        raise ProgramError(e.strerror if str(out) in str(e.strerror) else
                           f"cannot write {out}: {e.strerror}") from None


def _check_record_options(args: argparse.Namespace) -> None:
    """The sampler's limits, said as usage errors before anything runs."""
    if not 1 <= args.hz <= MAX_HZ:  # false for nan too
        raise ProgramError(f"--hz must be from 1 to {MAX_HZ}, not {args.hz:g}")
    if args.max_depth is not None and not 1 <= args.max_depth <= MAX_DEPTH:
        raise ProgramError(f"--max-depth must be from 1 to {MAX_DEPTH}, not {args.max_depth}")


class _Recording:
    """The CPU profile of the program ``cprof record`` runs, written once:
    when the program ends, or on SIGTERM, SIGHUP or SIGQUIT, after which
    the process dies of that signal (runner.TerminationHandlers). If the
    process ends with no chance to write (os._exit, a crash, SIGKILL),
    runner.EndWatch says that no profile was written."""

    def __init__(self, out: str, args: argparse.Namespace) -> None:
        self.out = out
        self.args = args
        self.pid = os.getpid()
        self.live = _LiveCount(sys.stderr)
        self.watch = runner.EndWatch(f"cprof record: the process ended before cprof could "
                                     f"write {out} (os._exit, a crash such as SIGSEGV, or "
                                     f"SIGKILL): no profile was written")
        self.handlers = runner.TerminationHandlers(self._on_signal)
        self.finishing = False
        self.pending: int | None = None

    def start(self) -> None:
        start_cpu_profile(hz=self.args.hz, mode=self.args.mode, max_depth=self.args.max_depth,
                          native=self.args.native)
        self.live.start()
        self.handlers.install()

    def forked(self) -> bool:
        """Whether this is a child the program forked (its parent's profile)."""
        return os.getpid() != self.pid

    def finish(self, live_timeout: float | None = None) -> Profile:
        """Stop the profile and write it; a termination signal meanwhile
        waits for the write (then: die_of_pending)."""
        self.finishing = True
        try:
            self.live.stop(live_timeout)
            profile = _program_only(stop_cpu_profile(), self.live.native_id)
            profile.write(self.out)
        finally:
            self.watch.done()
        return profile

    def _on_signal(self, signum: int) -> None:
        if self.finishing:
            self.pending = signum
            return
        name = signal.Signals(signum).name
        try:
            profile = self.finish(live_timeout=1)
        except Exception as e:
            runner.say_now(f"cprof: terminated by {name}: could not write {self.out}: {e}")
        else:
            if not self.args.quiet:
                runner.say_now(f"cprof: terminated by {name}: wrote {self.out} "
                               f"({self._samples(profile)}); program killed by {name}")
        runner.die_of(signum)

    def die_of_pending(self) -> None:
        if self.pending is not None:
            runner.say_now(f"cprof: terminated by {signal.Signals(self.pending).name} after "
                           f"writing {self.out}")
            runner.die_of(self.pending)

    @staticmethod
    def _samples(profile: Profile) -> str:
        samples = profile.totals()[0] if profile.sample_types else 0
        return f"{samples} samples in {format_value(profile.duration_ns, 'nanoseconds')}"

    def report(self, profile: Profile, status: int) -> None:
        if self.args.quiet:
            return
        print(f"cprof: wrote {self.out} ({self._samples(profile)}); program exited with "
              f"status {status}", file=sys.stderr)
        print(profile.top(10), file=sys.stderr, end="")
        print(f"cprof: explore it with: go tool pprof -http=: {self.out}", file=sys.stderr)


def record(args: argparse.Namespace) -> int:
    """Profile the program named by ``args`` in this process; write the
    profile, print where and its top 10, and return the program's status.
    A child the program forks returns its own status and writes nothing."""
    _check_record_options(args)
    _require_collectors()
    program = runner.program(args.command, args.module, ["record", *_record_options(args)])
    out = args.output or _default_output(program.name, args.mode)
    _check_output(out)
    program.load()
    recording = _Recording(out, args)
    recording.start()
    try:
        status = program.run()
    finally:
        if not recording.forked():
            profile = recording.finish()
            recording.handlers.remove()
    if recording.forked():
        return status
    recording.die_of_pending()
    recording.report(profile, status)
    return status


def _record_options(args: argparse.Namespace) -> list[str]:
    options = ["--hz", f"{args.hz:g}", "--mode", args.mode]
    if args.max_depth is not None:
        options += ["--max-depth", str(args.max_depth)]
    return (["-o", args.output] if args.output else []) + options + (
        ["--quiet"] if args.quiet else []) + (["--native"] if args.native else [])


# How long a run of --repeat may take to write its profile after a signal.
_RUN_WRITE_SECONDS = 60


class _RepeatedRuns:
    """The runs of ``cprof record --repeat``, each a ``cprof record`` child.
    On SIGTERM, SIGHUP or SIGQUIT the running child is passed the signal
    (it writes its profile and dies of it), the runs recorded so far are
    written as one profile, and this process dies of the signal too."""

    def __init__(self, args: argparse.Namespace, out: str, tmp: str) -> None:
        self.args = args
        self.out = out
        self.tmp = tmp
        self.runs: list[Profile] = []
        self.child: subprocess.Popen[bytes] | None = None

    def path(self, i: int) -> str:
        return os.path.join(self.tmp, f"run{i}.prof")

    def run(self, i: int, command: list[str]) -> int:
        """Run ``i`` (from 0); its exit status (negative: killed by a signal)."""
        self.child = subprocess.Popen(command)
        # os.waitpid, not Popen.wait: the signal handler below waits for the
        # child too, and Popen.wait holds a lock a handler cannot take.
        _, wait_status = os.waitpid(self.child.pid, 0)
        self.child = None
        code = os.waitstatus_to_exitcode(wait_status)
        if not os.path.exists(self.path(i)):
            raise ProgramError(f"run {i + 1} wrote no profile (exit status {code})")
        self.runs.append(label_runs(load(self.path(i)), i + 1))
        return code

    def merged(self) -> Profile:
        profile = merge(self.runs)
        return with_samples(profile, profile.samples, comments=[
            f"cprof record --repeat {self.args.repeat}: {self.args.mode} profiles at "
            f"{self.args.hz:g} Hz, each run's samples labelled run=1..{len(self.runs)}"])

    def _stop_child(self, signum: int) -> None:
        child, self.child = self.child, None
        if child is None:
            return
        try:
            child.send_signal(signum)
            deadline = time.monotonic() + _RUN_WRITE_SECONDS
            while os.waitpid(child.pid, os.WNOHANG) == (0, 0):
                if time.monotonic() > deadline:
                    child.kill()
                    os.waitpid(child.pid, 0)
                    return
                time.sleep(0.02)
        except ChildProcessError:
            pass  # it had ended, and was waited for: its run is counted or said
        i = len(self.runs)
        if os.path.exists(self.path(i)):
            self.runs.append(label_runs(load(self.path(i)), i + 1))

    def on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        try:
            self._stop_child(signum)
            if self.runs:
                self.merged().write(self.out)
                runner.say_now(f"cprof: terminated by {name}: wrote {self.out} "
                               f"({len(self.runs)} of {self.args.repeat} runs)")
            else:
                runner.say_now(f"cprof: terminated by {name} before any run ended: no "
                               f"profile was written")
        except Exception as e:
            runner.say_now(f"cprof: terminated by {name}: could not write {self.out}: {e}")
        shutil.rmtree(self.tmp, ignore_errors=True)
        runner.die_of(signum)


def record_repeated(args: argparse.Namespace) -> int:
    """``cprof record --repeat N``: record the program N times, each in a
    process of its own, and write one profile holding every run, its
    samples labelled ``run=1`` .. ``run=N`` (numbers from 1: pprof drops a
    numeric label of 0), which cprof check's Mann-Whitney test compares.
    Returns the first failing run's status."""
    _check_record_options(args)
    _require_collectors()
    name = runner.program_name(args.command, args.module, "record")
    out = args.output or _default_output(name, args.mode)
    _check_output(out)
    target = ["-m", *args.module] if args.module is not None else [
        "--", *(args.command[1:] if args.command[:1] == ["--"] else args.command)]
    options = ["--hz", f"{args.hz:g}", "--mode", args.mode, "--quiet",
               *(["--max-depth", str(args.max_depth)] if args.max_depth is not None else []),
               *(["--native"] if args.native else [])]
    status = 0
    with tempfile.TemporaryDirectory(prefix="cprof-repeat-") as tmp:
        runs = _RepeatedRuns(args, out, tmp)
        handlers = runner.TerminationHandlers(runs.on_signal)
        handlers.install()
        try:
            for i in range(args.repeat):
                if not args.quiet:
                    print(f"cprof: run {i + 1} of {args.repeat}", file=sys.stderr)
                code = runs.run(i, [sys.executable, "-m", "cprof", "record", "-o",
                                    runs.path(i), *options, *target])
                status = status or code
        finally:
            handlers.remove()
        profile = runs.merged()
    profile.write(out)
    if args.quiet:
        return status
    samples = profile.totals()[0] if profile.sample_types else 0
    print(f"cprof: wrote {out} ({args.repeat} runs, {samples} samples); first failing status "
          f"{status}" if status else f"cprof: wrote {out} ({args.repeat} runs, {samples} samples)",
          file=sys.stderr)
    print(profile.top(10), file=sys.stderr, end="")
    return status


def label_runs(p: Profile, run: int) -> Profile:
    """Every sample of ``p`` labelled ``run=RUN`` (a number)."""
    def labelled(s: Sample) -> Sample:
        labels: dict[str, list[str | int]] = {}
        for key, value, _ in s.label_items:
            labels.setdefault(key, []).append(value)
        labels["run"] = [run]
        units = {key: unit for key, _, unit in s.label_items if unit}
        return Sample(s.values, s.locations, labels, num_units=units)
    return with_samples(p, [labelled(s) for s in p.samples])


def _cmd_record(args: argparse.Namespace) -> int:
    if args.repeat < 1:
        print("cprof record: --repeat must be 1 or more", file=sys.stderr)
        return 2
    try:
        return record_repeated(args) if args.repeat > 1 else record(args)
    except ProgramError as e:
        print(f"cprof record: {e}", file=sys.stderr)
        return 2


# --- check ------------------------------------------------------------------------


def _budgets(values: Sequence[str], option: str) -> dict[str, str]:
    """``--max-share 'REGEX=5%'`` (repeatable) as {REGEX: "5%"}; the budget
    follows the last '=', so the regex may hold '=' itself."""
    budgets: dict[str, str] = {}
    for value in values:
        key, sep, budget = value.rpartition("=")
        if not sep or not key or not budget:
            raise BudgetError(f"{option} {value!r}: write it as 'NAME=BUDGET', e.g. "
                              f"{option} 'json\\.=5%'")
        if key in budgets:
            raise BudgetError(f"{option} {key!r} is given twice ({budgets[key]} and {budget})")
        budgets[key] = budget
    return budgets


def _writable(path: str, option: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
        raise BudgetError(f"{option} {path}: {directory} is not a writable directory")


def _failing_type(result: CheckResult) -> str:
    """The sample type a failure's flame graph shows: a failing total's own,
    else the one shares and regressions are of."""
    return next((f.subject for f in result.failures if f.kind == "total"), result.sample_type)


def _cmd_check(args: argparse.Namespace) -> int:
    """Exit 0 when every budget holds, 1 when one does not, 2 when the
    command cannot be carried out (a bad option, an unreadable profile)."""
    first = args.profile[0]
    flame = args.flame or os.path.join(os.path.dirname(first), _stem(first) + (
        ".diff.html" if args.baseline else ".html"))
    try:
        if args.max_regression is not None and args.baseline is None:
            raise BudgetError("--max-regression needs --baseline")
        if not flame.lower().endswith((".html", ".svg")):
            raise BudgetError(f"--flame {flame}: the flame graph is .html or .svg")
        _writable(flame, "--flame")
        if args.junit:
            _writable(args.junit, "--junit")
        profile = as_runs([load(p) for p in args.profile])
        baseline = as_runs([load(p) for p in args.baseline]) if args.baseline else None
        source = first if len(args.profile) == 1 else f"{first} (+{len(args.profile) - 1} runs)"
        result = check(profile, max_share=_budgets(args.max_share, "--max-share"),
                       max_total=_budgets(args.max_total, "--max-total"),
                       sample_type=args.sample_index, baseline=baseline,
                       max_regression=args.max_regression, focus=args.focus, alpha=args.alpha,
                       source=source)
    except (BudgetError, OSError, ValueError) as e:  # ProfileError is a ValueError
        print(f"cprof check: {e}", file=sys.stderr)
        return 2
    if not result.passed:
        shown = profile.diff(baseline) if baseline is not None else profile
        what = f"{args.baseline[0]} -> {first}" if baseline is not None else first
        shown.flamegraph(flame, sample_type=_failing_type(result), title=f"cprof check: {what}")
        result.flamegraph = flame
    print(result.report(), end="")
    if args.junit:
        Path(args.junit).write_text(result.junit(), encoding="utf-8")
    if os.environ.get("GITHUB_ACTIONS") == "true":
        print(result.github_annotations(), end="")
    return 0 if result.passed else 1


# --- serve ------------------------------------------------------------------------


def _serve_options(args: argparse.Namespace) -> list[str]:
    options = ["--host", args.host, "--port", str(args.port), "--max-seconds",
               str(args.max_seconds), "--heap-rate", str(args.heap_rate)]
    for flag, value in (("--token-file", args.token_file), ("--mutex-fraction", args.mutex_fraction),
                        ("--block-rate", args.block_rate),
                        ("--max-connections", args.max_connections),
                        ("--request-timeout", args.request_timeout)):
        if value is not None:
            options += [flag, str(value)]
    for name in args.allow_host:
        options += ["--allow-host", name]
    return options


# A token's file is read up to this: its first line is the token.
_MAX_TOKEN_FILE = 64 * 1024


def _token(path: str | None) -> str | None:
    """The token: the first line of --token-file, else $CPROF_SERVE_TOKEN
    (never an argument: /debug/pprof/cmdline and ps would show it)."""
    if path is None:
        return os.environ.get(TOKEN_ENV_VAR) or None
    try:
        with open(path, "rb") as f:
            head = f.read(_MAX_TOKEN_FILE)
    except OSError as e:
        raise ProgramError(f"--token-file {path}: cannot read it: {e.strerror}") from None
    try:
        token = head.split(b"\n", 1)[0].decode("utf-8").strip()
    except UnicodeDecodeError as e:
        raise ProgramError(f"--token-file {path}: the first line is not UTF-8 text (byte "
                           f"{head[e.start]:#04x} at offset {e.start})") from None
    if not token:
        raise ProgramError(f"--token-file {path}: the file's first line is empty")
    return token


def _check_serve_options(args: argparse.Namespace) -> None:
    """Every number in range before anything runs: an out-of-range one is a
    usage error, never an OverflowError at the C boundary."""
    for option, value, least in (("--max-seconds", args.max_seconds, 1),
                                 ("--heap-rate", args.heap_rate, 0),
                                 ("--mutex-fraction", args.mutex_fraction, 0),
                                 ("--block-rate", args.block_rate, 0),
                                 ("--max-connections", args.max_connections, 1)):
        if value is not None and not least <= value <= MAX_RATE:
            raise ProgramError(f"{option} must be from {least} to 2**63-1, not {value}")
    if args.request_timeout is not None and not 0 < args.request_timeout < 1e6:
        raise ProgramError(f"--request-timeout must be a positive number of seconds, "
                           f"not {args.request_timeout}")
    if not 0 <= args.port <= 65535:
        raise ProgramError(f"--port must be from 0 to 65535, not {args.port}")


def _cmd_serve(args: argparse.Namespace) -> int:
    from . import _server as from_environment  # CPROF_SERVE, read when cprof was imported
    if from_environment is not None:
        from_environment.close()
        print("cprof serve: CPROF_SERVE is ignored: cprof serve serves on --host and --port",
              file=sys.stderr)
    try:
        _check_serve_options(args)
        _require_collectors()
        program = runner.program(args.command, args.module, ["serve", *_serve_options(args)])
        token = _token(args.token_file)
        os.environ.pop(TOKEN_ENV_VAR, None)  # the program's children do not need it
        program.load()
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always", ExposedWarning)
            limits = {name: getattr(args, name) for name in ("max_connections", "request_timeout")
                      if getattr(args, name) is not None}
            server = serve(args.host, args.port, token=token, max_seconds=args.max_seconds,
                           heap_rate=args.heap_rate, allowed_hosts=args.allow_host, **limits)
    except ProgramError as e:
        print(f"cprof serve: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"cprof serve: cannot serve on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 2
    for w in said:
        print(f"cprof serve: warning: {w.message}", file=sys.stderr)
    if args.mutex_fraction is not None:
        set_mutex_profile_fraction(args.mutex_fraction)
    if args.block_rate is not None:
        set_block_profile_rate(args.block_rate)
    example = server.url.replace("://", "://user:TOKEN@") if token else server.url
    print(f"cprof: serving profiles at {server.url} (try: go tool pprof "
          f"{example}profile?seconds=10)", file=sys.stderr)
    try:
        return program.run()
    finally:
        server.close()


# --- analysis: go tool pprof's reports and the exports, on files ---------------------------

# pprof's filters in the order of its "Active filters:" legend (prune_from, applied
# last, is not listed there).
_FILTERS = ("focus", "ignore", "hide", "show", "show_from", "tagfocus", "tagignore")
_PROFILE_SUFFIXES = (".gz", ".prof", ".pprof", ".pb", ".proto")


@dataclass
class _Input:
    """What an analysis command works on, as pprof's driver makes it: the
    PROFILE arguments merged and the bases applied, then filtered and
    aggregated (``profile``); the sample type's index; what reports take
    percentages of (``total``: pprof's, taken before the filters, of the
    base's samples alone in a -diff_base profile); the legend of the filters;
    and the first PROFILE's path, for titles and output names."""

    profile: Profile
    index: int
    total: int
    filters: list[str]
    name: str
    by_line: bool = False

    def report_profile(self) -> Profile:
        """The profile for a report at its granularity: the reports know
        functions, so at -lines each line of code is made a function."""
        return _lines_as_functions(self.profile) if self.by_line else self.profile


def _add_profile_options(parser: argparse.ArgumentParser, *, bases: bool = True) -> None:
    """The options every analysis command shares, by go tool pprof's names
    (-focus, -sample_index, -diff_base) and as --kebab-case."""
    g = parser.add_argument_group("profile options (go tool pprof's, by its names too)")
    g.add_argument("-sample_index", "--sample-index", dest="sample_index", metavar="TYPE",
                   help="the sample type to report, by name or index (default: the profile's)")
    for name, what in (
            ("focus", "keep only the samples with a frame matching REGEX"),
            ("ignore", "drop the samples with a frame matching REGEX"),
            ("hide", "remove the frames matching REGEX from the stacks"),
            ("show", "keep only the frames matching REGEX"),
            ("show_from", "drop the callers of the outermost frame matching REGEX"),
            ("prune_from", "drop the callees of the innermost frame matching REGEX")):
        g.add_argument(f"-{name}", f"--{name.replace('_', '-')}", dest=name, metavar="REGEX",
                       help=what)
    g.add_argument("-tagfocus", "--tagfocus", metavar="[KEY=]VALUES",
                   help="keep the samples whose labels match: regexes separated by commas, "
                        "or a numeric range such as bytes=1kb:16kb")
    g.add_argument("-tagignore", "--tagignore", metavar="[KEY=]VALUES",
                   help="drop the samples whose labels match")
    if bases:
        b = g.add_mutually_exclusive_group()
        b.add_argument("-base", "--base", action="append", metavar="BASE",
                       help="subtract BASE's samples (repeatable: the bases are merged)")
        b.add_argument("-diff_base", "--diff-base", dest="diff_base", action="append",
                       metavar="BASE", help="compare with BASE: report the change, with "
                       "percentages of BASE's total (repeatable)")
    else:
        parser.set_defaults(base=None, diff_base=None)
    by = g.add_mutually_exclusive_group()
    for flag, what in (("functions", "function (the default)"), ("files", "file"),
                       ("lines", "line of code")):
        by.add_argument(f"-{flag}", f"--{flag}", dest="granularity", action="store_const",
                        const=flag.removesuffix("s"), help=f"aggregate by {what}")


def _merged(paths: Sequence[str]) -> Profile:
    profiles = [load(path) for path in paths]
    return profiles[0] if len(profiles) == 1 else merge(profiles)


def _input(args: argparse.Namespace, paths: Sequence[str]) -> _Input:
    p = _merged(paths)
    if args.base:
        p = subtract(p, _merged(args.base))
    if args.diff_base:
        p = diff(p, _merged(args.diff_base))
    sample_type = args.sample_index
    index = p.sample_index(int(sample_type) if sample_type and sample_type.isdigit()
                           else sample_type)
    total = _pprof_total(p, index)
    options = {k: getattr(args, k) for k in (*_FILTERS, "prune_from") if getattr(args, k)}
    if options:
        filtered = filter_profile(p, **options)
        if p.samples and not filtered.samples:
            print("cprof: warning: the filters matched no samples", file=sys.stderr)
        p = filtered
    if args.granularity:
        p = aggregate(p, args.granularity)
    return _Input(p, index, total, [f"{k}={options[k]}" for k in _FILTERS if k in options],
                  paths[0], args.granularity == "line")


def _lines_as_functions(p: Profile) -> Profile:
    """``p`` with each line of code a function of its own, named as pprof's
    -lines reports name their nodes (``main.work /src/app.py:12``)."""
    functions: dict[tuple[str, str, int, int], Function] = {}
    locations: dict[int, Location] = {}
    for i, loc in unique_locations(p.samples).items():
        lines = []
        for ln in loc.lines:
            fn = ln.function
            if fn is not None:
                key = (fn.name, fn.filename, fn.start_line, ln.line)
                made = functions.get(key)
                if made is None:
                    made = functions[key] = Function(
                        len(functions) + 1, printable_name((*key, "")), fn.system_name)
                ln = Line(made)
            lines.append(ln)
        locations[i] = Location(loc.id, loc.address, loc.mapping, tuple(lines), loc.is_folded)
    return with_samples(p, [Sample._raw(s.values, map_stack(s, locations), s.label_items)
                            for s in p.samples])


def _pprof_total(p: Profile, index: int) -> int:
    """pprof's computeTotal: the sum of the absolute values, over the
    samples of the base alone when the profile is a -diff_base one."""
    total = base = 0
    for s in p.samples:
        v = abs(s.values[index])
        total += v
        if any(key == DIFF_BASE_LABEL and value == "true" for key, value, _ in s.label_items):
            base += v
    return base or total


def _labels(inp: _Input, sample_type: str, unit: str, fmt: Callable[[int], str]) -> list[str]:
    """The lines above a pprof report: the profile's, then the active filters."""
    return (profile_labels(inp.profile, sample_type, unit, inp.total, fmt)
            + active_filters(inp.filters))


# The report functions take percentages of the profile they are given; pprof of
# the profile before its filters (and of a -diff_base profile's base). These
# give a report pprof's total, node cutoff, unit and legend.

def _top_report(inp: _Input, n: int | None, cum: bool, node_fraction: float) -> str:
    rpt = top(inp.report_profile(), n, cum=cum, sample_type=inp.index, node_fraction=node_fraction)
    if rpt.total != inp.total:
        rpt = replace(rpt, total=inp.total, node_cutoff=abs(int(inp.total * node_fraction)),
                      unit=output_unit(rpt.rows, inp.total, rpt.sample_unit))
    rpt.profile_labels = _labels(inp, rpt.sample_type, rpt.sample_unit, rpt.format_value)
    return str(rpt)


def _tree_report(inp: _Input, regex: str | None, node_count: int, cum: bool,
                 node_fraction: float, edge_fraction: float) -> str:
    profile = inp.report_profile()
    if regex is None:
        rpt = tree(profile, sample_type=inp.index, node_fraction=node_fraction,
                   edge_fraction=edge_fraction, node_count=node_count, cum=cum)
    else:
        rpt = peek(profile, regex, sample_type=inp.index)
        node_fraction = 0.0  # pprof trims nothing for peek
    if rpt.total != inp.total:
        # The unit is chosen over every node of the graph: peek's entries are some.
        nodes = rpt.entries if regex is None else tree(
            profile, sample_type=inp.index, node_fraction=0, edge_fraction=0,
            node_count=0).entries
        rpt = replace(rpt, total=inp.total, node_cutoff=abs(int(inp.total * node_fraction)),
                      unit=output_unit(nodes, inp.total, rpt.sample_unit))
    rpt.labels = _labels(inp, rpt.sample_type, rpt.sample_unit, rpt.format_value)
    return str(rpt)


def _cmd_top(args: argparse.Namespace) -> int:
    inp = _input(args, args.profiles)
    print(_top_report(inp, args.nodecount, args.cum, args.nodefraction), end="")
    return 0


def _cmd_tree(args: argparse.Namespace) -> int:
    inp = _input(args, args.profiles)
    print(_tree_report(inp, None, args.nodecount, args.cum, args.nodefraction,
                       args.edgefraction), end="")
    return 0


def _cmd_peek(args: argparse.Namespace) -> int:
    inp = _input(args, args.profiles)
    print(_tree_report(inp, args.regex, 0, False, 0.0, 0.0), end="")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    inp = _input(args, args.profiles)
    rpt = list_source(inp.profile, args.regex, sample_type=inp.index,
                      source_path=args.source_path, trim_path=args.trim_path)
    print(replace(rpt, total=inp.total), end="")
    return 0


def _cmd_traces(args: argparse.Namespace) -> int:
    inp = _input(args, args.profiles)
    text = traces(inp.report_profile(), sample_type=inp.index)
    vt = inp.profile.sample_types[inp.index]

    def fmt(value: int) -> str:
        return scaled_label(value, vt.unit, "minimum")

    # The header (pprof's ProfileLabels, no legend) prints the total.
    shown = profile_labels(inp.profile, vt.type, vt.unit,
                           sum(abs(s.values[inp.index]) for s in inp.profile.samples), fmt)
    lines = text.split("\n", len(shown))
    if lines[:len(shown)] == shown:
        text = "\n".join(profile_labels(inp.profile, vt.type, vt.unit, inp.total, fmt)
                         + lines[len(shown):])
    print(text, end="")
    return 0


def _stem(path: str) -> str:
    """``dir/cpu.prof.gz`` -> ``cpu``: the name for a PROFILE's outputs."""
    name = os.path.basename(path)
    while name.endswith(_PROFILE_SUFFIXES) and "." in name[1:]:
        name = name.rsplit(".", 1)[0]
    return name or "profile"


def _wrote(path: str | os.PathLike[str]) -> None:
    print(f"Wrote {os.fspath(path)}", file=sys.stderr)


def _title(inp: _Input) -> str:
    return f"{os.path.basename(inp.name)} ({inp.profile.sample_types[inp.index].type})"


def _write_flame(inp: _Input, path: str | os.PathLike[str]) -> None:
    """The flame graph: a static SVG for a .svg path, else interactive HTML."""
    if os.fspath(path).lower().endswith(".svg"):
        from .export.flamegraph_svg import write_svg
        write_svg(inp.profile, path, sample_type=inp.index, title=_title(inp))
    else:
        from .export.flamegraph import write_html
        write_html(inp.profile, path, sample_type=inp.index, title=_title(inp))
    _wrote(path)


def _cmd_flame(args: argparse.Namespace) -> int:
    inp = _input(args, args.profiles)
    _write_flame(inp, args.output or f"{_stem(inp.name)}.html")
    return 0


def _cmd_speedscope(args: argparse.Namespace) -> int:
    from .export.speedscope import write_speedscope
    inp = _input(args, args.profiles)
    out = args.output or f"{_stem(inp.name)}.speedscope.json"
    write_speedscope(inp.profile, out, inp.index, os.path.basename(inp.name),
                     split_diff=bool(args.base or args.diff_base))
    _wrote(out)
    return 0


def _cmd_folded(args: argparse.Namespace) -> int:
    from .export.folded import write_folded
    inp = _input(args, args.profiles)
    if args.output:
        write_folded(inp.profile, args.output, inp.index)
        _wrote(args.output)
    else:
        sys.stdout.flush()
        write_folded(inp.profile, sys.stdout.buffer, inp.index)
        sys.stdout.buffer.flush()
    return 0


def _cmd_diff(args: argparse.Namespace) -> int:
    args.diff_base = [args.base_profile]
    inp = _input(args, [args.profile])
    print(_top_report(inp, args.nodecount, args.cum, args.nodefraction), end="")
    sys.stdout.flush()
    out = args.output or f"{_stem(args.profile)}.diff.prof"
    inp.profile.write(out)
    _wrote(out)
    if args.flame:
        _write_flame(inp, args.flame)
    return 0


def _cmd_merge(args: argparse.Namespace) -> int:
    inp = _input(args, args.profiles)
    if len(args.profiles) == 1:  # compacted, as pprof writes one profile
        inp.profile = merge([inp.profile])
    inp.profile.write(args.output)
    _wrote(args.output)
    return 0


def _browser_available() -> bool:
    """Whether webbrowser can open a page without taking over the terminal:
    a browser named by BROWSER, a desktop (macOS, Windows) or a display."""
    if os.environ.get("BROWSER") or sys.platform == "darwin" or sys.platform.startswith("win"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _open(paths: Sequence[Path]) -> bool:
    if not _browser_available():
        return False
    try:
        return all([webbrowser.open(p.resolve().as_uri(), new=2) for p in paths])
    except webbrowser.Error:
        return False


def _cmd_web(args: argparse.Namespace) -> int:
    from .export.dot import GraphvizError, render_dot, to_dot
    inp = _input(args, args.profiles)
    if args.output:
        flame = Path(args.output)
    else:
        flame = Path(tempfile.mkdtemp(prefix="cprof-web-")) / f"{_stem(inp.name)}.html"
    _write_flame(inp, flame)
    dot = to_dot(inp.profile, inp.index)
    graph = flame.with_name(f"{flame.stem}.callgraph.svg")
    try:
        graph.write_text(render_dot(dot), encoding="utf-8")
    except GraphvizError as e:
        graph = graph.with_suffix(".dot")
        graph.write_text(dot, encoding="utf-8")
        print(f"cprof web: the call graph is DOT, not SVG: {e}", file=sys.stderr)
    _wrote(graph)
    pages = [flame] + ([graph] if graph.suffix == ".svg" else [])
    sys.stdout.flush()
    if _open(pages):
        print(f"cprof web: opened {' and '.join(map(str, pages))} in the browser",
              file=sys.stderr)
    else:
        print("cprof web: no browser to open them (none in BROWSER and no display); "
              "open these files:", file=sys.stderr)
        for p in (flame, graph):
            print(p)
    return 0


def _add_analysis(sub: Any, name: str, run: Callable[[argparse.Namespace], int], help: str, *,
                  regex: str | None = None) -> argparse.ArgumentParser:
    """An analysis command: [REGEX] PROFILE... and the shared options."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=help, description=help + ".")
    if regex is not None:
        p.add_argument("regex", metavar="REGEX", help=regex)
    p.add_argument("profiles", nargs="+", metavar="PROFILE",
                   help="pprof files from any producer; several are merged")
    _add_profile_options(p)
    p.set_defaults(run=run)
    return p


def _add_top_options(p: argparse.ArgumentParser, node_count: int | None) -> None:
    p.add_argument("-n", "-nodecount", "--nodecount", dest="nodecount", type=int,
                   default=node_count, metavar="N",
                   help=f"show the N heaviest functions (default: {node_count or 'all'})")
    p.add_argument("-cum", "--cum", action="store_true", help="sort by cum, not flat")
    p.add_argument("-nodefraction", "--nodefraction", type=float, default=NODE_FRACTION,
                   metavar="F", help="hide functions whose cum is under F of the total "
                   f"(default {NODE_FRACTION})")


def _add_analysis_commands(sub: Any) -> None:
    p = _add_analysis(sub, "top", _cmd_top, "the heaviest functions, as go tool pprof -top")
    _add_top_options(p, None)
    p = _add_analysis(sub, "tree", _cmd_tree,
                      "callers and callees of each function, as go tool pprof -tree")
    _add_top_options(p, 80)
    p.add_argument("-edgefraction", "--edgefraction", type=float, default=EDGE_FRACTION,
                   metavar="F", help=f"hide calls under F of the total (default {EDGE_FRACTION})")
    _add_analysis(sub, "peek", _cmd_peek, "callers and callees of the matching functions, as "
                  "go tool pprof -peek", regex="functions to show (a regular expression)")
    p = _add_analysis(sub, "list", _cmd_list, "the source of the matching functions annotated "
                      "line by line, as go tool pprof -list",
                      regex="functions to list (a regular expression)")
    p.add_argument("-source_path", "--source-path", dest="source_path", metavar="DIRS",
                   help="where to look for source files (default: the current directory)")
    p.add_argument("-trim_path", "--trim-path", dest="trim_path", default="", metavar="PREFIX",
                   help="path prefix to cut from the profile's file names")
    _add_analysis(sub, "traces", _cmd_traces,
                  "every sample's stack with its labels, as go tool pprof -traces")
    p = _add_analysis(sub, "flame", _cmd_flame, "write a flame graph: interactive HTML, or a "
                      "static SVG for an .svg output")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="OUT.html or OUT.svg (default: the first PROFILE's name + .html)")
    p = _add_analysis(sub, "speedscope", _cmd_speedscope, "write a speedscope JSON file")
    p.add_argument("-o", "--output", metavar="OUT", help="default: the first PROFILE's name "
                   "+ .speedscope.json")
    p = _add_analysis(sub, "folded", _cmd_folded,
                      "print folded stacks (flamegraph.pl, inferno)")
    p.add_argument("-o", "--output", metavar="OUT", help="write them here, not to stdout")
    p = _add_analysis(sub, "merge", _cmd_merge, "merge profiles into one, as go tool pprof "
                      "-proto does with several files")
    p.add_argument("-o", "--output", metavar="OUT", required=True, help="the merged profile")
    p = _add_analysis(sub, "web", _cmd_web, "write the HTML flame graph and the SVG call graph, "
                      "and open them in a browser if there is one (else print their paths)")
    p.add_argument("-o", "--output", metavar="OUT.html",
                   help="the flame graph's path, the call graph's next to it (default: in a "
                        "new temporary directory)")

    help = ("compare PROFILE with BASE as go tool pprof -diff_base: print the change's top, "
            "write the diff profile")
    p = sub.add_parser("diff", help=help, description=help + ".")
    p.add_argument("base_profile", metavar="BASE", help="the profile to compare with")
    p.add_argument("profile", metavar="PROFILE", help="the new profile")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="the diff profile (default: PROFILE's name + .diff.prof)")
    p.add_argument("--flame", metavar="OUT.html|OUT.svg", help="also write its flame graph "
                   "(red: grew, blue: shrank)")
    _add_top_options(p, None)
    _add_profile_options(p, bases=False)
    p.set_defaults(run=_cmd_diff)


def _add_program(p: argparse.ArgumentParser, run: Callable[[argparse.Namespace], int]) -> None:
    """The program to run, as python takes it (runner.program reads these)."""
    p.add_argument("-m", dest="module", nargs=argparse.REMAINDER, metavar="MODULE ARGS",
                   help="run a module as python -m does")
    p.add_argument("command", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(run=run)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cprof", description="pprof for Python.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    s = sub.add_parser("summary", help="say what a profile holds; optionally write it back")
    s.add_argument("profile", help="a pprof file (gzipped or raw), from any producer")
    s.add_argument("-o", "--output", help="write the profile back to this path")
    s.add_argument("--level", type=int, default=1, choices=range(0, 10), metavar="0-9",
                   help="gzip level for --output (0: raw protobuf; default 1)")
    s.add_argument("--top", type=int, default=10, help="how many functions to list")
    s.add_argument("--max-size", type=int, default=1 << 30,
                   help="refuse profiles larger than this many bytes, read, inflated "
                        "or decoded (docs/SECURITY.md)")
    s.set_defaults(run=_cmd_summary)

    r = sub.add_parser(
        "record", help="profile a Python program, write its profile and print its top 10",
        usage="cprof record [-o OUT] [--hz N] [--mode cpu|wall] [--native] [--max-depth N] "
              "[--repeat N]\n"
              "         (-- python [options] script.py args | script.py args | -m module args)",
        description="Run a Python program under the CPU profiler, as python -m cProfile "
                    "does: in this process (a python command is re-executed to run cprof "
                    "record itself), seeing the sys.argv and __main__ it would see unprofiled. "
                    "The exit status is the program's.")
    r.add_argument("-o", "--output", help="where to write the profile (default: the script's "
                   "or module's name + .cpu.prof or .wall.prof, in the current directory)")
    r.add_argument("--hz", type=float, default=100, help="samples per second (default 100)")
    r.add_argument("--mode", choices=("cpu", "wall"), default="cpu",
                   help="cpu: CPU time of each thread (default); wall: wall-clock time of every "
                        "thread, running or blocked")
    r.add_argument("--max-depth", type=int, default=None,
                   help="deeper stacks keep their innermost frames (default 128; 512 with "
                        "--native)")
    r.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="run the program N times (each in its own process) and write one "
                        "profile of all runs, labelled run=1..N, for cprof check --baseline")
    r.add_argument("--native", action="store_true",
                   help="record C frames too (libunwind), each interpreter call replaced by "
                        "its Python frames: time in NumPy, zlib or an extension gets its C "
                        "function's name, under the Python call that made it")
    r.add_argument("--quiet", action="store_true", help="print nothing but errors")
    _add_program(r, _cmd_record)
    v = sub.add_parser(
        "serve", help="run a Python program with Go's /debug/pprof endpoints on a port",
        usage="cprof serve [--host HOST] [--port N] [options]\n"
              "         (-- python [options] script.py args | script.py args | -m module args)",
        description="Run a Python program in this process, as cprof record does, while a "
                    "background thread serves Go's net/http/pprof endpoints, so that "
                    "go tool pprof http://127.0.0.1:6060/debug/pprof/profile?seconds=10 "
                    "profiles it. The exit status is the program's.")
    v.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; others can reach any other, "
                        "so use a token)")
    v.add_argument("--port", type=int, default=6060, help="port (default 6060; 0: a free one)")
    v.add_argument("--token-file", metavar="PATH",
                   help="require the token on this file's first line (default: "
                        f"${TOKEN_ENV_VAR}, if set), as 'Authorization: Bearer TOKEN' or as "
                        "the password of http://user:TOKEN@host/")
    v.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="without a token, answer requests for this host name too (repeatable; "
                        "'*': any); by default only IP addresses and localhost, against DNS "
                        "rebinding")
    v.add_argument("--max-connections", type=int, metavar="N",
                   help=f"connections served at once; more get 503 (default "
                        f"{DEFAULT_MAX_CONNECTIONS})")
    v.add_argument("--request-timeout", type=float, metavar="SECONDS",
                   help=f"time a client has to send a whole request (default "
                        f"{DEFAULT_REQUEST_TIMEOUT:g})")
    v.add_argument("--max-seconds", type=int, default=DEFAULT_MAX_SECONDS,
                   help=f"longest seconds= a request may ask for (default {DEFAULT_MAX_SECONDS})")
    v.add_argument("--heap-rate", type=int, default=DEFAULT_RATE,
                   help=f"heap profile: one sample per this many bytes allocated (default "
                        f"{DEFAULT_RATE}; 0: no heap profile)")
    v.add_argument("--mutex-fraction", type=int, metavar="N",
                   help="mutex profile: record 1 in N contended lock releases (default: off)")
    v.add_argument("--block-rate", type=int, metavar="NS",
                   help="block profile: record waits of NS nanoseconds or longer, and a sample "
                        "of shorter ones (1: every wait; default: off)")
    _add_program(v, _cmd_serve)
    c = sub.add_parser(
        "check", help="check a profile against budgets and a baseline (for CI); exit 1 if over",
        description="Check PROFILE's shares (pprof's cum % of the sample type), totals and its "
                    "regression against a baseline. Exit status 0: every budget holds; 1: one "
                    "does not (and a flame graph of PROFILE, or of the change from BASE, is "
                    "written); 2: the check could not be made.")
    c.add_argument("profile", metavar="PROFILE", nargs="+",
                   help="the profile to check; several profiles are runs of the same work "
                        "(each one a run, as cprof record --repeat labels them)")
    c.add_argument("--max-share", action="append", default=[], metavar="REGEX=BUDGET",
                   help="largest share of functions matching REGEX anywhere on the stack, as a "
                        "percentage or fraction ('json\\.=5%%'); repeatable")
    c.add_argument("--max-total", action="append", default=[], metavar="TYPE=AMOUNT",
                   help="largest total of a sample type ('cpu=2s', 'alloc_space=64MB'); "
                        "repeatable")
    c.add_argument("--sample-index", "-sample_index", dest="sample_index", metavar="TYPE",
                   help="the sample type shares and regressions are of (default: the "
                        "profile's default)")
    c.add_argument("--baseline", metavar="BASE", action="append",
                   help="a profile of the same work before the change: one of several runs "
                        "(cprof record --repeat N), or, repeated, one file a run (record them "
                        "in turn with the new runs, so that both meet the same load)")
    c.add_argument("--max-regression", metavar="PERCENT",
                   help="largest rise of the total over BASE's (default 10%%); with several "
                        "runs a side it counts only when Mann-Whitney U finds it significant")
    c.add_argument("--focus", metavar="REGEX", help="compare only samples with a function "
                   "matching REGEX on their stack")
    c.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                   help=f"significance level of the regression test (default {DEFAULT_ALPHA})")
    c.add_argument("--junit", metavar="FILE", help="also write the findings as JUnit XML")
    c.add_argument("--flame", metavar="OUT.html|OUT.svg",
                   help="where a failure's flame graph goes (default: PROFILE's name + .html, "
                        "or .diff.html with --baseline)")
    c.set_defaults(run=_cmd_check)
    _add_analysis_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except BrokenPipeError:  # cprof top ... | head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (OSError, ValueError) as e:  # ProfileError is a ValueError
        print(f"cprof: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
