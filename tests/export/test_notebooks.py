"""The notebooks in notebooks/, executed as a user would run them: a real
ipykernel of this Python, started by nbclient in a temporary directory.

The kernel imports the same cprof as the tests (its directory is put first on
PYTHONPATH), so a checkout with the extension built in place and an installed
cprof both work. Each test checks that no cell failed and that the outputs a
reader looks at are there with the numbers that matter.
"""

from __future__ import annotations

import html
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

import cprof

try:  # .ci/venv.sh installs them: their absence is a failure, not a skip
    import ipykernel  # noqa: F401
    import nbclient
    import nbformat
except ImportError as missing:
    raise ImportError(f"{missing}: pip install nbclient nbformat ipykernel") from None
from ipykernel.kernelspec import write_kernel_spec  # noqa: E402
from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402
from jupyter_client.manager import KernelManager  # noqa: E402

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
CELL_TIMEOUT = 120


def run_notebook(name: str, tmp_path: Path) -> Any:
    """Execute notebooks/<name> with a "python3" kernel of this interpreter,
    its working directory a temporary one; return the executed notebook."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    # The "python3" kernel of the running Python, whatever other kernels the
    # machine has installed under that name.
    kernels = tmp_path / "kernels"
    write_kernel_spec(str(kernels / "python3"))
    km = KernelManager(kernel_name="python3",
                       kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))
    package_dir = str(Path(cprof.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (package_dir, os.environ.get("PYTHONPATH")) if p)
    env["IPYTHONDIR"] = str(tmp_path / "ipython")  # no user profile or startup file
    work = tmp_path / "work"
    work.mkdir()
    client = nbclient.NotebookClient(nb, km=km, timeout=CELL_TIMEOUT, startup_timeout=60,
                                     resources={"metadata": {"path": str(work)}})
    client.execute(env=env)
    assert km.kernel_spec is not None and km.kernel_spec.argv[0] == sys.executable
    errors = [(c.source, o) for c in nb.cells if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    assert not errors
    return nb


def cell(nb: Any, first_line: str) -> Any:
    """The one code cell whose first line is ``first_line``."""
    found = [c for c in nb.cells
             if c.cell_type == "code" and c.source.split("\n", 1)[0] == first_line]
    assert len(found) == 1, f"{len(found)} cells start with {first_line!r}"
    return found[0]


def stdout(c: Any) -> str:
    return "".join(o.text for o in c.outputs if o.output_type == "stream" and o.name == "stdout")


def rich(c: Any) -> list[dict[str, str]]:
    """The MIME bundles a cell displayed or returned."""
    return [o.data for o in c.outputs if o.output_type in ("display_data", "execute_result")]


def flame_graph(c: Any) -> str:
    """The unescaped srcdoc of the one profile display of a cell, after
    checking that display's shape: text top, HTML table and sandboxed iframe."""
    shown = [d for d in rich(c) if "<iframe" in d.get("text/html", "")]
    assert len(shown) == 1
    page = shown[0]["text/html"]
    assert "flat%" in shown[0]["text/plain"]
    assert '<table class="cprof-top"' in page
    m = re.search(r'<iframe[^>]* sandbox="allow-scripts"[^>]* srcdoc="([^"]*)"', page)
    assert m is not None
    return html.unescape(m.group(1))


def flame_data(page: str) -> dict[str, Any]:
    """The data a flame graph page draws (frame names, diff flag ...)."""
    m = re.search(r'<script type="application/json" class="cfg-data">(.*?)</script>', page, re.S)
    assert m is not None
    data: dict[str, Any] = json.loads(m.group(1))
    return data


def percentages(text: str, pattern: str) -> list[float]:
    m = re.search(pattern, text)
    assert m is not None, f"{pattern!r} not in {text!r}"
    return [float(g) for g in m.groups()]


def top_row(text: str, name: str) -> list[str]:
    """The columns of the row of function ``name`` in a printed top."""
    rows = [line.split() for line in text.splitlines() if line.split()[-1:] == [name]]
    assert len(rows) == 1, f"no single row for {name} in:\n{text}"
    return rows[0]


