"""cprof serve: run a Python program with Go's /debug/pprof endpoints on a port."""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from ..collect import runner
from ..collect.locks import MAX_RATE, set_block_profile_rate, set_mutex_profile_fraction
from ..collect.command import ProgramError
from ..live import server as live_server
from ..live.server import TOKEN_ENV_VAR, ExposedWarning, serve
from .record import require_collectors




def _serve_options(args: argparse.Namespace) -> list[str]:
    options = ["--host", args.host, "--port", str(args.port), "--max-seconds",
               str(args.max_seconds), "--heap-rate", str(args.heap_rate)]
    for flag, value in (("--token-file", args.token_file), ("--mutex-fraction", args.mutex_fraction),
                        ("--block-rate", args.block_rate),
                        ("--max-connections", args.max_connections),
                        ("--request-timeout", args.request_timeout)):
        if value is not None:
            options += [flag, str(value)]
    for name in args.allow_host:
        options += ["--allow-host", name]
    return options


# A token's file is read up to this: its first line is the token.
_MAX_TOKEN_FILE = 64 * 1024


def _token(path: str | None) -> str | None:
    """The token: the first line of --token-file, else $CPROF_SERVE_TOKEN
    (never an argument: /debug/pprof/cmdline and ps would show it)."""
    if path is None:
        return os.environ.get(TOKEN_ENV_VAR) or None
    try:
        with open(path, "rb") as f:
            head = f.read(_MAX_TOKEN_FILE)
    except OSError as e:
        raise ProgramError(f"--token-file {path}: cannot read it: {e.strerror}") from None
    try:
        token = head.split(b"\n", 1)[0].decode("utf-8").strip()
    except UnicodeDecodeError as e:
        raise ProgramError(f"--token-file {path}: the first line is not UTF-8 text (byte "
                           f"{head[e.start]:#04x} at offset {e.start})") from None
    if not token:
        raise ProgramError(f"--token-file {path}: the file's first line is empty")
    return token


def _check_serve_options(args: argparse.Namespace) -> None:
    """Every number in range before anything runs: an out-of-range one is a
    usage error, never an OverflowError at the C boundary."""
    for option, value, least in (("--max-seconds", args.max_seconds, 1),
                                 ("--heap-rate", args.heap_rate, 0),
                                 ("--mutex-fraction", args.mutex_fraction, 0),
                                 ("--block-rate", args.block_rate, 0),
                                 ("--max-connections", args.max_connections, 1)):
        if value is not None and not least <= value <= MAX_RATE:
            raise ProgramError(f"{option} must be from {least} to 2**63-1, not {value}")
    if args.request_timeout is not None and not 0 < args.request_timeout < 1e6:
        raise ProgramError(f"--request-timeout must be a positive number of seconds, "
                           f"not {args.request_timeout}")
    if not 0 <= args.port <= 65535:
        raise ProgramError(f"--port must be from 0 to 65535, not {args.port}")


def cmd_serve(args: argparse.Namespace) -> int:
    if live_server.from_environment is not None:  # CPROF_SERVE, read when cprof was imported
        live_server.from_environment.close()
        print("cprof serve: CPROF_SERVE is ignored: cprof serve serves on --host and --port",
              file=sys.stderr)
    try:
        _check_serve_options(args)
        require_collectors()
        program = runner.program(args.command, args.module, ["serve", *_serve_options(args)])
        token = _token(args.token_file)
        os.environ.pop(TOKEN_ENV_VAR, None)  # the program's children do not need it
        program.load()
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always", ExposedWarning)
            limits = {name: getattr(args, name) for name in ("max_connections", "request_timeout")
                      if getattr(args, name) is not None}
            server = serve(args.host, args.port, token=token, max_seconds=args.max_seconds,
                           heap_rate=args.heap_rate, allowed_hosts=args.allow_host, **limits)
    except ProgramError as e:
        print(f"cprof serve: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"cprof serve: cannot serve on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 2
    for w in said:
        print(f"cprof serve: warning: {w.message}", file=sys.stderr)
    if args.mutex_fraction is not None:
        set_mutex_profile_fraction(args.mutex_fraction)
    if args.block_rate is not None:
        set_block_profile_rate(args.block_rate)
    example = server.url.replace("://", "://user:TOKEN@") if token else server.url
    print(f"cprof: serving profiles at {server.url} (try: go tool pprof "
          f"{example}profile?seconds=10)", file=sys.stderr)
    try:
        return program.run()
    finally:
        server.close()
