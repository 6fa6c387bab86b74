"""cprof's analysis commands: go tool pprof's reports and the exports, on files.

summary, top, tree, peek, list, traces, flame, speedscope, folded, diff, merge
and web; the profiles are read through report/driver.py, as pprof's driver reads
them.
"""

from __future__ import annotations

import os
import sys

from ..pprof.profile import Profile, load
from ..pprof.units import format_value

# Each command imports what it uses when it runs, so that a command's start-up
# is its own: summary loads no report, top no listing, flame no other export
# (tests/cli/test_cli_imports.py).
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    import argparse
    from pathlib import Path
    from typing import Sequence

    from ..report.driver import Input


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


def cmd_summary(args: argparse.Namespace) -> int:
    p = load(args.profile, max_size=args.max_size)
    print(summary(p, args.profile, args.top))
    if args.output:
        p.write(args.output, level=args.level)
        print(f"Wrote {args.output}", file=sys.stderr)
    return 0
_PROFILE_SUFFIXES = (".gz", ".prof", ".pprof", ".pb", ".proto")


def _read(args: argparse.Namespace, paths: Sequence[str] | None = None) -> Input:
    """The command's profiles as pprof's driver makes them, by its options."""
    from ..report.driver import open_input
    inp = open_input(args.profiles if paths is None else paths, vars(args))
    if inp.matched_nothing:
        print("cprof: warning: the filters matched no samples", file=sys.stderr)
    return inp


def cmd_top(args: argparse.Namespace) -> int:
    from ..report.driver import top_report
    inp = _read(args)
    print(top_report(inp, args.nodecount, args.cum, args.nodefraction), end="")
    return 0


def cmd_tree(args: argparse.Namespace) -> int:
    from ..report.driver import tree_report
    inp = _read(args)
    print(tree_report(inp, None, args.nodecount, args.cum, args.nodefraction,
                       args.edgefraction), end="")
    return 0


def cmd_peek(args: argparse.Namespace) -> int:
    from ..report.driver import tree_report
    inp = _read(args)
    print(tree_report(inp, args.regex, 0, False, 0.0, 0.0), end="")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from ..report.listing import list_source
    inp = _read(args)
    rpt = list_source(inp.profile, args.regex, sample_type=inp.index,
                      source_path=args.source_path, trim_path=args.trim_path)
    print(rpt, end="")
    return 0


def cmd_traces(args: argparse.Namespace) -> int:
    from ..report.traces import traces
    inp = _read(args)
    print(traces(inp.report_profile(), sample_type=inp.index), end="")
    return 0


def output_stem(path: str) -> str:
    """``dir/cpu.prof.gz`` -> ``cpu``: the name for a PROFILE's outputs."""
    name = os.path.basename(path)
    while name.endswith(_PROFILE_SUFFIXES) and "." in name[1:]:
        name = name.rsplit(".", 1)[0]
    return name or "profile"


def _wrote(path: str | os.PathLike[str]) -> None:
    print(f"Wrote {os.fspath(path)}", file=sys.stderr)


def _title(inp: Input) -> str:
    return f"{os.path.basename(inp.name)} ({inp.profile.sample_types[inp.index].type})"


def _write_flame(inp: Input, path: str | os.PathLike[str]) -> None:
    """The flame graph: a static SVG for a .svg path, else interactive HTML."""
    if os.fspath(path).lower().endswith(".svg"):
        from ..export.flamegraph.svg import write_svg
        write_svg(inp.profile, path, sample_type=inp.index, title=_title(inp))
    else:
        from ..export.flamegraph.html import write_html
        write_html(inp.profile, path, sample_type=inp.index, title=_title(inp))
    _wrote(path)


def cmd_flame(args: argparse.Namespace) -> int:
    inp = _read(args)
    _write_flame(inp, args.output or f"{output_stem(inp.name)}.html")
    return 0


def cmd_speedscope(args: argparse.Namespace) -> int:
    from ..export.speedscope import write_speedscope
    inp = _read(args)
    out = args.output or f"{output_stem(inp.name)}.speedscope.json"
    write_speedscope(inp.profile, out, inp.index, os.path.basename(inp.name),
                     split_diff=bool(args.base or args.diff_base))
    _wrote(out)
    return 0


def cmd_folded(args: argparse.Namespace) -> int:
    from ..export.folded import write_folded
    inp = _read(args)
    if args.output:
        write_folded(inp.profile, args.output, inp.index)
        _wrote(args.output)
    else:
        sys.stdout.flush()
        write_folded(inp.profile, sys.stdout.buffer, inp.index)
        sys.stdout.buffer.flush()
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from ..report.driver import top_report
    args.diff_base = [args.base_profile]
    inp = _read(args, [args.profile])
    print(top_report(inp, args.nodecount, args.cum, args.nodefraction), end="")
    sys.stdout.flush()
    out = args.output or f"{output_stem(args.profile)}.diff.prof"
    inp.profile.write(out)
    _wrote(out)
    if args.flame:
        _write_flame(inp, args.flame)
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from ..pprof.ops import merge
    inp = _read(args)
    if len(args.profiles) == 1:  # compacted, as pprof writes one profile
        inp.profile = merge([inp.profile])
    inp.profile.write(args.output)
    _wrote(args.output)
    return 0


def _browser_available() -> bool:
    """Whether webbrowser can open a page without taking over the terminal:
    a browser named by BROWSER, a desktop (macOS, Windows) or a display."""
    if os.environ.get("BROWSER") or sys.platform == "darwin" or sys.platform.startswith("win"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _open(paths: Sequence[Path]) -> bool:
    if not _browser_available():
        return False
    import webbrowser
    try:
        return all([webbrowser.open(p.resolve().as_uri(), new=2) for p in paths])
    except webbrowser.Error:
        return False


def cmd_web(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from ..export.dot import GraphvizError, render_dot, to_dot
    inp = _read(args)
    if args.output:
        flame = Path(args.output)
    else:
        flame = Path(tempfile.mkdtemp(prefix="cprof-web-")) / f"{output_stem(inp.name)}.html"
    _write_flame(inp, flame)
    dot = to_dot(inp.profile, inp.index)
    graph = flame.with_name(f"{flame.stem}.callgraph.svg")
    try:
        graph.write_text(render_dot(dot), encoding="utf-8")
    except GraphvizError as e:
        graph = graph.with_suffix(".dot")
        graph.write_text(dot, encoding="utf-8")
        print(f"cprof web: the call graph is DOT, not SVG: {e}", file=sys.stderr)
    _wrote(graph)
    pages = [flame] + ([graph] if graph.suffix == ".svg" else [])
    sys.stdout.flush()
    if _open(pages):
        print(f"cprof web: opened {' and '.join(map(str, pages))} in the browser",
              file=sys.stderr)
    else:
        print("cprof web: no browser to open them (none in BROWSER and no display); "
              "open these files:", file=sys.stderr)
        for p in (flame, graph):
            print(p)
    return 0
