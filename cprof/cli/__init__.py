"""The cprof command line: ``cprof COMMAND ...`` and ``python -m cprof``.

``cprof record`` profiles a Python program as ``python -m cProfile`` does:
in-process, with the program seeing the ``sys.argv``, ``sys.path[0]`` and
``__main__`` it would see unprofiled, and its exit status passed through.

The analysis commands (top, tree, peek, list, traces, flame, speedscope,
folded, diff, merge, web) work on pprof files from any producer, with the
options of ``go tool pprof`` under its names (``-focus``, ``-sample_index``,
``-diff_base`` ...) as well as ``--kebab-case`` ones, and print what it
prints: several PROFILE arguments are merged, the bases applied, then the
filters and the granularity, and reports take percentages of the total
before the filters (of the base's samples alone for a -diff_base profile).
Reports go to stdout; what was written, and warnings, to stderr.

One module per command group (analysis, record, check, serve); the grammar of
every command is in parser.py; main() imports the module of the command it
runs and no other command's.
"""

from __future__ import annotations

import importlib
import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from .parser import parse
    if argv is None:
        argv = sys.argv[1:]
    args = parse(argv)
    module, function = args.run.rsplit(".", 1)
    run = getattr(importlib.import_module(f".{module}", __name__), function)
    try:
        return int(run(args))
    except BrokenPipeError:  # cprof top ... | head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (OSError, ValueError) as e:  # ProfileError is a ValueError
        print(f"cprof: {e}", file=sys.stderr)
        return 1


__all__ = ["main"]
