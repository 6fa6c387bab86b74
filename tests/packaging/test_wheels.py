"""The release artifacts of .ci/wheels.sh (`make wheels`), as a user meets them:
one manylinux wheel per CPython 3.11-3.15 that auditwheel passes, carries
protobuf-c and libunwind, is stripped of debug information and keeps its
build ids; each works with the system's protobuf-c and libunwind hidden; and
the 3.11 wheel installs with no network on a bare Debian 12 (python3 and
python3-venv only: no compiler, no -dev package, no protobuf-c, no libunwind)
where `cprof record`, `top`, `flame`, native stacks and a heap profile give the
right answers.

These tests build nothing: they judge the artifacts in CPROF_WHEELS_DIR, and
run when it is set, as .ci/test.sh's wheel step sets it (once, after the
suites; the five suites skip this module).
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WHEELS_DIR = os.environ.get("CPROF_WHEELS_DIR", "")
if not WHEELS_DIR:
    pytest.skip("CPROF_WHEELS_DIR is not set: .ci/test.sh's wheel step runs these tests",
                allow_module_level=True)

VERSIONS = ("3.11", "3.12", "3.13", "3.14", "3.15")
PLATFORM = "manylinux_2_26_x86_64"
PROGRAM = Path(__file__).with_name("wheel_program.py")
# The bare Debian 12 the 3.11 wheel is installed on, as .ci/root.sh caches it.
BARE_ROOT = ("bare-bookworm", "bookworm", "python3", "python3-venv")


def version_of_cprof() -> str:
    text = (ROOT / "cprof" / "_version.py").read_text()
    match = re.search(r'__version__ = "([^"]+)"', text)
    assert match, text
    return match.group(1)


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    kw.setdefault("env", {k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)  # type: ignore[call-overload]


def tag(version: str) -> str:
    return "cp" + version.replace(".", "")


@pytest.fixture(scope="module")
def wheels() -> dict[str, Path]:
    found = {}
    for version in VERSIONS:
        name = f"cprof-{version_of_cprof()}-{tag(version)}-{tag(version)}-{PLATFORM}.whl"
        path = Path(WHEELS_DIR) / name
        assert path.is_file(), f"{name} is not in {WHEELS_DIR}: {os.listdir(WHEELS_DIR)}"
        found[version] = path
    return found


def test_one_wheel_per_version_and_the_sdist(wheels: dict[str, Path]) -> None:
    names = sorted(os.path.basename(p) for p in glob.glob(os.path.join(WHEELS_DIR, "cprof-*")))
    assert names == sorted([p.name for p in wheels.values()]
                           + [f"cprof-{version_of_cprof()}.tar.gz"]), names


def test_twine_passes_every_artifact() -> None:
    r = run([sys.executable, "-m", "twine", "check", "--strict",
             *sorted(glob.glob(os.path.join(WHEELS_DIR, "cprof-*")))])
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("PASSED") == len(VERSIONS) + 1, r.stdout


@pytest.mark.parametrize("version", VERSIONS)
def test_auditwheel_gives_the_platform_tag(version: str, wheels: dict[str, Path]) -> None:
    r = run([sys.executable, "-m", "auditwheel", "show", str(wheels[version])])
    assert r.returncode == 0, r.stderr
    said = " ".join(r.stdout.split())
    assert f'is consistent with the following platform tag: "{PLATFORM}"' in said, said


def unpack(wheel: Path, into: Path) -> dict[str, Path]:
    with zipfile.ZipFile(wheel) as z:
        z.extractall(into)
    return {p.name: p for p in into.rglob("*.so*")}


@pytest.mark.parametrize("version", VERSIONS)
def test_wheel_carries_protobuf_c_and_libunwind(version: str, wheels: dict[str, Path],
                                                tmp_path: Path) -> None:
    objects = unpack(wheels[version], tmp_path)
    core = next(p for name, p in objects.items() if name.startswith("_core."))
    assert core.parent.name == "cprof"
    # auditwheel names a grafted library SONAME-HASH.so.VERSION
    grafted = {re.sub(r"-[0-9a-f]{8}\.so\..*", "", p.name): p
               for p in objects.values() if p.parent.name == "cprof.libs"}
    assert set(grafted) == {"libprotobuf-c", "libunwind", "liblzma"}, sorted(objects)
    dynamic = run(["readelf", "-d", str(core)]).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+)\]", dynamic)
    assert "Library rpath: [$ORIGIN/../cprof.libs]" in dynamic, dynamic
    for lib in ("libprotobuf-c", "libunwind"):
        assert grafted[lib].name in needed, (lib, needed)
    # zlib is one of the libraries every manylinux system has: the wheel uses the system's.
    assert "libz.so.1" in needed


@pytest.mark.parametrize("version", VERSIONS)
def test_shared_objects_are_stripped_and_keep_their_build_ids(
        version: str, wheels: dict[str, Path], tmp_path: Path) -> None:
    objects = unpack(wheels[version], tmp_path)
    assert len(objects) == 4, sorted(objects)
    for name, path in objects.items():
        notes = run(["readelf", "-n", str(path)]).stdout
        assert re.search(r"Build ID: [0-9a-f]{40}", notes), (name, notes)
        sections = run(["readelf", "-S", "-W", str(path)]).stdout
        assert ".debug_" not in sections, (name, sections)
        if name.startswith("_core."):
            assert ".symtab" in sections, sections  # static functions keep their names
    assert wheels[version].stat().st_size < 1_000_000


def system_copies() -> list[str]:
    """The system's protobuf-c and libunwind files, each once."""
    files = set()
    for pattern in ("libprotobuf-c.so*", "libunwind*.so*"):
        for d in ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu"):
            files.update(os.path.realpath(p) for p in glob.glob(os.path.join(d, pattern)))
    return sorted(files)


