"""A -diff_base profile's reports take percentages of the base's total, as
go tool pprof does (its computeTotal), in memory and once written."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import cprof
from gotools import require_go

GO = Path(__file__).resolve().parents[1] / "testdata" / "go"


def test_diff_top_equals_pprof_diff_base(tmp_path: Path) -> None:
    require_go()
    p = cprof.load(GO / "cpu.prof")
    base = p.filter(focus="hotA")
    base.write(tmp_path / "base.prof")
    diff = p.diff(base)
    diff.write(tmp_path / "diff.prof")
    env = dict(os.environ, HOME=str(tmp_path), TZ="UTC")
    expected = subprocess.run(
        ["go", "tool", "pprof", "-top", "-symbolize=none", "-diff_base",
         str(tmp_path / "base.prof"), str(GO / "cpu.prof")],
        capture_output=True, text=True, env=env, check=True).stdout
    rows = expected[expected.index("Showing nodes"):]
    assert "of 1000ms total" in rows  # the base's total, not the 2.49s of both
    for report in (diff.top(), cprof.load(tmp_path / "diff.prof").top()):
        text = str(report)
        assert text[text.index("Showing nodes"):] == rows
