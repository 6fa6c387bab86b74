"""collect: the Python face of the C collectors, which write profiles.

- ``cpu``: the CPU and wall-clock sampler (``cprof.cpu``).
- ``heap``: the sampled heap profiler on Python's allocators (``cprof.heap``).
- ``locks``: mutex contention and blocking (Go's mutex and block profiles).
- ``labels``: ``cprof.labels``, pprof labels carried by samples.
- ``threads``: thread and task dumps (Go's goroutine and threadcreate);
  ``tasks`` finds the live asyncio tasks for them and for the CPU sampler.
- ``lookup``: the named profiles, as Go's ``pprof.Lookup``.
- ``symbols``: names and lines for the frames the collectors record; ``elfsym``
  names native code from ELF symbol tables.
- ``runner``: runs a program as ``python`` would, for ``cprof record``.
- ``follow``: profiles the Python child processes too (``--follow``) and
  merges their profiles.
- ``patches``: every change cprof makes to the interpreter, applied when a
  collector starts and undone when it stops.

Imports pprof/ and the C core; nothing above it.
"""
