"""The analysis commands of the command line (`cprof top`, `tree`, `peek`,
`traces`, `list`, `diff`, `merge`, `flame`, `speedscope`, `folded`, `web`) as a
user runs them: `python -m cprof` in a subprocess. Reports print what
`go tool pprof` prints with the same flags, on Go-written profiles and on
profiles recorded by `cprof record`; exports are written and parse; errors
exit 1 (bad input) or 2 (bad usage) with a message."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Callable

import pytest

import cprof
from gotools import ROOT, pprof_raw_text, require_go

GO = ROOT / "tests" / "testdata" / "go"
GO_SOURCE = ROOT / "tests" / "go"

WORKLOAD = '''\
import time


def leaf(n):
    total = 0
    for i in range(n):
        total += i * i
    return total


def other(n):
    return sum(i * 3 for i in range(n))


def middle(n):
    return leaf(n) + other(n // 2)


def main(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        middle(5000)
        leaf(2000)


main(float(__import__("sys").argv[1]))
'''

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


def environ(home: Path, **extra: str) -> dict[str, str]:
    """Times in UTC and HOME in a scratch directory, for cprof as for pprof;
    PYTHONPATH passed through so that the subprocess imports this cprof."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("GOFLAGS", "DISPLAY", "WAYLAND_DISPLAY", "BROWSER")}
    env.update(HOME=str(home), PPROF_TMPDIR=str(home), PPROF_BINARY_PATH=str(home), TZ="UTC",
               GOENV="off", GOTOOLCHAIN="local")
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def cli(home: Path) -> Run:
    """`python -m cprof ARGS...`, completed (check its returncode)."""

    def run(*args: str | os.PathLike[str], cwd: Path | None = None,
            **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cprof", *[os.fspath(a) for a in args]],
                              capture_output=True, text=True, env=environ(home, **env),
                              cwd=cwd or home, timeout=60)

    return run


@pytest.fixture(scope="module")
def pprof(home: Path) -> Callable[..., str]:
    """`go tool pprof -symbolize=none ARGS...`'s output."""
    go = require_go()

    def run(*args: str | os.PathLike[str], cwd: Path | None = None) -> str:
        cmd = [go, "tool", "pprof", "-symbolize=none", *[os.fspath(a) for a in args]]
        r = subprocess.run(cmd, capture_output=True, text=True, env=environ(home),
                           cwd=cwd or home, timeout=60)
        assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stderr}"
        return r.stdout

    return run


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, cli: Run) -> dict[str, Path]:
    """Go's profiles by name, and two CPU profiles recorded with `cprof record`
    (py.prof, py2.prof: the same program, run twice as long for py2)."""
    out = {p.name: p for p in GO.glob("*.prof")}
    tmp = tmp_path_factory.mktemp("recorded")
    (tmp / "work.py").write_text(WORKLOAD)
    for name, seconds in (("py.prof", "0.25"), ("py2.prof", "0.5")):
        r = cli("record", "--hz", "1000", "-o", tmp / name, tmp / "work.py", seconds)
        assert r.returncode == 0, r.stderr
        out[name] = tmp / name
    return out


def check(r: subprocess.CompletedProcess[str], status: int = 0) -> str:
    assert r.returncode == status, r.stderr
    return r.stdout


