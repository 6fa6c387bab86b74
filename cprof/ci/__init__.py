"""ci: performance checks for continuous integration.

- ``check``: ``cprof.check``, budgets on shares and totals, and the
  regression test between two sets of runs.
- ``stats``: the Mann-Whitney U test behind it.
- ``pytest_plugin``: ``@pytest.mark.cprof`` budgets and ``--cprof``; pytest
  loads it in every session, so it imports the rest of cprof only when a
  marked test or an option asks for it.
"""
