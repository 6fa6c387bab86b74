"""jupyter: a profile's rich display in notebooks, and the ``%cprof`` / ``%%cprof`` magics.

:func:`mimebundle` is what ``Profile._repr_mimebundle_`` returns: the top 20
as text, and as HTML a header line, the top 10 as a table and the flame graph
in a sandboxed ``<iframe srcdoc>``, which needs no server or extension and so
works in JupyterLab, Notebook, VS Code and over SSH. :func:`load_ipython_extension`
(``%load_ext cprof``) adds the magics, which profile a statement or a cell in
the user's namespace, as ``%time`` / ``%%time`` time one. IPython is imported
only there: cprof does not depend on it.
"""

from __future__ import annotations

import ast
import html
import os
import re
import threading
from collections.abc import Container
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .collect import MODES, cpu
from .export.flamegraph import html_fragment
from .model import Sample
from .ops import with_samples
from .report_format import percentage
from .tables import KEPT_FRAMES

if TYPE_CHECKING:
    from .profile import Profile
    from .report import TopReport

TEXT_ROWS = 20
HTML_ROWS = 10
# Frames narrower than this share of the total are left out of the inline
# flame graph (the page says how many): 1/10 px at full width in a notebook,
# and it keeps a huge profile's display to a few MB. p.flamegraph(path) keeps more.
MIN_WIDTH_FRACTION = 0.0001

# The iframe's height follows the flame graph's depth (its script draws rows
# of ROW_PX under about HEAD_PX of controls and notes) between these bounds;
# a deeper graph scrolls inside the frame.
ROW_PX = 18
HEAD_PX = 110
MIN_HEIGHT_PX = 220
MAX_HEIGHT_PX = 640

_TABLE_CSS = ("border-collapse:collapse;font:12px ui-monospace,SFMono-Regular,Menlo,monospace;"
              "margin:4px 0")
_CELL_CSS = "padding:1px 8px;text-align:right;border-bottom:1px solid #eee"
_NAME_CSS = "padding:1px 8px;text-align:left;border-bottom:1px solid #eee;white-space:nowrap"


# --- rich display ----------------------------------------------------------------------


def mimebundle(profile: Profile, include: Container[str] | None = None,
               exclude: Container[str] | None = None) -> dict[str, str]:
    """The notebook display of ``profile`` (IPython's ``_repr_mimebundle_``
    protocol): "text/plain", the top 20 as ``str(profile.top(20))`` prints
    it, and "text/html". ``include`` / ``exclude`` name the MIME types wanted
    / not wanted; the HTML, which draws a flame graph, is only made when
    wanted."""

    def wanted(mime: str) -> bool:
        return (include is None or mime in include) and (exclude is None or mime not in exclude)

    bundle: dict[str, str] = {}
    if not (wanted("text/plain") or wanted("text/html")):
        return bundle
    report = profile.top(TEXT_ROWS)
    if wanted("text/plain"):
        bundle["text/plain"] = str(report)
    if wanted("text/html"):
        bundle["text/html"] = html_display(profile, report)
    return bundle


def html_display(profile: Profile, report: TopReport | None = None) -> str:
    """The HTML of a profile's display: a header line, the top 10 as a table
    and the interactive flame graph in an ``<iframe sandbox="allow-scripts"
    srcdoc=...>`` (scripts run, but apart from the notebook's page).
    ``report``, the profile's top of at least 10 rows, saves making it again."""
    if report is None:
        report = profile.top(HTML_ROWS)
    header = " · ".join(label for label in report.profile_labels
                        if not label.startswith(("File:", "Time:")))
    rows = []
    flat_sum = 0
    for r in report.rows[:HTML_ROWS]:
        flat_sum += r.flat
        inline = f" {r.inline}" if r.inline else ""
        rows.append(
            "<tr>"
            f'<td style="{_CELL_CSS}">{html.escape(report.format_value(r.flat))}</td>'
            f'<td style="{_CELL_CSS}">{percentage(r.flat, report.total).strip()}</td>'
            f'<td style="{_CELL_CSS}">{percentage(flat_sum, report.total).strip()}</td>'
            f'<td style="{_CELL_CSS}">{html.escape(report.format_value(r.cum))}</td>'
            f'<td style="{_CELL_CSS}">{percentage(r.cum, report.total).strip()}</td>'
            f'<td style="{_NAME_CSS}">{html.escape(r.name + inline)}</td>'
            "</tr>")
    heads = "".join(f'<th style="{_NAME_CSS if h == "function" else _CELL_CSS}">{h}</th>'
                    for h in ("flat", "flat%", "sum%", "cum", "cum%", "function"))
    table = (f'<table class="cprof-top" style="{_TABLE_CSS}"><thead><tr>{heads}</tr></thead>'
             f'<tbody>{"".join(rows)}</tbody></table>')
    if not rows:
        table = '<p class="cprof-top">No samples.</p>'
    srcdoc = ('<!DOCTYPE html><html><head><meta charset="utf-8">'
              "<style>body{margin:4px;background:#fff}</style></head><body>"
              f"{html_fragment(profile, min_width_fraction=MIN_WIDTH_FRACTION)}</body></html>")
    height = min(MAX_HEIGHT_PX, max(MIN_HEIGHT_PX, HEAD_PX + (_depth(profile) + 1) * ROW_PX))
    return (
        '<div class="cprof-profile">'
        f'<div class="cprof-header" style="font:12px system-ui,sans-serif;color:#444">'
        f"<b>cprof</b> · {html.escape(header)}</div>"
        f"{table}"
        f'<iframe class="cprof-flamegraph" sandbox="allow-scripts" title="flame graph" '
        f'style="width:100%;height:{height}px;border:1px solid #ddd" '
        f'srcdoc="{html.escape(srcdoc, quote=True)}"></iframe>'
        "</div>")


