"""The HTML flame graph used as a person would: in headless Chromium, through Playwright.

A real CPU profile of a small workload is opened from disk with every network
request refused and recorded; the test types a search, hovers, clicks a frame,
resets, flips to an icicle graph and switches sample types, checking what the
page shows against cprof's own numbers, and keeps a screenshot. It needs
Debian's ``chromium`` package and ``pip install playwright`` (Playwright drives
the system browser; it downloads none), and fails, naming what is missing,
without them. Set CPROF_UPDATE_SCREENSHOT=1 to copy the screenshot to
docs/images/flamegraph.png.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

import cprof
from cprof import Profile, ProfileBuilder
from cprof.export.flamegraph.html import write_html
from cprof.pprof.units import scaled_label

CHROMIUM = "/usr/bin/chromium"
DOCS_IMAGE = Path(__file__).resolve().parents[2] / "docs" / "images" / "flamegraph.png"

# --- a workload with a known hot function -------------------------------------------------------

TEXT = "The quick brown fox jumps over the lazy dog, 1234567890 times! " * 40
BLOB = bytes(range(256)) * 8


def tokenize(text: str) -> int:
    words = 0
    for ch in text:
        if ch.isalpha():
            words += 1
    return words


def checksum(data: bytes) -> int:
    h = 0
    for b in data:
        h = (h * 31 + b) & 0xFFFFFFFF
    return h


def parse(text: str) -> int:
    return tokenize(text) + checksum(BLOB[:512])


def lookup(key: bytes) -> int:
    return checksum(key + BLOB)


def format_row(i: int) -> str:
    return f"{i:>8}|{i * i:>12}|{i % 7}"


def render(n: int) -> str:
    return "\n".join(format_row(i) for i in range(n))


def handle_request() -> None:
    parse(TEXT)
    parse(TEXT[::-1])
    lookup(b"user:42")
    render(300)


def serve(cpu_seconds: float) -> None:
    start = time.thread_time()
    while time.thread_time() - start < cpu_seconds:
        handle_request()


def share(p: Profile, pattern: str, sample_type: str) -> float:
    """cprof's share of the samples with a frame whose function name or file
    matches ``pattern`` (each sample counted once), of the sum of absolute
    values of ``sample_type``."""
    index = p.sample_index(sample_type)
    regex = re.compile(pattern)
    total = matched = 0
    for s in p.samples:
        v = abs(s.values[index])
        total += v
        if any(regex.search(ln.function.name) or regex.search(ln.function.filename)
               for loc in s.locations for ln in loc.lines if ln.function is not None):
            matched += v
    return matched / total


# --- the browser --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Python package playwright is missing: pip install playwright "
                    "(it drives the system chromium; no browser download is needed)")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package "
                    "(apt-get install -y chromium)")
    # The ASan run preloads the sanitizer runtime into every process it
    # starts; the browser and Playwright's driver must not get it.
    sanitizer_vars = ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS", "PYTHONMALLOC")
    saved = {k: os.environ.pop(k) for k in sanitizer_vars if k in os.environ}
    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=CHROMIUM)
            yield b
            b.close()
    finally:
        os.environ.update(saved)


class Page:
    """A page opened from a file with all network access refused and recorded,
    and the console errors it printed."""

    def __init__(self, browser: Any, path: Path, init_script: str | None = None) -> None:
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 720})
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.route("**/*", self._route)
        if init_script:  # runs in the page before any of its own scripts
            self.page.add_init_script(init_script)
        self.page.goto(path.as_uri())
        self.page.wait_for_selector(".cfg-f")

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def _route(self, route: Any) -> None:
        url = route.request.url
        if url.startswith("file://"):
            route.continue_()
        else:
            self.requests.append(url)
            route.abort()

    def frame(self, name_end: str) -> Any:
        """The first drawn frame whose function name ends with name_end."""
        return self.page.locator(".cfg-f").filter(
            has_text=re.compile(re.escape(name_end) + "$")).first

    def box(self, node: str) -> Any:
        return self.page.locator(f'.cfg-f[data-i="{node}"]').first.bounding_box()

    def chart_width(self) -> float:
        return float(self.page.locator(".cfg-chart").bounding_box()["width"])

    def matched_share(self) -> float:
        return float(self.page.locator(".cfg-matched").get_attribute("data-share") or "nan")

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="module")
def cpu_profile() -> Profile:
    with cprof.cpu(hz=1000) as c:
        worker = threading.Thread(target=serve, args=(1.5,), name="worker")
        worker.start()
        worker.join()
    p = c.profile
    assert p is not None
    assert p.total("samples") >= 100, "the CPU profiler took too few samples to judge the page"
    return p


def test_search_zoom_reset_chooser_on_a_cpu_profile(
        browser: Any, cpu_profile: Profile, tmp_path: Path) -> None:
    p = cpu_profile
    path = tmp_path / "cpu.html"
    write_html(p, path, title="cprof: CPU profile of a request handler")
    ui = Page(browser, path)
    page = ui.page
    try:
        # The page opens on the default sample type with cprof's total.
        cpu_total = scaled_label(p.total("cpu"), "nanoseconds", "auto")
        assert page.inner_text(".cfg-total") == f"Total: {cpu_total} cpu"
        assert page.locator(".cfg-f.cfg-match").count() == 0

        # Search: the hot function's frames light up, with its share of the total.
        page.fill(".cfg-search", "tokenize")
        hits = page.locator(".cfg-f.cfg-match")
        assert hits.count() >= 1
        assert all(t.endswith("tokenize") for t in hits.all_inner_texts())
        expected = share(p, "tokenize", "cpu")
        # A real share to compare (its size varies with the build: ASan slows parts unevenly).
        assert expected > 0.05, "tokenize should be a hot function"
        assert abs(ui.matched_share() - expected) * 100 < 0.5
        shown = re.search(r"Matched: ([\d.]+)%", page.inner_text(".cfg-matched"))
        assert shown and abs(float(shown.group(1)) - expected * 100) < 0.5
        # A regular expression matching two functions counts each sample once.
        page.fill(".cfg-search", "tokenize|parse$")
        assert abs(ui.matched_share() - share(p, "tokenize|parse$", "cpu")) < 1e-9

        # Hover: the details of a frame.
        frame = ui.frame("lookup")
        frame.hover()
        tip = page.inner_text(".cfg-tip")
        assert page.locator(".cfg-tip").is_visible()
        assert "lookup" in tip and "test_flamegraph_browser.py:" in tip
        assert re.search(r"[\d.]+% of total, [\d.]+% of parent", tip)

        # Click: the frame is zoomed to the full width, its path in the breadcrumb.
        node = frame.get_attribute("data-i")
        before = ui.box(node)
        assert before["width"] < ui.chart_width() - 50
        frame.click()
        after = ui.box(node)
        assert abs(after["width"] - ui.chart_width()) <= 1
        assert abs(after["x"] - page.locator(".cfg-chart").bounding_box()["x"]) <= 1
        assert page.inner_text(".cfg-crumbs").endswith("lookup")

        # Reset: the whole profile again, no search.
        page.click(".cfg-reset")
        assert abs(ui.box(node)["width"] - before["width"]) <= 1
        assert page.inner_text(".cfg-crumbs") == ""
        assert page.input_value(".cfg-search") == ""
        assert page.locator(".cfg-f.cfg-match").count() == 0

        # Flame (root at the bottom) and icicle (root at the top).
        flame_root = ui.box("0")
        page.click(".cfg-orient")
        icicle_root = ui.box("0")
        assert icicle_root["y"] < flame_root["y"]
        assert page.inner_text(".cfg-orient") == "View: icicle"
        page.click(".cfg-orient")

        # The chooser switches every number to the other sample type.
        page.select_option(".cfg-type", label="samples (count)")
        assert page.inner_text(".cfg-total") == f"Total: {p.total('samples')} samples"
        page.fill(".cfg-search", "tokenize")
        assert abs(ui.matched_share() - share(p, "tokenize", "samples")) * 100 < 0.5
        page.select_option(".cfg-type", label="cpu (nanoseconds)")
        assert page.inner_text(".cfg-total") == f"Total: {cpu_total} cpu"

        ui.frame("parse").hover()
        shot = tmp_path / "flamegraph.png"
        page.locator(".cprof-flame").screenshot(path=str(shot))
        assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 10_000
        if os.environ.get("CPROF_UPDATE_SCREENSHOT"):
            DOCS_IMAGE.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shot, DOCS_IMAGE)

        assert ui.errors == []
        assert ui.requests == []
    finally:
        ui.close()


def test_pruned_frames_are_announced_and_still_searched(browser: Any, tmp_path: Path) -> None:
    b = ProfileBuilder([("samples", "count"), ("alloc_space", "bytes")])
    main = ("main", "/app/main.py", 3, 1)
    b.add([5000, 5000 << 20], [("hot", "/app/hot.py", 10, 9), main])
    # 300 stacks of one sample, each under a frame of its own; one in three
    # reaches "needle" (twice in some stacks: still one sample each).
    for i in range(300):
        stack = [(f"leaf{i}", "/app/leaf.py", i + 1, i), ("mid", "/app/mid.py", 5, 4),
                 (f"spread{i}", "/app/spread.py", i + 1, i), main]
        if i % 3 == 0:
            stack[1:1] = [("needle", "/app/n.py", 7, 6)] * (1 + i % 2)
        b.add([1, 1 << 20], stack)
    p = b.build()
    path = tmp_path / "pruned.html"
    write_html(p, path, min_width_fraction=0.001)
    ui = Page(browser, path)
    page = ui.page
    try:
        note = page.locator(".cfg-note")
        assert note.is_visible()
        assert note.inner_text().startswith("300 tiny frames (each narrower than 0.1% of the "
                                            "total, with all they call) hidden")
        assert "Hidden: 5.66% of the total alloc_space." in note.inner_text()
        page.fill(".cfg-search", "needle")
        assert page.locator(".cfg-f.cfg-match").count() == 0  # none is drawn...
        assert ui.matched_share() == pytest.approx(share(p, "needle", "alloc_space"), abs=1e-12)
        assert page.inner_text(".cfg-matched").startswith("Matched: 1.89% of total (100MB)")
        assert ui.errors == [] and ui.requests == []
    finally:
        ui.close()
