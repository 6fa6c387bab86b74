#!/usr/bin/env bash
# .ci/python.sh VERSION: print the path of a CPython VERSION interpreter:
# 3.11-3.13 found through pyenv, else pythonX.Y on PATH; 3.14 and 3.15
# otherwise from Debian sid through .ci/pythons.sh. .ci/venv.sh makes the test
# venvs from it, .ci/wheels.sh the wheels.
set -euo pipefail
version=${1:?usage: .ci/python.sh VERSION}
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
  echo "python: CPython $version not found (pyenv install $version, or put python$version on PATH)" >&2
  exit 1
fi
echo "$python"