def _depth(profile: Profile) -> int:
    """The deepest stack in frames (inlined lines count as frames, as the
    flame graph draws them)."""
    frames: dict[int, int] = {}
    deepest = 0
    for s in profile.samples:
        d = 0
        for loc in s.locations:
            n = frames.get(id(loc))
            if n is None:
                n = frames[id(loc)] = max(1, len(loc.lines))
            d += n
        deepest = max(deepest, d)
    return deepest


# --- magics ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MagicOptions:
    """The options of ``%cprof`` / ``%%cprof``."""

    hz: float = 100
    mode: str = "cpu"
    var: str | None = None


USAGE = ("%cprof [--hz N] [--mode cpu|wall] [-o VAR] statement, or "
         "%%cprof [--hz N] [--mode cpu|wall] [-o VAR] on a cell's first line")

_TOKEN = re.compile(r"\s*(\S+)")


def parse_options(line: str) -> tuple[MagicOptions, str]:
    """The options at the start of a magic's line and the rest of it (the
    statement of ``%cprof``). Options end at the first word that is not one,
    or after ``--``. A bad option raises ValueError with the usage."""
    hz, mode, var = 100.0, "cpu", None
    pos = 0

    def value(option: str, inline: str | None) -> str:
        nonlocal pos
        if inline is not None:
            return inline
        m = _TOKEN.match(line, pos)
        if m is None:
            raise ValueError(f"{option} needs a value; usage: {USAGE}")
        pos = m.end()
        return m.group(1)

    while (m := _TOKEN.match(line, pos)) is not None:
        word = m.group(1)
        if not word.startswith("-") or word == "-":
            break
        pos = m.end()
        if word == "--":
            break
        option, eq, inline = word.partition("=")
        given = inline if eq else None
        if option == "--hz":
            text = value(option, given)
            try:
                hz = float(text)
            except ValueError:
                hz = 0.0
            if not hz > 0:
                raise ValueError(f"--hz must be a positive number, not {text!r}")
        elif option == "--mode":
            mode = value(option, given)
            if mode not in MODES:
                raise ValueError(f"--mode must be cpu or wall, not {mode!r}")
        elif option == "-o" or (option.startswith("-o") and not option.startswith("--")):
            var = value("-o", given) if option == "-o" else word[2:]
            if not var.isidentifier():
                raise ValueError(f"-o needs a variable name, not {var!r}")
        else:
            raise ValueError(f"unknown option {word!r}; usage: {USAGE}")
    return MagicOptions(hz, mode, var), line[pos:].strip()


