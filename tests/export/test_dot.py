"""cprof.export.dot: the call graph that `go tool pprof -dot` draws.

Go's pprof is the judge: on Go's runtime/pprof profiles and on profiles
written by cprof, with pprof's default trimming and with other -nodecount,
-nodefraction and -edgefraction, to_dot prints the text that
`go tool pprof -dot -symbolize=none` prints (TZ=UTC for the Time line), and
its nodes and edges carry the same values. Small built profiles check the
trimming rules with known answers, and Graphviz renders the result.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import cprof
from cprof import Function, Line, Location, Mapping, Profile, Sample
from cprof.export.dot import GraphvizError, shorten_function_name, to_dot, to_svg

GO = Path(__file__).resolve().parents[1] / "testdata" / "go"
KINDS = ["cpu", "heap", "allocs", "mutex", "block", "goroutine", "threadcreate"]
# (node_count, node_fraction, edge_fraction): pprof's defaults, then others.
TRIMS = [(80, 0.005, 0.001), (5, 0.005, 0.001), (3, 0.0, 0.01), (100000, 0.0, 0.0),
         (8, 0.05, 0.2)]




@pytest.fixture(scope="module")
def go_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("go-home")


def go_dot(home: Path, path: Path, sample_type: str | None, node_count: int,
           node_fraction: float, edge_fraction: float) -> str:
    go = shutil.which("go")
    if go is None:
        pytest.fail("'go' not found in PATH: go tool pprof judges the DOT output; install Go "
                    "(Debian/Ubuntu: apt-get install golang-go)", pytrace=False)
    args = [go, "tool", "pprof", "-dot", "-symbolize=none", f"-nodecount={node_count}",
            f"-nodefraction={node_fraction}", f"-edgefraction={edge_fraction}"]
    if sample_type is not None:
        args.append(f"-sample_index={sample_type}")
    env = {k: v for k, v in os.environ.items() if k != "GOFLAGS"}
    env.update(HOME=str(home), PPROF_TMPDIR=str(home), PPROF_BINARY_PATH=str(home), TZ="UTC",
               GOENV="off", GOTOOLCHAIN="local")
    r = subprocess.run(args + [str(path)], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


_NODE = re.compile(r'^(N\d+) \[label="(.*?)" id="node\d+"')
_NODELET = re.compile(r'^(N\S+) \[label = "(.*?)" id=')
_EDGE = re.compile(r'^(N\d+) -> (N\d+) \[label=" ([^"\s]+)')


def parse(text: str) -> tuple[dict[str, str], dict[tuple[str, str], str], dict[str, str]]:
    """Nodes (id -> label), edges ((caller, callee) -> printed weight) and
    nodelets (id -> label) of a DOT graph as pprof writes it."""
    nodes, edges, nodelets = {}, {}, {}
    for line in text.splitlines():
        if m := _NODE.match(line):
            nodes[m.group(1)] = m.group(2)
        elif m := _NODELET.match(line):
            nodelets[m.group(1)] = m.group(2)
        elif m := _EDGE.match(line):
            edges[m.group(1), m.group(2)] = m.group(3)
    return nodes, edges, nodelets


@pytest.mark.parametrize("kind", KINDS)
def test_go_profiles_print_what_go_tool_pprof_prints(kind: str, utc: None, go_home: Path) -> None:
    path = GO / f"{kind}.prof"
    p = cprof.load(path)
    for sample_type in [None] + [t.type for t in p.sample_types[:-1]]:
        for trim in TRIMS:
            expected = go_dot(go_home, path, sample_type, *trim)
            assert to_dot(p, sample_type, *trim) == expected, (sample_type, trim)


def test_go_heap_profile_numbers(utc: None, go_home: Path) -> None:
    path = GO / "heap.prof"
    text = to_dot(cprof.load(path))
    nodes, edges, nodelets = parse(text)
    assert (nodes, edges, nodelets) == parse(go_dot(go_home, path, None, 80, 0.005, 0.001))
    assert (len(nodes), len(edges), len(nodelets)) == (13, 11, 4)
    assert "Dropped 14 nodes (cum <= 4.11kB)" in text
    assert nodes["N1"] == "main\\nallocLarge\\n640kB (77.81%)"
    assert edges["N3", "N1"] == "640kB"
    assert nodelets["NN1_0"] == "16kB"  # the samples' bytes label


def python_like_profile() -> Profile:
    """What cprof writes for Python, with what pprof treats specially:
    inlined lines, a native frame without symbols, recursion, thread labels,
    a bytes label, names pprof shortens, and a spread of weights."""
    py = Mapping(1, filename="/usr/bin/python3.11", has_functions=True, has_filenames=True,
                 has_line_numbers=True)
    libc = Mapping(2, start=0x7f0000, limit=0x7f9000, filename="/lib/x86_64-linux-gnu/libc.so.6")
    names = ["app.main", "app.server.Handler.handle", "json.encoder.JSONEncoder.encode",
             "app.util.helper", "app.fib", "threading.Thread.run", "app.io.read",
             "app.models.Model.<listcomp>"]
    fns = [Function(i + 1, n, n.rsplit(".", 1)[-1], f"/app/{i}.py", 10 * i + 1)
           for i, n in enumerate(names)]
    locs = [Location(i + 1, 0, py, (Line(f, 10 * i + 5),)) for i, f in enumerate(fns)]
    inlined = Location(20, 0, py, (Line(fns[3], 99), Line(fns[2], 98)))
    native = Location(21, 0x7f1234, libc, ())
    main, handle, encode, helper, fib, run, read, listcomp = locs
    stacks = [
        ([fib, fib, fib, main], 400), ([fib, fib, main], 250), ([encode, handle, main], 300),
        ([inlined, handle, main], 120), ([native, read, handle, main], 90),
        ([read, run], 60), ([listcomp, handle, main], 30), ([helper, run], 8), ([main], 3),
        ([native, run], 2), ([encode, helper, run], 1)]
    samples = []
    for i, (stack, w) in enumerate(stacks):
        thread: dict[str, str | int] = {"thread_id": 100 + i % 2,
                                        "thread_name": ["MainThread", "worker"][i % 2]}
        samples.append(Sample([w // 10 or 1, w * 1_000_000], stack, thread))
        if i % 3 == 0:
            samples.append(Sample([1, w * 1000], stack, {**thread, "bytes": 1 << (4 + i)}))
    return Profile([("samples", "count"), ("cpu", "nanoseconds")], samples,
                   period_type=("cpu", "nanoseconds"), period=10_000_000,
                   time_ns=1_700_000_000 * 10**9, duration_ns=2_000_000_000,
                   comments=["cprof test"])


@pytest.mark.parametrize("sample_type", [None, "samples"])
def test_cprof_written_profile_prints_what_go_tool_pprof_prints(
        sample_type: str | None, utc: None, go_home: Path, tmp_path: Path) -> None:
    path = tmp_path / "py.prof"
    python_like_profile().write(path)
    p = cprof.load(path)
    for trim in TRIMS + [(4, 0.0, 0.0), (6, 0.01, 0.05)]:
        expected = go_dot(go_home, path, sample_type, *trim)
        assert to_dot(p, sample_type, *trim) == expected, trim


# --- known answers on built profiles -------------------------------------------------

PY = Mapping(1, filename="/usr/bin/python3", has_functions=True)
A, B, C, D = (Function(i, f"m.{n}", n, "/m.py", i) for i, n in enumerate("abcd", 1))
LA, LB, LC, LD = (Location(i, 0, PY, (Line(f, 1),)) for i, f in enumerate((A, B, C, D), 1))


def chain_profile() -> Profile:
    # a -> b -> c (900), a -> b -> d (99), a -> d (1)
    return Profile([("cpu", "nanoseconds")], [
        Sample([900], [LC, LB, LA]), Sample([99], [LD, LB, LA]), Sample([1], [LD, LA])])


def test_known_graph_and_labels() -> None:
    text = to_dot(chain_profile(), node_fraction=0, edge_fraction=0)
    nodes, edges, nodelets = parse(text)
    # Ranked by pprof's entropy: the leaf c, the entry a, then b (which
    # spreads its calls) before d.
    assert nodes == {
        "N1": "m\\nc\\n900ns (90.00%)",
        "N2": "m\\na\\n0 of 1000ns (100%)",
        "N3": "m\\nb\\n0 of 999ns (99.90%)",
        "N4": "m\\nd\\n100ns (10.00%)"}
    assert edges == {("N2", "N3"): "999ns", ("N3", "N1"): "900ns", ("N3", "N4"): "99ns",
                     ("N2", "N4"): "1ns"}
    assert nodelets == {}
    assert text.startswith('digraph "python3" {\n')
    assert "Showing nodes accounting for 1000ns, 100% of 1000ns total" in text
    # The font grows with flat: c (the largest) 24 points, d 8 + ceil(16 * sqrt(100/900)).
    assert 'id="node1" fontsize=24 ' in text and 'id="node4" fontsize=14 ' in text
    assert 'id="node2" fontsize=8 ' in text
    # Edges heaviest first, with Graphviz weights and pen widths from their share.
    assert [line.split(" [")[0] for line in text.splitlines() if " -> " in line] == [
        "N2 -> N3", "N3 -> N1", "N3 -> N4", "N2 -> N4"]
    assert 'N2 -> N3 [label=" 999ns" weight=100 penwidth=5 color="#b20000" ' in text


def test_edge_fraction_drops_light_edges() -> None:
    text = to_dot(chain_profile(), node_fraction=0, edge_fraction=0.01)
    _, edges, _ = parse(text)
    assert set(edges) == {("N2", "N3"), ("N3", "N1"), ("N3", "N4")}  # a -> d (1ns) is gone
    # pprof counts the edges it drops after choosing the top nodes; with a
    # node count, they went before it (to weigh in the choice) and go uncounted.
    assert "Dropped" not in text
    text = to_dot(chain_profile(), node_count=0, node_fraction=0, edge_fraction=0.01)
    assert set(parse(text)[1]) == {("N2", "N3"), ("N3", "N1"), ("N3", "N4")}
    assert "Dropped 1 edge (freq <= 10ns)" in text


def test_node_fraction_drops_nodes_and_calls_through_them_become_residual() -> None:
    # b carries 4 of 1000: under 0.5%, it goes, and a reaches c through it
    # as well as directly: one edge, residual (dotted) as some calls jumped b.
    p = Profile([("cpu", "nanoseconds")], [Sample([4], [LC, LB, LA]), Sample([996], [LC, LA])])
    text = to_dot(p)
    nodes, edges, _ = parse(text)
    assert sorted(nodes.values()) == ["m\\na\\n0 of 1us (100%)", "m\\nc\\n1us (100%)"]
    assert list(edges.values()) == ["1us"]
    assert "Dropped 1 node (cum <= 0.01us)" in text  # 5ns, in the unit of the graph
    assert 'tooltip="m.a ... m.c (1us)" labeltooltip="m.a ... m.c (1us)" style="dotted"]' in text


def test_node_count_drops_pass_through_nodes_first() -> None:
    # b only passes a's calls on to c: it ranks last and goes, a reaches c through it.
    p = Profile([("cpu", "nanoseconds")], [Sample([1000], [LC, LB, LA])])
    text = to_dot(p, node_count=2)
    nodes, edges, _ = parse(text)
    assert nodes == {"N1": "m\\nc\\n1us (100%)", "N2": "m\\na\\n0 of 1us (100%)"}
    assert list(edges) == [("N2", "N1")]
    assert "Showing top 2 nodes out of 3" in text
    assert 'tooltip="m.a ... m.c (1us)" labeltooltip="m.a ... m.c (1us)" style="dotted"]' in text


def test_node_count_keeps_the_top_nodes() -> None:
    text = to_dot(chain_profile(), node_count=2, node_fraction=0, edge_fraction=0)
    nodes, _, _ = parse(text)
    assert len(nodes) == 2
    assert "Showing top 2 nodes out of 4" in text


def test_inlined_calls_are_marked() -> None:
    inl = Location(9, 0, PY, (Line(C, 5), Line(B, 6)))  # c inlined into b
    text = to_dot(Profile([("cpu", "nanoseconds")], [Sample([10], [inl, LA])]))
    b_to_c = next(line for line in text.splitlines() if 'tooltip="m.b -> m.c' in line)
    assert 'label=" 10ns\\n (inline)"' in b_to_c


def test_label_nodelets() -> None:
    p = Profile([("cpu", "nanoseconds")], [
        Sample([30], [LB, LA], {"worker": "w1"}), Sample([10], [LB, LA], {"worker": "w2"})])
    _, _, nodelets = parse(to_dot(p))
    assert sorted(nodelets.values()) == ["worker:w1", "worker:w2"]


def test_shorten_function_name() -> None:
    assert shorten_function_name("github.com/foo/bar/v2.Baz") == "bar.Baz"
    assert shorten_function_name("runtime/pprof.Do") == "pprof.Do"
    assert shorten_function_name("json.encoder.JSONEncoder.encode") == "JSONEncoder.encode"
    assert shorten_function_name("app.util.helper") == "app.util.helper"
    assert shorten_function_name("(anonymous namespace)::ns::Foo::bar") == "Foo::bar"


def test_quotes_and_backslashes_are_escaped() -> None:
    odd = Function(1, 'say "hi"\\now', "odd", "/odd.py", 1)
    p = Profile([("cpu", "nanoseconds")], [
        Sample([5], [Location(1, 0, PY, (Line(odd, 2),))], {"note": 'a "b"'})])
    text = to_dot(p)
    assert 'tooltip="say \\"hi\\"\\\\now (5ns)"' in text
    assert '[label = "note:a \\"b\\""' in text
    assert "<svg" in to_svg(p)  # and Graphviz reads it


def test_empty_profile() -> None:
    text = to_dot(Profile([("cpu", "nanoseconds")], []))
    assert text.splitlines()[0] == 'digraph "unnamed" {'
    assert parse(text) == ({}, {}, {})


# --- Graphviz -------------------------------------------------------------------------

def require_dot() -> None:
    if shutil.which("dot") is None:
        pytest.fail("Graphviz's 'dot' not found in PATH: to_svg renders through it; install "
                    "Graphviz (Debian/Ubuntu: apt-get install graphviz)", pytrace=False)


def test_svg_renders_every_node_and_edge() -> None:
    require_dot()
    p = cprof.load(GO / "heap.prof")
    nodes, edges, nodelets = parse(to_dot(p))
    svg = to_svg(p)
    assert svg.lstrip().startswith("<?xml") and svg.rstrip().endswith("</svg>")
    assert svg.count('class="node"') == len(nodes) + len(nodelets) + 1  # and the legend
    assert svg.count('class="edge"') == len(edges) + len(nodelets)
    assert '<g id="node1" class="node">' in svg and '<g id="NN1_0" class="node">' in svg
    assert "main.allocLarge (640kB)" in svg


def test_missing_graphviz_names_the_package(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(GraphvizError, match=r"apt-get install graphviz"):
        to_svg(chain_profile())


@pytest.mark.parametrize("options", [{"focus": "hotB"}, {"hide": "runtime", "ignore": "hotA"},
                                     {"show_from": "cpuWork"}, {"tagfocus": "worker=a"}],
                         ids=str)
def test_a_filtered_profile_prints_what_go_tool_pprof_prints_with_its_filters(
        options: dict[str, str], utc: None, go_home: Path) -> None:
    # Percentages of the total before the filters, and the filters in the legend.
    path = GO / "cpu.prof"
    flags = [f"-{k}={v}" for k, v in options.items()]
    go = shutil.which("go")
    assert go is not None
    env = {k: v for k, v in os.environ.items() if k != "GOFLAGS"}
    env.update(HOME=str(go_home), PPROF_TMPDIR=str(go_home), PPROF_BINARY_PATH=str(go_home),
               TZ="UTC", GOENV="off", GOTOOLCHAIN="local")
    r = subprocess.run([go, "tool", "pprof", "-dot", "-symbolize=none", *flags, str(path)],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert to_dot(cprof.load(path).filter(**options)) == r.stdout
