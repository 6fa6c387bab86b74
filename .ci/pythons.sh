#!/usr/bin/env bash
# .ci/pythons.sh VERSION: print the path of a CPython VERSION interpreter that
# Debian's sid archive ships (3.14, 3.15), installing it first if needed.
#
# pyenv here has 3.11-3.13 only and there is no CPython source to build from.
# Debian sid has python3.14 and python3.15 as binary packages, built against a
# newer glibc than the machine's: they are extracted, with that glibc and the
# other libraries they need, into a private prefix under ~/.cache, and the
# interpreter is pointed at the prefix's loader and libraries (patchelf: its
# PT_INTERP and a DT_RPATH, which also serves lib-dynload modules such as
# _ssl). Nothing on the system is installed from sid or upgraded: apt runs
# with a private source list, package lists and cache, used only to download.
# The second run finds the prefix ready and returns at once.
set -euo pipefail
version=${1:?usage: .ci/pythons.sh VERSION (3.14 or 3.15)}
case $version in
  3.14|3.15) ;;
  *) echo "pythons: CPython $version is not taken from Debian sid (3.14 and 3.15 are)" >&2; exit 2 ;;
esac

cache=${CPROF_PYTHONS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cprof-pythons}
prefix=$cache/python$version
python=$prefix/usr/bin/python$version

packages=(
  "python$version" "python$version-minimal" "libpython$version" "libpython$version-minimal"
  "libpython$version-stdlib" "libpython$version-dev" "python$version-dev" "python$version-venv"
  "libpython$version-testsuite"  # test.lock_tests: the lock tests run CPython's own
  python3-pip-whl
  # what the interpreter and its extension modules link against, as sid builds them
  libc6 libssl3t64 libexpat1 zlib1g libffi8 libbz2-1.0 liblzma5 libzstd1 libsqlite3-0
  libncursesw6 libtinfo6 libreadline8t64 libuuid1 libdb5.3t64 libgcc-s1
)
# Ready when an earlier run of this very script extracted this very list.
recipe="$(sha256sum "$0" | cut -c1-16) ${packages[*]}"
if [ -f "$prefix/.ready" ] && [ "$(cat "$prefix/.ready")" = "$recipe" ]; then
  echo "$python"
  exit 0
fi

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
if ! command -v patchelf >/dev/null 2>&1; then
  echo "pythons: installing patchelf" >&2
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends patchelf >&2
fi

# A private apt: sid's package list only, downloaded into the cache.
apt_dir=$cache/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial"
echo "deb http://deb.debian.org/debian sid main" >"$apt_dir/sources.list"
apt_opts=(
  -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir"
  -o "Dir::Cache::archives=$apt_dir/archives" -o APT::Sandbox::User=root -q
)
if ! ls "$apt_dir"/lists/*_sid_main_binary-amd64_Packages* >/dev/null 2>&1; then
  echo "pythons: reading Debian sid's package list" >&2
  apt-get "${apt_opts[@]}" update >&2
fi

debs=$(mktemp -d)
trap 'rm -rf "$debs"' EXIT
echo "pythons: downloading CPython $version from Debian sid" >&2
# A list read on an earlier day may name versions sid has since replaced:
# read it afresh once when a download fails.
if ! (cd "$debs" && apt-get "${apt_opts[@]}" download "${packages[@]}" >&2); then
  apt-get "${apt_opts[@]}" update >&2
  (cd "$debs" && apt-get "${apt_opts[@]}" download "${packages[@]}" >&2)
fi

rm -rf "$prefix"
mkdir -p "$prefix"
for deb in "$debs"/*.deb; do
  dpkg -x "$deb" "$prefix"
done
libdir=$prefix/usr/lib/x86_64-linux-gnu
# The loader from the same glibc; libc6 puts it under /usr/lib (merged /usr).
loader=$libdir/ld-linux-x86-64.so.2
[ -e "$loader" ] || loader=$prefix/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
[ -e "$loader" ] || loader=$prefix/lib64/ld-linux-x86-64.so.2
patchelf --set-interpreter "$loader" --force-rpath \
  --set-rpath "$libdir:$prefix/lib/x86_64-linux-gnu" "$python"

# ensurepip (python -m venv) takes pip from WHEEL_PKG_DIR, which Debian sets to
# /usr/share/python-wheels: point it at the wheels unpacked beside the interpreter.
for data in "$prefix/usr/lib/python$version"/_sysconfigdata_*.py; do
  sed -i "s#'WHEEL_PKG_DIR': '/usr/share/python-wheels/'#'WHEEL_PKG_DIR': '$prefix/usr/share/python-wheels/'#" "$data"
done

# Debian's <python3.X/pyconfig.h> includes <x86_64-linux-gnu/python3.X/pyconfig.h>:
# setup.py finds it beside the interpreter's headers (multiarch_include).
"$python" -c "import ssl, sqlite3, ctypes, zlib, venv, ensurepip; assert ensurepip._find_wheel_pkg_dir_pip()" >&2
echo "$recipe" >"$prefix/.ready"
echo "$python"
