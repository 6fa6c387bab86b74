"""What cprof record writes out to spare its start-up the imports of re and
shutil (collect/command.py, collect/symbols.py) answers as the standard
library's own would, on many inputs."""

from __future__ import annotations

import itertools
import re
import shutil
import stat
from pathlib import Path

import pytest

from cprof.collect.command import _is_python_name, which
from cprof.collect.symbols import _frozen_module

PARTS = ["python", "pypy", "py", "pythonw", "", "3", "12", ".", "t", "-dbg", "x", "3.12", "tt",
         "-", "..", "\u0663", "\u00b2", " ", "\n", "_"]


def test_interpreter_names_as_the_regular_expression_says() -> None:
    rx = re.compile(r"(python|pypy)(\d+(\.\d+)?t?)?(-dbg)?")
    names = {"".join(c) for k in range(1, 5) for c in itertools.product(PARTS, repeat=k)}
    wrong = [n for n in names if bool(rx.fullmatch(n)) != _is_python_name(n)]
    assert wrong == [] and len(names) > 50_000
    assert _is_python_name("python3.13t-dbg") and not _is_python_name("python3.")


def test_frozen_module_names_as_the_regular_expression_says() -> None:
    rx = re.compile(r"<frozen ([\w.]+)>")
    inner = ["importlib._bootstrap", "", "a b", "x>y", "zipimport", "é.ü", "\u0663", "a-b", ".",
             "<frozen x>"]
    for name in inner:
        for filename in (f"<frozen {name}>", f"<frozen {name}", f"frozen {name}>", name,
                         f"<frozen  {name}>"):
            m = rx.fullmatch(filename)
            assert _frozen_module(filename) == (m.group(1) if m else None), filename


@pytest.mark.parametrize("path_env", [None, "", "/nonexistent", "BIN", "BIN:/usr/bin:BIN"])
def test_which_finds_what_shutil_which_finds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             path_env: str | None) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, mode in (("tool", 0o755), ("plain", 0o644)):
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(mode)
    (bin_dir / "dir").mkdir(mode=0o755)
    if path_env is None:
        monkeypatch.delenv("PATH", raising=False)
    else:
        monkeypatch.setenv("PATH", path_env.replace("BIN", str(bin_dir)))
    monkeypatch.chdir(tmp_path)
    for command in ("tool", "plain", "dir", "sh", "ls", "nothing", "bin/tool", "./bin/plain",
                    str(bin_dir / "tool"), "/bin/sh", ""):
        assert which(command) == shutil.which(command), command
    assert stat.S_IMODE((bin_dir / "plain").stat().st_mode) == 0o644
