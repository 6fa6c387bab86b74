"""symbols: the C collectors' interned tables as model objects.

The sampler and the heap hooks hand over functions (qualified name, code
name, file, first line), locations (function, line) and stacks (location
indices, leaf first); this module names functions as pprof users expect
(``pkg.mod.Class.method``, absolute file names) and builds the Locations
that samples share.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from types import CodeType, FrameType

from ..pprof.model import PYTHON_MAPPING, Function, Line, Location, Mapping

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Callable, Sequence, TypeVar

    T = TypeVar("T")

# cprof's own files: everything under the package's directory.
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


# cprof's own frames with a part in the program's stacks, by (absolute file,
# code name). The files are given relative to the package.
def _own(path: str, name: str) -> tuple[str, str]:
    return os.path.join(PACKAGE_DIR, path), name


# Frames that wrap the program's and must not show in profiles: the thread-start
# wrapper of a CPU profile.
HIDDEN_FRAMES: frozenset[tuple[str, str]] = frozenset({
    _own("collect/patches.py", "_bootstrap_inner")})
# The frames through which cprof runs a program (cprof record, cprof serve):
# a stack is cut at the innermost of them, which goes with its callers, so
# the program's stacks start at its ``__main__.<module>`` as when python runs it.
ROOT_FRAMES: frozenset[tuple[str, str]] = frozenset({_own("collect/runner.py", "_run")})
# cprof's frames that profiles keep as they are (the notebook magic's
# _execute, where cprof.jupyter cuts its stacks): every other cprof frame is
# left out or folded into "<cprof>" (fold_cprof).
KEPT_FRAMES: frozenset[tuple[str, str]] = frozenset({_own("jupyter.py", "_execute")})


class Resolved:
    """A profile's tables resolved: its mappings (the interpreter's first, then
    native objects', if any), functions, locations and stacks (leaf first)."""

    __slots__ = ("mappings", "functions", "locations", "stacks")

    def __init__(self, mappings: list[Mapping], functions: list[Function],
                 locations: list[Location], stacks: list[tuple[Location, ...]]) -> None:
        self.mappings = mappings
        self.functions = functions
        self.locations = locations
        self.stacks = stacks


def _script_file(main: object) -> str | None:
    """The file of the script ``main`` (the ``__main__`` module) python ran,
    once python has taken its ``__file__`` away, as it does when the script
    ends, before the atexit callbacks (a profile stopped at exit). The
    loader python gave the script keeps the path. An interactive
    ``__main__`` (a Jupyter kernel's, the REPL's) has no such loader, and
    its functions keep the names they had."""
    path = getattr(getattr(main, "__loader__", None), "path", None)
    return path if isinstance(path, str) and not path.startswith("<") else None


def module_names() -> dict[str, str]:
    """Absolute file name -> module name, for every imported module."""
    names: dict[str, str] = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if path is None and name == "__main__":
            path = _script_file(module)
        # A script's module may also be listed under an alias (multiprocessing
        # adds "__mp_main__"): it is the __main__ module.
        if isinstance(path, str) and (name == "__main__" or path not in names):
            names[os.path.abspath(path)] = name
    return names


def _frozen_module(filename: str) -> str | None:
    """The module of a frozen module's code: "<frozen importlib._bootstrap>"
    names importlib._bootstrap: letters, digits, "_" and "." between
    "<frozen " and ">" (written out, not a regular expression: importing re
    costs every cprof record ~2 ms)."""
    if filename.startswith("<frozen ") and filename.endswith(">"):
        name = filename[len("<frozen "):-1]
        if name and name.replace(".", "_").replace("_", "a").isalnum():
            return name
    return None


# The file names the interpreter gives code compiled from a string (exec,
# compile, python -c) and code read from standard input (python -).
_INTERPRETER_PSEUDO_FILES = frozenset({"<string>", "<stdin>"})


