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
from sanitizers import UNDER_ASAN  # noqa: E402

# pytester runs pytest on generated test files (the cprof pytest plugin's tests).
pytest_plugins = ["pytester"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The ASan+UBSan run checks cprof's C code under the sanitizers: a test
    that runs none of that build's code (it builds a plain wheel of its own,
    or only type-checks) would check nothing more there than in the other
    suites, where it runs, and takes minutes under the preloaded runtime."""
    if not UNDER_ASAN:
        return
    skip = pytest.mark.skip(reason="uninstrumented: runs none of the sanitized build's code; "
                                   "the other suites run it")
    for item in items:
        if item.get_closest_marker("uninstrumented"):
            item.add_marker(skip)


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Reports print the profile's time in the local zone; go tool pprof runs
    here with TZ=UTC, so the tests' reports must too."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
