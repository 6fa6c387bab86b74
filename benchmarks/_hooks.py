"""cprof._core's benchmark hooks, which only a build made with CPROF_BENCH=1 has."""

from __future__ import annotations

from typing import Any, Callable


def measure_record_ns(core: Any) -> Callable[..., float]:
    """core.measure_record_ns; exits saying how to build it in when core lacks it."""
    hook = getattr(core, "measure_record_ns", None)
    if hook is None:
        raise SystemExit(
            f"{core.__file__} has no measure_record_ns: a production build leaves the "
            "benchmark hooks out; rebuild with CPROF_BENCH=1 pip install --no-build-isolation "
            "--force-reinstall --no-deps . (or make the venv with .ci/venv.sh)")
    return hook
