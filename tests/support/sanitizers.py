"""Whether this test run is .ci/test.sh's ASan+UBSan run (it sets
CPROF_UNDER_ASAN=1 beside the preloaded runtime)."""

from __future__ import annotations

import os

UNDER_ASAN = os.environ.get("CPROF_UNDER_ASAN") == "1"
