"""Exports of a Profile to other tools' formats, one module per format.

- ``folded``: flamegraph.pl / inferno folded stacks (``a;b;c 42`` lines).
- ``speedscope``: speedscope's JSON file format ("sampled" profiles).
- ``dot``: a call graph in Graphviz's DOT language with pprof's trimming, and
  SVG through Graphviz's ``dot`` (``go tool pprof -dot`` / ``-svg``).
- ``dataframe``: pandas DataFrames of samples or functions (pandas optional).

- ``flamegraph``: the interactive HTML page and a static SVG.

Imports pprof/ and report/. Submodules are imported on use.
"""
