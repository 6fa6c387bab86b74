#!/bin/sh
# Build tests/go/genprofiles (standard library only) into the given path.
#
#   tests/go/build.sh OUT
#
# Works on a fresh machine (including as root with no HOME/GOPATH set up):
# GOCACHE and GOPATH are pointed at a private writable directory, user
# `go env -w` settings are ignored, and nothing is fetched from the network.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTPUT_BINARY" >&2
    exit 2
fi

if ! command -v go >/dev/null 2>&1; then
    echo "error: 'go' not found in PATH; install the Go toolchain (Debian/Ubuntu: apt-get install golang-go)" >&2
    exit 1
fi

here=$(cd "$(dirname "$0")" && pwd)
out=$1
case $out in /*) ;; *) out=$(pwd)/$out ;; esac
mkdir -p "$(dirname "$out")"

cache=${CPROF_GO_CACHE:-${TMPDIR:-/tmp}/cprof-go-cache-$(id -u)}
mkdir -p "$cache/gocache" "$cache/gopath"

cd "$here/genprofiles"
env -u GOFLAGS \
    GOENV=off GOWORK=off GO111MODULE=on GOPROXY=off GOTOOLCHAIN=local \
    GOCACHE="$cache/gocache" GOPATH="$cache/gopath" CGO_ENABLED=0 \
    go build -trimpath -o "$out" .
