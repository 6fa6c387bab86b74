"""tables: the C collectors' interned tables as model objects.

The sampler and the heap hooks hand over functions (qualified name, code
name, file, first line), locations (function, line) and stacks (location
indices, leaf first); this module names functions as pprof users expect
(``pkg.mod.Class.method``, absolute file names) and builds the Locations
that samples share.
"""

from __future__ import annotations

import os
import sys
from typing import Any, NamedTuple, Sequence

from .builder import PYTHON_MAPPING
from .model import Function, Line, Location, Mapping

# cprof's own frames that wrap the program's and must not show in profiles:
# (absolute file, code name); collect.py adds its thread-start wrapper.
HIDDEN_FRAMES: set[tuple[str, str]] = set()
# The frames through which cprof runs a program (cprof record, cprof serve):
# a stack is cut at the innermost of them, which goes with its callers, so
# the program's stacks start at its ``__main__.<module>`` as when python runs it.
ROOT_FRAMES: set[tuple[str, str]] = set()


class Resolved(NamedTuple):
    mapping: Mapping
    functions: list[Function]
    locations: list[Location]
    stacks: list[tuple[Location, ...]]


def module_names() -> dict[str, str]:
    """Absolute file name -> module name, for every imported module."""
    names: dict[str, str] = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        # A script's module may also be listed under an alias (multiprocessing
        # adds "__mp_main__"): it is the __main__ module.
        if isinstance(path, str) and (name == "__main__" or path not in names):
            names[os.path.abspath(path)] = name
    return names


def qualified(qualname: str, filename: str, modules: dict[str, str]) -> str:
    """pkg.mod.Class.method. Code from a file no module was imported from (a
    script run by path, a notebook cell) keeps its bare qualified name, except
    "<module>", "<lambda>" and the like, which get the file's stem: pprof
    blanks a "<...>" name that equals its system name."""
    module = modules.get(filename)
    if (module is None and qualname.startswith("<") and filename
            and not filename.startswith("<")):
        module = os.path.splitext(os.path.basename(filename))[0] or None
    return f"{module}.{qualname}" if module else qualname


def names(qualname: str, code_name: str, filename: str,
          modules: dict[str, str]) -> tuple[str, str, str]:
    """A function's (name, system name, file) as cprof's profiles give them:
    the qualified name, the code name, the absolute file. pprof, when it
    symbolizes, strips "<...>" from a name equal to its system name
    ("<cprof>" would print as "[python]"): such functions (cprof's synthetic
    frames, code from "<stdin>") get no system name."""
    path = os.path.abspath(filename) if filename and not filename.startswith("<") else filename
    full = qualified(qualname, path, modules)
    return full, "" if full == code_name and "<" in code_name else code_name, path


def resolve(tables: dict[str, Any]) -> Resolved:
    """Functions, locations and stacks of a collector's tables."""
    modules = module_names()
    mapping = Mapping(PYTHON_MAPPING.id, filename=sys.executable, has_functions=True,
                      has_filenames=True, has_line_numbers=True)
    functions = []
    for i, (qualname, code_name, filename, first) in enumerate(tables["functions"]):
        full, system, path = names(qualname, code_name, filename, modules)
        functions.append(Function(i + 1, full, system, path, first))
    locations = [Location(i + 1, 0, mapping, (Line(functions[f], line),))
                 for i, (f, line) in enumerate(tables["locations"])]
    hidden, roots = set(), set()
    for i, (f, _) in enumerate(tables["locations"]):
        key = (functions[f].filename, functions[f].system_name)
        if key in HIDDEN_FRAMES:
            hidden.add(i)
        elif key in ROOT_FRAMES:
            roots.add(i)
    stacks = [tuple(locations[i] for i in _below_root(stack, roots) if i not in hidden)
              for stack in tables["stacks"]]
    return Resolved(mapping, functions, locations, stacks)


def _below_root(stack: Sequence[int], roots: set[int]) -> Sequence[int]:
    """A stack (leaf first) up to its innermost root frame, excluded."""
    if roots:
        for depth, i in enumerate(stack):
            if i in roots:
                return stack[:depth]
    return stack
