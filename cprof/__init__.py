"""cprof: pprof for Python.

Profiles in the pprof format (gzipped profile.proto), read and written by a C
codec, so that ``go tool pprof`` and every other pprof tool read what cprof
writes and cprof reads what they write; a signal-driven CPU and wall-clock
sampler for every thread (``with cprof.cpu("out.prof"): ...``); a sampled heap
profiler on Python's allocators (``with cprof.heap("heap.prof"): ...``);
lock contention, blocking and thread dumps (``cprof.lookup("mutex")``); and
Go's /debug/pprof endpoints, live (``cprof.serve(port=6060)``).
"""

import importlib
import os
from typing import TYPE_CHECKING, Any

from .builder import Frame, ProfileBuilder
from .check import CheckResult, Finding, check
from .collect import cpu, start_cpu_profile, stop_cpu_profile
from .heapprof import heap, start_heap_profile, stop_heap_profile, write_heap_profile
from .labels import labels
from .locks import set_block_profile_rate, set_mutex_profile_fraction
from .lookup import lookup, profiles
from .ops import merge
from .model import Function, Line, Location, Mapping, Sample, ValueType
from .profile import DEFAULT_MAX_SIZE, Profile, ProfileError, load

if TYPE_CHECKING:
    from .apps import asgi_app, wsgi_app
    from .server import Server, serve

# The live endpoints are imported when first used: the standard library's
# HTTP server takes longer to import than the rest of cprof.
_LAZY = {"serve": "server", "Server": "server", "wsgi_app": "apps", "asgi_app": "apps"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CheckResult",
    "DEFAULT_MAX_SIZE",
    "Finding",
    "Frame",
    "Function",
    "Line",
    "Location",
    "Mapping",
    "Profile",
    "ProfileBuilder",
    "ProfileError",
    "Sample",
    "Server",
    "ValueType",
    "asgi_app",
    "check",
    "cpu",
    "heap",
    "labels",
    "load",
    "lookup",
    "merge",
    "profiles",
    "serve",
    "set_block_profile_rate",
    "set_mutex_profile_fraction",
    "start_cpu_profile",
    "start_heap_profile",
    "stop_cpu_profile",
    "stop_heap_profile",
    "wsgi_app",
    "write_heap_profile",
]

__version__ = "0.1.0"

# CPROF_SERVE=[HOST:]PORT: serve /debug/pprof from import on (cprof.server).
_server: "Server | None" = None
if os.environ.get("CPROF_SERVE"):
    from .server import serve_from_environment as _serve_from_environment
    _server = _serve_from_environment()


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext cprof``: the %cprof and %%cprof magics (cprof.jupyter)."""
    from .jupyter import load_ipython_extension as load
    load(ipython)
