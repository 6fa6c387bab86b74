"""cprof.jupyter: a profile's notebook display and the %cprof / %%cprof magics.

The display is checked on profiles built in Python. The magics are driven
through a real IPython InteractiveShell and so run the CPU sampler (real
timer signals): they fail when IPython is not installed.
"""

from __future__ import annotations

import html
import re
import _thread
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

import cprof
from cprof import Profile, ProfileBuilder
from cprof.export.flamegraph.html import html_fragment
from cprof.export.notebook import MAX_HEIGHT_PX, MIN_HEIGHT_PX, MIN_WIDTH_FRACTION, mimebundle
from cprof.jupyter import MagicOptions, parse_options

PERIOD = 10_000_000


def frame(name: str, line: int = 10) -> tuple[str, str, int, int]:
    return (name, "/app/work.py", line - 1, line)


def workload_profile() -> Profile:
    """hot 70ms under run; <lambda> & co 20ms and cold 10ms under main."""
    b = ProfileBuilder([("samples", "count"), ("cpu", "nanoseconds")],
                       period_type=("cpu", "nanoseconds"), period=PERIOD)
    for n, stack in ((7, [frame("pkg.hot"), frame("pkg.run"), frame("pkg.main")]),
                     (2, [frame("pkg.<lambda> & co"), frame("pkg.main")]),
                     (1, [frame("pkg.cold"), frame("pkg.main")])):
        b.add([n, n * PERIOD], stack)
    return b.build(duration_ns=200_000_000, comments=["made by hand"])


