"""The package is fully typed: mypy --strict finds nothing (py.typed promises it)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.uninstrumented
def test_mypy_strict_is_clean(tmp_path: Path) -> None:
    # The package as the checkout has it (its _core.pyi stands for the extension).
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path), "-p", "cprof"],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert "No module named mypy" not in r.stderr, "mypy is not installed (.ci/venv.sh installs it)"
    assert r.returncode == 0, r.stdout + r.stderr
