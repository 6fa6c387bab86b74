"""The flame graphs' structure: the HTML page's embedded tree and the static SVG.

What the page does with the data (search, zoom, the chooser) is checked in a
real browser by tests/export/test_flamegraph_browser.py; here the
numbers the page is given must be the profile's own.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

import cprof
from cprof import Function, Line, Location, Mapping, Profile, ProfileBuilder, Sample
from cprof.export.flamegraph.html import call_tree, html, html_fragment, write_html
from cprof.export.flamegraph.svg import svg, write_svg

GO = Path(__file__).resolve().parents[1] / "testdata" / "go"
GO_PROFILES = sorted(p.name for p in GO.glob("*.prof"))
MAIN = ("main", "/app/main.py", 3, 1)
SVG_NS = "{http://www.w3.org/2000/svg}"


def page_data(page: str) -> dict[str, Any]:
    """The JSON the page embeds for its script."""
    m = re.search(r'<script type="application/json" class="cfg-data">(.*?)</script>', page, re.S)
    assert m, "no data block in the page"
    data: dict[str, Any] = json.loads(m.group(1))
    return data


def page_value(data: dict[str, Any], t: int, node: int) -> int:
    """A node's value (positive minus negative part) as the page holds it."""
    neg = data["neg"][t][node] if data["neg"] else 0
    return int((data["pos"][t][node] - neg) * data["types"][t]["divisor"])


def cpu_builder() -> ProfileBuilder:
    return ProfileBuilder([("samples", "count"), ("cpu", "nanoseconds")],
                          period_type=("cpu", "nanoseconds"), period=10_000_000)


def add(b: ProfileBuilder, n: int, stack: list[tuple[str, str, int, int]],
        labels: dict[str, str] | None = None, sign: int = 1) -> None:
    b.add([sign * n, sign * n * 10_000_000], stack, labels)


def frame(name: str, line: int = 10) -> tuple[str, str, int, int]:
    return (name, "/app/work.py", line, line - 1)


# --- the page's tree ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", GO_PROFILES)
def test_root_holds_the_total_of_every_sample_type(name: str) -> None:
    p = cprof.load(GO / name)
    data = page_data(html(p))
    assert [t["type"] for t in data["types"]] == [t.type for t in p.sample_types]
    for t in range(len(p.sample_types)):
        assert page_value(data, t, 0) == p.total(t), p.sample_types[t]


