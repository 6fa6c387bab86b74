"""cprof: pprof for Python.

Profiles in the pprof format (gzipped profile.proto), read and written by a C
codec, so that ``go tool pprof`` and every other pprof tool read what cprof
writes and cprof reads what they write; a signal-driven CPU and wall-clock
sampler for every thread (``with cprof.cpu("out.prof"): ...``); a sampled heap
profiler on Python's allocators (``with cprof.heap("heap.prof"): ...``);
lock contention, blocking and thread dumps (``cprof.lookup("mutex")``); and
Go's /debug/pprof endpoints, live (``cprof.serve(port=6060)``).
"""

from __future__ import annotations

import importlib
import os

from ._version import __version__

# typing costs a few ms to import; the names below are for type checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .ci.check import CheckResult, Finding, check
    from .collect.cpu import cpu, start_cpu_profile, stop_cpu_profile
    from .collect.heap import heap, start_heap_profile, stop_heap_profile, write_heap_profile
    from .collect.labels import labels
    from .collect.locks import set_block_profile_rate, set_mutex_profile_fraction
    from .collect.lookup import lookup, profiles
    from .live.apps import asgi_app, wsgi_app
    from .live.server import Server, serve
    from .pprof.builder import Frame, ProfileBuilder
    from .pprof.model import Function, Line, Location, Mapping, Sample, ValueType
    from .pprof.ops import merge
    from .pprof.profile import DEFAULT_MAX_SIZE, Profile, ProfileError, load

# Where each public name lives. Nothing is imported until a name is first
# used: ``import cprof`` loads this file and _version only, and changes
# nothing in the interpreter (the collectors apply their patches when they
# start: collect/patches.py).
_WHERE = {
    "CheckResult": "ci.check", "Finding": "ci.check", "check": "ci.check",
    "cpu": "collect.cpu", "start_cpu_profile": "collect.cpu", "stop_cpu_profile": "collect.cpu",
    "heap": "collect.heap", "start_heap_profile": "collect.heap",
    "stop_heap_profile": "collect.heap", "write_heap_profile": "collect.heap",
    "labels": "collect.labels",
    "set_block_profile_rate": "collect.locks", "set_mutex_profile_fraction": "collect.locks",
    "lookup": "collect.lookup", "profiles": "collect.lookup",
    "asgi_app": "live.apps", "wsgi_app": "live.apps",
    "Server": "live.server", "serve": "live.server",
    "Frame": "pprof.builder", "ProfileBuilder": "pprof.builder",
    "Function": "pprof.model", "Line": "pprof.model", "Location": "pprof.model",
    "Mapping": "pprof.model", "Sample": "pprof.model", "ValueType": "pprof.model",
    "merge": "pprof.ops",
    "DEFAULT_MAX_SIZE": "pprof.profile", "Profile": "pprof.profile",
    "ProfileError": "pprof.profile", "load": "pprof.profile",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value  # the next use is a plain lookup
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


__all__ = sorted(_WHERE)

# CPROF_SERVE=[HOST:]PORT asks, through the environment, for /debug/pprof to be
# served from import on (live/server.py): the one thing importing cprof does,
# and only when asked.
if os.environ.get("CPROF_SERVE"):
    from .live.server import serve_from_environment as _serve_from_environment
    _serve_from_environment()


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext cprof``: the %cprof and %%cprof magics (cprof.jupyter)."""
    from .jupyter import load_ipython_extension as load
    load(ipython)
