"""The cprof command line: ``cprof COMMAND ...`` and ``python -m cprof``.

``cprof record`` profiles a Python program as ``python -m cProfile`` does:
in-process, with the program seeing the ``sys.argv``, ``sys.path[0]`` and
``__main__`` it would see unprofiled, and its exit status passed through.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import sys
import threading
import time
import types
from typing import IO, Any, Sequence

from . import _core
from .collect import start_cpu_profile, stop_cpu_profile
from .model import Sample
from .profile import Profile, ProfileError, load
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
        print(f"Wrote {args.output}")
    return 0


# --- record -----------------------------------------------------------------------

# Interpreters: python, python3, python3.12, python3.13t, pypy3, python3-dbg.
_PYTHON_NAME = re.compile(r"^(python|pypy)(\d+(\.\d+)?t?)?(-dbg)?$")
# Interpreter options that take the next argument as their value.
_PYTHON_OPTIONS_WITH_VALUE = ("-X", "-W", "--check-hash-based-pycs")


class RecordError(Exception):
    """A mistake in the command to record, said before the program runs."""


def _is_python(path: str) -> bool:
    if _PYTHON_NAME.match(os.path.basename(path)):
        return True
    found = shutil.which(path)
    return found is not None and os.path.realpath(found) == os.path.realpath(sys.executable)


# The re-executed interpreter's program: import cprof as installed, not from the
# current directory (a checkout of cprof, say), then give sys.path[0] back to
# record(), which sets it to what the profiled program expects there.
_REEXEC = ("import sys; slot = [] if sys.flags.safe_path else [sys.path.pop(0)]; "
           "from cprof.cli import main; sys.path[:0] = slot; sys.exit(main(sys.argv[1:]))")


def _reexec_argv(command: list[str], record_options: list[str]) -> list[str]:
    """``python [options] script.py args`` (or ``-m module args``) as
    ``python [options] -c <cprof record> RECORD-OPTIONS ...``."""
    interpreter = shutil.which(command[0])
    if interpreter is None:
        raise RecordError(f"{command[0]}: no such interpreter")
    i = 1
    while i < len(command) and command[i].startswith("-") and command[i] not in ("-", "-m"):
        if command[i] == "-c" or (not command[i].startswith("--") and "c" in command[i][1:]
                                   and command[i][1] not in "XW"):
            raise RecordError("python -c is not supported: put the code in a file, or use "
                              "-m module")
        i += 2 if command[i] in _PYTHON_OPTIONS_WITH_VALUE else 1
    target = command[i:]
    if not target or target[0] == "-":
        raise RecordError(f"{' '.join(command)}: give a script or -m module to run")
    if target[0] != "-m":
        target = ["--", *target]
    return [interpreter, *command[1:i], "-c", _REEXEC, "record", *record_options, *target]


def _check_script(path: str) -> None:
    """Refuse a file that is not Python source, before the profile starts."""
    try:
        with open(path, "rb") as f:
            head = f.read(128)
    except OSError as e:
        raise RecordError(f"can't open file {path!r}: {e.strerror}") from None
    first = head.split(b"\n", 1)[0]
    if head.startswith(b"\x7fELF") or (first.startswith(b"#!") and b"python" not in first):
        raise RecordError(f"{path} is not a Python program: cprof record runs a Python script, "
                          f"-m module, or python with a script or module")


def _default_output(name: str, mode: str) -> str:
    """``work.py`` -> ``work.cpu.prof`` (``work.wall.prof`` in wall mode), in
    the current directory; ``-m pkg.mod`` -> ``pkg.mod.cpu.prof``."""
    stem = os.path.basename(name)
    stem = stem[:-3] if stem.endswith(".py") else stem
    return f"{stem or 'cprof'}.{mode}.prof"


def _main_module(spec: Any, path: str) -> types.ModuleType:
    """A fresh ``__main__`` as the interpreter makes one for a script (spec
    None) or for ``-m`` (its spec), put in sys.modules."""
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__spec__ = spec
    main.__loader__ = spec.loader if spec is not None else None
    main.__package__ = spec.parent if spec is not None else None
    main.__dict__["__cached__"] = spec.cached if spec is not None else None
    sys.modules["__main__"] = main
    return main


def _module_code(name: str) -> tuple[Any, types.CodeType]:
    """Find ``-m name`` as ``python -m`` does: a package runs its ``__main__``."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as e:
        raise RecordError(f"No module named {name} ({e})") from None
    if spec is None:
        raise RecordError(f"No module named {name}")
    if spec.submodule_search_locations is not None:
        if name.endswith(".__main__"):
            raise RecordError(f"cannot run package {name}")
        return _module_code(name + ".__main__")
    loader: Any = spec.loader
    code = loader.get_code(spec.name) if loader is not None else None
    if code is None:
        raise RecordError(f"No code object available for {name}")
    return spec, code


def _exit_status(e: SystemExit) -> int:
    """What the interpreter would exit with for ``raise SystemExit(code)``."""
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code & 0xFF
    print(e.code, file=sys.stderr)
    return 1


