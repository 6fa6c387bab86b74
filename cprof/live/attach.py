"""attach: profile a running CPython 3.14+ process that was started without cprof.

PEP 768's ``sys.remote_exec(pid, script)`` asks a live interpreter to run a
Python file in its main thread at its next safe point: no restart, no ptrace
kept, no code patched. ``cprof attach PID`` uses it to run :func:`agent`
inside the target, which does there what cprof does in-process (a CPU or wall
profile for some seconds, a heap profile of the allocations made meanwhile, a
thread dump, or the /debug/pprof endpoints) and hands the result back through
a private directory. The profile is cprof's own, sampled in the process,
not read from outside.

Who may attach: whoever may debug the process. ``sys.remote_exec`` writes
into the target's memory through ``/proc/PID/mem``, which Linux allows to
the target's own user (when ``/proc/sys/kernel/yama/ptrace_scope`` permits)
and to holders of CAP_SYS_PTRACE; a process that disabled remote debugging
(``PYTHON_DISABLE_REMOTE_DEBUG``, ``-X disable_remote_debug``, a build
``--without-remote-debug``) cannot be reached at all. cprof adds nothing to
that: it reads the target's version the same way before asking, so that
each refusal is said plainly. The target imports cprof from its own
``sys.path``; only ``--add-path`` (the user asking) appends the directory
cprof runs from to it.

The exchange: a directory made for one attach (mode 0700, owned by the
target's user) holds ``request.json`` and the script; the agent answers in
``status.json`` (replaced atomically at each step: started, then done or
error) and ``result``. The attacher removes the directory at the end. If the
target never runs the script in time (its main thread blocked in C), the
attacher marks the request cancelled and leaves a script that only removes
the directory, for the target to run whenever it gets there.
"""

from __future__ import annotations

import json
import os
import stat
import struct
import sys
import tempfile
import threading
import time

from ..collect import quiet
from ..collect.command import ProgramError
from ..collect.elfsym import section_addresses

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

MIN_VERSION = (3, 14)  # sys.remote_exec: PEP 768
_COOKIE = b"xdebugpy"  # the first bytes of _Py_DebugOffsets, at the start of _PyRuntime (3.13+)
STATUS, REQUEST, RESULT, CANCELLED = "status.json", "request.json", "result", "cancelled"
SCRIPT = "cprof_attach.py"
KINDS = ("cpu", "wall", "heap", "dump", "serve")


class AttachError(ProgramError):
    """Why cprof cannot attach to a process, or what went wrong in it."""


class _NotStarted(AttachError):
    """The target did not run the script in time."""


class Target:
    """What cprof found out about a process before attaching."""

    def __init__(self, pid: int, executable: str, version: tuple[int, ...] | None,
                 free_threaded: bool) -> None:
        self.pid = pid
        self.executable = executable
        # major, minor and, from 3.13's debug offsets on, micro; None: unknown
        self.version = version
        self.free_threaded = free_threaded

    @property
    def version_text(self) -> str:
        if self.version is None:
            return "an unknown version"
        text = ".".join(map(str, self.version))
        return text + (" (free-threaded)" if self.free_threaded else "")


def _version_from_name(path: str) -> tuple[int, ...] | None:
    """3.X from a file name such as libpython3.12.so.1.0 or python3.11."""
    name = os.path.basename(path)
    for prefix in ("libpython", "python"):
        if name.startswith(prefix):
            rest = name[len(prefix):].split(".")
            if len(rest) >= 2 and rest[0].isdigit() and rest[1].rstrip("td").isdigit():
                return int(rest[0]), int(rest[1].rstrip("td"))
    return None


def _no_permission(pid: int, what: str, e: OSError) -> AttachError:
    scope = ""
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as f:
            scope = f.read().strip()
    except OSError:
        pass
    hint = f"; /proc/sys/kernel/yama/ptrace_scope is {scope}" if scope else ""
    return AttachError(
        f"no permission to read process {pid}'s {what} ({e.strerror}): attaching needs a "
        f"debugger's rights over it: the same user, and a ptrace scope that allows it, or "
        f"CAP_SYS_PTRACE (root){hint}")


