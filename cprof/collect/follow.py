"""follow: profile the Python child processes of a profiled process too.

``cprof record --follow``, ``cprof.cpu(follow_children=True)`` and
``cprof.heap(follow_children=True)``. The profiled process (the root) makes a
private directory (0700) holding a ``sitecustomize.py``, puts that directory
first on PYTHONPATH, and its settings, as JSON, in CPROF_FOLLOW. Every Python
child of the same implementation, version and build then profiles itself
from its start with the same settings, however it was started:

- a new interpreter (``subprocess.run([sys.executable, ...])``,
  multiprocessing's spawn and forkserver) imports that sitecustomize, which
  starts cprof and then runs the sitecustomize it hides, if any; another
  Python imports it and does nothing else; a program that is not Python
  never reads it, and passes it on to its own children;
- a forked child (multiprocessing's fork, ``os.fork``) starts afresh from a
  fork handler, registered once the root's profile runs, so that it runs
  after the collectors' own (which leave the child with nothing running).

A child writes its profile into the directory, each sample labelled ``pid``
and ``process``, when it ends (at exit; in ``os._exit``, which
multiprocessing's forked workers leave through; on SIGTERM, SIGHUP and SIGQUIT,
which Pool.terminate sends) and every second meanwhile (less often when
saving takes over 1% of that), so that a child killed outright still
leaves what it had until then. Children of children
are followed the same way. When the root stops, it merges the children's
profiles into its own (or keeps them apart, one file a process), removes the
directory and gives the environment back.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

from ..pprof.io import write_bytes
from ..pprof.ops import merge, with_labels, with_samples, without_thread
from ..pprof.profile import Profile, ProfileError, load
from .. import _core
from . import cpu, patches, quiet, runner

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

ENV_VAR = "CPROF_FOLLOW"
# How often a child writes what it has so far: every second, or less often
# when a save takes long (a large profile), so that saves cost a child at most
# 1/FLUSH_SHARE of one core's time.
FLUSH_SECONDS = 1.0
FLUSH_SHARE = 100

# What every child imports first (the directory is first on its PYTHONPATH).
# Any Python 3 may import it, so it uses nothing newer than 3.0 has and never
# raises; a child of another Python, or one that cannot import cprof, runs as
# it would have.
SITECUSTOMIZE = '''\
"""Written by cprof for the processes it follows; removed when it stops.

A Python process of the version and build cprof profiles profiles itself with
the settings in $CPROF_FOLLOW; any other does nothing here. Then the
sitecustomize this one hides, if there is one, runs as it would have.
"""


def _cprof_follow():
    import os
    import sys
    here = os.path.dirname(os.path.realpath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != here]
    try:
        import json
        settings = json.loads(os.environ["CPROF_FOLLOW"])
        build = [sys.implementation.name, sys.version_info[0], sys.version_info[1],
                 getattr(sys, "abiflags", "")]
        if settings["python"] != build:
            return
        try:
            import cprof.collect.follow
        except ImportError:
            sys.path.append(settings["home"])  # only while cprof is imported
            try:
                import cprof.collect.follow
            finally:
                sys.path.remove(settings["home"])
        cprof.collect.follow.child_start(settings)
    except Exception as e:
        sys.stderr.write("cprof: not profiling process %d, a child of the profiled process: "
                         "%s\\n" % (os.getpid(), e))


def _cprof_chain():
    import importlib.machinery
    import importlib.util
    import sys
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", sys.path)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        sys.modules["sitecustomize"] = module
        spec.loader.exec_module(module)


_cprof_follow()
_cprof_chain()
'''


def cpu_settings(*, hz: float, mode: str, max_depth: int | None, native: bool) -> dict[str, Any]:
    """A CPU (or wall) profile's settings, as children take them."""
    return {"profile": "cpu", "hz": hz, "mode": mode, "max_depth": max_depth, "native": native}


def heap_settings(*, rate: int, max_depth: int) -> dict[str, Any]:
    """A heap profile's settings, as children take them."""
    return {"profile": "heap", "rate": rate, "max_depth": max_depth}


def _build() -> list[str | int]:
    """This interpreter, as a child's must be to profile itself: cprof's C
    core is built for one implementation, version and ABI (free-threaded or not)."""
    return [sys.implementation.name, sys.version_info[0], sys.version_info[1],
            getattr(sys, "abiflags", "")]