def qualified(qualname: str, filename: str, modules: dict[str, str]) -> str:
    """pkg.mod.Class.method. Code of a frozen module (``<frozen
    importlib._bootstrap>``) is qualified by that module; code compiled from
    a string (``<string>``: exec'd code, dataclasses' and namedtuple's
    generated methods) or read from standard input (``<stdin>``) by that
    pseudo-file, as no module is known for it. Code from a file no module was
    imported from (a script run by path, a notebook cell, whatever its file
    name) keeps its bare qualified name, except
    "<module>", "<lambda>" and the like, which get the file's stem: pprof
    blanks a "<...>" name that equals its system name."""
    frozen = _frozen_module(filename)
    if frozen is not None:
        return f"{frozen}.{qualname}"
    if filename in _INTERPRETER_PSEUDO_FILES:
        return f"{filename}.{qualname}"
    module = modules.get(filename)
    if (module is None and qualname.startswith("<") and filename
            and not filename.startswith("<")):
        module = os.path.splitext(os.path.basename(filename))[0] or None
    return f"{module}.{qualname}" if module else qualname


def source_file(filename: str) -> str:
    """The file a code object's co_filename stands for: an absolute path; a
    frozen module's source file when the module knows it (so that pprof
    -list finds the source); other pseudo-files (``<string>``) unchanged."""
    if not filename:
        return filename
    frozen = _frozen_module(filename)
    if frozen is not None:
        path = getattr(sys.modules.get(frozen), "__file__", None)
        return os.path.abspath(path) if isinstance(path, str) and path else filename
    return filename if filename.startswith("<") else os.path.abspath(filename)


def names(qualname: str, code_name: str, filename: str,
          modules: dict[str, str]) -> tuple[str, str, str]:
    """A function's (name, system name, file) as cprof's profiles give them:
    the qualified name, the code name, the file (source_file). pprof, when it
    symbolizes, strips "<...>" from a name equal to its system name
    ("<cprof>" would print as "[python]"): such functions (cprof's synthetic
    frames) get no system name."""
    path = source_file(filename)
    full = qualified(qualname, filename if filename.startswith("<") else path, modules)
    return full, "" if full == code_name and "<" in code_name else code_name, path


def code_line(code: CodeType, lasti: int) -> int:
    """The line of the instruction at byte offset lasti, as the collectors
    give it (csrc/collect/frames.c, cprof_frames_line): an instruction the compiler
    gave no line (an exception handler's start or cleanup) takes the line of
    the nearest one before it that has one, else after it, else the
    function's first line. For frames read from Python (thread dumps), whose
    f_lineno is None there."""
    before = after = 0
    for start, _, line in code.co_lines():
        if line is None or line <= 0:
            continue
        if start <= lasti:
            before = line
        elif after == 0:
            after = line
            break
    return before or after or code.co_firstlineno


def frame_line(frame: FrameType) -> int:
    """A running frame's line (code_line of its current instruction)."""
    line = frame.f_lineno
    return line if line is not None and line > 0 else code_line(frame.f_code, frame.f_lasti)


class _NativeNames:
    """Native addresses as pprof Locations: each in the Mapping of the file
    it lies in (start, limit, offset, file, build id) and named by the
    file's symbols (cprof.elfsym), read after the fact, never in a handler."""

    _symbolizer: Any = None  # one per process: files' symbols are read once

    def __init__(self, first_id: int, first_function: int) -> None:
        from .elfsym import Symbolizer
        if _NativeNames._symbolizer is None:
            _NativeNames._symbolizer = Symbolizer()
        else:
            _NativeNames._symbolizer.refresh()  # objects loaded since
        self.symbols = _NativeNames._symbolizer
        self.mappings: dict[Any, Mapping] = {}
        self.functions: dict[tuple[str, str], Function] = {}
        self.next_mapping = first_id
        self.next_function = first_function
        self.readable: dict[str, str] = {}

    def prepare(self, addresses: Sequence[int]) -> None:
        """Symbolize every address at once, so that C++ names are demangled
        in one c++filt call."""
        names = [found[0] for found in map(self.symbols.symbol, addresses) if found]
        self.readable = demangled(names)

    def location(self, loc_id: int, address: int) -> Location:
        mapped = self.symbols.mapping(address)
        mapping = None
        if mapped is not None:
            mapping = self.mappings.get(mapped)
            if mapping is None:
                mapping = Mapping(self.next_mapping, mapped.start, mapped.limit, mapped.offset,
                                  mapped.path, mapped.build_id, has_functions=True)
                self.mappings[mapped] = mapping
                self.next_mapping += 1
        symbol = self.symbols.symbol(address)
        path = mapped.path if mapped is not None else ""
        # Code no symbol covers (a stripped library's static functions) is
        # named after its file, so that its time adds up in one place.
        name = symbol[0] if symbol is not None else (
            f"[{os.path.basename(path)}]" if path else f"{address:#x}")
        function = self.functions.get((name, path))
        if function is None:
            # No file name: pprof would list the binary as source (-list);
            # the mapping says which file the code lies in. The system name
            # keeps a C++ name as the linker knows it.
            function = Function(self.next_function, self.readable.get(name, name), name, "", 0)
            self.functions[(name, path)] = function
            self.next_function += 1
        return Location(loc_id, address, mapping, (Line(function, 0),))


