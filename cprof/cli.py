"""The cprof command line: ``cprof COMMAND ...`` and ``python -m cprof``."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .profile import Profile, ProfileError, load
from .units import format_value


def summary(p: Profile, source: str, top: int = 10) -> str:
    """A few lines that say what a profile holds."""
    out = [f"File: {source}"]
    if p.period_type is not None:
        out.append(f"Period: {format_value(p.period, p.period_type.unit)} of "
                   f"{p.period_type.type}")
    if p.duration_ns:
        out.append(f"Duration: {format_value(p.duration_ns, 'nanoseconds')}")
    out += [f"Comment: {c}" for c in p.comments]
    out.append(f"Samples: {len(p.samples)}   Locations: {len(p.locations)}   "
               f"Functions: {len(p.functions)}   Mappings: {len(p.mappings)}")
    default = p.sample_index() if p.sample_types else -1
    for i, (t, total) in enumerate(zip(p.sample_types, p.totals())):
        mark = "  (default)" if i == default else ""
        out.append(f"  {t.type}/{t.unit}: {format_value(total, t.unit)}{mark}")
    if default >= 0 and top > 0:
        flat: dict[str, int] = {}
        for s in p.samples:
            if s.locations and s.locations[0].lines:
                fn = s.locations[0].lines[0].function
                name = fn.name if fn is not None else f"{s.locations[0].address:#x}"
                flat[name] = flat.get(name, 0) + s.values[default]
        rows = sorted(flat.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        if rows:
            unit = p.sample_types[default].unit
            out.append(f"Heaviest functions by {p.sample_types[default].type} (flat):")
            out += [f"  {format_value(v, unit):>12}  {name}" for name, v in rows]
    return "\n".join(out)


def _cmd_summary(args: argparse.Namespace) -> int:
    p = load(args.profile, max_size=args.max_size)
    print(summary(p, args.profile, args.top))
    if args.output:
        p.write(args.output, level=args.level)
        print(f"Wrote {args.output}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cprof", description="pprof for Python.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    s = sub.add_parser("summary", help="say what a profile holds; optionally write it back")
    s.add_argument("profile", help="a pprof file (gzipped or raw), from any producer")
    s.add_argument("-o", "--output", help="write the profile back to this path")
    s.add_argument("--level", type=int, default=1, choices=range(0, 10), metavar="0-9",
                   help="gzip level for --output (0: raw protobuf; default 1)")
    s.add_argument("--top", type=int, default=10, help="how many functions to list")
    s.add_argument("--max-size", type=int, default=1 << 30,
                   help="refuse profiles that inflate beyond this many bytes")
    s.set_defaults(run=_cmd_summary)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ProfileError as e:
        print(f"cprof: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"cprof: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
