"""The command line's grammar: every command and option of cprof, in one place.

Each command names its handler as "module.function" of this package, and
main() imports the module of the command it runs only. The grammar imports
nothing of cprof's but its version (``cprof --version``): the defaults it
shows are copies of the constants where they are defined (the collectors, the
server, the call graph), so that ``cprof top`` does not load the server or the
collectors to say its usage.
tests/cli/test_cli_imports.py checks that each copy equals its original.
The grammar is built on argparse, or on quick.Recorder, which reads plain
command lines without importing argparse (parse()).
"""

from __future__ import annotations

from .._version import __version__
from .quick import REMAINDER, SUPPRESS, Namespace, Recorder

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    import argparse
    from typing import Any, Sequence

    # What the grammar is built on: argparse, or the quick reading's Recorder.
    Builder = argparse.ArgumentParser | Recorder

# Copies of the defaults of the modules named, which tests/cli/test_cli_imports.py
# compares with the originals: importing those modules would cost every command
# ~40 ms of start-up (the server alone brings http.server, ssl and email).
DEFAULT_ALPHA = 0.05  # ci.check
DEFAULT_RATE = 512 * 1024  # collect.heap
DEFAULT_MAX_SECONDS = 300  # live.endpoints
DEFAULT_MAX_CONNECTIONS = 64  # live.server
DEFAULT_REQUEST_TIMEOUT = 15.0  # live.server
TOKEN_ENV_VAR = "CPROF_SERVE_TOKEN"  # live.server
NODE_FRACTION = 0.005  # report.graph
EDGE_FRACTION = 0.001  # report.graph


def _add_profile_options(parser: Builder, *, bases: bool = True) -> None:
    """The options every analysis command shares, by go tool pprof's names
    (-focus, -sample_index, -diff_base) and as --kebab-case."""
    g = parser.add_argument_group("profile options (go tool pprof's, by its names too)")
    g.add_argument("-sample_index", "--sample-index", dest="sample_index", metavar="TYPE",
                   help="the sample type to report, by name or index (default: the profile's)")
    for name, what in (
            ("focus", "keep only the samples with a frame matching REGEX"),
            ("ignore", "drop the samples with a frame matching REGEX"),
            ("hide", "remove the frames matching REGEX from the stacks"),
            ("show", "keep only the frames matching REGEX"),
            ("show_from", "drop the callers of the outermost frame matching REGEX"),
            ("prune_from", "drop the callees of the innermost frame matching REGEX")):
        g.add_argument(f"-{name}", f"--{name.replace('_', '-')}", dest=name, metavar="REGEX",
                       help=what)
    g.add_argument("-tagfocus", "--tagfocus", metavar="[KEY=]VALUES",
                   help="keep the samples whose labels match: regexes separated by commas, "
                        "or a numeric range such as bytes=1kb:16kb")
    g.add_argument("-tagignore", "--tagignore", metavar="[KEY=]VALUES",
                   help="drop the samples whose labels match")
    if bases:
        b = g.add_mutually_exclusive_group()
        b.add_argument("-base", "--base", action="append", metavar="BASE",
                       help="subtract BASE's samples (repeatable: the bases are merged)")
        b.add_argument("-diff_base", "--diff-base", dest="diff_base", action="append",
                       metavar="BASE", help="compare with BASE: report the change, with "
                       "percentages of BASE's total (repeatable)")
    else:
        parser.set_defaults(base=None, diff_base=None)
    by = g.add_mutually_exclusive_group()
    for flag, what in (("functions", "function (the default)"), ("files", "file"),
                       ("lines", "line of code")):
        by.add_argument(f"-{flag}", f"--{flag}", dest="granularity", action="store_const",
                        const=flag.removesuffix("s"), help=f"aggregate by {what}")


def _add_analysis(sub: Any, name: str, run: str, help: str, *,
                  regex: str | None = None) -> Builder:
    """An analysis command: [REGEX] PROFILE... and the shared options."""
    p: Builder = sub.add_parser(name, help=help, description=help + ".")
    if regex is not None:
        p.add_argument("regex", metavar="REGEX", help=regex)
    p.add_argument("profiles", nargs="+", metavar="PROFILE",
                   help="pprof files from any producer; several are merged")
    _add_profile_options(p)
    p.set_defaults(run=run)
    return p


