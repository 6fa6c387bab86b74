"""notebook: a profile's rich display in notebooks (what ``Profile._repr_mimebundle_`` returns).

:func:`mimebundle` gives the top 20 as text, and as HTML a header line, the
top 10 as a table and the flame graph in a sandboxed ``<iframe srcdoc>``,
which needs no server or extension and so works in JupyterLab, Notebook, VS
Code and over SSH. The ``%cprof`` magics are cprof.jupyter's.
"""

from __future__ import annotations

import html
from collections.abc import Container

from ..report.text import percentage
from ..report.top import TopReport
from .flamegraph.html import html_fragment

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from ..pprof.profile import Profile

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