# (cprof arguments, pprof arguments); "{name}" stands for a profile's path.
REPORTS = [
    (["top", "--focus", "hotB", "{cpu.prof}"], ["-top", "-focus=hotB", "{cpu.prof}"]),
    (["top", "{cpu.prof}", "-focus=zzz"], ["-top", "-focus=zzz", "{cpu.prof}"]),
    (["top", "--cum", "-n", "5", "{heap.prof}"], ["-top", "-cum", "-nodecount=5", "{heap.prof}"]),
    (["top", "-sample_index=alloc_space", "--tagfocus", "bytes=1kb:16kb", "{heap.prof}"],
     ["-top", "-sample_index=alloc_space", "-tagfocus=bytes=1kb:16kb", "{heap.prof}"]),
    (["top", "--sample-index", "1", "--hide", "runtime", "--ignore", "hotA", "{cpu.prof}"],
     ["-top", "-sample_index=1", "-hide=runtime", "-ignore=hotA", "{cpu.prof}"]),
    (["top", "--show-from", "cpuWork", "--prune-from", "hotA", "--lines", "{cpu.prof}"],
     ["-top", "-show_from=cpuWork", "-prune_from=hotA", "-lines", "{cpu.prof}"]),
    (["top", "{heap.prof}", "{allocs.prof}"], ["-top", "{heap.prof}", "{allocs.prof}"]),
    (["top", "--base", "{heap.prof}", "{allocs.prof}"],
     ["-top", "-base={heap.prof}", "{allocs.prof}"]),
    (["tree", "{cpu.prof}"], ["-tree", "{cpu.prof}"]),
    (["tree", "--focus", "main", "{mutex.prof}"], ["-tree", "-focus=main", "{mutex.prof}"]),
    (["tree", "--diff-base", "{heap.prof}", "--files", "{allocs.prof}"],
     ["-tree", "-diff_base={heap.prof}", "-files", "{allocs.prof}"]),
    (["peek", "Lock", "{block.prof}"], ["-peek=Lock", "{block.prof}"]),
    (["peek", "main", "--focus", "Lock", "--lines", "{block.prof}"],
     ["-peek=main", "-focus=Lock", "-lines", "{block.prof}"]),
    (["traces", "{heap.prof}"], ["-traces", "{heap.prof}"]),
    (["traces", "--focus", "hotB", "{cpu.prof}"], ["-traces", "-focus=hotB", "{cpu.prof}"]),
    (["list", r"main\.hot", "--source-path", str(GO_SOURCE), "--focus", "hotB", "{cpu.prof}"],
     [r"-list=main\.hot", f"-source_path={GO_SOURCE}", "-focus=hotB", "{cpu.prof}"]),
    (["top", "{py.prof}"], ["-top", "{py.prof}"]),
    (["top", "--focus", "middle", "-sample_index=samples", "{py.prof}"],
     ["-top", "-focus=middle", "-sample_index=samples", "{py.prof}"]),
    (["top", "--lines", "{py.prof}"], ["-top", "-lines", "{py.prof}"]),
    (["top", "{py.prof}", "{py2.prof}"], ["-top", "{py.prof}", "{py2.prof}"]),
    (["tree", "--hide", "other", "{py.prof}"], ["-tree", "-hide=other", "{py.prof}"]),
    (["peek", "leaf", "{py.prof}"], ["-peek=leaf", "{py.prof}"]),
    (["traces", "--diff-base", "{py2.prof}", "{py.prof}"],
     ["-traces", "-diff_base={py2.prof}", "{py.prof}"]),
    (["list", "middle|leaf", "{py.prof}"], ["-list=middle|leaf", "{py.prof}"]),
]


@pytest.mark.parametrize("mine,theirs", REPORTS, ids=[" ".join(m) for m, _ in REPORTS])
def test_report_prints_what_pprof_prints(files: dict[str, Path], cli: Run,
                                         pprof: Callable[..., str], mine: list[str],
                                         theirs: list[str]) -> None:
    paths = {f"{{{name}}}": str(path) for name, path in files.items()}

    def fill(args: list[str]) -> list[str]:
        for key, path in paths.items():
            args = [a.replace(key, path) for a in args]
        return args

    expected = pprof(*fill(theirs))
    assert expected.count("\n") > 3  # a report, not an empty page
    assert check(cli(*fill(mine))) == expected