def _run(code: types.CodeType, main: types.ModuleType) -> int:
    """Run the program's code as __main__, then wait for its threads; return
    its exit status. An uncaught exception is reported as the interpreter
    reports it."""
    try:
        exec(code, main.__dict__)
        status = 0
    except SystemExit as e:
        status = _exit_status(e)
    except BaseException as e:
        if e.__traceback__ is not None:  # leave out this frame
            e.__traceback__ = e.__traceback__.tb_next
        sys.excepthook(type(e), e, e.__traceback__)
        status = 130 if isinstance(e, KeyboardInterrupt) else 1
    try:
        _join_threads()
    except KeyboardInterrupt:
        status = 130
    return status


def _join_threads() -> None:
    """Wait for the program's non-daemon threads, as the interpreter does
    before it exits, so that their work is in the profile."""
    for t in threading.enumerate():
        if t is not threading.current_thread() and not t.daemon:
            t.join()


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

    def stop(self) -> None:
        if self.thread is not None:
            self.done.set()
            self.thread.join()


def _program_only(p: Profile, live_count_thread: int | None) -> Profile:
    """The profile of the program alone: without the samples of cprof's
    live-count thread, and with the frames that ran the program (cprof's
    command line down to ``_run``) cut from the root of its stacks, so that
    they start at ``__main__.<module>`` as the program's own do."""
    runner = (os.path.abspath(_run.__code__.co_filename), _run.__code__.co_name)
    samples = []
    changed = False
    for s in p.samples:
        if live_count_thread is not None and s.labels.get("thread_id") == live_count_thread:
            changed = True
            continue
        for i, loc in enumerate(s.locations):
            if any(ln.function is not None
                   and (ln.function.filename, ln.function.system_name) == runner
                   for ln in loc.lines):
                labels: dict[str, list[str | int]] = {}
                for key, value, _ in s.label_items:
                    labels.setdefault(key, []).append(value)
                s = Sample(s.values, s.locations[:i], labels, num_units=s.num_units)
                changed = True
                break
        samples.append(s)
    if not changed:
        return p
    return Profile(p.sample_types, samples, period_type=p.period_type, period=p.period,
                   time_ns=p.time_ns, duration_ns=p.duration_ns, comments=p.comments,
                   default_sample_type=p.default_sample_type, mappings=p.mappings)


def record(args: argparse.Namespace) -> int:
    """Profile the program named by ``args`` in this process; write the
    profile, print where and its top 10, and return the program's status."""
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if args.module is None and command and command[0] == "-m":
        args.module, command = command[1:], []
    if args.module is not None:
        if not args.module:
            raise RecordError("-m needs a module name")
        name, argv_rest = args.module[0], args.module[1:]
    elif not command:
        raise RecordError("give the program to record: cprof record [options] -- python "
                          "script.py args, script.py args, or -m module args")
    elif _is_python(command[0]):
        argv = _reexec_argv(command, _record_options(args))
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(argv[0], argv)
    else:
        name, argv_rest = command[0], command[1:]
    out = args.output or _default_output(name, args.mode)
    directory = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
        raise RecordError(f"cannot write {out}: {directory} is not a writable directory")
    if args.module is not None:
        spec, code = _module_code(name)
        path = spec.origin
        path0 = os.getcwd()
    else:
        _check_script(name)
        spec, path = None, os.path.abspath(name)
        with open(name, "rb") as f:
            code = compile(f.read(), path, "exec")
        path0 = os.path.dirname(os.path.realpath(name))
    sys.argv[:] = [path if spec is not None else name, *argv_rest]
    if not sys.flags.safe_path:
        sys.path[0] = path0
    main = _main_module(spec, path)
    live = _LiveCount(sys.stderr)
    start_cpu_profile(hz=args.hz, mode=args.mode, max_depth=args.max_depth)
    live.start()
    try:
        status = _run(code, main)
    finally:
        live.stop()
        profile = _program_only(stop_cpu_profile(), live.native_id)
        profile.write(out)
    samples = profile.totals()[0] if profile.sample_types else 0
    print(f"cprof: wrote {out} ({samples} samples in "
          f"{format_value(profile.duration_ns, 'nanoseconds')}); program exited with "
          f"status {status}", file=sys.stderr)
    print(profile.top(10), file=sys.stderr, end="")
    print(f"cprof: explore it with: go tool pprof -http=: {out}", file=sys.stderr)
    return status


def _record_options(args: argparse.Namespace) -> list[str]:
    options = ["--hz", f"{args.hz:g}", "--mode", args.mode, "--max-depth", str(args.max_depth)]
    return (["-o", args.output] if args.output else []) + options


def _cmd_record(args: argparse.Namespace) -> int:
    try:
        return record(args)
    except RecordError as e:
        print(f"cprof record: {e}", file=sys.stderr)
        return 2


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
                   help="refuse profiles that inflate beyond this many bytes")
    s.set_defaults(run=_cmd_summary)

    r = sub.add_parser(
        "record", help="profile a Python program, write its profile and print its top 10",
        usage="cprof record [-o OUT] [--hz N] [--mode cpu|wall] [--max-depth N]\n"
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
    r.add_argument("--max-depth", type=int, default=128,
                   help="deeper stacks keep their innermost frames (default 128)")
    r.add_argument("-m", dest="module", nargs=argparse.REMAINDER, metavar="MODULE ARGS",
                   help="run a module as python -m does")
    r.add_argument("command", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    r.set_defaults(run=_cmd_record)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ProfileError as e:
        print(f"cprof: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"cprof: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
