"""Fixtures shared by every test directory."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

# Helpers shared by the test folders (go tool pprof, the CPU tests' programs,
# the malformed-input corpus): importable from every test module.
sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))

# pytester runs pytest on generated test files (the cprof pytest plugin's tests).
pytest_plugins = ["pytester"]


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Reports print the profile's time in the local zone; go tool pprof runs
    here with TZ=UTC, so the tests' reports must too."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
