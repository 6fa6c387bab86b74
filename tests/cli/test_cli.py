"""The command line: what a user sees for good and bad input."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import cprof
from cprof.cli import main

GO = Path(__file__).resolve().parents[1] / "testdata" / "go"
VERSION_PY = Path(__file__).resolve().parents[2] / "cprof" / "_version.py"


def test_version_is_the_one_written_in_version_py(capsys: pytest.CaptureFixture[str]) -> None:
    """cprof --version prints the version cprof/_version.py holds (the package
    metadata reads the same line), from the console script and python -m cprof."""
    match = re.fullmatch(r'(?s).*\n__version__ = "(\d+\.\d+\.\d+)"\n', VERSION_PY.read_text())
    assert match, VERSION_PY.read_text()
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0
    assert capsys.readouterr().out == f"cprof {match.group(1)}\n"
    r = subprocess.run([sys.executable, "-m", "cprof", "--version"], capture_output=True,
                       text=True, timeout=60)
    assert (r.returncode, r.stdout) == (0, f"cprof {match.group(1)}\n"), r.stderr
    from importlib.metadata import version
    assert version("cprof") == match.group(1)


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