def demangled(names: Sequence[str]) -> dict[str, str]:
    """C++ names (``_ZN2np10qsort_simd...``) as people read them, through
    binutils' c++filt when it is installed (else none): {mangled: readable}."""
    import shutil  # here, not at the top: only native profiles need them
    import subprocess

    mangled = sorted({n for n in names if n.startswith("_Z")})
    cxxfilt = shutil.which("c++filt") if mangled else None
    if cxxfilt is None:
        return {}
    try:
        out = subprocess.run([cxxfilt], input="\n".join(mangled), text=True,
                             capture_output=True, timeout=30, check=True).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return {}
    return dict(zip(mangled, out)) if len(out) == len(mangled) else {}


def resolve(tables: dict[str, Any]) -> Resolved:
    """Functions, locations and stacks of a collector's tables."""
    modules = module_names()
    mapping = Mapping(PYTHON_MAPPING.id, filename=sys.executable, has_functions=True,
                      has_filenames=True, has_line_numbers=True)
    functions = []
    for i, (qualname, code_name, filename, first) in enumerate(tables["functions"]):
        if first < 0:  # a C callable, named by the catalogue (leaf.py)
            functions.append(Function(i + 1, qualname, code_name, filename, 0))
            continue
        full, system, path = names(qualname, code_name, filename, modules)
        functions.append(Function(i + 1, full, system, path, first))
    native: _NativeNames | None = None
    locations = []
    for i, (f, line, address) in enumerate(tables["locations"]):
        if f >= 0:
            locations.append(Location(i + 1, 0, mapping, (Line(functions[f], line),)))
            continue
        if native is None:
            native = _NativeNames(mapping.id + 1, len(functions) + 1)
            native.prepare([a for g, _, a in tables["locations"] if g < 0])
        locations.append(native.location(i + 1, address))
    mappings = [mapping]
    if native is not None:
        mappings += native.mappings.values()
        functions += native.functions.values()
    hidden, roots = set(), set()
    for i, (f, _, _) in enumerate(tables["locations"]):
        if f < 0:
            continue
        key = (functions[f].filename, functions[f].system_name)
        if key in HIDDEN_FRAMES:
            hidden.add(i)
        elif key in ROOT_FRAMES:
            roots.add(i)
    natives = {i for i, (f, _, _) in enumerate(tables["locations"]) if f < 0}
    c_functions = {f for f, fn in enumerate(tables["functions"]) if fn[3] < 0}
    callees = {i for i, (f, _, _) in enumerate(tables["locations"]) if f in c_functions}
    kinds = _kinds(tables["locations"], functions, c_functions)
    kept_stacks = [[i for i in _below_root(stack, roots, natives | callees) if i not in hidden]
                   for stack in tables["stacks"]]
    # A sample whose every frame is cut (taken in the root frame itself, cprof's
    # runner between the program's end and its exit) is cprof's own work too:
    # "<cprof>", never a sample with no location.
    profiler = len(locations)
    if CPROF in kinds or not all(kept_stacks):
        locations.append(_profiler_location(functions, mapping, len(locations) + 1))
    stacks = [tuple(locations[i] for i in _fold_cprof(kept, kinds, profiler, callees)) if kept
              else (locations[profiler],) for kept in kept_stacks]
    return Resolved(mappings, functions, locations, stacks)



# What a frame is, for fold_cprof: cprof's own code, code of the standard
# library (or native, or synthetic), or the program's.
CPROF, LIBRARY, PROGRAM = 0, 1, 2


