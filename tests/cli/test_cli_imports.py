"""Each command loads what it uses and no more (issue 16: a command's start-up).

``cprof top small.prof`` should cost about what ``go tool pprof -top`` does,
and most of a small profile's time is the interpreter importing modules; so
each command runs here under ``python -X importtime`` and the modules it
loaded are checked against those it has no use for (benchmarks/cli_cost.py
times it). The grammar's defaults are copies of the constants of modules it
must not import (cli/parser.py): they are compared with the originals here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import cprof
from cprof.cli import parser

# Whole parts of cprof, and standard-library modules that cost several ms each
# (http.server, ssl and email came with the live server, importlib.resources
# with importlib.abc, hashlib with secrets): a module is "loaded" when it or a
# submodule of it is.
SERVER = ["cprof.live", "cprof.ci", "http", "ssl", "email", "socketserver", "asyncio"]
HEAVY = ["importlib.resources", "importlib.abc", "secrets", "hashlib", "webbrowser",
         "tempfile", "pathlib", "statistics", "decimal", "xml"]
COLLECTORS = ["cprof.collect", "subprocess"]
# What the package does not import at run time on the paths of cprof top and
# cprof record (~10 ms in all): typing's names are for the type checker
# (``TYPE_CHECKING = False`` blocks), and the value classes are written out
# rather than made by dataclasses, which imports inspect, ast and dis.
TYPING = ["typing", "dataclasses", "inspect"]
# Nor argparse (a plain command line is read by cli/quick.py), re, shutil
# (with bz2 and lzma) or subprocess: ~12 ms more.
PARSING = ["argparse", "re", "shutil", "bz2", "lzma", "subprocess", "gettext", "locale"]
EXPORTS = ["cprof.export"]


def loaded(cwd: Path, *args: str) -> set[str]:
    """The modules ``python -m cprof ARGS`` imports, from -X importtime."""
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "cprof", *args], cwd=cwd,
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr[-2000:]
    names = set()
    for line in r.stderr.splitlines():
        if line.startswith("import time:") and not line.endswith("imported package"):
            names.add(line.rsplit("|", 1)[1].strip())
    assert "cprof.cli" in names, r.stderr[-2000:]
    return names


def unwanted(names: set[str], parts: list[str]) -> list[str]:
    return sorted(n for n in names if any(n == p or n.startswith(p + ".") for p in parts))


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real CPU profile, as cprof record writes one."""
    where = tmp_path_factory.mktemp("small")
    with cprof.cpu(str(where / "small.prof"), hz=1000):
        sum(i * i for i in range(200_000))
    return where


def test_top_loads_no_collector_export_server_or_listing(small: Path) -> None:
    names = loaded(small, "top", "small.prof")
    assert {"cprof.report.driver", "cprof.report.top"} <= names  # what it does use
    assert unwanted(names, SERVER + HEAVY + COLLECTORS + EXPORTS + TYPING + PARSING + [
        "cprof.report.listing", "cprof.report.traces", "cprof.pprof.textformat"]) == []


def test_summary_loads_no_report(small: Path) -> None:
    names = loaded(small, "summary", "small.prof")
    assert "cprof.pprof.profile" in names
    assert unwanted(names, SERVER + HEAVY + COLLECTORS + EXPORTS + ["cprof.report"]) == []


def test_folded_loads_only_its_export(small: Path) -> None:
    names = loaded(small, "folded", "small.prof", "-o", "out.folded")
    assert "cprof.export.folded" in names
    assert unwanted(names, SERVER + HEAVY + COLLECTORS + [
        "cprof.export.flamegraph", "cprof.export.speedscope", "cprof.export.dot",
        "cprof.report.listing", "cprof.report.traces"]) == []


def test_flame_loads_no_other_export_nor_collector(small: Path) -> None:
    # export/flamegraph/html.py itself imports urllib.request (and with it
    # http, ssl and email), so only cprof's own modules are checked here.
    names = loaded(small, "flame", "small.prof", "-o", "out.html")
    assert "cprof.export.flamegraph.html" in names
    assert unwanted(names, ["cprof.live", "cprof.ci", "cprof.collect", "cprof.export.folded",
                            "cprof.export.speedscope", "cprof.export.dot",
                            "cprof.report.listing", "cprof.report.traces"]) == []