def hidden(cmd: list[str]) -> list[str]:
    """cmd in a private mount namespace where /dev/null is mounted over every
    system copy of protobuf-c and libunwind: loading one fails. The mounts
    vanish with the namespace."""
    script = 'IFS=:; for f in $HIDE; do mount --bind /dev/null "$f" || exit 90; done; exec "$0" "$@"'
    files = system_copies()
    assert files, "the host has no protobuf-c or libunwind to hide"
    return ["unshare", "--mount", "--propagation", "private", "env", "HIDE=" + ":".join(files),
            "bash", "-c", script, *cmd]


def interpreter(version: str) -> str:
    r = run(["bash", str(ROOT / ".ci" / "python.sh"), version])
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def judge(result: dict[str, object], venv: str) -> None:
    """What wheel_program.py check printed, from a wheel installed in venv."""
    assert str(result["core"]).startswith(venv), result["core"]
    assert result["version"] == version_of_cprof()
    assert result["bench_hooks"] is False  # a production build
    assert str(result["cpu_top"]).endswith(".hot"), result
    assert float(result["cpu_top_pct"]) > 60, result  # type: ignore[arg-type]
    # Native frames: deflate's C time, unwound by the wheel's libunwind, under
    # the Python function that called it, with the libraries' build ids.
    assert float(result["native_deflate_share"]) > 0.5, result  # type: ignore[arg-type]
    assert float(result["native_under_compress"]) > 0.9, result  # type: ignore[arg-type]
    assert result["native_build_ids"], result
    # The bytes are made by the C type allocate calls: named as its leaf.
    assert result["heap_top"] == "builtins.bytes", result
    assert float(result["heap_top_pct"]) > 90, result  # type: ignore[arg-type]
    assert float(result["heap_under_allocate"]) > 0.9, result  # type: ignore[arg-type]
    libraries = result["libraries"]
    assert isinstance(libraries, list) and len(libraries) == 2, libraries
    assert all(lib.startswith(venv) and "/cprof.libs/" in lib for lib in libraries), libraries


