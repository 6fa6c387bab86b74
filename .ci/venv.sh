#!/usr/bin/env bash
# .ci/venv.sh VERSION DIR [sanitize]: a virtual environment at DIR for CPython
# VERSION (the interpreter .ci/python.sh finds) with cprof installed from this
# checkout and its test dependencies. With "sanitize", the C extension is built
# with ASan + UBSan. Both builds have the
# benchmark hooks (CPROF_BENCH=1), which a production build leaves out.
set -euo pipefail
version=$1 dir=$2 mode=${3:-}
top=$(cd "$(dirname "$0")/.." && pwd)

python=$(bash "$top/.ci/python.sh" "$version")

[ -x "$dir/bin/python" ] || "$python" -m venv "$dir"
"$dir/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip setuptools wheel
# Test tools, and the optional dependencies the tests exercise (pandas for
# DataFrames, Playwright driving Debian's chromium, nbclient/ipykernel for the
# notebooks, uvicorn serving the ASGI app; auditwheel and twine for the wheel
# checks); cprof itself needs none of them.
"$dir/bin/python" -m pip install -q --disable-pip-version-check --no-compile pytest hypothesis build mypy \
  numpy pandas playwright nbclient nbformat ipykernel uvicorn \
  auditwheel twine
# setuptools reuses objects in build/ that look newer than their sources, so an
# ASan build would silently link the plain objects: always compile afresh.
rm -rf "$top/build"
sanitize=0
[ "$mode" = sanitize ] && sanitize=1
CPROF_BENCH=1 CPROF_SANITIZE=$sanitize "$dir/bin/python" -m pip install -q --disable-pip-version-check \
  --no-build-isolation --force-reinstall --no-deps "$top"