def library_dirs() -> tuple[str, ...]:
    """The standard library's directories (each ending in a separator)."""
    paths = sysconfig.get_paths()
    dirs = {os.path.abspath(paths[key]) + os.sep for key in ("stdlib", "platstdlib")
            if paths.get(key)}
    return tuple(sorted(dirs))


def frame_kind(filename: str, system_name: str, library: tuple[str, ...]) -> int:
    """CPROF, LIBRARY or PROGRAM for a function's (absolute) file. A cprof
    frame kept by KEPT_FRAMES counts as the program's. Installed packages
    (site-packages) are the program's, even under the standard library's
    directory."""
    if filename.startswith(PACKAGE_DIR):
        return PROGRAM if (filename, system_name) in KEPT_FRAMES else CPROF
    if not filename or _frozen_module(filename) is not None:
        return LIBRARY
    if filename.startswith(library) and os.sep + "site-packages" + os.sep not in filename \
            and os.sep + "dist-packages" + os.sep not in filename:
        return LIBRARY
    return PROGRAM


def _kinds(table: Sequence[tuple[int, int, int]], functions: Sequence[Function],
           c_functions: set[int]) -> list[int]:
    """frame_kind of every location (a native one, or a C callable's, whose
    functions are c_functions: LIBRARY)."""
    library = library_dirs()
    by_function: dict[int, int] = {}
    out = []
    for f, _, _ in table:
        if f < 0 or f in c_functions:
            out.append(LIBRARY)  # native, or a C callable (_fold_cprof gives it its caller's)
            continue
        kind = by_function.get(f)
        if kind is None:
            kind = by_function[f] = frame_kind(functions[f].filename,
                                               functions[f].system_name, library)
        out.append(kind)
    return out


def _profiler_location(functions: list[Function], mapping: Mapping, loc_id: int) -> Location:
    """The location of "<cprof>" (the collectors' synthetic function, or a
    new one where their tables have none)."""
    for fn in functions:
        if fn.name == "<cprof>" and not fn.filename:
            return Location(loc_id, 0, mapping, (Line(fn, 0),))
    fn = Function(len(functions) + 1, "<cprof>", "", "", 0)
    functions.append(fn)
    return Location(loc_id, 0, mapping, (Line(fn, 0),))


def _fold_cprof(stack: Sequence[int], kinds: Sequence[int], profiler: int,
                callees: set[int]) -> Sequence[int]:
    """fold_cprof of a stack of location indices. A C function a frame
    calls (collect/leaf.py) is of its caller's kind: cprof's own work when
    cprof's code calls it, the program's when the program's does."""
    if not any(kinds[i] == CPROF for i in stack):
        return stack
    own = [kinds[i] for i in stack]
    for depth in range(len(stack) - 2, -1, -1):  # callers first
        if stack[depth] in callees:
            own[depth] = own[depth + 1]
    kept = fold_cprof(range(len(stack)), own.__getitem__, -1)
    return [profiler if depth < 0 else stack[depth] for depth in kept]


def fold_cprof(stack: Sequence[T], kind: Callable[[T], int], profiler: T) -> list[T]:
    """A stack (leaf first) without cprof's frames: the outermost cprof frame
    whose callees are all cprof's or the library's is cprof's own work (a
    profile being written, the program's threads being joined) and goes,
    with its callees, into one ``profiler`` ("<cprof>") frame; a cprof frame
    that called the program's code (a wrapper) is left out."""
    kinds = [kind(frame) for frame in stack]
    out: list[T] = []
    for depth in range(len(stack) - 1, -1, -1):  # root to leaf
        if kinds[depth] != CPROF:
            out.append(stack[depth])
        elif PROGRAM not in kinds[:depth]:
            out.append(profiler)
            break
    out.reverse()
    return out


def _below_root(stack: Sequence[int], roots: set[int], natives: set[int]) -> Sequence[int]:
    """A stack (leaf first) up to its innermost root frame, excluded, with
    the C frames that ran the program from it (the interpreter's exec, named
    by libunwind or by the catalogue: builtins.exec)."""
    if roots:
        for depth, i in enumerate(stack):
            if i in roots:
                while depth > 0 and stack[depth - 1] in natives:
                    depth -= 1
                return stack[:depth]
    return stack
