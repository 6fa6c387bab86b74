"""The extension under test is the one the run says it is."""

from pathlib import Path

import pytest

from cprof import _core
from sanitizers import UNDER_ASAN


@pytest.mark.skipif(not UNDER_ASAN,
                    reason="only the ASan+UBSan run of .ci/test.sh sets CPROF_UNDER_ASAN")
def test_sanitizers_are_loaded_in_the_asan_run() -> None:
    maps = Path("/proc/self/maps").read_text()
    assert "libasan" in maps and "libubsan" in maps
    core_so = Path(_core.__file__).read_bytes()
    assert b"__asan_report" in core_so and b"__ubsan_handle" in core_so
