"""Native stacks (cpu(native=True)): C frames unwound by libunwind in the
signal handler, each interpreter call replaced by its Python frames, named
after the fact from the ELF symbols; judged on an extension built here with
a static hot function that calls back into Python, and on zlib, hashlib and
NumPy."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import zlib
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import numpy as np
import pytest

import cprof
from cpu_helpers import run_python
from gotools import pprof_raw, pprof_top

EXTENSION = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static volatile double sink;

/* Static: only the ELF symbol table (.symtab) names it. */
__attribute__((noinline)) static double hot_static(long n)
{
    double x = 0;
    for (long i = 0; i < n; i++)
        x += (double)i * 1.0000001;
    sink = x;
    return x;
}

__attribute__((noinline)) static PyObject *call_back_static(PyObject *callback)
{
    return PyObject_CallNoArgs(callback);
}

static PyObject *spin(PyObject *self, PyObject *arg)
{
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    return PyFloat_FromDouble(hot_static(n));
}

static PyObject *run(PyObject *self, PyObject *args)
{
    PyObject *callback;
    long n;
    if (!PyArg_ParseTuple(args, "Ol", &callback, &n))
        return NULL;
    hot_static(n);
    return call_back_static(callback);
}

static PyMethodDef methods[] = {
    {"spin", spin, METH_O, "spin(n): burn CPU in a static C function"},
    {"run", run, METH_VARARGS, "run(callback, n): burn CPU, then call back into Python"},
    {NULL, NULL, 0, NULL},
};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "nativehot", NULL, -1, methods};

PyMODINIT_FUNC PyInit_nativehot(void)
{
    return PyModule_Create(&module);
}
"""