def _home() -> str:
    """The directory this cprof is imported from (where a child that has no
    cprof of its own finds it)."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _program(argv: list[str]) -> str:
    """The program of a python command line: the script's base name, the
    ``-m`` module, or "python -c"."""
    i = 1
    while i < len(argv):
        word = argv[i]
        if word == "--" or not word.startswith("-") or word == "-":
            rest = argv[i + 1:] if word == "--" else argv[i:]
            return os.path.basename(rest[0]) if rest and rest[0] != "-" else "python"
        if word.startswith("--"):
            i += 2 if word == "--check-hash-based-pycs" else 1
            continue
        for j, letter in enumerate(word[1:], 2):
            if letter in "XW":
                i += 1 if word[j:] else 2  # its value, inline or next
                break
            if letter in "mc":
                value = word[j:] or (argv[i + 1] if i + 1 < len(argv) else "")
                return value if letter == "m" and value else "python -c"
        else:
            i += 1
    return "python"


def process_name() -> str:
    """What the ``process`` label says of this process: a multiprocessing
    child's name (ForkPoolWorker-1, SpawnProcess-2), else its program: the
    script's base name or the ``-m`` module, as cprof record or python ran it."""
    mp = sys.modules.get("multiprocessing.process")
    if mp is not None and mp.parent_process() is not None:
        return str(mp.current_process().name)
    argv = runner.command_line if runner.command_line is not None else sys.orig_argv
    return _program(argv)


def _labelled(profile: Profile) -> Profile:
    return with_labels(profile, {"pid": os.getpid(), "process": process_name()})


def _merged(profiles: list[Profile], first: str, *more: str) -> Profile:
    """``profiles`` merged, with the comment ``first``, then the others'
    comments but their first (the collector's count of each part, which
    ``first`` replaces: one comment a second of a child would pile up), then
    ``more``."""
    merged = merge(profiles)
    rest = dict.fromkeys(c for p in profiles for c in p.comments[1:])
    return with_samples(merged, merged.samples, comments=[first, *rest, *more])


# The following this process does: as the root, or as a followed child (at
# most one of them; a forked child of either is a child).
_root: Following | None = None
_child: _Child | None = None


class Following:
    """The root's side: children follow from construction until
    :meth:`finish` (or :meth:`per_process`), which ends it."""

    def __init__(self, settings: dict[str, Any]) -> None:
        global _root
        if _root is not None or _child is not None:
            raise RuntimeError("child processes are already followed, for another profile: "
                               "one profile at a time may follow them")
        import tempfile  # here: only following needs a temporary directory
        self.settings = settings
        self.closed = False
        self.dir = tempfile.mkdtemp(prefix="cprof-follow-")
        try:
            with open(os.path.join(self.dir, "sitecustomize.py"), "w", encoding="utf-8") as f:
                f.write(SITECUSTOMIZE)
        except BaseException:
            self._remove_dir()
            raise
        self._saved = {name: os.environ.get(name) for name in (ENV_VAR, "PYTHONPATH")}
        path = self._saved["PYTHONPATH"]
        # What children read: the settings, where to write, who may follow.
        self.config = {**settings, "dir": self.dir, "python": _build(), "home": _home()}
        self._set = {ENV_VAR: json.dumps(self.config),
                     "PYTHONPATH": self.dir + (os.pathsep + path if path else "")}
        os.environ.update(self._set)
        _root = self
        # After the collector's own: a forked child starts its profile once
        # they have reset the one it inherited.
        patches.at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)

    def end_children(self) -> None:
        """At the program's end, what the interpreter's exit would do next
        for multiprocessing, done now so that its children's profiles are
        in: run its exit finalizers (a Pool not closed is terminated), stop
        its daemonic processes (SIGTERM: each writes its profile) and wait
        for the others. Its own exit handler then finds nothing to do."""
        util = sys.modules.get("multiprocessing.util")
        exit_function = getattr(util, "_exit_function", None)
        if exit_function is not None:
            exit_function()

    def children(self, like: Profile) -> list[tuple[int, Profile]]:
        """The profiles the children wrote so far, each labelled, with their
        pids, of the sample types of ``like``; unreadable ones are passed
        over (a child's write is atomic, so only one of another program
        would be)."""
        found = []
        try:
            names = sorted(os.listdir(self.dir))
        except OSError:
            return []
        for name in names:
            pid, dash, _ = name.partition("-")
            if not (dash and pid.isdecimal() and name.endswith(".prof")):
                continue
            try:
                p = load(os.path.join(self.dir, name))
            except (OSError, ProfileError):
                continue
            if p.sample_types == like.sample_types and p.period_type == like.period_type:
                found.append((int(pid), p))
        return found

    def finish(self, own: Profile) -> Profile:
        """``own`` (the root's profile) labelled, with every child's merged
        in; the end of the following."""
        try:
            children = self.children(own)
            parts = [_labelled(own), *(p for _, p in children)]
            followed = f"cprof followed {len({pid for pid, _ in children})} child processes"
            if own.sample_types and own.sample_types[0].type == "samples":
                taken = sum(s.values[0] for p in parts for s in p.samples)
                followed += f": {taken} samples in all"
            # The root's own count says whose it is: read alone, "1 samples" above the
            # profile of every process looked like a lost profile.
            merged = _merged(parts, (own.comments[0] + ", in the parent") if own.comments else "",
                             f"{followed}; each sample is labelled pid and process")
            # The root's time: the children ran within it.
            return with_samples(merged, merged.samples, time_ns=own.time_ns,
                                duration_ns=own.duration_ns)
        finally:
            self.close()

    def per_process(self, own: Profile, directory: str) -> list[tuple[str, Profile]]:
        """Write each process's profile (the root's ``own`` included) as
        DIRECTORY/PID.prof; the files and profiles, the root's first; the end
        of the following."""
        try:
            by_pid: dict[int, list[Profile]] = {os.getpid(): [_labelled(own)]}
            for pid, p in self.children(own):
                by_pid.setdefault(pid, []).append(p)
            os.makedirs(directory, exist_ok=True)
            written = []
            for pid, profiles in by_pid.items():
                profile = merge(profiles) if len(profiles) > 1 else profiles[0]
                path = os.path.join(directory, f"{pid}.prof")
                write_bytes(path, profile.to_bytes())
                written.append((path, profile))
            return written
        finally:
            self.close()

    def close(self) -> None:
        """Give the environment back and remove the directory: children
        still running write nothing more."""
        global _root
        if self.closed:
            return
        self.closed = True
        if _root is self:
            _root = None
        for name, value in self._saved.items():
            current = os.environ.get(name)
            if current != self._set[name]:
                if name == "PYTHONPATH" and current is not None:  # the program changed it
                    os.environ[name] = os.pathsep.join(
                        p for p in current.split(os.pathsep) if p != self.dir)
                continue
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._remove_dir()

    def _remove_dir(self) -> None:
        from shutil import rmtree  # here: only following needs it
        for _ in range(3):  # a child may be writing a file into it meanwhile
            rmtree(self.dir, ignore_errors=True)
            if not os.path.exists(self.dir):
                return


