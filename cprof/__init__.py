"""cprof: pprof for Python.

Profiles in the pprof format (gzipped profile.proto), read and written by a C
codec, so that ``go tool pprof`` and every other pprof tool read what cprof
writes and cprof reads what they write.
"""

from .builder import Frame, ProfileBuilder
from .model import Function, Line, Location, Mapping, Sample, ValueType
from .profile import DEFAULT_MAX_SIZE, Profile, ProfileError, load

__all__ = [
    "DEFAULT_MAX_SIZE",
    "Frame",
    "Function",
    "Line",
    "Location",
    "Mapping",
    "Profile",
    "ProfileBuilder",
    "ProfileError",
    "Sample",
    "ValueType",
    "load",
]

__version__ = "0.1.0"
