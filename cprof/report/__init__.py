"""report: pprof's text reports over a Profile, as ``go tool pprof`` prints them.

- ``top``: ``top``, the flat/cum table (``-top``).
- ``tree``: ``tree`` and ``peek``, callers and callees (``-tree``, ``-peek``).
- ``listing``: ``list_source``, source annotated line by line (``-list``).
- ``traces``: ``traces``, every sample's stack (``-traces``).
- ``graph``: the call graph they share; ``text``: percentages, units and the
  header lines; ``driver``: inputs, bases, the total and the filters, as
  pprof's driver applies them before a report.

Import each report from its module (``from cprof.report.top import top``).
This layer imports pprof/ and nothing above it.
"""
