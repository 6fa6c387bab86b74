#!/usr/bin/env bash
# .ci/venv.sh VERSION DIR [sanitize]: a virtual environment at DIR for CPython
# VERSION (3.11-3.13 found through pyenv, else pythonX.Y on PATH; 3.14 and
# 3.15 otherwise from Debian sid through .ci/pythons.sh) with
# cprof installed from this checkout and its test dependencies. With
# "sanitize", the C extension is built with ASan + UBSan. Both builds have the
# benchmark hooks (CPROF_BENCH=1), which a production build leaves out.
set -euo pipefail
version=$1 dir=$2 mode=${3:-}
top=$(cd "$(dirname "$0")/.." && pwd)

python=""
if command -v pyenv >/dev/null 2>&1; then
  full=$(pyenv versions --bare 2>/dev/null | grep -E "^${version//./\\.}(\.[0-9]+)?$" | sort -V | tail -n 1 || true)
  [ -n "$full" ] && python="$(pyenv prefix "$full")/bin/python"
fi
[ -n "$python" ] || python=$(command -v "python$version" || true)
case $version in
  3.14|3.15) [ -n "$python" ] || python=$(bash "$top/.ci/pythons.sh" "$version") ;;
esac
if [ -z "$python" ] || [ ! -x "$python" ]; then
  echo "venv: CPython $version not found (pyenv install $version, or put python$version on PATH)" >&2
  exit 1
fi

[ -x "$dir/bin/python" ] || "$python" -m venv "$dir"
"$dir/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip setuptools wheel
# Test tools, and the optional dependencies the tests exercise (pandas for
# DataFrames, Playwright driving Debian's chromium, nbclient/ipykernel for the
# notebooks, uvicorn serving the ASGI app); cprof itself needs none of them.
"$dir/bin/python" -m pip install -q --disable-pip-version-check pytest hypothesis build mypy \
  numpy pandas playwright nbclient nbformat ipykernel uvicorn
# setuptools reuses objects in build/ that look newer than their sources, so an
# ASan build would silently link the plain objects: always compile afresh.
rm -rf "$top/build"
sanitize=0
[ "$mode" = sanitize ] && sanitize=1
CPROF_BENCH=1 CPROF_SANITIZE=$sanitize "$dir/bin/python" -m pip install -q --disable-pip-version-check \
  --no-build-isolation --force-reinstall --no-deps "$top"
