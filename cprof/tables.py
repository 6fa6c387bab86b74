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
from typing import Any, NamedTuple

from .builder import PYTHON_MAPPING
from .model import Function, Line, Location, Mapping

# cprof's own frames that wrap the program's and must not show in profiles:
# (absolute file, code name); collect.py adds its thread-start wrapper.
HIDDEN_FRAMES: set[tuple[str, str]] = set()


class Resolved(NamedTuple):
    mapping: Mapping
    functions: list[Function]
    locations: list[Location]
    stacks: list[tuple[Location, ...]]


def module_names() -> dict[str, str]:
    """Absolute file name -> module name, for every imported module."""
    names = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str):
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
    hidden = {i for i, (f, _) in enumerate(tables["locations"])
              if (functions[f].filename, functions[f].system_name) in HIDDEN_FRAMES}
    stacks = [tuple(locations[i] for i in stack if i not in hidden)
              for stack in tables["stacks"]]
    return Resolved(mapping, functions, locations, stacks)
