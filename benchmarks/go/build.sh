#!/bin/sh
# Build benchmarks/go/parse against github.com/google/pprof/profile from the
# Debian package golang-github-google-pprof-dev (/usr/share/gocode), in
# GOPATH mode, with no network access.
#
#   benchmarks/go/build.sh OUT
#
# Override the pprof source location with PPROF_GOPATH (a GOPATH root that
# contains src/github.com/google/pprof/profile).
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTPUT_BINARY" >&2
    exit 2
fi

if ! command -v go >/dev/null 2>&1; then
    echo "error: 'go' not found in PATH; install the Go toolchain (Debian/Ubuntu: apt-get install golang-go)" >&2
    exit 1
fi

pprof_root=${PPROF_GOPATH:-/usr/share/gocode}
if [ ! -f "$pprof_root/src/github.com/google/pprof/profile/profile.go" ]; then
    echo "error: pprof Go source not found at $pprof_root/src/github.com/google/pprof/profile;" \
         "install it (Debian/Ubuntu: apt-get install golang-github-google-pprof-dev) or set PPROF_GOPATH" >&2
    exit 1
fi

here=$(cd "$(dirname "$0")" && pwd)
out=$1
case $out in /*) ;; *) out=$(pwd)/$out ;; esac
mkdir -p "$(dirname "$out")"

cache=${CPROF_GO_CACHE:-${TMPDIR:-/tmp}/cprof-go-cache-$(id -u)}
mkdir -p "$cache/gocache" "$cache/gopath"

# The writable GOPATH entry comes first (go uses it for any output);
# the read-only Debian tree supplies github.com/google/pprof.
cd "$here/parse"
env -u GOFLAGS \
    GOENV=off GOWORK=off GO111MODULE=off GOPROXY=off GOTOOLCHAIN=local \
    GOCACHE="$cache/gocache" GOPATH="$cache/gopath:$pprof_root" CGO_ENABLED=0 \
    go build -trimpath -o "$out" .
