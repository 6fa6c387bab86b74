"""cprof record: profile a Python program, in this process, as python -m cProfile does."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from .. import _core
from ..collect import command, quiet, runner
from ..collect.cpu import MAX_DEPTH, MAX_HZ, start_cpu_profile, stop_cpu_profile
from ..collect.command import ProgramError
from ..pprof.io import check_writable
from .launch import record_options

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    import argparse
    import subprocess
    from typing import IO

    from ..collect import follow

# At the top, not where used: a termination signal's handler writes the profile
# through them, and must not import while the program may be importing.
from ..pprof.ops import merge, with_labels, with_samples, without_thread
from ..pprof.profile import Profile, load
from ..pprof.units import format_value


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
            quiet.start(self.thread)

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


def require_collectors() -> None:
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
    if args.per_process and args.output:
        raise ProgramError("--per-process writes DIR/PID.prof, a file for each process: "
                           "-o has no use with it")
    if args.per_process and args.repeat > 1:
        raise ProgramError("--per-process and --repeat cannot go together: use --follow, "
                           "which labels each sample with its pid")


def _check_directory(directory: str) -> None:
    """Make --per-process's directory, and refuse it, before the program
    runs, if profiles could not be written there."""
    try:
        os.makedirs(directory, exist_ok=True)
        check_writable(os.path.join(directory, f"{os.getpid()}.prof"))
    except OSError as e:
        raise ProgramError(f"--per-process {directory}: {e.strerror}") from None


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
        self.following: follow.Following | None = None
        # --per-process: each process's file and profile, this one's first.
        self.written: list[tuple[str, Profile]] = []

    def start(self) -> None:
        start_cpu_profile(hz=self.args.hz, mode=self.args.mode, max_depth=self.args.max_depth,
                          native=self.args.native)
        if self.args.follow or self.args.per_process:
            # After the start: children fork from a running profile (follow.py).
            from ..collect import follow
            try:
                self.following = follow.Following(follow.cpu_settings(
                    hz=self.args.hz, mode=self.args.mode, max_depth=self.args.max_depth,
                    native=self.args.native))
            except (OSError, RuntimeError) as e:
                stop_cpu_profile()
                raise ProgramError(f"cannot follow the child processes: {e}") from None
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
            profile = without_thread(stop_cpu_profile(), self.live.native_id)
            if self.following is not None and self.args.per_process:
                self.written = self.following.per_process(profile, self.args.per_process)
            else:
                if self.following is not None:
                    profile = self.following.finish(profile)
                profile.write(self.out)
        finally:
            if self.following is not None:
                self.following.close()
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
                where = (f"{len(self.written)} profiles into {self.args.per_process}"
                         if self.written else f"{self.out} ({samples_text(profile)})")
                runner.say_now(f"cprof: terminated by {name}: wrote {where}; program killed "
                               f"by {name}")
        runner.die_of(signum)

    def die_of_pending(self) -> None:
        if self.pending is not None:
            runner.say_now(f"cprof: terminated by {signal.Signals(self.pending).name} after "
                           f"writing {self.out}")
            runner.die_of(self.pending)

    def report(self, profile: Profile, status: int) -> None:
        if self.args.quiet:
            return
        if not self.written:
            report_written(self.out, profile, f"program exited with status {status}")
            return
        print(f"cprof: wrote {len(self.written)} profiles, one a process, into "
              f"{self.args.per_process}; program exited with status {status}", file=sys.stderr)
        for path, p in self.written:
            process = next((s.labels.get("process") for s in p.samples), "")
            print(f"  {path}: {process or '(no samples)'}, {samples_text(p)}", file=sys.stderr)
        print(f"cprof: explore one with: go tool pprof -http=: {self.written[0][0]}",
              file=sys.stderr)


def samples_text(profile: Profile) -> str:
    """"N samples in D": what a written CPU profile holds."""
    samples = profile.totals()[0] if profile.sample_types else 0
    return f"{samples} samples in {format_value(profile.duration_ns, 'nanoseconds')}"


def report_written(out: str, profile: Profile, outcome: str) -> None:
    """What cprof record and cprof attach print on stderr once a profile is
    written: where, what it holds and ``outcome``, its top 10, how to explore it."""
    print(f"cprof: wrote {out} ({samples_text(profile)}); {outcome}", file=sys.stderr)
    print(profile.top(10), file=sys.stderr, end="")
    print(f"cprof: explore it with: go tool pprof -http=: {out}", file=sys.stderr)


def record(args: argparse.Namespace) -> int:
    """Profile the program named by ``args`` in this process; write the
    profile, print where and its top 10, and return the program's status.
    A child the program forks returns its own status and writes nothing."""
    _check_record_options(args)
    require_collectors()
    program = runner.program(args.command, args.module, ["record", *record_options(args)])
    out = args.output or _default_output(program.name, args.mode)
    if args.per_process:
        _check_directory(args.per_process)
    else:
        _check_output(out)
    program.load()
    recording = _Recording(out, args)
    recording.start()
    try:
        status = program.run()
    finally:
        if not recording.forked():
            if recording.following is not None:
                recording.following.end_children()
            profile = recording.finish()
            recording.handlers.remove()
    if recording.forked():
        return status
    recording.die_of_pending()
    recording.report(profile, status)
    return status


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
        # Imported here, not at the top, as only --repeat uses them (start-up
        # time of every cprof record); and not where used: the signal handler
        # below must not import.
        from shutil import rmtree
        from subprocess import Popen
        self._rmtree = rmtree
        self._popen = Popen

    def path(self, i: int) -> str:
        return os.path.join(self.tmp, f"run{i}.prof")

    def run(self, i: int, command: list[str]) -> int:
        """Run ``i`` (from 0); its exit status (negative: killed by a signal)."""
        self.child = self._popen(command)
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
        self._rmtree(self.tmp, ignore_errors=True)
        runner.die_of(signum)


def record_repeated(args: argparse.Namespace) -> int:
    """``cprof record --repeat N``: record the program N times, each in a
    process of its own, and write one profile holding every run, its
    samples labelled ``run=1`` .. ``run=N`` (numbers from 1: pprof drops a
    numeric label of 0), which cprof check's Mann-Whitney test compares.
    Returns the first failing run's status."""
    _check_record_options(args)
    require_collectors()
    name = command.program_name(args.command, args.module, "record")
    out = args.output or _default_output(name, args.mode)
    _check_output(out)
    target = ["-m", *args.module] if args.module is not None else [
        "--", *(args.command[1:] if args.command[:1] == ["--"] else args.command)]
    options = ["--hz", f"{args.hz:g}", "--mode", args.mode, "--quiet",
               *(["--max-depth", str(args.max_depth)] if args.max_depth is not None else []),
               *(["--native"] if args.native else []), *(["--follow"] if args.follow else [])]
    import tempfile  # here: a single run (the usual) needs no temporary directory
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
    return with_labels(p, {"run": run})


def record_or_repeat(args: argparse.Namespace) -> int:
    """cprof record, after launch.cmd_record (which re-executes a ``python
    ...`` command)."""
    try:
        return record_repeated(args) if args.repeat > 1 else record(args)
    except ProgramError as e:
        print(f"cprof record: {e}", file=sys.stderr)
        return 2
