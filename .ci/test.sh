#!/usr/bin/env bash
# .ci/test.sh: the whole test suite. For CPython 3.11, 3.12 and 3.13 (pyenv)
# and 3.14 and 3.15 (Debian sid's builds, through .ci/pythons.sh), a venv with
# cprof installed from this checkout runs every test; then the suite runs once
# more against an extension built with ASan + UBSan; and once, the release
# artifacts: .ci/wheels.sh builds the sdist and the wheels, and
# tests/packaging/test_wheels.py judges them (CPROF_SKIP_WHEELS=1 leaves this
# step out). Each run's time is printed. Exits non-zero when any run fails,
# and also when pytest ran no test at all (its exit code 5): an empty run is
# reported as such, never as a pass.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
versions=${CPROF_PYTHONS:-"3.11 3.12 3.13 3.14 3.15"}
asan_version=${CPROF_ASAN_PYTHON:-3.12}
wheels_version=${CPROF_WHEELS_PYTHON:-3.12}
pytest_args=("$@")
failed=()

run_pytest() {  # NAME VENV [env...]: pytest with this script's arguments (default: tests)
  run_pytest_on "$@" -- "${pytest_args[@]:-tests}"
}

run_pytest_on() {  # NAME VENV [env...] -- PYTEST_ARGS...
  local name=$1 venv=$2; shift 2
  local env_vars=()
  while [ "$1" != -- ]; do env_vars+=("$1"); shift; done
  shift
  local began=$SECONDS
  echo "=== $name: pytest $*"
  env "${env_vars[@]}" "$venv/bin/pytest" -p no:cacheprovider "$@"
  local rc=$?
  echo "=== $name: $((SECONDS - began)) s"
  case $rc in
    0) echo "=== $name: passed" ;;
    5) echo "=== $name: NO TESTS RAN (pytest exit 5): counted as a failure"; failed+=("$name (no tests ran)") ;;
    *) echo "=== $name: FAILED (pytest exit $rc)"; failed+=("$name") ;;
  esac
}

for v in $versions; do
  if ! bash .ci/venv.sh "$v" ".venv/$v"; then
    failed+=("$v (install)"); continue
  fi
  run_pytest "CPython $v" ".venv/$v"
done

if [ "${CPROF_SKIP_ASAN:-0}" != 1 ]; then
  if bash .ci/venv.sh "$asan_version" ".venv/asan" sanitize; then
    asan=$(gcc -print-file-name=libasan.so)
    # CPython's own allocations at exit are not ours to report: leak checking is
    # off, every other ASan and UBSan finding aborts the run.
    run_pytest "ASan+UBSan (CPython $asan_version)" ".venv/asan" \
      LD_PRELOAD="$asan" CPROF_UNDER_ASAN=1 PYTHONMALLOC=malloc \
      ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1 \
      UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  else
    failed+=("asan (install)")
  fi
fi

if [ "${CPROF_SKIP_WHEELS:-0}" != 1 ]; then
  began=$SECONDS
  echo "=== wheels: .ci/wheels.sh dist"
  if ! bash .ci/wheels.sh dist; then
    echo "=== wheels: FAILED to build"
    failed+=("wheels (build)")
  elif [[ " $versions " != *" $wheels_version "* ]] && ! bash .ci/venv.sh "$wheels_version" ".venv/$wheels_version"; then
    failed+=("wheels (install)")
  else
    run_pytest_on "wheels" ".venv/$wheels_version" CPROF_WHEELS_DIR="$top/dist" -- \
      tests/packaging/test_wheels.py
  fi
  echo "=== wheels: the whole step took $((SECONDS - began)) s"
fi

if [ ${#failed[@]} -ne 0 ]; then
  echo "test suite FAILED: ${failed[*]}"
  exit 1
fi
ran="CPython $versions"
[ "${CPROF_SKIP_ASAN:-0}" = 1 ] || ran+=", ASan+UBSan"
[ "${CPROF_SKIP_WHEELS:-0}" = 1 ] || ran+=", the wheels"
echo "test suite passed: $ran"
