"""Packaging: the sdist and wheel install into a fresh virtual environment and
work there, without the benchmark hooks; a missing build dependency stops the
build with the Debian package to install."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

# Each test builds and judges a plain distribution of its own.
pytestmark = pytest.mark.uninstrumented

ROOT = Path(__file__).resolve().parents[2]
CPU_PROFILE = ROOT / "tests" / "testdata" / "go" / "cpu.prof"


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    # A fresh environment must see only what it installed, not PYTHONPATH.
    kw.setdefault("env", {k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    # As a user builds them: without CPROF_BENCH, whatever this run's environment,
    # and the wheel from the sdist (from the checkout, setuptools would take the
    # extension that build/ holds from the last .ci/venv.sh).
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CPROF_BENCH")}
    r = run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], cwd=out, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    wheel = next(out.glob("cprof-*.whl"))
    sdist = next(out.glob("cprof-*.tar.gz"))
    return {"wheel": wheel, "sdist": sdist}


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_distribution_installs_and_works(kind: str, dists: dict[str, Path], tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = str(env_dir / "bin" / "python")
    r = run([python, "-m", "pip", "install", "-q", str(dists[kind])])
    assert r.returncode == 0, r.stderr[-3000:]
    script = (
        "import cprof, cprof.export.flamegraph, sys\n"
        "p = cprof.load(sys.argv[1])\n"
        "assert cprof.__file__.startswith(sys.prefix), cprof.__file__\n"
        "print(p.total(), len(p.samples), sorted(cprof.__all__)[:3])\n")
    r = run([python, "-c", script, str(CPU_PROFILE)], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == "1490000000"
    r = run([str(env_dir / "bin" / "cprof"), "summary", str(CPU_PROFILE)], cwd=tmp_path)
    assert r.returncode == 0 and "main.hotA" in r.stdout, r.stderr
    # pytest finds the plugin through its entry point.
    r = run([python, "-c", "import importlib.metadata as m; print([e.value for e in "
             "m.entry_points(group='pytest11') if e.name == 'cprof'])"], cwd=tmp_path)
    assert r.stdout.strip() == "['cprof.ci.pytest_plugin']", r.stderr


def suite_versions() -> list[str]:
    """The CPython versions .ci/test.sh runs the suite on by default."""
    text = (ROOT / ".ci" / "test.sh").read_text()
    match = re.search(r'versions=\$\{CPROF_PYTHONS:-"([0-9. ]+)"\}', text)
    assert match, "no default version list in .ci/test.sh"
    return match.group(1).split()


def test_license_and_metadata_travel_in_wheel_and_sdist(dists: dict[str, Path]) -> None:
    """A release's hygiene: the BSD-3-Clause text in both, the version of
    cprof/_version.py, the optional parts as extras, project URLs, and a
    classifier for each CPython version the suite runs on, and no other."""
    import tarfile
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.startswith("BSD 3-Clause License")
    with zipfile.ZipFile(dists["wheel"]) as wheel:
        info = next(n.split("/")[0] for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        assert wheel.read(f"{info}/licenses/LICENSE").decode() == license_text
        metadata = wheel.read(f"{info}/METADATA").decode()
    with tarfile.open(dists["sdist"]) as tar:
        top = tar.getnames()[0].split("/")[0]
        sdist_license = tar.extractfile(f"{top}/LICENSE")
        assert sdist_license is not None and sdist_license.read().decode() == license_text
    version = re.search(r'__version__ = "(.+)"', (ROOT / "cprof" / "_version.py").read_text())
    assert version and f"\nVersion: {version.group(1)}\n" in metadata
    assert "\nLicense-Expression: BSD-3-Clause\n" in metadata
    assert "\nLicense-File: LICENSE\n" in metadata
    for extra, needs in (("pandas", "pandas>=1.5"), ("jupyter", "ipython>=8")):
        assert f"\nProvides-Extra: {extra}\n" in metadata
        assert f'\nRequires-Dist: {needs}; extra == "{extra}"\n' in metadata
    assert re.findall(r"(?m)^Project-URL: (\w+),", metadata) == [
        "Homepage", "Documentation", "Source", "Issues"]
    classified = re.findall(r"(?m)^Classifier: Programming Language :: Python :: (3\.\d+)$", metadata)
    assert classified == suite_versions()
    # cprof needs nothing beyond the standard library.
    assert [line for line in metadata.splitlines()
            if line.startswith("Requires-Dist:") and "extra ==" not in line] == []


def test_sdist_carries_the_c_sources_and_proto(dists: dict[str, Path]) -> None:
    import tarfile
    with tarfile.open(dists["sdist"]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for needed in ("csrc/codec/pprof.c", "csrc/codec/pprof.h", "csrc/codec/gzip.c",
                   "csrc/common/errors.h", "csrc/analysis/paths.c", "csrc/analysis/graph.h",
                   "csrc/collect/compat.h", "csrc/module/init.c",
                   "csrc/module/module.h", "csrc/proto/profile.proto",
                   "csrc/proto/profile.pb-c.c", "setup.py", "cprof/py.typed", "cprof/_core.pyi",
                   "LICENSE"):
        assert needed in names, needed


def test_wheel_leaves_the_benchmark_hooks_out(dists: dict[str, Path], tmp_path: Path) -> None:
    """measure_record_ns is compiled only with CPROF_BENCH=1: the wheel's
    _core, imported from the unpacked wheel, has the sampler but not the hook."""
    with zipfile.ZipFile(dists["wheel"]) as wheel:
        wheel.extractall(tmp_path)
    r = run([sys.executable, "-c", "from cprof import _core; print(_core.__file__, "
             "hasattr(_core, 'cpu_start'), hasattr(_core, 'measure_record_ns'))"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    where, has_sampler, has_hook = r.stdout.split()
    assert where.startswith(str(tmp_path)), where
    assert (has_sampler, has_hook) == ("True", "False")


def build_with_pkgconfig_in(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """setup.py build_ext with pkg-config looking only in tmp_path."""
    env = dict(os.environ, PKG_CONFIG_LIBDIR=str(tmp_path), PKG_CONFIG_PATH=str(tmp_path))
    return run([sys.executable, "setup.py", "build_ext", "--build-temp", str(tmp_path / "t"),
                "--build-lib", str(tmp_path / "l")], cwd=ROOT, env=env)


def test_missing_library_names_the_debian_package(tmp_path: Path) -> None:
    r = build_with_pkgconfig_in(tmp_path)
    assert r.returncode != 0
    assert "libprotobuf-c was not found by pkg-config" in r.stderr
    assert "apt-get install libprotobuf-c-dev" in r.stderr


def test_missing_libunwind_names_its_debian_package(tmp_path: Path) -> None:
    """With the codec's libraries found and libunwind not, the build says
    which package gives libunwind."""
    for name in ("libprotobuf-c", "zlib"):
        pc = subprocess.run(["pkg-config", "--path", name], capture_output=True, text=True,
                            check=True).stdout.strip()
        (tmp_path / os.path.basename(pc)).write_text(Path(pc).read_text())
    r = build_with_pkgconfig_in(tmp_path)
    assert r.returncode != 0
    assert "libunwind was not found by pkg-config" in r.stderr
    assert "apt-get install libunwind-dev" in r.stderr