def _add_top_options(p: Builder, node_count: int | None) -> None:
    p.add_argument("-n", "-nodecount", "--nodecount", dest="nodecount", type=int,
                   default=node_count, metavar="N",
                   help=f"show the N heaviest functions (default: {node_count or 'all'})")
    p.add_argument("-cum", "--cum", action="store_true", help="sort by cum, not flat")
    p.add_argument("-nodefraction", "--nodefraction", type=float, default=NODE_FRACTION,
                   metavar="F", help="hide functions whose cum is under F of the total "
                   f"(default {NODE_FRACTION})")


def _add_analysis_commands(sub: Any) -> None:
    p = _add_analysis(sub, "top", "analysis.cmd_top", "the heaviest functions, as go tool pprof -top")
    _add_top_options(p, None)
    p = _add_analysis(sub, "tree", "analysis.cmd_tree",
                      "callers and callees of each function, as go tool pprof -tree")
    _add_top_options(p, 80)
    p.add_argument("-edgefraction", "--edgefraction", type=float, default=EDGE_FRACTION,
                   metavar="F", help=f"hide calls under F of the total (default {EDGE_FRACTION})")
    _add_analysis(sub, "peek", "analysis.cmd_peek", "callers and callees of the matching functions, as "
                  "go tool pprof -peek", regex="functions to show (a regular expression)")
    p = _add_analysis(sub, "list", "analysis.cmd_list", "the source of the matching functions annotated "
                      "line by line, as go tool pprof -list",
                      regex="functions to list (a regular expression)")
    p.add_argument("-source_path", "--source-path", dest="source_path", metavar="DIRS",
                   help="where to look for source files (default: the current directory)")
    p.add_argument("-trim_path", "--trim-path", dest="trim_path", default="", metavar="PREFIX",
                   help="path prefix to cut from the profile's file names")
    _add_analysis(sub, "traces", "analysis.cmd_traces",
                  "every sample's stack with its labels, as go tool pprof -traces")
    p = _add_analysis(sub, "flame", "analysis.cmd_flame", "write a flame graph: interactive HTML, or a "
                      "static SVG for an .svg output")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="OUT.html or OUT.svg (default: the first PROFILE's name + .html)")
    p = _add_analysis(sub, "speedscope", "analysis.cmd_speedscope", "write a speedscope JSON file")
    p.add_argument("-o", "--output", metavar="OUT", help="default: the first PROFILE's name "
                   "+ .speedscope.json")
    p = _add_analysis(sub, "folded", "analysis.cmd_folded",
                      "print folded stacks (flamegraph.pl, inferno)")
    p.add_argument("-o", "--output", metavar="OUT", help="write them here, not to stdout")
    p = _add_analysis(sub, "merge", "analysis.cmd_merge", "merge profiles into one, as go tool pprof "
                      "-proto does with several files")
    p.add_argument("-o", "--output", metavar="OUT", required=True, help="the merged profile")
    p = _add_analysis(sub, "web", "analysis.cmd_web", "write the HTML flame graph and the SVG call graph, "
                      "and open them in a browser if there is one (else print their paths)")
    p.add_argument("-o", "--output", metavar="OUT.html",
                   help="the flame graph's path, the call graph's next to it (default: in a "
                        "new temporary directory)")

    help = ("compare PROFILE with BASE as go tool pprof -diff_base: print the change's top, "
            "write the diff profile")
    p = sub.add_parser("diff", help=help, description=help + ".")
    p.add_argument("base_profile", metavar="BASE", help="the profile to compare with")
    p.add_argument("profile", metavar="PROFILE", help="the new profile")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="the diff profile (default: PROFILE's name + .diff.prof)")
    p.add_argument("--flame", metavar="OUT.html|OUT.svg", help="also write its flame graph "
                   "(red: grew, blue: shrank)")
    _add_top_options(p, None)
    _add_profile_options(p, bases=False)
    p.set_defaults(run="analysis.cmd_diff")


def _add_program(p: Builder, run: str) -> None:
    """The program to run, as python takes it (runner.program reads these)."""
    p.add_argument("-m", dest="module", nargs=REMAINDER, metavar="MODULE ARGS",
                   help="run a module as python -m does")
    p.add_argument("command", nargs=REMAINDER, help=SUPPRESS)
    p.set_defaults(run=run)