def test_tree_merges_stacks_by_function_root_first() -> None:
    b = cpu_builder()
    add(b, 6, [frame("parse", 12), frame("run", 30), MAIN])
    add(b, 3, [frame("parse", 14), frame("run", 31), MAIN])
    add(b, 1, [frame("run", 33), MAIN])
    tree = call_tree(b.build())
    names = [tree.funcs[f][0] for f in tree.func]
    assert names == ["root", "main", "run", "parse"]
    assert tree.depth == [0, 1, 2, 3]
    assert [tree.value(1, i) // 10_000_000 for i in range(4)] == [10, 10, 10, 9]
    assert [s // 10_000_000 for s in tree.flat[1]] == [0, 0, 1, 9]
    # A line is kept only when every sample through the frame agrees on it.
    assert tree.line == [0, 3, 0, 0]


def test_siblings_are_in_name_order_with_their_own_subtrees() -> None:
    b = cpu_builder()
    add(b, 1, [frame("zeta"), MAIN])
    add(b, 5, [frame("leaf"), frame("alpha"), MAIN])
    add(b, 2, [frame("mid"), MAIN])
    tree = call_tree(b.build())
    rows = [(tree.depth[i], tree.funcs[tree.func[i]][0], tree.value(0, i))
            for i in range(len(tree.func))]
    assert rows == [(0, "root", 8), (1, "main", 8), (2, "alpha", 5), (3, "leaf", 5),
                    (2, "mid", 2), (2, "zeta", 1)]


def test_inlined_lines_become_frames_of_their_own() -> None:
    fns = [Function(i + 1, n, n, "/app/x.py", 1) for i, n in enumerate(("main", "outer", "inl"))]
    mapping = Mapping(1, filename="python", has_functions=True)
    # The last line of a location is the caller, the first the innermost inlined call.
    leaf = Location(1, 0, mapping, (Line(fns[2], 7), Line(fns[1], 3)))
    root = Location(2, 0, mapping, (Line(fns[0], 1),))
    p = Profile([("samples", "count")], [Sample([4], [leaf, root])])
    tree = call_tree(p)
    assert [tree.funcs[f][0] for f in tree.func] == ["root", "main", "outer", "inl"]
    assert tree.line == [0, 1, 3, 7]


def test_tiny_frames_are_pruned_and_counted_in_the_note() -> None:
    b = cpu_builder()
    add(b, 1000, [frame("hot"), MAIN])
    for i in range(40):  # 40 frames of 1 sample each, each calling one more
        add(b, 1, [frame(f"tiny_leaf{i}"), frame(f"tiny{i}"), MAIN])
    p = b.build()
    page = html(p, min_width_fraction=0.005)
    data = page_data(page)
    assert data["hidden"] == 40
    assert "40 tiny frames (each narrower than 0.5% of the total, with all they call) hidden" \
        in page
    names = [data["names"][f] for f in data["func"]]
    assert names == ["root", "main", "hot"]
    assert page_value(data, 1, 0) == p.total("cpu")
    # The hidden frames stay searchable: their function sets and values are embedded.
    hidden = {}
    n = len(data["types"])
    for node, s, *sums in data["residue"]:
        assert names[node] == "main"
        key = frozenset(data["names"][f] for f in data["sets"][s])
        hidden[key] = sums[0] * data["types"][0]["divisor"]
        assert sums[n:] == [0] * n
    assert hidden == {frozenset({f"tiny{i}", f"tiny_leaf{i}"}): 1 for i in range(40)}
    assert data["hiddenWidth"][0] * data["types"][0]["divisor"] == 40
    # Nothing pruned, no note.
    assert data_hidden(html(p, min_width_fraction=0)) == 0
    assert "tiny frame" not in html(p, min_width_fraction=0)


def data_hidden(page: str) -> int:
    return int(page_data(page)["hidden"])


def test_residue_over_budget_is_reported_as_unsearched() -> None:
    b = cpu_builder()
    add(b, 1000, [frame("hot"), MAIN])
    for i in range(10):
        add(b, 1, [frame(f"tiny{i}"), MAIN])
    tree = call_tree(b.build(), min_width_fraction=0.005, residue_budget=4)
    assert len(tree.residue) == 4
    assert tree.unsearched == [6, 60_000_000]
    assert tree.hidden_width(0) == 10


def test_diff_profile_widths_are_new_plus_base_and_values_the_change() -> None:
    b = cpu_builder()
    add(b, 60, [frame("parse"), MAIN])
    add(b, 20, [frame("render"), MAIN])
    add(b, 30, [frame("parse"), MAIN], {"pprof::base": "true"}, sign=-1)
    add(b, 40, [frame("render"), MAIN], {"pprof::base": "true"}, sign=-1)
    # A base sample is a base sample whatever the sign of its values.
    add(b, 5, [frame("render"), MAIN], {"pprof::base": "true"})
    p = b.build()
    data = page_data(html(p))
    assert data["diff"] is True
    names = [data["names"][f] for f in data["func"]]
    parse, render = names.index("parse"), names.index("render")
    d = data["types"][0]["divisor"]
    assert (data["pos"][0][parse] * d, data["neg"][0][parse] * d) == (60, 30)
    assert (data["pos"][0][render] * d, data["neg"][0][render] * d) == (20, 45)
    assert page_value(data, 0, 0) == 80 - 75
    assert page_value(data, 1, 0) == p.total("cpu") - 2 * 5 * 10_000_000
    assert '<p class="cfg-legend" hidden>' in html(p)  # the script shows it for a diff


def test_an_empty_profile_still_makes_a_page_and_an_svg() -> None:
    p = Profile([("samples", "count")])
    data = page_data(html(p))
    assert data["func"] == [0] and data["pos"] == [[0]] and data["hidden"] == 0
    assert ET.fromstring(svg(p)).tag == f"{SVG_NS}svg"


def test_plain_profile_is_not_a_diff() -> None:
    b = cpu_builder()
    add(b, 3, [frame("f"), MAIN])
    data = page_data(html(b.build()))
    assert data["diff"] is False and data["neg"] is None


def test_sample_type_chooser_starts_on_the_requested_type() -> None:
    p = cprof.load(GO / "heap.prof")
    assert page_data(html(p))["initial"] == p.sample_index(None)
    assert page_data(html(p, sample_type="alloc_objects"))["initial"] == 0
    assert page_data(html(p, sample_type=1))["initial"] == 1
    with pytest.raises(ValueError):
        html(p, sample_type="nope")


def test_units_are_embedded_for_the_page_to_scale() -> None:
    p = Profile([("samples", "count"), ("wall", "microseconds"), ("alloc", "kilobytes")])
    types = page_data(html(p))["types"]
    assert [(t["family"], t["factor"]) for t in types] == [
        ("", 1.0), ("time", 1000.0), ("bytes", 1024.0)]


def test_values_are_embedded_divided_by_their_common_divisor() -> None:
    b = cpu_builder()
    add(b, 3, [frame("f"), MAIN])
    add(b, 1, [frame("g"), MAIN])
    data = page_data(html(b.build()))
    assert data["types"][1]["divisor"] == 10_000_000
    assert data["pos"][1] == [4, 4, 3, 1]


# --- the page is self-contained and safe -------------------------------------------------------


NETWORK = [
    (r"https?://", "an http(s) URL"),
    (r"<script[^>]*\bsrc\s*=", "an external script"),
    (r"<link\b", "a <link>"),
    (r"url\(", "a CSS url()"),
    (r"@import", "a CSS @import"),
    (r"<(img|iframe|object|embed)\b", "an embedded resource"),
    (r"""["'(]//[a-z0-9]""", "a protocol-relative URL"),
]


@pytest.mark.parametrize("name", ["cpu.prof", "heap.prof"])
def test_page_fetches_nothing(name: str) -> None:
    page = html(cprof.load(GO / name))
    for pattern, what in NETWORK:
        assert not re.search(pattern, page, re.I), f"the page holds {what}"
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<script") == 2  # the data block and the inline script


def test_names_and_title_cannot_break_out_of_the_page() -> None:
    b = cpu_builder()
    evil = "</script><script>alert(1)</script><!--"
    add(b, 2, [frame(evil), MAIN])
    page = html(b.build(), title="<b>A & B</b>")
    assert "alert(1)</script>" not in page and "<!--" not in page
    assert "<title>&lt;b&gt;A &amp; B&lt;/b&gt;</title>" in page
    assert evil in page_data(page)["names"]


def test_fragment_is_the_page_body() -> None:
    b = cpu_builder()
    add(b, 2, [frame("f"), MAIN])
    p = b.build()
    fragment = html_fragment(p, title="t")
    assert "<html" not in fragment and "<body" not in fragment
    assert fragment.startswith("<style>") and fragment.rstrip().endswith("</script>")
    assert fragment in html(p, title="t")


def test_write_html(tmp_path: Path) -> None:
    p = cprof.load(GO / "cpu.prof")
    write_html(p, tmp_path / "fg.html", title="cpu")
    assert (tmp_path / "fg.html").read_text(encoding="utf-8") == html(p, title="cpu")


# --- SVG ---------------------------------------------------------------------------------------


def frames_of(doc: str) -> dict[str, tuple[float, float, float]]:
    """Each frame's name (from its tooltip) -> rect x, y and width."""
    root = ET.fromstring(doc)
    out = {}
    for g in root.iter(f"{SVG_NS}g"):
        title = g.find(f"{SVG_NS}title")
        rect = g.find(f"{SVG_NS}rect")
        assert title is not None and title.text and rect is not None
        name = title.text.split(" (")[0]
        out[name] = (float(rect.get("x", 0)), float(rect.get("y", 0)), float(rect.get("width", 0)))
    return out


def test_svg_rect_widths_are_proportional_to_values() -> None:
    b = cpu_builder()
    add(b, 75, [frame("a"), MAIN])
    add(b, 20, [frame("b"), MAIN])
    add(b, 5, [frame("c"), MAIN])
    doc = svg(b.build(), width=1020)
    frames = frames_of(doc)
    assert frames["root"][2] == pytest.approx(1000)
    assert frames["main"][2] == pytest.approx(1000)
    assert frames["a"][2] == pytest.approx(750, abs=0.01)
    assert frames["b"][2] == pytest.approx(200, abs=0.01)
    assert frames["c"][2] == pytest.approx(50, abs=0.01)
    # Children side by side from their parent's left edge, in name order.
    assert frames["a"][0] == frames["main"][0]
    assert frames["b"][0] == pytest.approx(frames["a"][0] + 750, abs=0.01)
    # A flame graph stands on its root; inverted, it hangs from it.
    assert frames["root"][1] > frames["main"][1] > frames["a"][1]
    inverted = frames_of(svg(b.build(), width=1020, inverted=True))
    assert inverted["root"][1] < inverted["main"][1] < inverted["a"][1]


def test_svg_tooltips_labels_and_determinism() -> None:
    b = cpu_builder()
    long = "pkg.module.SomeClass.a_rather_long_method_name_that_cannot_fit"
    add(b, 90, [frame("wide"), MAIN])
    add(b, 10, [frame(long), MAIN])
    p = b.build()
    doc = svg(p, width=1200)
    assert doc == svg(p, width=1200)
    root = ET.fromstring(doc)
    titles = [t.text or "" for t in root.iter(f"{SVG_NS}title")]
    assert "wide (900ms, 90.00%)\n/app/work.py:10" in titles
    assert f"{long} (100ms, 10.00%)\n/app/work.py:10" in titles
    texts = [t.text or "" for t in root.iter(f"{SVG_NS}text")]
    cut = [t for t in texts if t.startswith("pkg.mod")]
    assert cut and cut[0].endswith("..") and len(cut[0]) < len(long)
    assert "Total 1s cpu" in texts


@pytest.mark.parametrize("name", GO_PROFILES)
def test_svg_of_go_profiles_is_well_formed(name: str) -> None:
    p = cprof.load(GO / name)
    root = ET.fromstring(svg(p))
    assert root.tag == f"{SVG_NS}svg"
    rects = [r for r in root.iter(f"{SVG_NS}rect")]
    assert len(rects) >= 2  # the background and the root at least


def test_svg_colours_diff_frames_red_and_blue() -> None:
    b = cpu_builder()
    add(b, 60, [frame("grew"), MAIN])
    add(b, 10, [frame("shrank"), MAIN])
    add(b, 10, [frame("grew"), MAIN], {"pprof::base": "true"}, sign=-1)
    add(b, 60, [frame("shrank"), MAIN], {"pprof::base": "true"}, sign=-1)
    root = ET.fromstring(svg(b.build()))
    fills = {}
    for g in root.iter(f"{SVG_NS}g"):
        title, rect = g.find(f"{SVG_NS}title"), g.find(f"{SVG_NS}rect")
        assert title is not None and title.text and rect is not None
        r, gr, bl = map(int, re.findall(r"\d+", rect.get("fill", "")))
        fills[title.text.split(" (")[0]] = (r, gr, bl)
    assert fills["grew"][0] > fills["grew"][2] + 100
    assert fills["shrank"][2] > fills["shrank"][0] + 100


def test_svg_says_how_many_frames_it_left_out(tmp_path: Path) -> None:
    b = cpu_builder()
    add(b, 100_000, [frame("hot"), MAIN])
    for i in range(3):
        add(b, 1, [frame(f"tiny{i}"), MAIN])
    p = b.build()
    assert "3 frames narrower than 0.1 px left out" in svg(p)
    write_svg(p, tmp_path / "fg.svg")
    assert (tmp_path / "fg.svg").read_text(encoding="utf-8") == svg(p)