def inspect(pid: int) -> Target:
    """Which CPython process ``pid`` runs, read from outside: the file that
    holds ``_PyRuntime`` (its ``.PyRuntime`` ELF section) and, from 3.13 on,
    the version and build its debug offsets publish there."""
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        raise AttachError(f"a process id is a positive integer, not {pid!r}")
    if pid == os.getpid():
        raise AttachError(f"process {pid} is this process: profile it with cprof.cpu() instead")
    try:
        executable = os.readlink(f"/proc/{pid}/exe")
    except FileNotFoundError:
        raise AttachError(f"no process {pid}") from None
    except PermissionError as e:
        raise _no_permission(pid, "executable", e) from None
    except OSError:
        executable = "?"  # a kernel thread, or a zombie
    try:
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="surrogateescape") as f:
            maps = f.read()
    except FileNotFoundError:
        raise AttachError(f"no process {pid}") from None
    except PermissionError as e:
        raise _no_permission(pid, "memory map", e) from None
    found = section_addresses(maps, ".PyRuntime", proc=str(pid))
    if not found:
        raise AttachError(f"process {pid} ({executable}) is not a CPython process: none of its "
                          f"files holds a .PyRuntime section")
    runtime, address = found[0]
    version = _version_from_name(runtime) or _version_from_name(executable)
    try:
        with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
            mem.seek(address)
            head = mem.read(24)
    except PermissionError as e:
        raise _no_permission(pid, "memory", e) from None
    except OSError as e:
        if not os.path.exists(f"/proc/{pid}"):
            raise AttachError(f"process {pid} exited") from None
        raise AttachError(f"cannot read process {pid}'s memory: {e.strerror}") from None
    if len(head) < 24 or head[:8] != _COOKIE:  # before 3.13: no debug offsets
        return Target(pid, executable, version, False)
    hexversion, flag = struct.unpack_from("<QQ", head, 8)
    found_version = (hexversion >> 24 & 0xFF, hexversion >> 16 & 0xFF, hexversion >> 8 & 0xFF)
    free_threaded = bool(flag) if found_version[:2] >= (3, 14) else False
    return Target(pid, executable, found_version, free_threaded)


def check(target: Target) -> None:
    """Refuse, with the reason and what to do, a target this interpreter
    cannot send cprof's script to."""
    pid = target.pid
    if target.version is None or target.version[:2] < MIN_VERSION:
        raise AttachError(
            f"process {pid} runs CPython {target.version_text} ({target.executable}): attaching "
            f"needs 3.14 or later (PEP 768's sys.remote_exec). Run it under 'cprof record' or "
            f"'cprof serve' instead, or start it with CPROF_SERVE=127.0.0.1:6060 and cprof "
            f"installed, then 'go tool pprof http://127.0.0.1:6060/debug/pprof/profile'")
    here = sys.version_info
    same = target.version[:2] == (here.major, here.minor)
    import sysconfig
    ours_free = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))  # the build, not PYTHON_GIL
    if not hasattr(sys, "remote_exec") or not same or target.free_threaded != ours_free:
        raise AttachError(
            f"process {pid} runs CPython {target.version_text}, this cprof runs on "
            f"{here.major}.{here.minor}.{here.micro}"
            f"{' (free-threaded)' if ours_free else ''}: the attaching interpreter must be the "
            f"same version and build as the target's. Run cprof with that interpreter, e.g. "
            f"{target.executable} -m cprof attach {pid} ...")


def _write_json(directory: str, name: str, value: dict[str, Any]) -> None:
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.{threading.get_ident()}")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f)
    os.replace(tmp, os.path.join(directory, name))


# The most the attacher reads of the agent's status, and of its result (the
# largest profile cprof.load takes).
MAX_STATUS = 1 << 20
MAX_RESULT = 1 << 30