def table_rows(page: str) -> list[list[str]]:
    """The cells of the top table's body rows, unescaped."""
    body = re.search(r'<table class="cprof-top".*?<tbody>(.*?)</tbody>', page, re.S)
    assert body is not None
    return [[html.unescape(td) for td in re.findall(r"<td[^>]*>(.*?)</td>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", body.group(1))]


def iframe(page: str) -> tuple[str, str]:
    """The iframe's opening tag and its srcdoc, unescaped."""
    m = re.search(r'<iframe [^>]*srcdoc="([^"]*)"[^>]*>', page)
    assert m is not None
    return m.group(0), html.unescape(m.group(1))


# --- the display ---------------------------------------------------------------------


def test_bundle_holds_the_text_top_20_and_html() -> None:
    p = workload_profile()
    bundle = mimebundle(p)
    assert sorted(bundle) == ["text/html", "text/plain"]
    assert bundle["text/plain"] == str(p.top(20))


def test_include_and_exclude_choose_the_types() -> None:
    p = workload_profile()
    assert list(mimebundle(p, include={"text/plain"})) == ["text/plain"]
    assert list(mimebundle(p, exclude={"text/plain"})) == ["text/html"]
    assert mimebundle(p, include={"text/plain"}, exclude={"text/plain"}) == {}


def test_html_table_lists_the_top_10_hottest_first() -> None:
    page = mimebundle(workload_profile())["text/html"]
    rows = table_rows(page)
    # The columns of `go tool pprof -top`, as the text top prints them.
    assert rows[0] == ["70ms", "70.00%", "70.00%", "70ms", "70.00%", "pkg.hot"]
    assert rows[1] == ["20ms", "20.00%", "90.00%", "20ms", "20.00%", "pkg.<lambda> & co"]
    assert rows[2] == ["10ms", "10.00%", "100%", "10ms", "10.00%", "pkg.cold"]
    assert [r[-1] for r in rows[3:]] == ["pkg.main", "pkg.run"]
    assert "pkg.&lt;lambda&gt; &amp; co" in page  # names are escaped


def test_html_table_stops_at_10_rows() -> None:
    b = ProfileBuilder([("samples", "count")])
    for i in range(15):
        b.add([15 - i], [frame(f"f{i:02d}")])
    rows = table_rows(mimebundle(b.build())["text/html"])
    assert [r[-1] for r in rows] == [f"f{i:02d}" for i in range(10)]


def test_header_line_names_type_and_duration() -> None:
    page = mimebundle(workload_profile())["text/html"]
    header = re.search(r'<div class="cprof-header"[^>]*>(.*?)</div>', page)
    assert header is not None
    text = html.unescape(re.sub(r"<[^>]+>", "", header.group(1)))
    assert text == ("cprof · made by hand · Type: cpu · "
                    "Duration: 200ms, Total samples = 100ms (50.00%)")


def test_flame_graph_is_the_fragment_in_a_sandboxed_srcdoc() -> None:
    p = workload_profile()
    tag, srcdoc = iframe(mimebundle(p)["text/html"])
    assert 'sandbox="allow-scripts"' in tag and "allow-same-origin" not in tag
    assert " src=" not in tag
    assert html_fragment(p, min_width_fraction=MIN_WIDTH_FRACTION) in srcdoc
    assert srcdoc.startswith("<!DOCTYPE html>") and srcdoc.endswith("</html>")
    assert not re.search(r"https?://|//[a-z]", srcdoc)  # nothing fetched from anywhere
    height = int(re.search(r"height:(\d+)px", tag).group(1))  # type: ignore[union-attr]
    assert MIN_HEIGHT_PX <= height <= MAX_HEIGHT_PX


def test_iframe_grows_with_the_depth_of_the_stacks() -> None:
    def height(depth: int) -> int:
        b = ProfileBuilder([("samples", "count")])
        b.add([1], [frame(f"f{i}") for i in range(depth)])
        tag, _ = iframe(mimebundle(b.build())["text/html"])
        return int(re.search(r"height:(\d+)px", tag).group(1))  # type: ignore[union-attr]

    assert height(1) == MIN_HEIGHT_PX
    assert MIN_HEIGHT_PX < height(12) < height(20) < MAX_HEIGHT_PX
    assert height(200) == MAX_HEIGHT_PX


def test_inline_flame_graph_hides_frames_under_a_hundredth_of_a_percent() -> None:
    b = ProfileBuilder([("samples", "count")])
    b.add([20_000], [frame("wide"), frame("main")])
    b.add([1], [frame("narrow"), frame("main")])  # 1/20001 < 0.01%
    _, srcdoc = iframe(mimebundle(b.build())["text/html"])
    assert "1 tiny frame (each narrower than 0.01% of the total" in srcdoc


def test_empty_profile_displays() -> None:
    p = Profile([("samples", "count")])
    bundle = mimebundle(p)
    assert bundle["text/plain"] == str(p.top(20))
    assert "No samples." in bundle["text/html"] and "<iframe" in bundle["text/html"]


# --- option parsing ------------------------------------------------------------------


@pytest.mark.parametrize("line, options, rest", [
    ("work()", MagicOptions(), "work()"),
    ("", MagicOptions(), ""),
    ("--hz 1000 -o prof f(x, y='-o')", MagicOptions(1000, "cpu", "prof"), "f(x, y='-o')"),
    ("--hz=250 --mode=wall", MagicOptions(250, "wall", None), ""),
    ("  -oprof   --mode wall   x = 1", MagicOptions(100, "wall", "prof"), "x = 1"),
    ("-- -x", MagicOptions(), "-x"),
])
def test_parse_options(line: str, options: MagicOptions, rest: str) -> None:
    assert parse_options(line) == (options, rest)


@pytest.mark.parametrize("line, message", [
    ("--hz 0 f()", "--hz must be a positive number, not '0'"),
    ("--hz fast f()", "--hz must be a positive number, not 'fast'"),
    ("--mode heap f()", "--mode must be cpu or wall, not 'heap'"),
    ("-o 1x f()", "-o needs a variable name, not '1x'"),
    ("-o", "-o needs a value"),
    ("--hertz 5 f()", "unknown option '--hertz'"),
])
def test_bad_options_say_what_is_wrong(line: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_options(line)


# --- the magics ----------------------------------------------------------------------

HOT = """
import time

def jupyter_test_hot(seconds):
    start = time.thread_time()
    x = 0
    while time.thread_time() - start < seconds:
        for i in range(1000):
            x += i * i % 7
    return x
"""


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    try:
        import IPython  # noqa: F401
    except ImportError:
        pytest.fail("IPython is missing: pip install ipykernel (it brings IPython)")
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    from cprof.jupyter import load_ipython_extension

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IPYTHONDIR", str(tmp_path_factory.mktemp("ipython")))
        config = Config()
        config.HistoryManager.hist_file = ":memory:"
        InteractiveShell.clear_instance()
        sh: Any = InteractiveShell.instance(config=config)
        load_ipython_extension(sh)
        sh.run_cell(HOT)
        yield sh
        InteractiveShell.clear_instance()


def run(shell: Any, source: str) -> tuple[Any, list[dict[str, Any]]]:
    """Run a cell; return its result and the MIME bundles it displayed."""
    from IPython.utils.capture import capture_output

    with capture_output() as captured:
        result = shell.run_cell(source)
    return result, [o.data for o in captured.outputs]


def names(p: Profile) -> set[str]:
    return {ln.function.name for s in p.samples for loc in s.locations for ln in loc.lines
            if ln.function is not None}


def test_cell_magic_profiles_the_cell_in_the_user_namespace(shell: Any) -> None:
    result, shown = run(shell, "%%cprof --hz 200 -o prof\n"
                               "kept = 41\n"
                               "jupyter_test_hot(0.3)\n"
                               "kept + 1\n")
    assert result.success and result.result == 42  # the last expression's value
    assert shell.user_ns["kept"] == 41
    prof = shell.user_ns["prof"]
    assert isinstance(prof, Profile) and prof.sample_types[1].type == "cpu"
    assert prof.total("cpu") >= 0.2e9
    assert prof.share(r"^jupyter_test_hot$") >= 0.9
    # IPython's frames are cut: every stack starts at the cell.
    roots = {s.locations[-1].lines[0].function for s in prof.samples}
    assert {f.name if f else None for f in roots} == {"<module>"}
    assert not any(n.startswith(("IPython.", "cprof.")) for n in names(prof))
    assert len(shown) == 1 and shown[0] == mimebundle(prof)


def test_line_magic_profiles_a_statement(shell: Any) -> None:
    result, shown = run(shell, "%cprof -o line_prof jupyter_test_hot(0.2)")
    assert result.success and isinstance(result.result, int)
    prof = shell.user_ns["line_prof"]
    assert prof.share(r"^jupyter_test_hot$") >= 0.9
    # The statement is an expression, run by eval: that C function is cut too.
    roots = {s.locations[-1].lines[0].function for s in prof.samples}
    assert {f.name if f else None for f in roots} == {"<module>"}
    assert len(shown) == 1 and "jupyter_test_hot" in shown[0]["text/plain"]


def test_error_propagates_after_the_profile_is_stored_and_shown(shell: Any) -> None:
    result, shown = run(shell, "%%cprof -o failed\n"
                               "before_error = 1\n"
                               "jupyter_test_hot(0.2)\n"
                               "raise ValueError('boom')\n")
    assert isinstance(result.error_in_exec, ValueError)
    assert str(result.error_in_exec) == "boom"
    assert shell.user_ns["before_error"] == 1
    prof = shell.user_ns["failed"]
    assert prof.share(r"^jupyter_test_hot$") >= 0.9
    assert len(shown) == 1 and "<iframe" in shown[0]["text/html"]


def test_wall_mode_keeps_the_cell_and_its_threads_not_earlier_ones(shell: Any) -> None:
    stop = threading.Event()
    earlier = threading.Thread(target=stop.wait, name="earlier")
    earlier.start()
    # A thread threading does not know (as C libraries and earlier tests
    # start them): its samples carry the OS's name for it, yet it is earlier.
    unknown_done = threading.Event()

    def unknown() -> None:
        stop.wait()
        unknown_done.set()

    _thread.start_new_thread(unknown, ())
    try:
        result, _ = run(shell, "%%cprof --mode wall --hz 200 -o wall\n"
                               "import threading, time\n"
                               "started = threading.Thread(target=time.sleep, args=(0.3,),\n"
                               "                           name='started')\n"
                               "started.start()\n"
                               "time.sleep(0.3)\n"
                               "started.join()\n")
    finally:
        stop.set()
        earlier.join()
        unknown_done.wait(5)
    assert result.success
    prof = shell.user_ns["wall"]
    assert prof.sample_types[1].type == "wall"
    threads = {s.labels.get("thread_name") for s in prof.samples}
    assert threads == {"MainThread", "started"}
    for name in threads:
        wall = sum(s.values[1] for s in prof.samples if s.labels.get("thread_name") == name)
        assert 0.2e9 <= wall <= 0.6e9, (name, wall)


def test_bad_usage_is_reported_and_runs_nothing(shell: Any, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    for source in (f"%cprof --hz 0 open({str(marker)!r}, 'w')",
                   f"%%cprof open({str(marker)!r}, 'w')\npass\n",
                   "%cprof --mode cpu"):
        result, shown = run(shell, source)
        assert type(result.error_in_exec).__name__ == "UsageError", source
        assert shown == []
    assert not marker.exists()


def test_a_running_profile_is_not_replaced(shell: Any) -> None:
    with cprof.cpu():
        result, shown = run(shell, "%cprof -o nested jupyter_test_hot(0.01)")
    assert isinstance(result.error_in_exec, RuntimeError)
    assert "already in use" in str(result.error_in_exec)
    assert "nested" not in shell.user_ns and shown == []