def test_profile_a_workload(tmp_path: Path) -> None:
    nb = run_notebook("profile_a_workload.ipynb", tmp_path)

    magic = cell(nb, "%%cprof --hz 500 -o prof")
    page = flame_graph(magic)
    assert "http://" not in page and "https://" not in page
    # The magic cut IPython's frames: the stacks start at the cell.
    names = flame_data(page)["names"]
    # The cell's own frame: "<module>", qualified by the cell's file stem.
    assert "count_words" in names and any(n.endswith(".<module>") for n in names)
    assert not [n for n in names if n.startswith(("ipykernel", "IPython", "tornado", "asyncio"))]
    top = rich(magic)[0]["text/plain"]
    # The hottest function: the C method re.findall calls (25-30% flat).
    assert "flat%" in top and "re.Pattern.findall" in top

    # The cell's variables and the profile stayed in the namespace.
    kept = stdout(cell(nb, "print(counts.most_common(3))"))
    assert kept.startswith("[('") and "<cprof.Profile" in kept

    printed = stdout(cell(nb, "with cprof.cpu(hz=500) as c:"))
    assert printed.splitlines()[0].startswith("File:") and "re.Pattern.findall" in printed
    assert "flat  flat%   sum%        cum   cum%" in printed

    shown = cell(nb, 'p = p.filter(show_from=r"^workload$")')
    page = flame_graph(shown)
    # show_from cut the kernel's frames: every stack starts at workload.
    assert not [n for n in flame_data(page)["names"] if n.endswith("<module>")]
    # Its top takes percentages of the total before the filter, as pprof's
    # does, and says which filter it shows.
    shown_top = rich(shown)[0]["text/plain"]
    assert "show_from=^workload$" in shown_top.split("Showing nodes")[0]
    # (workload, all cum and no flat, may sort past the 20 rows shown, now
    # that the C functions it calls are rows of their own: what it accounts
    # for is what the shown nodes do.)
    (shown_share,) = percentages(shown_top, r"Showing nodes accounting for [^,]+, ([\d.]+)% of")
    assert 90 < shown_share <= 100

    focus = stdout(cell(nb, 'focused = p.filter(focus=r"^count_words$")'))
    (count_share,) = percentages(focus, r"count_words: (\d+)% of the CPU time")
    (trip_share,) = percentages(focus, r"round_trip:  (\d+)% of the CPU time")
    assert 20 <= count_share <= 95 and 1 <= trip_share <= 60
    # Sorted by cum, count_words comes first: every kept sample is under it;
    # its cum% is of the whole profile's total, as pprof's -focus prints it.
    assert abs(float(top_row(focus, "count_words")[-2].rstrip("%")) - count_share) <= 1
    assert focus.split("cum%\n", 1)[1].splitlines()[0].split()[-1] == "count_words"

    files = stdout(cell(nb, 'tmp = tempfile.TemporaryDirectory(prefix="cprof-")'))
    listed = [line.split()[0] for line in files.splitlines()[:4]]
    assert listed == ["cpu.folded", "cpu.html", "cpu.prof", "cpu.speedscope.json"]
    hottest = files.splitlines()[4]
    assert hottest.startswith("workload;") and re.fullmatch(r".* \d+", hottest)

    frame = rich(cell(nb, 'df = p.to_dataframe(level="function")'))[0]
    assert "<table" in frame["text/html"]
    rows = frame["text/plain"].splitlines()
    assert rows[0].split()[:3] == ["function", "samples_flat", "samples_cum"]
    assert rows[1].split()[1] == "workload" and "count_words" in frame["text/plain"]


def test_compare_runs(tmp_path: Path) -> None:
    nb = run_notebook("compare_runs.ipynb", tmp_path)

    before_page = flame_graph(cell(nb, "%%cprof --hz 1000 -o before"))
    after_page = flame_graph(cell(nb, "%%cprof --hz 1000 -o after"))
    before_data, after_data = flame_data(before_page), flame_data(after_page)
    assert not before_data["diff"] and not after_data["diff"]
    assert "dedupe" in before_data["names"] and "summarize" in after_data["names"]

    top = stdout(cell(nb, 'tmp = tempfile.TemporaryDirectory(prefix="cprof-")'))
    flat = top_row(top, "dedupe")[0]
    assert flat.startswith("-"), f"dedupe did not shrink:\n{top}"

    data = flame_data(flame_graph(cell(nb, "d")))
    assert data["diff"] and "dedupe" in data["names"]

    shares = stdout(cell(nb, 'share_before = base.share(r"^dedupe$")'))
    before, after = percentages(shares, r"dedupe share: before ([\d.]+)%, after ([\d.]+)%")
    assert before >= 45 and after <= before / 2, shares
    cpu_before, cpu_after = percentages(shares, r"CPU time: before ([\d.]+)s, after ([\d.]+)s")
    assert cpu_after < cpu_before / 2, shares