def read_answer(path: str, limit: int) -> bytes | None:
    """A file the other side wrote into the exchange directory: None if it is
    not there yet. The directory is the target's when root attaches to another
    user's process, so its files are not trusted: a symbolic link, anything
    but a regular file, or more than ``limit`` bytes is an AttachError."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise AttachError(f"{path}: cannot read the process's answer ({e.strerror}; a "
                          f"symbolic link is refused)") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise AttachError(f"{path}: the process's answer is not a regular file")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise AttachError(f"{path}: the process's answer is over {limit} bytes")
    return data


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        data = read_answer(path, MAX_STATUS)
        value = None if data is None else json.loads(data)
    except ValueError:  # being written: the next look sees it whole
        return None
    return value if isinstance(value, dict) else None


# The script the target runs: import cprof from the target's own sys.path (or,
# when the user asked, from where the attacher's cprof is, appended at the end)
# and hand over to agent(); an import failure is reported, never raised into
# the target. Everything runs inside a function, so the target keeps no names.
_SCRIPT = '''\
# Run in this process by cprof attach (sys.remote_exec), from process {attacher}.
def _cprof_attach(directory={directory!r}, extra_path={extra_path!r}):
    import json, os, sys
    if os.path.exists(os.path.join(directory, {cancelled!r})):
        import shutil
        shutil.rmtree(directory, ignore_errors=True)
        return
    added = bool(extra_path) and extra_path not in sys.path
    if added:
        sys.path.append(extra_path)
    try:
        from cprof.live.attach import agent
    except BaseException as e:
        if added:
            sys.path.remove(extra_path)
        status = {{"state": "error", "import_error": f"{{type(e).__name__}}: {{e}}",
                  "executable": sys.executable, "prefix": sys.prefix, "pid": os.getpid()}}
        tmp = os.path.join(directory, ".status.import")
        with open(tmp, "w") as f:
            json.dump(status, f)
        os.replace(tmp, os.path.join(directory, {status!r}))
        return
    agent(directory, added_path=extra_path if added else None)


_cprof_attach()
del _cprof_attach
'''

_CANCELLED_SCRIPT = '''\
# cprof attach gave up waiting for this process: remove the exchange directory.
import shutil as _cprof_shutil
_cprof_shutil.rmtree({directory!r}, ignore_errors=True)
del _cprof_shutil
'''


# --- in the target ----------------------------------------------------------------

def agent(directory: str, added_path: str | None = None) -> None:
    """Carry out the request in ``directory``, in the target process (its
    main thread, called by the attach script). Collections that last run in
    a daemon thread; the result is written when they end, or at the
    interpreter's exit if that comes first (marked partial)."""
    request = _read_json(os.path.join(directory, REQUEST)) or {}
    kind = request.get("kind")
    base: dict[str, Any] = {"pid": os.getpid(), "python": sys.version.split()[0],
                            "added_path": added_path}
    if kind not in KINDS:
        _write_json(directory, STATUS, {**base, "state": "error",
                                        "error": f"unknown request {kind!r}"})
        return
    try:
        finish = _start(kind, request, directory, base)
    except Exception as e:  # e.g. a CPU profile already running in the target
        _write_json(directory, STATUS, {**base, "state": "error",
                                        "error": f"{type(e).__name__}: {e}"})
        return
    if finish is None:
        return
    _write_json(directory, STATUS, {**base, "state": "started"})
    _Collection(directory, base, float(request.get("seconds", 10)), finish).start()


def _start(kind: str, request: dict[str, Any], directory: str,
           base: dict[str, Any]) -> Any:
    """Start the collection asked for and return what ends it (a function
    returning the profile), or None when the request is already answered."""
    result = os.path.join(directory, RESULT)
    if kind in ("cpu", "wall"):
        from ..collect import cpu
        handle = cpu.start_cpu_profile(hz=float(request.get("hz", 100)), mode=kind,
                                       native=bool(request.get("native", False)))
        return lambda: cpu.stop_cpu_profile(handle)
    if kind == "heap":
        from ..collect import heap
        heap.start_heap_profile(int(request.get("rate", heap.DEFAULT_RATE)))
        return heap.stop_heap_profile
    if kind == "dump":
        from ..collect.lookup import lookup
        debug = int(request.get("debug", 2))

        def dump() -> None:
            # From a thread, once the main thread has left this script: the
            # dump shows it in the program's code, not in cprof's attach.
            time.sleep(0.05)
            try:
                lookup("goroutine").write_to(result, debug=debug)
            except Exception as e:
                _write_json(directory, STATUS, {**base, "state": "error",
                                                "error": f"{type(e).__name__}: {e}"})
            else:
                _write_json(directory, STATUS, {**base, "state": "done"})

        quiet.start(threading.Thread(target=dump, name="cprof-attach", daemon=True))
        return None
    from . import server
    host, port = request.get("host", "127.0.0.1"), int(request.get("port", 6060))
    token = request.get("token")
    running = server.serve(host, port, token=token)
    _write_json(directory, STATUS, {**base, "state": "done",
                                    "url": f"http://{running.host}:{running.port}/debug/pprof/"})
    return None