@pytest.mark.parametrize("base,new", [("heap.prof", "allocs.prof"), ("py2.prof", "py.prof")])
def test_diff_prints_pprofs_diff_base_top_and_writes_the_diff(
        files: dict[str, Path], cli: Run, pprof: Callable[..., str], tmp_path: Path,
        base: str, new: str) -> None:
    out, flame = tmp_path / "d.prof", tmp_path / "d.html"
    r = cli("diff", files[base], files[new], "-o", out, "--flame", flame)
    flag = f"-diff_base={files[base]}"
    assert check(r) == pprof("-top", flag, files[new])
    assert pprof_raw_text(out) == pprof("-raw", flag, files[new])
    assert r.stderr == f"Wrote {out}\nWrote {flame}\n"
    assert flame_data(flame.read_text())["diff"] is True


def test_merge_writes_what_pprof_merges(files: dict[str, Path], cli: Run,
                                        pprof: Callable[..., str], tmp_path: Path) -> None:
    for names in (("py.prof", "py2.prof"), ("heap.prof", "allocs.prof")):
        paths = [files[n] for n in names]
        check(cli("merge", *paths, "-o", tmp_path / "m.prof"))
        assert pprof_raw_text(tmp_path / "m.prof") == pprof("-raw", *paths)


def flame_data(html: str) -> dict[str, Any]:
    """The data a flame graph page embeds."""
    start = html.index('<script type="application/json" class="cfg-data">')
    data = html[html.index(">", start) + 1:html.index("</script>", start)]
    parsed: dict[str, Any] = json.loads(data)
    return parsed


def function_names(p: cprof.Profile) -> set[str]:
    return {ln.function.name for s in p.samples for loc in s.locations for ln in loc.lines
            if ln.function is not None}


def test_flame_writes_html_and_svg(files: dict[str, Path], cli: Run, tmp_path: Path) -> None:
    r = cli("flame", files["py.prof"], cwd=tmp_path)
    assert check(r) == "" and r.stderr == "Wrote py.html\n"
    html = (tmp_path / "py.html").read_text()
    names = function_names(cprof.load(files["py.prof"]))
    assert {"__main__.leaf", "__main__.middle"} <= names
    assert html.startswith("<!DOCTYPE html>") and names <= set(flame_data(html)["names"])
    check(cli("flame", files["cpu.prof"], "--focus", "hotB", "-o", tmp_path / "f.svg"))
    svg = ET.parse(tmp_path / "f.svg").getroot()
    text = ET.tostring(svg, encoding="unicode")
    assert svg.tag.endswith("svg") and "main.hotB" in text and "main.hotA" not in text