class _Child:
    """A followed child's side: its profile, written into the directory as
    it ends and every FLUSH_SECONDS meanwhile (less often for a profile
    that takes long to save: FLUSH_SHARE) by a thread of its own."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings  # Following.config
        self.path = os.path.join(settings["dir"], f"{os.getpid()}-{os.urandom(4).hex()}.prof")
        self.lock = threading.Lock()  # the profile: its cuts, the end
        self.handle: object = None
        self.so_far: Profile | None = None  # a CPU profile's cuts, merged
        self.ending = False
        self.ended = False
        self.pending: int | None = None  # a termination signal that came while ending
        self.stop = threading.Event()
        self.flusher_id: int | None = None
        self.signals = runner.TerminationHandlers(self._on_signal)
        self.echo_pipe: tuple[int, int] | None = None  # the termination signals' echo: read, write

    def start(self) -> None:
        """Start the profile, in the main thread (the sitecustomize's, or
        the forking thread's, which is the child's main thread)."""
        s = self.settings
        # The termination signals' Python handler below runs in the main
        # thread only, once the main thread is woken: a signal another
        # thread took would leave it blocked (a Pool worker waiting for its
        # next task) for ever. cprof's threads (the sampler's, the flusher)
        # are born with the program's signals blocked (quiet.py).
        if s["profile"] == "cpu":
            self.handle = cpu.start_cpu_profile(hz=s["hz"], mode=s["mode"],
                                                max_depth=s["max_depth"], native=s["native"])
        else:
            from . import heap
            heap.start_heap_profile(s["rate"], max_depth=s["max_depth"])
        patches.child_ending = self.end
        if patches.child_exit.users == 0:  # a forked child has it from its parent
            patches.child_exit.use()
        patches.at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)
        if threading.current_thread() is threading.main_thread():
            self.signals.install()
            self._watch_signals()
        quiet.start(threading.Thread(target=self._flush_every, name="cprof-follow", daemon=True))

    def _watch_signals(self) -> None:
        """Have the numbers of the termination signals this child handles
        written to a pipe the flusher reads, as they come (csrc/collect/
        echo.h): one that came to another thread of the program, or just
        before the main thread blocked (between Python's last look at its
        signals and the system call), would otherwise not end the process
        until the main thread wakes, if ever. Not signal.set_wakeup_fd,
        which the program owns: multiprocessing's forkserver resets it in
        the very child it forks, after the fork handlers, and asyncio's
        loops take it."""
        read, write = os.pipe()
        os.set_blocking(write, False)
        if _core.echo_signals(write, self.signals.taken()):
            self.echo_pipe = (read, write)
            return
        os.close(read)
        os.close(write)

    def forget_echo(self) -> None:
        """In a forked child: drop the parent's pipe (the parent reads it)."""
        if self.echo_pipe is not None:
            _core.echo_signals(-1, ())
            for fd in self.echo_pipe:
                os.close(fd)
            self.echo_pipe = None

    def _flush_every(self) -> None:
        self.flusher_id = threading.get_native_id()
        import select  # here: the sitecustomize's import of cprof should not pay for it
        due = time.monotonic() + FLUSH_SECONDS
        while not self.stop.is_set():
            left = due - time.monotonic()
            if left <= 0:
                spent = time.thread_time()
                try:
                    self.flush()
                except Exception:
                    pass  # the file keeps the last flush; the end says what went wrong
                spent = time.thread_time() - spent
                due = time.monotonic() + max(FLUSH_SECONDS, FLUSH_SHARE * spent)
            elif self.echo_pipe is None:
                self.stop.wait(left)
            elif select.select([self.echo_pipe[0]], [], [], left)[0]:
                self._pass_on(os.read(self.echo_pipe[0], 512))

    def _pass_on(self, signals: bytes) -> None:
        """Send the termination signals among ``signals`` (their numbers, as
        the echo pipe gets them) to the main thread, where their handler
        runs, if it has not run it by a while later: that wakes it."""
        ours = [n for n in dict.fromkeys(signals) if n in runner.TERMINATION_SIGNALS]
        if not ours:
            return
        time.sleep(0.05)
        for signum in ours:
            if not self.ending and self.signals.handles(signum):
                signal.pthread_kill(threading.main_thread().ident or 0, signum)

    def flush(self) -> None:
        """Write what the profile holds so far."""
        with self.lock:
            if self.ending:
                return
            if self.settings["profile"] == "cpu":
                cut = without_thread(cpu.cut_cpu_profile(self.handle), self.flusher_id)
                if not cut.samples:
                    return
                self.so_far = self._add(cut)
                profile = self.so_far
            else:
                from . import heap
                profile = heap.heap_profile("heap")
            write_bytes(self.path, _labelled(profile).to_bytes())

    def _add(self, cut: Profile) -> Profile:
        """The CPU profile so far, with ``cut``."""
        if self.so_far is None:
            return cut
        s = self.settings
        samples = self.so_far.totals()[0] + cut.totals()[0]
        return _merged([self.so_far, cut], f"cprof {s['mode']} profile at {s['hz']:g} Hz: "
                       f"{samples} samples, in a followed child")

    def end(self) -> None:
        """Stop the profile and write it (once; what ends the process calls it)."""
        if self.ending:
            return
        self.ending = True
        self.stop.set()
        try:
            with self.lock:
                if self.settings["profile"] == "cpu":
                    profile = self._add(without_thread(cpu.stop_cpu_profile(self.handle),
                                                       self.flusher_id))
                else:
                    from . import heap
                    profile = heap.stop_heap_profile()
                write_bytes(self.path, _labelled(profile).to_bytes())
        except FileNotFoundError:
            pass  # the root has ended and removed the directory: nobody reads it
        except Exception as e:
            runner.say_now(f"cprof: process {os.getpid()}, a child of the profiled process, "
                           f"could not write its profile: {e}")
        finally:
            self.ended = True
        if self.pending is not None and threading.current_thread() is threading.main_thread():
            runner.die_of(self.pending)

    def _on_signal(self, signum: int) -> None:
        if self.ending and not self.ended:
            self.pending = signum  # this thread is writing it: die once it is written
            return
        self.end()
        runner.die_of(signum)


def child_start(settings: dict[str, Any]) -> None:
    """Profile this process, a child of the root, as ``settings`` say (the
    sitecustomize's call; a forked child's at the fork)."""
    global _child
    child = _Child(settings)
    child.start()
    _child = child


def _before_fork() -> None:
    """Hold the child's profile still across a fork: no cut half made."""
    child = _child
    if child is not None:
        child.lock.acquire()


def _after_fork_in_parent() -> None:
    child = _child
    if child is not None:
        child.lock.release()


def _after_fork_in_child() -> None:
    """A process forked by the root or by a followed child is followed."""
    global _root, _child
    inherited = _child.settings if _child is not None else (
        _root.config if _root is not None else None)
    if _child is not None:
        _child.forget_echo()
    _root = _child = None  # the root's following and its files are its own
    if inherited is None:
        return
    try:
        child_start(inherited)
    except Exception as e:
        runner.say_now(f"cprof: not profiling process {os.getpid()}, forked by a profiled "
                       f"process: {e}")