class _Collection:
    """Ends a collection after ``seconds``, in a daemon thread, or at exit."""

    def __init__(self, directory: str, base: dict[str, Any], seconds: float,
                 finish: Any) -> None:
        self.directory, self.base, self.seconds, self.finish = directory, base, seconds, finish
        self.started = time.monotonic()
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.ended = False
        self.waiter: int | None = None  # the native id of the thread that waits
        # python deletes __main__.__file__ once the script returns, before the
        # atexit calls: a profile ended at exit names __main__'s code with it.
        self.main_file = getattr(sys.modules.get("__main__"), "__file__", None)

    def start(self) -> None:
        import atexit
        atexit.register(self.end, True)
        quiet.start(threading.Thread(target=self._wait, name="cprof-attach", daemon=True))

    def _wait(self) -> None:
        self.waiter = threading.get_native_id()
        self.done.wait(self.seconds)
        self.end(False)

    def _profile(self) -> Any:
        """The profile, without the samples of the thread that waited (a wall
        profile samples it too)."""
        from ..pprof.ops import without_thread
        main = sys.modules.get("__main__")
        if main is not None and self.main_file and getattr(main, "__file__", None) is None:
            main.__file__ = self.main_file
        return without_thread(self.finish(), self.waiter)

    def end(self, at_exit: bool) -> None:
        with self.lock:
            if self.ended:
                return
            self.ended = True
        if not at_exit:
            import atexit
            atexit.unregister(self.end)
        elapsed = time.monotonic() - self.started
        try:
            from ..pprof.io import write_bytes
            write_bytes(os.path.join(self.directory, RESULT), self._profile().to_bytes())
        except Exception as e:
            _write_json(self.directory, STATUS, {**self.base, "state": "error",
                                                 "error": f"{type(e).__name__}: {e}"})
            return
        _write_json(self.directory, STATUS, {**self.base, "state": "done",
                                             "seconds": elapsed, "partial": at_exit})


# --- in the attacher ----------------------------------------------------------------

def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            line = f.read()
    except OSError:
        return False
    return line[line.rfind(b")") + 2:][:1] not in (b"Z", b"X")


def _exchange(target: Target) -> str:
    directory = tempfile.mkdtemp(prefix="cprof-attach-")
    try:
        st = os.stat(f"/proc/{target.pid}")
    except OSError:
        raise AttachError(f"process {target.pid} exited") from None
    if (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()):
        try:  # root attaching to another user's process: the directory is the target's
            os.chown(directory, st.st_uid, st.st_gid)
        except OSError as e:
            os.rmdir(directory)
            raise AttachError(f"process {target.pid} belongs to another user, and cprof cannot "
                              f"give it the exchange directory: {e.strerror}") from None
    return directory


def _own(directory: str, path: str) -> None:
    st = os.stat(directory)
    if (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()):
        os.chown(path, st.st_uid, st.st_gid)


def _send(pid: int, script: str) -> None:
    try:
        # getattr: typeshed knows sys.remote_exec from 3.14 on only, and mypy
        # checks this module as each supported version sees it.
        getattr(sys, "remote_exec")(pid, script)
    except PermissionError as e:
        raise _no_permission(pid, "memory", e) from None
    except (OSError, RuntimeError) as e:
        text = str(e)
        if "not enabled" in text:
            raise AttachError(
                f"process {pid} has remote debugging disabled (PYTHON_DISABLE_REMOTE_DEBUG in "
                f"its environment, -X disable_remote_debug, or a Python built "
                f"--without-remote-debug): cprof attach cannot reach it. Restart it without "
                f"that setting, or under 'cprof serve'") from None
        if not _alive(pid):
            raise AttachError(f"process {pid} exited") from None
        raise AttachError(f"sys.remote_exec could not reach process {pid}: {text}") from None


