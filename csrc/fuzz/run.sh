#!/usr/bin/env bash
# run.sh [SECONDS]: build the libFuzzer harness for the pprof decoder
# (fuzz_decode.c) and fuzz it for SECONDS (default 60). See docs/FUZZING.md.
#
# Exits non-zero when the fuzzer found a crash, leak, timeout or OOM; the
# input is kept in csrc/fuzz/findings/. CPROF_FUZZ_KEEP_GOING=1 runs libFuzzer
# in fork mode so that a known crash does not end a long campaign.
set -euo pipefail

seconds=${1:-60}
case $seconds in
    '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/csrc/fuzz
corpus=$here/corpus-work
findings=$here/findings
log=$here/last-run.log
cd "$root"

need() {  # message naming the Debian packages to install, then exit
    echo "run.sh: $1" >&2
    echo "run.sh: on Debian/Ubuntu: apt-get install $2" >&2
    exit 2
}

cc=${CC:-}
if [ -z "$cc" ]; then
    for c in clang clang-14; do
        if command -v "$c" >/dev/null; then cc=$c; break; fi
    done
fi
[ -n "$cc" ] && command -v "$cc" >/dev/null ||
    need "clang${cc:+ ($cc)} is not installed (libFuzzer needs clang)" "clang-14 libclang-rt-14-dev"
command -v pkg-config >/dev/null || need "pkg-config is not installed" "pkg-config"
for lib in libprotobuf-c:libprotobuf-c-dev zlib:zlib1g-dev; do
    pkg-config --exists "${lib%%:*}" ||
        need "pkg-config cannot find ${lib%%:*}" "${lib##*:}"
done

# clang without the compiler-rt fuzzer library fails only at link time, with
# an unhelpful error: probe for it first.
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return d && n; }' \
    >"$probe/probe.c"
"$cc" -fsanitize=fuzzer,address,undefined "$probe/probe.c" -o "$probe/probe" 2>"$probe/err" ||
    { cat "$probe/err" >&2; need "$cc cannot link -fsanitize=fuzzer (the libFuzzer runtime is missing)" \
        "libclang-rt-14-dev (the compiler-rt of your clang version)"; }

echo "run.sh: building csrc/fuzz/fuzz_decode with $cc"
# shellcheck disable=SC2046  # pkg-config output is meant to split into flags
"$cc" -std=c11 -Wall -Wextra -Werror -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -Icsrc $(pkg-config --cflags libprotobuf-c zlib) \
    csrc/fuzz/fuzz_decode.c csrc/codec/pprof.c csrc/codec/wire.c csrc/codec/arena.c \
    csrc/codec/gzip.c csrc/analysis/*.c csrc/proto/profile.pb-c.c \
    $(pkg-config --libs libprotobuf-c zlib) -o "$here/fuzz_decode"

# Seeds: every Go profile gzipped and raw, and the malformed corpus of the
# tests (skipping the 1 MB bomb: max_len would grow to fit it).
mkdir -p "$corpus" "$findings"
for f in tests/testdata/go/*.prof; do
    name=$(basename "$f")
    cp "$f" "$corpus/seed-go-$name"
    gzip -dc "$f" >"$corpus/seed-go-$name.raw"
done
python=${PYTHON:-python3}
if command -v "$python" >/dev/null; then
    "$python" - "$corpus" <<'EOF'
import sys
sys.path.insert(0, "tests/support")
from malformed import corpus

out = sys.argv[1]
for name, data, _ in corpus():
    if len(data) <= 64 * 1024:
        with open(f"{out}/seed-malformed-{name}", "wb") as f:
            f.write(data)
EOF
else
    echo "run.sh: $python not found; fuzzing without the malformed seeds of tests/support" >&2
fi
max_len=$(find "$corpus" -type f -name 'seed-*' -printf '%s\n' | sort -n | tail -1)
[ "$max_len" -ge 4096 ] || max_len=4096

marker=$probe/start
touch "$marker"
mode=()
if [ "${CPROF_FUZZ_KEEP_GOING:-0}" = 1 ]; then
    mode=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
fi
echo "run.sh: fuzzing for ${seconds}s (max_len $max_len, log in ${log#"$root"/})"
status=0
"$here/fuzz_decode" "${mode[@]}" -max_total_time="$seconds" -max_len="$max_len" \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$findings/" "$corpus" >"$log" 2>&1 || status=$?

# The last status line carries executions, coverage and exec/s (in fork mode
# the exec/s of the last job only, hence the average).
last=$(grep -E '^#[0-9]+:?[[:space:]]' "$log" | tail -1 || true)
echo "$last"
runs=$(echo "$last" | sed -nE 's/^#([0-9]+).*/\1/p')
took=$(echo "$last" | sed -nE 's/.* time: ([0-9]+)s.*/\1/p')
[ -n "$took" ] || took=$(sed -nE 's/^Done [0-9]+ runs in ([0-9]+) second.*/\1/p' "$log")
if [ -n "$runs" ] && [ -n "$took" ] && [ "$took" -gt 0 ]; then
    echo "run.sh: $runs executions in ${took}s, $((runs / took)) exec/s on average"
fi
grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' \
    "$log" || true

# Fork mode logs only "deadly signal": replay each new finding for its cause.
found=$(find "$findings" -type f -newer "$marker" | sort)
if [ "$status" -ne 0 ] || [ -n "$found" ]; then
    for f in $found; do
        cause=$("$here/fuzz_decode" "$f" 2>&1 |
            grep -m1 -E 'fuzz_decode: [a-z]|ERROR: [A-Za-z]+Sanitizer|runtime error|ERROR: libFuzzer' ||
            true)
        echo "run.sh: ${f#"$root"/}: $cause" >&2
    done
    echo "run.sh: the fuzzer found $(echo "$found" | grep -c . || true) input(s), kept in" \
        "csrc/fuzz/findings/ (libFuzzer exit $status); see ${log#"$root"/}" >&2
    exit 1
fi
echo "run.sh: no crash"