def test_hiding_the_system_libraries_works() -> None:
    r = run(hidden([sys.executable, "-c", "import ctypes; ctypes.CDLL('libunwind.so.8')"]))
    assert r.returncode != 0 and "libunwind.so.8" in r.stderr, r.stderr
    r = run(hidden([sys.executable, "-c", "import ctypes; ctypes.CDLL('libz.so.1')"]))
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("version", VERSIONS)
def test_wheel_works_with_the_system_libraries_hidden(version: str, wheels: dict[str, Path],
                                                      tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    r = run([interpreter(version), "-m", "venv", str(venv)])
    assert r.returncode == 0, r.stderr
    r = run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index",
             "--disable-pip-version-check", str(wheels[version])])
    assert r.returncode == 0, r.stderr
    r = run(hidden([str(venv / "bin" / "python"), str(PROGRAM), "check"]), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    judge(json.loads(r.stdout), str(venv))


@pytest.fixture(scope="module")
def bare_root() -> Path:
    """A minimal Debian 12 with python3 and python3-venv (cached by .ci/root.sh)."""
    r = run(["bash", str(ROOT / ".ci" / "root.sh"), *BARE_ROOT])
    assert r.returncode == 0, r.stderr[-3000:]
    root = Path(r.stdout.strip())
    listing = run(["chroot", str(root), "dpkg-query", "-W", "-f", "${Package}\\n"]).stdout.split()
    assert "python3-venv" in listing
    for absent in ("gcc", "cpp", "libc6-dev", "libprotobuf-c1", "libunwind8", "python3-dev"):
        assert absent not in listing, absent
    return root


BARE_SCRIPT = """
cd /job
python3 -m venv venv
venv/bin/pip install -q --no-index --disable-pip-version-check {wheel}
venv/bin/cprof --version >version.txt
venv/bin/cprof record -o app.prof -- venv/bin/python wheel_program.py 1.5 2>record.txt
venv/bin/cprof top app.prof -n 3 >top.txt
venv/bin/cprof flame app.prof -o app.html
venv/bin/python wheel_program.py check >check.json
"""


def test_wheel_on_a_bare_debian_12(bare_root: Path, wheels: dict[str, Path]) -> None:
    """In the bare root (chroot), with no network (a new network namespace)
    and /proc mounted in a private mount namespace that takes it away on
    exit: a venv, pip install --no-index of the 3.11 wheel, and cprof's
    commands and collectors on wheel_program.py."""
    job = bare_root / "job"
    shutil.rmtree(job, ignore_errors=True)
    job.mkdir()
    try:
        shutil.copy(wheels["3.11"], job)
        shutil.copy(PROGRAM, job)
        script = BARE_SCRIPT.format(wheel=wheels["3.11"].name)
        r = run(["unshare", "--mount", "--net", "--propagation", "private", "sh", "-c",
                 'mount -t proc proc "$0/proc" && exec chroot "$0" /usr/bin/env -i '
                 'PATH=/usr/bin:/bin HOME=/root LANG=C.UTF-8 /bin/sh -ex -c "$1"',
                 str(bare_root), script], env={"PATH": os.environ["PATH"]})
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        assert (job / "version.txt").read_text() == f"cprof {version_of_cprof()}\n"
        rows = [line.split() for line in (job / "top.txt").read_text().splitlines()
                if line.endswith(("__main__.hot", "__main__.cold", "__main__.<module>"))]
        assert rows[0][-1] == "__main__.hot", rows
        assert float(rows[0][1].rstrip("%")) > 60, rows
        record = (job / "record.txt").read_text()  # what cprof record says on stderr
        assert "cprof: wrote app.prof" in record and "__main__.hot" in record, record
        page = (job / "app.html").read_text()
        assert page.startswith("<!DOCTYPE html>") and "__main__.hot" in page
        judge(json.loads((job / "check.json").read_text()), "/job/venv")
    finally:
        shutil.rmtree(job, ignore_errors=True)
    assert not (bare_root / "proc" / "self").exists()  # the mount went with its namespace
