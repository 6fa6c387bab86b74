"""Static SVG flame graph in the manner of flamegraph.pl: one rect per frame, <title> tooltips.

The frames are those of :func:`cprof.export.flamegraph.call_tree` for one
sample type, children in name order; frames narrower than ``min_width``
pixels are left out (the graph says how many). Colours come from a hash of
the function name, so the same profile always gives the same bytes and a
function keeps its colour from one graph to the next. Diff profiles are
coloured red where the profile grew over its base and blue where it shrank.
"""

from __future__ import annotations

import math
import os
import struct
from xml.sax.saxutils import escape, quoteattr

from ...pprof.io import write_bytes
from ...pprof.units import scaled_label
from ...report.text import percentage
from .html import CallTree, call_tree

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

    from ...pprof.profile import Profile

_PAD = 10
_CHAR_WIDTH = 0.59  # of the font size: flamegraph.pl's estimate for Verdana-like fonts


def name_color(name: str) -> str:
    """A warm colour from a hash of ``name`` (grey for synthetic frames such
    as ``<lost>`` or ``[binary]``); the HTML page uses the same hash."""
    data = name.encode("utf-16-le")  # JavaScript's charCodeAt units
    h = 0
    for unit in struct.unpack(f"<{len(data) // 2}H", data):
        h = (h * 31 + unit) & 0xFFFFFFFF
    if name.startswith(("<", "[")):
        g = 170 + h % 40
        return f"rgb({g},{g},{g})"
    return f"rgb({205 + h % 50},{80 + (h >> 8) % 150},{(h >> 16) % 55})"


def diff_color(value: int, width: int) -> str:
    """Red for growth, blue for shrinkage, paler as the change is a smaller
    part of the frame (``value`` = new - base, ``width`` = new + base)."""
    k = 0.15 + 0.85 * math.sqrt(abs(value) / width if width else 0.0)
    target = (222, 45, 38) if value > 0 else (40, 90, 220) if value < 0 else (200, 200, 200)
    r, g, b = (round(245 + (c - 245) * k) for c in target)
    return f"rgb({r},{g},{b})"


def _label(name: str, width: float, font_size: float) -> str:
    fits = int((width - 6) / (font_size * _CHAR_WIDTH))
    if fits < 3:
        return ""
    return name if len(name) <= fits else name[:fits - 2] + ".."


def svg(profile: Profile, *, sample_type: str | int | None = None, width: int = 1200,
        title: str | None = None, frame_height: int = 16, font_size: float = 11,
        min_width: float = 0.1, inverted: bool = False) -> str:
    """A static SVG flame graph of one sample type (the default one unless
    named), ``width`` pixels wide; ``inverted`` draws an icicle graph (root at
    the top). Frames narrower than ``min_width`` pixels are left out."""
    index = profile.sample_index(sample_type)
    vt = profile.sample_types[index]
    plot = width - 2 * _PAD
    tree = call_tree(profile, sample_types=[index], min_width_fraction=min_width / plot,
                     residue_budget=0)
    total = tree.width(0, 0)
    max_depth = max(tree.depth)
    top = 3 * frame_height + 8
    height = top + (max_depth + 1) * frame_height + 2 * frame_height + _PAD
    heading = title if title is not None else f"Flame graph: {vt.type}"
    summary = f"Total {_value(tree, 0, vt.unit)} {vt.type}"
    if tree.diff:
        summary += (f" (frame width: new + base; red: grew over the base, blue: shrank; "
                    f"width {scaled_label(total, vt.unit, 'auto')})")
    out = [
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-family="Verdana, sans-serif" '
        f'font-size="{font_size:g}">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#f8f8f8"/>',
        f'<text x="{width / 2:.1f}" y="{frame_height + 4}" text-anchor="middle" '
        f'font-size="{font_size + 5:g}">{escape(heading)}</text>',
        f'<text x="{_PAD}" y="{2 * frame_height + 4}">{escape(summary)}</text>',
    ]
    scale = plot / total if total else 0.0
    cursor = [0.0] * (max_depth + 2)  # where the next child of the node at each depth starts
    for i, depth in enumerate(tree.depth):
        x = cursor[depth - 1] if depth else 0.0
        w = tree.width(0, i) * scale
        if depth:
            cursor[depth - 1] += w
        cursor[depth] = x
        if w < min_width or total == 0:
            continue
        name = tree.funcs[tree.func[i]][0]
        row = depth if inverted else max_depth - depth
        y = top + row * frame_height
        fill = diff_color(tree.value(0, i), tree.width(0, i)) if tree.diff else name_color(name)
        out.append(f"<g><title>{escape(_tooltip(tree, i, vt.unit, total))}</title>"
                   f'<rect x="{_PAD + x:.2f}" y="{y}" width="{w:.2f}" height="{frame_height - 1}" '
                   f'fill={quoteattr(fill)} rx="2" ry="2"/>')
        label = _label(name, w, font_size)
        if label:
            out.append(f'<text x="{_PAD + x + 3:.2f}" y="{y + frame_height - 4.5:.1f}">'
                       f"{escape(label)}</text>")
        out.append("</g>")
    if tree.hidden:
        plural = "s" if tree.hidden != 1 else ""
        out.append(f'<text x="{_PAD}" y="{height - _PAD}" fill="#666">{tree.hidden} '
                   f"frame{plural} narrower than {min_width:g} px left out</text>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _value(tree: CallTree, i: int, unit: str) -> str:
    return scaled_label(tree.value(0, i), unit, "auto")


def _tooltip(tree: CallTree, i: int, unit: str, total: int) -> str:
    name, filename, start = tree.funcs[tree.func[i]]
    line = tree.line[i] or start
    text = (f"{name} ({_value(tree, i, unit)}, "
            f"{percentage(tree.width(0, i), total).strip()})")
    if filename:
        text += f"\n{filename}:{line}" if line else f"\n{filename}"
    return text


def write_svg(profile: Profile, path: str | os.PathLike[str], **kw: Any) -> None:
    """Write :func:`svg` of ``profile`` to ``path`` (UTF-8)."""
    write_bytes(path, svg(profile, **kw).encode("utf-8"))


__all__ = ["diff_color", "name_color", "svg", "write_svg"]
