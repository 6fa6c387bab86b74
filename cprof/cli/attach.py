"""cprof attach: profile a running CPython 3.14+ process (live/attach.py)."""

from __future__ import annotations

import argparse
import os
import sys

from ..collect.command import ProgramError


def _request(args: argparse.Namespace) -> dict[str, object]:
    if not 0 < args.seconds <= 24 * 3600:
        raise ProgramError(f"--seconds must be more than 0 and at most a day, not {args.seconds:g}")
    if not 0 < args.timeout <= 3600:
        raise ProgramError(f"--timeout must be more than 0 and at most 3600, not {args.timeout:g}")
    if args.dump:
        return {"kind": "dump", "debug": 2}
    if args.serve is not None:
        from ..live.server import TOKEN_ENV_VAR, parse_address
        try:
            host, port = parse_address(args.serve)
        except ValueError as e:
            raise ProgramError(f"--serve {args.serve}: {e}") from None
        return {"kind": "serve", "host": host, "port": port,
                "token": os.environ.get(TOKEN_ENV_VAR) or None}
    if args.heap:
        if args.heap_rate < 1:
            raise ProgramError(f"--heap-rate must be 1 or more, not {args.heap_rate}")
        return {"kind": "heap", "seconds": args.seconds, "rate": args.heap_rate}
    from ..collect.cpu import MAX_HZ
    if not 1 <= args.hz <= MAX_HZ:
        raise ProgramError(f"--hz must be from 1 to {MAX_HZ}, not {args.hz:g}")
    return {"kind": args.mode, "seconds": args.seconds, "hz": args.hz, "native": args.native}


def cmd_attach(args: argparse.Namespace) -> int:
    from ..live.attach import attach
    try:
        request = _request(args)
        say = None if args.quiet else (lambda text: print(text, file=sys.stderr))
        status, data = attach(args.pid, request, timeout=args.timeout, add_path=args.add_path,
                              say=say)
    except ProgramError as e:
        print(f"cprof attach: {e}", file=sys.stderr)
        return 2
    kind = request["kind"]
    if kind == "serve":
        print(f"cprof: process {args.pid} serves {status['url']}", file=sys.stderr)
        return 0
    if kind == "dump" and args.output is None:
        sys.stdout.write((data or b"").decode("utf-8", "replace"))
        return 0
    from ..pprof.io import write_bytes
    out = args.output or f"{args.pid}.{kind}.prof"
    write_bytes(out, data or b"")
    if args.quiet or kind == "dump":
        return 0
    from ..pprof.profile import load
    from .record import report_written
    outcome = (f"the process exited after {status['seconds']:.1f} s" if status.get("partial")
               else f"process {args.pid} goes on")
    report_written(out, load(out), outcome)
    return 0
