"""What every benchmark prints about the machine it ran on, how it prints its tables, and py-spy."""

from __future__ import annotations

import os
import subprocess


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or "unknown"."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def markdown_table(rows: list[tuple[str, ...]]) -> str:
    """rows (the first is the header) as a Markdown table: the first column
    left-aligned, the others right-aligned, every column as wide as its widest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths))) + " |"
             for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 1) + ("-" if i == 0 else ":")
                                   for i, w in enumerate(widths)) + "|")
    return "\n".join(lines)


def py_spy(python: str) -> str:
    """py-spy next to ``python``, pip-installed into its environment if missing."""
    local = os.path.join(os.path.dirname(python), "py-spy")
    if not os.path.exists(local):
        subprocess.run([python, "-m", "pip", "install", "-q", "py-spy"], check=True)
    return local