def attach(pid: int, request: dict[str, Any], *, timeout: float = 10.0,
           add_path: bool = False, say: Any = None) -> tuple[dict[str, Any], bytes | None]:
    """Run ``request`` (kind: cpu, wall, heap, dump or serve, and its
    settings) in process ``pid``; return the agent's final status and the
    result's bytes (a gzipped profile, a dump's text, or None for serve).
    ``timeout``: how long the target may take to start running the script."""
    if request.get("kind") not in KINDS:
        raise AttachError(f"unknown request {request.get('kind')!r}")
    target = inspect(pid)
    check(target)
    directory = _exchange(target)
    keep = False  # the target has yet to run the script left in the directory
    try:
        _write_json(directory, REQUEST, request)
        _own(directory, os.path.join(directory, REQUEST))
        script = os.path.join(directory, SCRIPT)
        extra = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        with open(script, "w", encoding="utf-8") as f:
            f.write(_SCRIPT.format(attacher=os.getpid(), directory=directory,
                                   extra_path=extra if add_path else None,
                                   cancelled=CANCELLED, status=STATUS))
        _own(directory, script)
        _send(pid, script)
        try:
            status = _await(target, directory, timeout, float(request.get("seconds", 0)), say)
        except _NotStarted:
            keep = _alive(pid)
            raise
        if status.get("state") != "done":
            raise AttachError(_failure(target, status, add_path))
        return status, read_answer(os.path.join(directory, RESULT), MAX_RESULT)
    finally:
        if not keep:
            import shutil
            shutil.rmtree(directory, ignore_errors=True)


def _await(target: Target, directory: str, timeout: float, seconds: float,
           say: Any) -> dict[str, Any]:
    """Wait for the agent: to start within ``timeout``, then to finish
    within ``seconds`` and a margin for writing the profile."""
    pid, path = target.pid, os.path.join(directory, STATUS)
    begun = time.monotonic()
    deadline = begun + timeout
    started_at = None
    while True:
        status = _read_json(path)
        state = status.get("state") if status else None
        if state in ("done", "error"):
            assert status is not None
            return status
        now = time.monotonic()
        if state == "started" and started_at is None:
            started_at = now
            deadline = now + seconds + max(10.0, seconds)
            if say is not None:
                say(f"cprof: attached to process {pid} (CPython {target.version_text})")
        if not _alive(pid):
            after = f" {now - started_at:.1f} s after cprof started in it" if started_at else ""
            raise AttachError(f"process {pid} exited{after}, before it wrote the result")
        if now > deadline:
            if started_at is None:
                _cancel(directory)
                raise _NotStarted(
                    f"process {pid} did not run cprof's script within {timeout:g} s: its main "
                    f"thread has run no Python code since (blocked in a C call, or waiting "
                    f"for input?). It will only clean up after itself when it does; raise "
                    f"--timeout to wait longer")
            raise AttachError(f"process {pid} started profiling but did not finish within "
                              f"{now - started_at:.0f} s")
        time.sleep(0.02)


def _cancel(directory: str) -> None:
    """The target has not run the script yet: leave it one that removes the
    directory (atomically replaced, so the target reads one or the other; the
    old one sees the cancelled mark and does the same)."""
    open(os.path.join(directory, CANCELLED), "w").close()
    script = os.path.join(directory, SCRIPT)
    tmp = script + ".cancel"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(_CANCELLED_SCRIPT.format(directory=directory))
    _own(directory, tmp)
    os.replace(tmp, script)


def _failure(target: Target, status: dict[str, Any], add_path: bool) -> str:
    pid = target.pid
    if "import_error" in status:
        where = f"{status.get('executable')} (sys.prefix {status.get('prefix')})"
        if add_path:
            return (f"process {pid} could not import cprof, even with --add-path: "
                    f"{status['import_error']}; install cprof into its environment: "
                    f"{status.get('executable')} -m pip install cprof")
        return (f"cprof is not importable in process {pid}, which runs {where}: "
                f"{status['import_error']}. Install it there ({status.get('executable')} -m pip "
                f"install cprof), or rerun with --add-path to let the process import this "
                f"cprof ({os.path.dirname(os.path.dirname(os.path.abspath(__file__)))})")
    return f"in process {pid}: {status.get('error', 'the request failed')}"


__all__ = ["AttachError", "KINDS", "MIN_VERSION", "Target", "agent", "attach", "check",
           "inspect"]
