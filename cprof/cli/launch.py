"""``cprof record``'s first step, before the collectors load.

``cprof record [options] -- python [options] script.py args`` re-executes
that interpreter to run cprof there; this module does it from the grammar's
answer alone (collect/command.py imports only os and sys), so that the
process being replaced does not load the collectors, the profile model and
the reports it would never use: ~7 ms of every such run. The re-executed
cprof checks the options and the interpreter, and says what is wrong.
Anything else goes on to record.py.
"""

from __future__ import annotations

import sys

from ..collect.command import ProgramError, exec_python, python_command

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    import argparse


def record_options(args: argparse.Namespace) -> list[str]:
    """The options of ``cprof record`` as the re-executed cprof takes them."""
    options = ["--hz", f"{args.hz:g}", "--mode", args.mode]
    if args.max_depth is not None:
        options += ["--max-depth", str(args.max_depth)]
    return (["-o", args.output] if args.output else []) + options + (
        ["--quiet"] if args.quiet else []) + (["--native"] if args.native else []) + (
        ["--follow"] if args.follow else []) + (
        ["--per-process", args.per_process] if args.per_process else [])


def cmd_record(args: argparse.Namespace) -> int:
    if args.repeat < 1:
        print("cprof record: --repeat must be 1 or more", file=sys.stderr)
        return 2
    if args.repeat == 1:
        try:
            argv = python_command(args.command, args.module, ["record", *record_options(args)])
        except ProgramError as e:
            print(f"cprof record: {e}", file=sys.stderr)
            return 2
        if argv is not None:
            exec_python(argv)
    from .record import record_or_repeat
    return record_or_repeat(args)
