"""The package is fully typed: mypy --strict finds nothing (py.typed promises it)."""

import subprocess
import sys
from pathlib import Path

import cprof


def test_mypy_strict_is_clean(tmp_path: Path) -> None:
    package = Path(cprof.__file__).parent
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path), str(package)],
        capture_output=True, text=True, timeout=300)
    assert "No module named mypy" not in r.stderr, "mypy is not installed (.ci/venv.sh installs it)"
    assert r.returncode == 0, r.stdout + r.stderr
