"""Build cprof's C extension, cprof._core, from csrc/.

Libraries come from pkg-config; when one is missing the build stops and names
the Debian package that provides it. CPROF_SANITIZE=1 builds with
AddressSanitizer + UndefinedBehaviorSanitizer (.ci/test.sh runs the suite
once so). CPROF_PRETEND_UNKNOWN=1 builds as for an interpreter cprof does not
know (no frame walk; the collectors refuse), for the tests of that case.
CPROF_BENCH=1 compiles in the benchmark hooks (_core.measure_record_ns), which
a production build leaves out; .ci/venv.sh builds the test venvs so.
"""

import glob
import os
import shutil
import subprocess
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# pkg-config name -> (header it provides, Debian package to install)
REQUIRED = {
    "libprotobuf-c": ("protobuf-c/protobuf-c.h", "libprotobuf-c-dev"),
    "zlib": ("zlib.h", "zlib1g-dev"),
    "libunwind": ("libunwind.h", "libunwind-dev"),
}

# The C core's layers (csrc/*/README.md) and protobuf-c's generated code;
# csrc/fuzz holds a separate program. Includes name their folder from csrc/.
LAYERS = ("common", "codec", "analysis", "collect", "module", "proto")
SOURCES = [path for layer in LAYERS for path in sorted(glob.glob(f"csrc/{layer}/*.c"))]
HEADERS = [path for layer in LAYERS for path in sorted(glob.glob(f"csrc/{layer}/*.h"))]


def fail(message: str) -> None:
    sys.stderr.write(f"\ncprof build error: {message}\n\n")
    raise SystemExit(1)


def pkg_config(name: str, header: str, package: str) -> tuple[list[str], list[str]]:
    if shutil.which("pkg-config") is None:
        fail("pkg-config is not installed: run `apt-get install pkg-config`.")
    probe = subprocess.run(["pkg-config", "--exists", name])
    if probe.returncode != 0:
        fail(f"{name} was not found by pkg-config (it provides <{header}>): "
             f"run `apt-get install {package}`.")
    cflags = subprocess.check_output(["pkg-config", "--cflags", name], text=True).split()
    libs = subprocess.check_output(["pkg-config", "--libs", name], text=True).split()
    return cflags, libs


def multiarch_include() -> list[str]:
    """Debian's <pythonX.Y/pyconfig.h> includes <MULTIARCH/pythonX.Y/pyconfig.h>,
    which a Debian interpreter unpacked outside /usr keeps beside its headers."""
    include = sysconfig.get_paths()["include"]
    parent = os.path.dirname(include)
    multiarch = sysconfig.get_config_var("MULTIARCH")
    if parent == "/usr/include" or not multiarch:
        return []
    if os.path.exists(os.path.join(parent, multiarch, os.path.basename(include), "pyconfig.h")):
        return [parent]
    return []


def extension() -> Extension:
    cflags = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden", "-pthread"]
    ldflags: list[str] = ["-pthread"]
    for name, (header, package) in REQUIRED.items():
        more_cflags, libs = pkg_config(name, header, package)
        cflags += more_cflags
        ldflags += libs
    if os.environ.get("CPROF_SANITIZE") == "1":
        san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all",
               "-fno-omit-frame-pointer", "-g", "-O1"]
        cflags += san
        ldflags += san
    if os.environ.get("CPROF_PRETEND_UNKNOWN") == "1":
        cflags.append("-DCPROF_PRETEND_UNKNOWN")
    if os.environ.get("CPROF_BENCH") == "1":
        cflags.append("-DCPROF_BENCH_HOOKS")
    return Extension(
        "cprof._core",
        sources=SOURCES,
        include_dirs=["csrc", *multiarch_include()],
        extra_compile_args=cflags,
        extra_link_args=ldflags,
        depends=HEADERS,
    )


class BuildExt(build_ext):
    """build_ext compiling one extension's sources side by side, one per
    CPU this process may run on (or -j N), where setuptools compiles them one
    after another: the 34 files build in about half the time on 2 CPUs."""

    def build_extension(self, ext: Extension) -> None:
        jobs = self.parallel or len(os.sched_getaffinity(0))  # -j N, as an int
        compiler = self.compiler
        compile_one = compiler.compile

        def compile_all(sources: list[str], *args: Any, **kwargs: Any) -> list[str]:
            if jobs < 2 or len(sources) < 2:
                return compile_one(sources, *args, **kwargs)
            with ThreadPoolExecutor(jobs) as pool:  # each compiler runs in a subprocess
                done = pool.map(lambda source: compile_one([source], *args, **kwargs), sources)
                return [obj for objects in done for obj in objects]

        compiler.compile = compile_all
        try:
            super().build_extension(ext)
        finally:
            compiler.compile = compile_one


setup(ext_modules=[extension()], cmdclass={"build_ext": BuildExt})