def test_speedscope_weights_sum_to_the_total(files: dict[str, Path], cli: Run,
                                             tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    check(cli("speedscope", files["py.prof"], "-sample_index=samples", "-o", out))
    doc = json.loads(out.read_text())
    assert doc["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    [profile] = doc["profiles"]
    assert sum(profile["weights"]) == cprof.load(files["py.prof"]).total("samples")


@pytest.mark.parametrize("name", ["py.prof", "heap.prof"])
def test_folded_totals_are_the_profiles(files: dict[str, Path], cli: Run, tmp_path: Path,
                                        name: str) -> None:
    text = check(cli("folded", files[name]))
    stacks = [line.rsplit(" ", 1) for line in text.splitlines()]
    assert stacks and any(";" in stack for stack, _ in stacks)
    assert sum(int(v) for _, v in stacks) == cprof.load(files[name]).total()
    check(cli("folded", files[name], "-o", tmp_path / "f.txt"))
    assert (tmp_path / "f.txt").read_text() == text


def test_web_without_a_browser_prints_the_paths(files: dict[str, Path], cli: Run) -> None:
    r = cli("web", files["cpu.prof"])
    flame, graph = map(Path, check(r).splitlines())
    assert "no browser" in r.stderr
    assert "main.hotA" in flame.read_text()
    if shutil.which("dot"):
        assert graph.suffix == ".svg" and "main.hotA" in graph.read_text()
        ET.parse(graph)
    else:
        assert graph.suffix == ".dot" and "Graphviz" in r.stderr
    shutil.rmtree(flame.parent)


def test_web_opens_both_pages_in_the_browser(files: dict[str, Path], cli: Run,
                                             tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser"
    browser.write_text(f'#!/bin/sh\necho "$1" >> {opened}\n')
    browser.chmod(0o755)
    out = tmp_path / "web.html"
    r = cli("web", files["py.prof"], "-o", out, BROWSER=str(browser))
    assert check(r) == "" and "opened" in r.stderr
    graph = tmp_path / ("web.callgraph.svg" if shutil.which("dot") else "web.callgraph.dot")
    pages = [out] + ([graph] if graph.suffix == ".svg" else [])
    assert opened.read_text().split() == [p.as_uri() for p in pages]
    assert graph.exists()


def test_web_without_graphviz_writes_dot_and_says_so(files: dict[str, Path], cli: Run,
                                                     tmp_path: Path) -> None:
    r = cli("web", files["py.prof"], "-o", tmp_path / "w.html", PATH=str(tmp_path))
    assert check(r).split() == [str(tmp_path / "w.html"), str(tmp_path / "w.callgraph.dot")]
    assert "Graphviz's 'dot' was not found" in r.stderr and "apt-get install graphviz" in r.stderr
    assert (tmp_path / "w.callgraph.dot").read_text().startswith("digraph")


def test_malformed_profile_exits_1_with_what_is_wrong(files: dict[str, Path], cli: Run,
                                                      tmp_path: Path) -> None:
    bad = tmp_path / "cut.prof"
    bad.write_bytes(files["heap.prof"].read_bytes()[:300])
    for command in (["top"], ["flame"], ["merge", "-o", tmp_path / "m.prof"]):
        r = cli(*command, files["cpu.prof"], bad)
        assert r.returncode == 1 and r.stdout == ""
        assert r.stderr == f"cprof: {bad}: gzip: the stream is truncated after 300 of its " \
                           f"bytes; the file was probably cut short\n"


@pytest.mark.parametrize("args", [["top"], ["top", "--no-such-flag", "{cpu.prof}"],
                                  ["top", "-n", "many", "{cpu.prof}"],
                                  ["top", "--base", "{cpu.prof}", "--diff-base", "{cpu.prof}",
                                   "{cpu.prof}"],
                                  ["tree", "--files", "--lines", "{cpu.prof}"],
                                  ["diff", "{cpu.prof}"], ["merge", "{cpu.prof}"]])
def test_bad_usage_exits_2(files: dict[str, Path], cli: Run, args: list[str]) -> None:
    r = cli(*[a.replace("{cpu.prof}", str(files["cpu.prof"])) for a in args])
    assert r.returncode == 2 and r.stdout == "" and "usage: cprof" in r.stderr


@pytest.mark.parametrize("command", ["peek", "list"])
def test_regex_matching_nothing_exits_1_as_pprof(files: dict[str, Path], cli: Run, home: Path,
                                                 command: str) -> None:
    go = require_go()
    theirs = subprocess.run([go, "tool", "pprof", "-symbolize=none", f"-{command}=zzz",
                             files["cpu.prof"]], capture_output=True, text=True,
                            env=environ(home), timeout=60)
    assert theirs.returncode == 1 and theirs.stderr == "no matches found for regexp: zzz\n"
    r = cli(command, "zzz", files["cpu.prof"])
    assert (r.returncode, r.stdout, r.stderr) == (1, "", f"cprof: {theirs.stderr}")


def test_unknown_sample_type_exits_1(files: dict[str, Path], cli: Run) -> None:
    r = cli("top", "-sample_index=bogus", files["cpu.prof"])
    assert r.returncode == 1 and "no sample type 'bogus'" in r.stderr and "samples, cpu" in r.stderr
