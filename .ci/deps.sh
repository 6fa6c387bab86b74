#!/usr/bin/env bash
# Install the Debian packages cprof builds and tests with; a no-op when they
# are all present, so it is safe to run any number of times.
set -euo pipefail

packages=(
  build-essential pkg-config
  libprotobuf-c-dev protobuf-c-compiler zlib1g-dev   # the codec
  libunwind-dev libc6-dbg                            # native stacks; libc's static functions
  golang-go golang-github-google-pprof-dev           # go tool pprof judges our files
  clang libclang-rt-14-dev                           # libFuzzer
  graphviz                                           # dot: call graphs as SVG
  chromium fonts-dejavu-core                         # the flame graph, tested in a browser
  debootstrap                                        # the wheels' Debian 11 and bare Debian 12 roots
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "deps: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