@pytest.fixture(scope="module")
def nativehot(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """An extension built here (gcc, unstripped, frame pointers or not as
    the compiler likes: libunwind follows the DWARF call frame info)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.fail("gcc not found: it builds cprof and this test's extension "
                    "(apt-get install build-essential)", pytrace=False)
    d = tmp_path_factory.mktemp("nativehot")
    (d / "nativehot.c").write_text(EXTENSION)
    target = d / f"nativehot{sysconfig.get_config_var('EXT_SUFFIX')}"
    include = sysconfig.get_paths()["include"]
    # Debian's pyconfig.h includes <MULTIARCH/pythonX.Y/pyconfig.h>, which an
    # interpreter unpacked outside /usr keeps beside its headers (setup.py too).
    subprocess.run([gcc, "-shared", "-fPIC", "-O1", f"-I{include}", f"-I{os.path.dirname(include)}",
                    "-o", str(target), str(d / "nativehot.c")], check=True)
    spec = importlib.util.spec_from_file_location("nativehot", target)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def names(s: cprof.Sample) -> list[str]:
    return [loc.lines[0].function.name for loc in s.locations if loc.lines and
            loc.lines[0].function is not None]


def profile_of(work: Callable[[], Any], seconds: float = 1.5) -> cprof.Profile:
    with cprof.cpu(hz=1000, native=True) as c:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            work()
    assert c.profile is not None
    return c.profile


def py_inner(mod: ModuleType) -> None:
    mod.spin(3_000_000)


def py_outer(mod: ModuleType) -> None:
    mod.run(lambda: py_inner(mod), 3_000_000)


def interpreter_unnamed() -> set[str]:
    """How the interpreter's functions that no symbol names come out: none
    where its binary keeps its symbol table (pyenv's), the binary's name where
    it is stripped and only exports are named (Debian's)."""
    exe = os.path.realpath(sys.executable)
    sections = subprocess.run(["readelf", "-S", "-W", exe], capture_output=True, text=True)
    return set() if ".symtab" in sections.stdout else {f"[{os.path.basename(exe)}]"}


def test_python_c_python_c_in_true_order(nativehot: ModuleType) -> None:
    p = profile_of(lambda: py_outer(nativehot))
    ours = {"hot_static", "spin", "run", "call_back_static", "test_native.py_inner",
            "test_native.py_outer"}
    shapes: dict[tuple[str, ...], int] = {}
    for s in p.samples:
        stack = names(s)
        if stack and stack[0] == "hot_static":
            shape = tuple(n for n in stack if n in ours)
            shapes[shape] = shapes.get(shape, 0) + s.values[0]
    inner = ("hot_static", "spin", "test_native.py_inner", "call_back_static", "run",
             "test_native.py_outer")
    outer = ("hot_static", "run", "test_native.py_outer")
    total = sum(shapes.values())
    assert total > 200, shapes
    # Every sample in the static function has one of the two true stacks.
    assert set(shapes) <= {inner, outer}, shapes
    assert shapes.get(inner, 0) > 0.3 * total and shapes.get(outer, 0) > 0.3 * total, shapes
    # The interpreter's own C frames stand between them (or none, where its
    # specialized call instructions call the C function directly), named.
    sample = next(s for s in p.samples if tuple(n for n in names(s) if n in ours) == inner)
    stack = names(sample)
    between = stack[stack.index("spin") + 1:stack.index("test_native.py_inner")]
    between += stack[stack.index("call_back_static") + 1:stack.index("test_native.py_outer")]
    unnamed = interpreter_unnamed()
    assert all(n in unnamed or not n.startswith(("0x", "[")) for n in between), stack
    assert "test_native.py_outer.<locals>.<lambda>" in stack


def test_native_locations_have_addresses_and_real_mappings(nativehot: ModuleType,
                                                           tmp_path: Path) -> None:
    p = profile_of(lambda: py_outer(nativehot), 1.0)
    native = [loc for loc in p.locations if loc.address]
    assert native
    for loc in native:
        m = loc.mapping
        assert m is not None and m.start <= loc.address < m.limit, (hex(loc.address), m)
        assert m.has_functions and m.filename
    ours = next(loc for loc in native if loc.lines[0].function.name == "hot_static")
    assert ours.mapping is not None and ours.mapping.filename.endswith(
        f"nativehot{sysconfig.get_config_var('EXT_SUFFIX')}")
    assert len(ours.mapping.build_id) == 40  # gcc's default: a SHA-1 build id
    # go tool pprof reads it all: names without symbolizing, mappings with build ids.
    path = tmp_path / "native.prof"
    p.write(path)
    top = pprof_top(path)
    assert "hot_static" in top.text
    raw = pprof_raw(path)
    assert any(ours.mapping.build_id in line for line in raw.mappings), raw.mappings


DATA = os.urandom(1 << 20)


def compresses() -> None:
    zlib.compress(DATA, 9)


def digests() -> None:
    for _ in range(20):
        hashlib.sha256(DATA).digest()


def sorts() -> None:
    np.sort(np.random.default_rng(0).random(300_000))


# zlib's module function is named from the module's symbol table; Debian's
# interpreters build zlib in and are stripped (their debug symbols are in an
# archive these machines cannot reach), so there the frame is the binary's.
ZLIB_MODULE = ("zlib_compress" if getattr(zlib, "__file__", None)
               else f"[{os.path.basename(os.path.realpath(sys.executable))}]")


@pytest.mark.parametrize("work, python, native", [
    (compresses, "test_native.compresses", {"deflate", ZLIB_MODULE}),
    (digests, "test_native.digests", {"SHA256_Update"}),
    (sorts, "test_native.sorts", {"PyArray_Sort"}),
])
def test_zlib_hashlib_and_numpy_frames_are_named(work: Callable[[], None], python: str,
                                                  native: set[str]) -> None:
    p = profile_of(work, 1.0)
    under = [names(s) for s in p.samples if python in names(s)]
    assert under
    seen = {n for stack in under for n in stack[:stack.index(python)]}
    assert native <= seen, sorted(seen)[:40]
    # ... and C frames come before (inside) the Python function that called them.
    deepest = max(under, key=lambda st: st.index(python))
    assert deepest.index(python) > 0


def test_without_native_there_are_no_c_frames() -> None:
    with cprof.cpu(hz=1000) as c:
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            compresses()
    assert c.profile is not None
    assert all(loc.address == 0 for loc in c.profile.locations)


def test_cprof_record_native(tmp_path: Path) -> None:
    (tmp_path / "work.py").write_text(
        "import os, time, zlib\n"
        "data = os.urandom(1 << 20)\n"
        "end = time.monotonic() + 1\n"
        "while time.monotonic() < end:\n"
        "    zlib.compress(data, 9)\n")
    r = subprocess.run([sys.executable, "-m", "cprof", "record", "--native", "--hz", "500",
                        "-o", "w.prof", "--", "work.py"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    p = cprof.load(tmp_path / "w.prof")
    assert p.share("deflate") > 0.5
    # Cut at the program's __main__ as without --native: neither cprof's frames
    # nor the C frames of the exec that ran the program lie below it.
    assert all("cprof.cli.main" not in names(s) for s in p.samples)
    for s in p.samples:
        if "deflate" in names(s):
            assert names(s)[-1] == "__main__.<module>", names(s)
    # Native functions carry no file name: pprof would list the library as source.
    assert all(loc.lines[0].function.filename == "" for loc in p.locations if loc.address)


def test_native_profiles_in_a_fresh_process(tmp_path: Path) -> None:
    r = run_python("""
        import os, time, zlib, cprof
        data = os.urandom(1 << 20)
        with cprof.cpu(hz=500, native=True) as c:
            end = time.monotonic() + 0.5
            while time.monotonic() < end:
                zlib.compress(data, 9)
        print(round(c.profile.share("deflate"), 2))
        """, tmp_path)
    assert r.returncode == 0, r.stderr
    assert float(r.stdout) > 0.5


def qsort_in_c(libc: Any, array: Any, compare: Any) -> None:
    libc.qsort(array, len(array), 4, compare)


def py_compare(a: Any, b: Any) -> int:
    return int(a[0] - b[0])


def test_c_calling_python_through_ctypes_and_libc(tmp_path: Path) -> None:
    """libc's qsort calling a Python comparison: libc's static sort (named
    from the debug file Debian's libc6-dbg installs, found by build id) in
    its place between the Python frames."""
    import ctypes
    libc = ctypes.CDLL(None)
    compare = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int),
                               ctypes.POINTER(ctypes.c_int))(py_compare)
    array = (ctypes.c_int * 2000)(*range(2000, 0, -1))
    p = profile_of(lambda: qsort_in_c(libc, array, compare), 1.0)
    # Debian 12's glibc has its debug file from libc6-dbg (.ci/deps.sh); the
    # newer glibc that Debian sid's 3.14 and 3.15 run on has none reachable
    # here, so its static sort is named after its file.
    sort = "msort_with_tmp" if os.confstr("CS_GNU_LIBC_VERSION") == "glibc 2.36" else "[libc.so.6]"
    ours = ("test_native.py_compare", sort, "qsort_r", "ffi_call", "test_native.qsort_in_c")
    shapes: dict[tuple[str, ...], int] = {}
    leaves: dict[str, int] = {}
    for s in p.samples:
        stack = [n.split(".part.")[0] for n in names(s)]
        leaves[stack[0] if stack else "-"] = leaves.get(stack[0] if stack else "-", 0) + 1
        # In py_compare, or in a C function it calls (int, ctypes' item
        # access: collect/leaf.py names those at the leaf).
        if "test_native.py_compare" in stack:
            shape = tuple(dict.fromkeys(n for n in stack if n in ours))
            shapes[shape] = shapes.get(shape, 0) + 1
    assert shapes, f"no sample in py_compare; the leaves: {leaves}"
    # The true stack, and nothing out of order. (Under ASan, whose qsort
    # interceptor sorts for itself, some stacks have no libc sort frames.)
    assert max(shapes, key=lambda k: shapes[k]) == ours, shapes
    for shape in shapes:
        assert shape[0] == ours[0] and shape[-1] == ours[-1], shape
        assert list(shape) == [n for n in ours if n in shape], shape


def test_cxx_names_are_demangled_and_keep_their_linker_names() -> None:
    p = profile_of(sorts, 1.0)
    cxx = [loc.lines[0].function for loc in p.locations
           if loc.address and loc.lines[0].function.system_name.startswith("_Z")]
    assert cxx, "NumPy's sort is C++: some of its frames should have mangled linker names"
    for f in cxx:  # demangled: a name and its parameters, e.g. "ns::f<T>(double*, long)"
        assert f.name != f.system_name and not f.name.startswith("_Z") and "(" in f.name, f
