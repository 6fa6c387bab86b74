"""The command line: what a user sees for good and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

import cprof
from cprof.cli import main

GO = Path(__file__).resolve().parents[1] / "testdata" / "go"


def test_summary_names_the_hot_functions_and_writes_back(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "copy.prof"
    assert main(["summary", str(GO / "cpu.prof"), "-o", str(out), "--top", "2"]) == 0
    text = capsys.readouterr().out
    assert "cpu/nanoseconds: 1.49s  (default)" in text
    lines = [ln.split() for ln in text.splitlines() if "main.hot" in ln]
    assert lines == [["1s", "main.hotA"], ["490ms", "main.hotB"]]
    assert cprof.load(out).totals() == cprof.load(GO / "cpu.prof").totals()


def test_summary_of_a_malformed_file_says_what_is_wrong(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "cut.prof"
    bad.write_bytes((GO / "heap.prof").read_bytes()[:300])
    assert main(["summary", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"cprof: {bad}: gzip: the stream is truncated")


def test_missing_file_is_an_error_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "/nonexistent/x.prof"]) == 1
    assert "No such file or directory" in capsys.readouterr().err
