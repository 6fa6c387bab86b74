#!/usr/bin/env bash
# .ci/root.sh NAME SUITE [PACKAGE...]: print the path of a minimal Debian SUITE
# root (debootstrap --variant=minbase) holding PACKAGE..., making it first if
# needed. Used by .ci/wheels.sh (a Debian 11 root whose gcc and libraries the
# wheels are built with) and tests/packaging/test_wheels.py (a bare Debian 12
# with python3 and python3-venv only, where the wheel must install and work).
#
# Roots live under ~/.cache/cprof-roots/NAME, the downloaded .debs beside them,
# so the second run returns at once. A root is ready when an earlier run of
# this very script made it from this very suite and package list; any change
# makes it afresh. debootstrap runs in a private mount namespace, so the /proc
# and /sys it mounts in the root vanish with it, even when it fails.
set -euo pipefail
name=${1:?usage: .ci/root.sh NAME SUITE [PACKAGE...]}
suite=${2:?usage: .ci/root.sh NAME SUITE [PACKAGE...]}
shift 2
packages=("$@")

cache=${CPROF_ROOTS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cprof-roots}
root=$cache/$name
recipe="$(sha256sum "$0" | cut -c1-16) $suite ${packages[*]}"
if [ -f "$root/.ready" ] && [ "$(cat "$root/.ready")" = "$recipe" ]; then
  echo "$root"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "root: debootstrap and chroot need root" >&2
  exit 1
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  echo "root: installing debootstrap" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >&2
fi

debs=$cache/debs-$suite
mkdir -p "$debs"
work=$cache/.$name.new
rm -rf "$work"
include=()
[ ${#packages[@]} -eq 0 ] || include=("--include=$(IFS=,; echo "${packages[*]}")")
echo "root: debootstrap $suite into $root (${packages[*]:-minbase only})" >&2
unshare --mount --propagation private \
  debootstrap --variant=minbase "${include[@]}" --cache-dir="$debs" \
  "$suite" "$work" http://deb.debian.org/debian >&2
rm -rf "$work/var/cache/apt/archives"/*.deb "$work/var/lib/apt/lists"/*_Packages
rm -rf "$root"
mv "$work" "$root"
echo "$recipe" >"$root/.ready"
echo "$root"