def load_ipython_extension(ipython: Any) -> None:
    """Register the ``%cprof`` line magic and the ``%%cprof`` cell magic
    (``%load_ext cprof``):

    ``%cprof [--hz N] [--mode cpu|wall] [-o VAR] statement`` and
    ``%%cprof [--hz N] [--mode cpu|wall] [-o VAR]`` run the statement or the
    cell in the user's namespace (so what the cell defines stays defined)
    under a CPU (or wall) profile at N Hz (100), show the profile, store it
    in VAR when asked, and return the value of the last expression, as
    ``%%time`` does. An exception raised by the code propagates once the
    profile is shown and stored. The profile holds the code's own frames
    (IPython's, above them, are cut off) and the threads it started; the
    threads that were running before, such as the kernel's, are left out."""
    from IPython.core.error import UsageError  # type: ignore[import-not-found, unused-ignore]

    def options(line: str) -> tuple[MagicOptions, str]:
        try:
            return parse_options(line)
        except ValueError as e:
            raise UsageError(str(e)) from None

    def line_magic(line: str, local_ns: dict[str, Any] | None = None) -> Any:
        __tracebackhide__ = True  # IPython leaves the magic's frames out of tracebacks
        opts, statement = options(line)
        if not statement:
            raise UsageError(f"%cprof needs a statement; usage: {USAGE}")
        return run(ipython, opts, statement, local_ns)

    def cell_magic(line: str, cell: str, local_ns: dict[str, Any] | None = None) -> Any:
        __tracebackhide__ = True
        opts, rest = options(line)
        if rest:
            raise UsageError(f"%%cprof takes no statement on its line (found {rest!r}); "
                             f"usage: {USAGE}")
        return run(ipython, opts, cell, local_ns)

    line_magic.needs_local_scope = True  # type: ignore[attr-defined]
    cell_magic.needs_local_scope = True  # type: ignore[attr-defined]
    ipython.register_magic_function(line_magic, "line", "cprof")
    ipython.register_magic_function(cell_magic, "cell", "cprof")


def run(shell: Any, opts: MagicOptions, source: str,
        local_ns: dict[str, Any] | None = None) -> Any:
    """Run ``source`` (IPython syntax) in ``shell``'s user namespace under a
    CPU profile; display the profile, store it in ``opts.var``, and return
    the value of the last expression (None when the code ends otherwise)."""
    __tracebackhide__ = True
    from IPython.display import display  # type: ignore[import-not-found, unused-ignore]
    show: Any = display  # untyped in IPython

    code = shell.transform_cell(source)
    tree = shell.transform_ast(shell.compile.ast_parse(code))
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    filename = shell.compile.cache(code, shell.execution_count, raw_code=source)
    body = shell.compile(tree, filename, "exec")
    value = shell.compile(last, filename, "eval") if last is not None else None
    user_ns = shell.user_ns
    namespace = local_ns if local_ns is not None else user_ns
    before = {t.native_id for t in threading.enumerate()} - {threading.get_native_id()}
    session = cpu(hz=opts.hz, mode=opts.mode)
    result = None
    try:
        with session:
            result = _execute(body, value, user_ns, namespace)
    finally:
        if session.profile is not None:
            profile = code_only(session.profile, before)
            if opts.var:
                user_ns[opts.var] = profile
            show(mimebundle(profile), raw=True)
    return result


def _execute(body: Any, value: Any, globals_: dict[str, Any], locals_: dict[str, Any]) -> Any:
    """Run the code: the frame that :func:`code_only` cuts the stacks at."""
    __tracebackhide__ = True
    exec(body, globals_, locals_)
    return eval(value, globals_, locals_) if value is not None else None


_EXECUTE = (os.path.abspath(_execute.__code__.co_filename), _execute.__code__.co_name)
KEPT_FRAMES.add(_EXECUTE)  # profiles keep this frame of cprof's: code_only cuts there


def code_only(profile: Profile, before: set[int | None]) -> Profile:
    """``profile`` without what the magic did not run. On the magic's
    thread, stacks that pass through :func:`_execute` keep only the frames
    below it and the others (the magic's own work) are dropped. Of the other
    threads, only those that threading started while the code ran are kept:
    the ones in ``before`` (native ids, taken when the code started) and
    threads that threading does not know (the samples have no thread name),
    such as those of the kernel or of C libraries, are left out."""
    current = threading.get_native_id()
    samples = []
    for s in profile.samples:
        labels = s.labels
        thread = labels.get("thread_id")
        cut = _execute_index(s) if thread == current else None
        if cut is not None:
            if cut > 0:  # at 0, _execute itself was running: exec starting the code, the magic's
                samples.append(Sample._raw(s.values, s.locations[:cut], s.label_items))
        elif thread != current and thread not in before and "thread_name" in labels:
            samples.append(s)
    return with_samples(profile, samples)


def _execute_index(s: Sample) -> int | None:
    for i, loc in enumerate(s.locations):
        for ln in loc.lines:
            fn = ln.function
            if fn is not None and (fn.filename, fn.system_name) == _EXECUTE:
                return i
    return None
