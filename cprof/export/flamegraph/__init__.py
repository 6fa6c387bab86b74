"""flamegraph: the call tree drawn as a flame graph.

- ``html``: the interactive page (``flamegraph.js`` and ``flamegraph.css``,
  shipped beside it, are inlined into each page so that it stands alone).
- ``svg``: a static SVG image of the same tree.
"""