def test_record_loads_the_cpu_collector_and_top_only(tmp_path: Path) -> None:
    (tmp_path / "empty.py").write_text("pass\n")
    names = loaded(tmp_path, "record", "-o", "out.prof", "empty.py")
    assert {"cprof.collect.cpu", "cprof.collect.runner", "cprof.report.top"} <= names
    assert unwanted(names, SERVER + HEAVY + EXPORTS + TYPING + PARSING + [
        "cprof.collect.heap", "cprof.collect.locks", "cprof.collect.threads",
        "cprof.collect.lookup", "cprof.report.tree", "cprof.report.listing"]) == []


# cprof record's process as os.execv replaces it: the modules loaded by then,
# and the command line it runs.
AT_EXEC = """
import os, sys
def execv(path, argv):
    modules = sorted(sys.modules)
    import json  # after: it imports re
    print(json.dumps({"modules": modules, "argv": argv}))
    sys.exit(0)
os.execv = execv
from cprof.cli import main
main(sys.argv[1:])
"""


def test_record_of_a_python_command_replaces_itself_before_loading_collectors(
        tmp_path: Path) -> None:
    (tmp_path / "empty.py").write_text("pass\n")
    r = subprocess.run([sys.executable, "-c", AT_EXEC, "record", "-o", "out.prof", "--hz", "250",
                        "--", sys.executable, "-X", "dev", "empty.py", "a"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr[-2000:]
    at_exec = json.loads(r.stdout)
    argv = at_exec["argv"]
    assert argv[:3] == [sys.executable, "-X", "dev"] and argv[3] == "-c"
    assert argv[5:] == ["record", "-o", "out.prof", "--hz", "250", "--mode", "cpu",
                        "--", "empty.py", "a"]
    names = set(at_exec["modules"])
    assert "cprof.collect.command" in names
    assert unwanted(names, SERVER + HEAVY + EXPORTS + TYPING + PARSING + [
        "cprof._core", "cprof.collect.runner", "cprof.collect.cpu", "cprof.pprof",
        "cprof.report", "signal", "threading"]) == []


def test_the_grammars_defaults_are_the_modules_constants() -> None:
    from cprof.ci import check
    from cprof.collect import heap
    from cprof.live import endpoints, server
    from cprof.report import graph
    originals = {"DEFAULT_ALPHA": check.DEFAULT_ALPHA, "DEFAULT_RATE": heap.DEFAULT_RATE,
                 "DEFAULT_MAX_SECONDS": endpoints.DEFAULT_MAX_SECONDS,
                 "DEFAULT_MAX_CONNECTIONS": server.DEFAULT_MAX_CONNECTIONS,
                 "DEFAULT_REQUEST_TIMEOUT": server.DEFAULT_REQUEST_TIMEOUT,
                 "TOKEN_ENV_VAR": server.TOKEN_ENV_VAR,
                 "NODE_FRACTION": graph.NODE_FRACTION, "EDGE_FRACTION": graph.EDGE_FRACTION}
    copies = {name: getattr(parser, name, None) for name in originals}
    assert copies == originals


def test_a_partly_built_grammar_parses_as_the_whole_one() -> None:
    """parser(argv) builds only the command argv begins with; every command
    parses the same through it as through the whole grammar."""
    cases = [["top", "-nodecount=3", "-focus", "x", "a.prof", "b.prof"],
             ["tree", "a.prof"], ["summary", "a.prof", "--top", "2"],
             ["record", "--hz", "1000", "-o", "top", "--", "python", "x.py", "top"],
             ["serve", "--port", "0", "-m", "mod"], ["check", "a.prof", "--max-share", "x=5%"],
             ["diff", "a.prof", "b.prof"], ["flame", "a.prof", "-o", "f.svg"]]
    for argv in cases:
        assert vars(parser.parser(argv).parse_args(argv)) == vars(
            parser.parser().parse_args(argv)), argv


def test_help_and_errors_are_the_same_from_a_partly_built_grammar(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["top", "--help"], ["record", "--help"], ["serve", "--help"],
                 ["bogus"], ["top"], ["-h", "top"]):
        texts = []
        for p in (parser.parser(argv), parser.parser()):
            with pytest.raises(SystemExit):
                p.parse_args(argv)
            texts.append(capsys.readouterr())
        assert texts[0] == texts[1] and "usage: cprof" in texts[0].out + texts[0].err, argv
