"""pprof: the data layer. A profile as profile.proto has it, and what can be done to one.

- ``model``: the plain records (Sample, Location, Function, Mapping, ...).
- ``profile``: ``Profile`` over the C codec's decoded data, ``load``.
- ``io``: ``write_bytes`` (atomic writes) and ``check_writable``.
- ``builder``: ``ProfileBuilder``, a profile from Python's own frames.
- ``ops``: merge, diff, subtract, scale, select, aggregate, share.
- ``filter``: pprof's focus/ignore/hide/show/tagfocus/... options.
- ``units``: the one unit table, pprof's scaling.
- ``textformat``: Go's text forms (the legacy heap profile, debug=1 output).

Imports nothing of cprof's above it (the C codec, ``cprof._core``, is below).
The one exception is the report and export methods of ``Profile``, which
import their layer when called (see profile.py).
"""