class _Unbuilt:
    """Stands for the parser of a command this run cannot parse: takes every
    call that would build it (add_argument, groups, set_defaults) and does
    nothing, so that cprof top does not pay for the other commands' options."""

    def __getattr__(self, name: str) -> Any:
        return self._nothing

    def _nothing(self, *args: Any, **kwargs: Any) -> Any:
        return self


class _Commands:
    """The COMMAND subparsers. When the arguments begin with a command's name
    (``cprof top ...``, the usual case), argparse will parse that command's
    options and look at no other command, so only that one is built: making
    every command's parser costs ~4 ms, a tenth of cprof top's start-up.
    Otherwise (``cprof --help``, a misspelt command, which argparse answers
    with the list of commands) every one is built."""

    def __init__(self, sub: Any, wanted: str | None) -> None:
        self.sub = sub
        self.wanted = wanted
        self.found = False

    def add_parser(self, name: str, **kwargs: Any) -> Builder:
        if self.wanted is None or name == self.wanted:
            self.found = True
            made: Builder = self.sub.add_parser(name, **kwargs)
            return made
        return _Unbuilt()  # type: ignore[return-value]  # takes every call and ignores it


def parse(argv: Sequence[str]) -> argparse.Namespace | Namespace:
    """The command line ``argv``, parsed: by the quick reading when it is a
    plain one (quick.py), else by argparse."""
    if argv and not argv[0].startswith("-"):
        recorder = Recorder()
        if _grammar(argv[0], recorder):
            quick = recorder.commands[argv[0]].read(argv[1:])
            if quick is not None:
                return quick
    return parser(argv).parse_args(argv)


def parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command line's grammar; given the arguments it is to parse, only
    what parsing them needs of it (the whole grammar when None)."""
    import argparse
    if argv and not argv[0].startswith("-"):
        built = argparse.ArgumentParser(prog="cprof", description="pprof for Python.")
        if _grammar(argv[0], built):
            return built
    whole = argparse.ArgumentParser(prog="cprof", description="pprof for Python.")
    _grammar(None, whole)
    return whole


def _grammar(wanted: str | None, parser: Builder) -> bool:
    """Build on ``parser`` the grammar with every command, or with command
    ``wanted`` only; False if there is no such command."""
    parser.add_argument("--version", action="version", version=f"cprof {__version__}")
    sub: Any = _Commands(parser.add_subparsers(dest="command", required=True,
                                               metavar="COMMAND"), wanted)
    s = sub.add_parser("summary", help="say what a profile holds; optionally write it back")
    s.add_argument("profile", help="a pprof file (gzipped or raw), from any producer")
    s.add_argument("-o", "--output", help="write the profile back to this path")
    s.add_argument("--level", type=int, default=1, choices=range(0, 10), metavar="0-9",
                   help="gzip level for --output (0: raw protobuf; default 1)")
    s.add_argument("--top", type=int, default=10, help="how many functions to list")
    s.add_argument("--max-size", type=int, default=1 << 30,
                   help="refuse profiles larger than this many bytes, read, inflated "
                        "or decoded (docs/SECURITY.md)")
    s.set_defaults(run="analysis.cmd_summary")

    r = sub.add_parser(
        "record", help="profile a Python program, write its profile and print its top 10",
        usage="cprof record [-o OUT] [--hz N] [--mode cpu|wall] [--native] [--max-depth N] "
              "[--repeat N]\n"
              "         [--follow] [--per-process DIR]\n"
              "         (-- python [options] script.py args | script.py args | -m module args)",
        description="Run a Python program under the CPU profiler, as python -m cProfile "
                    "does: in this process (a python command is re-executed to run cprof "
                    "record itself), seeing the sys.argv and __main__ it would see unprofiled. "
                    "The exit status is the program's.")
    r.add_argument("-o", "--output", help="where to write the profile (default: the script's "
                   "or module's name + .cpu.prof or .wall.prof, in the current directory)")
    r.add_argument("--hz", type=float, default=100, help="samples per second (default 100)")
    r.add_argument("--mode", choices=("cpu", "wall"), default="cpu",
                   help="cpu: CPU time of each thread (default); wall: wall-clock time of every "
                        "thread, running or blocked")
    r.add_argument("--max-depth", type=int, default=None,
                   help="deeper stacks keep their innermost frames (default 128; 512 with "
                        "--native)")
    r.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="run the program N times (each in its own process) and write one "
                        "profile of all runs, labelled run=1..N, for cprof check --baseline")
    r.add_argument("--native", action="store_true",
                   help="record C frames too (libunwind), each interpreter call replaced by "
                        "its Python frames: time in NumPy, zlib or an extension gets its C "
                        "function's name, under the Python call that made it")
    r.add_argument("--follow", action="store_true",
                   help="profile the program's Python child processes too (multiprocessing, "
                        "concurrent.futures, subprocesses, their children), each from its start "
                        "with the same settings, and merge their profiles into this one, each "
                        "sample labelled pid and process (-tagfocus=pid=N)")
    r.add_argument("--per-process", metavar="DIR",
                   help="--follow, but write each process's profile apart, as DIR/PID.prof "
                        "(this one's too), instead of one merged profile")
    r.add_argument("--quiet", action="store_true", help="print nothing but errors")
    _add_program(r, "launch.cmd_record")
    v = sub.add_parser(
        "serve", help="run a Python program with Go's /debug/pprof endpoints on a port",
        usage="cprof serve [--host HOST] [--port N] [options]\n"
              "         (-- python [options] script.py args | script.py args | -m module args)",
        description="Run a Python program in this process, as cprof record does, while a "
                    "background thread serves Go's net/http/pprof endpoints, so that "
                    "go tool pprof http://127.0.0.1:6060/debug/pprof/profile?seconds=10 "
                    "profiles it. The exit status is the program's.")
    v.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; others can reach any other, "
                        "so use a token)")
    v.add_argument("--port", type=int, default=6060, help="port (default 6060; 0: a free one)")
    v.add_argument("--token-file", metavar="PATH",
                   help="require the token on this file's first line (default: "
                        f"${TOKEN_ENV_VAR}, if set), as 'Authorization: Bearer TOKEN' or as "
                        "the password of http://user:TOKEN@host/")
    v.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="without a token, answer requests for this host name too (repeatable; "
                        "'*': any); by default only IP addresses and localhost, against DNS "
                        "rebinding")
    v.add_argument("--max-connections", type=int, metavar="N",
                   help=f"connections served at once; more get 503 (default "
                        f"{DEFAULT_MAX_CONNECTIONS})")
    v.add_argument("--request-timeout", type=float, metavar="SECONDS",
                   help=f"time a client has to send a whole request (default "
                        f"{DEFAULT_REQUEST_TIMEOUT:g})")
    v.add_argument("--max-seconds", type=int, default=DEFAULT_MAX_SECONDS,
                   help=f"longest seconds= a request may ask for (default {DEFAULT_MAX_SECONDS})")
    v.add_argument("--heap-rate", type=int, default=DEFAULT_RATE,
                   help=f"heap profile: one sample per this many bytes allocated (default "
                        f"{DEFAULT_RATE}; 0: no heap profile)")
    v.add_argument("--mutex-fraction", type=int, metavar="N",
                   help="mutex profile: record 1 in N contended lock releases (default: off)")
    v.add_argument("--block-rate", type=int, metavar="NS",
                   help="block profile: record waits of NS nanoseconds or longer, and a sample "
                        "of shorter ones (1: every wait; default: off)")
    _add_program(v, "serve.cmd_serve")
    a = sub.add_parser(
        "attach", help="profile a running CPython 3.14+ process (PEP 768), without restarting it",
        usage="cprof attach PID [--seconds N] [--mode cpu|wall] [--hz N] [--native] [-o OUT]\n"
              "       cprof attach PID --heap [--seconds N] [--heap-rate BYTES] [-o OUT]\n"
              "       cprof attach PID --dump [-o OUT]\n"
              "       cprof attach PID --serve [HOST:]PORT",
        description="Run cprof inside process PID through sys.remote_exec (CPython 3.14+): "
                    "a CPU or wall profile for --seconds, a heap profile of what it allocates "
                    "meanwhile, a thread dump, or Go's /debug/pprof endpoints on a port. "
                    "Attaching needs a debugger's rights over the process, the same Python "
                    "version and build as this one, and cprof importable in the process "
                    "(--add-path lends it this cprof).")
    a.add_argument("pid", type=int, metavar="PID", help="the process to attach to")
    a.add_argument("--seconds", type=float, default=10,
                   help="how long to profile (default 10)")
    a.add_argument("--mode", choices=("cpu", "wall"), default="cpu",
                   help="cpu: CPU time of each thread (default); wall: wall-clock time")
    a.add_argument("--hz", type=float, default=100, help="samples per second (default 100)")
    a.add_argument("--native", action="store_true", help="record C frames too (libunwind)")
    what = a.add_mutually_exclusive_group()
    what.add_argument("--heap", action="store_true",
                      help="a heap profile of the allocations made during --seconds")
    what.add_argument("--dump", action="store_true",
                      help="every thread's and asyncio task's stack now, as text")
    what.add_argument("--serve", metavar="[HOST:]PORT",
                      help="start Go's /debug/pprof endpoints in the process (the token from "
                           f"${TOKEN_ENV_VAR}, if set) and return")
    a.add_argument("--heap-rate", type=int, default=DEFAULT_RATE,
                   help=f"with --heap: one sample per this many bytes (default {DEFAULT_RATE})")
    a.add_argument("-o", "--output",
                   help="where to write the result (default: PID.cpu.prof, PID.wall.prof or "
                        "PID.heap.prof; a dump goes to stdout)")
    a.add_argument("--timeout", type=float, default=10,
                   help="seconds the process may take to start running cprof (default 10)")
    a.add_argument("--add-path", action="store_true",
                   help="let the process import this cprof, appending its directory to the "
                        "process's sys.path, when cprof is not installed there")
    a.add_argument("--quiet", action="store_true", help="print nothing but errors")
    a.set_defaults(run="attach.cmd_attach")
    c = sub.add_parser(
        "check", help="check a profile against budgets and a baseline (for CI); exit 1 if over",
        description="Check PROFILE's shares (pprof's cum % of the sample type), totals and its "
                    "regression against a baseline. Exit status 0: every budget holds; 1: one "
                    "does not (and a flame graph of PROFILE, or of the change from BASE, is "
                    "written); 2: the check could not be made.")
    c.add_argument("profile", metavar="PROFILE", nargs="+",
                   help="the profile to check; several profiles are runs of the same work "
                        "(each one a run, as cprof record --repeat labels them)")
    c.add_argument("--max-share", action="append", default=[], metavar="REGEX=BUDGET",
                   help="largest share of functions matching REGEX anywhere on the stack, as a "
                        "percentage or fraction ('json\\.=5%%'); repeatable")
    c.add_argument("--max-total", action="append", default=[], metavar="TYPE=AMOUNT",
                   help="largest total of a sample type ('cpu=2s', 'alloc_space=64MB'); "
                        "repeatable")
    c.add_argument("--sample-index", "-sample_index", dest="sample_index", metavar="TYPE",
                   help="the sample type shares and regressions are of (default: the "
                        "profile's default)")
    c.add_argument("--baseline", metavar="BASE", action="append",
                   help="a profile of the same work before the change: one of several runs "
                        "(cprof record --repeat N), or, repeated, one file a run (record them "
                        "in turn with the new runs, so that both meet the same load)")
    c.add_argument("--max-regression", metavar="PERCENT",
                   help="largest rise of the total over BASE's (default 10%%); with several "
                        "runs a side it counts only when Mann-Whitney U finds it significant")
    c.add_argument("--focus", metavar="REGEX", help="compare only samples with a function "
                   "matching REGEX on their stack")
    c.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                   help=f"significance level of the regression test (default {DEFAULT_ALPHA})")
    c.add_argument("--junit", metavar="FILE", help="also write the findings as JUnit XML")
    c.add_argument("--flame", metavar="OUT.html|OUT.svg",
                   help="where a failure's flame graph goes (default: PROFILE's name + .html, "
                        "or .diff.html with --baseline)")
    c.set_defaults(run="check.cmd_check")
    _add_analysis_commands(sub)
    return bool(sub.found)
