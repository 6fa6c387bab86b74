"""Native addresses of this process resolved to mappings and ELF function names (cprof.elfsym)."""

from __future__ import annotations

import ctypes
import itertools
import os
import re
import shutil
import subprocess
import zlib
from pathlib import Path
from typing import Callable

import pytest
from hypothesis import given, settings, strategies as st

from cprof.collect.elfsym import MappedObject, Symbolizer, executable_mappings

LIB_C = """
static int hidden(int x) { return x * 3 + 1; }
int exported(int x) { return hidden(x) + 1; }
void *hidden_address(void) { return (void *)&hidden; }
__asm__(".text\\n"
        ".globl outer\\n.type outer, @function\\nouter:\\n nop\\n nop\\n"
        ".type label, @function\\nlabel:\\n nop\\n"
        ".type inner, @function\\ninner:\\n nop\\n ret\\n.size inner, .-inner\\n"
        " nop\\n ret\\n.size outer, .-outer\\n");
"""
BASE = 0x7F00_0000_0000  # where the fixed-mapping tests pretend a library was loaded


def run(*argv: str) -> str:
    if shutil.which(argv[0]) is None:
        pytest.fail(f"{argv[0]} is not installed: gcc and binutils are build dependencies of cprof")
    done = subprocess.run(argv, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(argv)} failed:\n{done.stderr}"
    return done.stdout


def readelf_build_id(path: str) -> str:
    match = re.search(r"Build ID: ([0-9a-f]+)", run("readelf", "-n", path))
    assert match, f"readelf found no build id in {path}"
    return match.group(1)


def readelf_symbols(path: str) -> dict[str, tuple[int, int]]:
    """name -> (value, size) of the FUNC symbols of .symtab, as readelf prints them."""
    out = {}
    for line in run("readelf", "-sW", path).splitlines():
        fields = line.split()
        if len(fields) >= 8 and fields[3] == "FUNC" and fields[6] != "UND":
            out[fields[7].split("@")[0]] = (int(fields[1], 16), int(fields[2], 0))
    return out


def text_segment(path: str) -> tuple[int, int, int]:
    """(p_offset, p_vaddr, p_filesz) of the executable PT_LOAD segment."""
    for line in run("readelf", "-lW", path).splitlines():
        fields = line.split()
        if fields[:1] == ["LOAD"] and "E" in fields[6:-1]:
            return int(fields[1], 16), int(fields[2], 16), int(fields[4], 16)
    raise AssertionError(f"no executable segment in {path}")


def address(function: ctypes._FuncPointer) -> int:
    value = ctypes.cast(function, ctypes.c_void_p).value
    assert value is not None
    return value


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A tiny shared library with a static function, a stripped copy and a non-PIE program."""
    d = tmp_path_factory.mktemp("elfsym")
    (d / "lib.c").write_text(LIB_C)
    (d / "prog.c").write_text("int main(void) { return 0; }\n")
    run("gcc", "-shared", "-fPIC", "-O0", "-o", str(d / "lib.so"), str(d / "lib.c"))
    run("gcc", "-shared", "-fPIC", "-O0", "-o", str(d / "late.so"), str(d / "lib.c"))
    run("gcc", "-no-pie", "-O0", "-o", str(d / "prog"), str(d / "prog.c"))
    shutil.copy(d / "lib.so", d / "stripped.so")
    run("strip", "--strip-all", str(d / "stripped.so"))
    return {name: str(d / name) for name in ("lib.so", "late.so", "stripped.so", "prog")}


def test_libpython_function_and_an_address_inside_it() -> None:
    malloc = address(ctypes.pythonapi.PyObject_Malloc)
    s = Symbolizer()
    assert s.symbol(malloc) == ("PyObject_Malloc", malloc)
    assert s.symbol(malloc + 5) == ("PyObject_Malloc", malloc)


def test_libc_getpid_by_its_public_name() -> None:
    getpid = address(ctypes.CDLL(None).getpid)
    assert Symbolizer().symbol(getpid) == ("getpid", getpid)


def test_zlib_deflate() -> None:
    assert zlib.compress(b"x")
    libz = [m.path for m in executable_mappings() if os.path.basename(m.path).startswith("libz.so")]
    assert libz, "the zlib module is expected to load libz.so"
    deflate = address(ctypes.CDLL(libz[0]).deflate)
    assert Symbolizer().symbol(deflate + 1) == ("deflate", deflate)


def test_static_function_comes_from_symtab(built: dict[str, str]) -> None:
    lib = ctypes.CDLL(built["lib.so"])
    lib.hidden_address.restype = ctypes.c_void_p
    hidden = lib.hidden_address()
    s = Symbolizer()
    assert s.symbol(hidden) == ("hidden", hidden)
    assert s.symbol(hidden + 4) == ("hidden", hidden)
    assert s.symbol(address(lib.exported)) == ("exported", address(lib.exported))
    m = s.mapping(hidden)
    assert m is not None and m.path == os.path.realpath(built["lib.so"])
    assert m.start <= hidden < m.limit
    assert m.offset == text_segment(built["lib.so"])[0] & ~0xFFF
    assert m.build_id == readelf_build_id(built["lib.so"])


def test_stripped_library_resolves_exported_functions_only(built: dict[str, str]) -> None:
    lib = ctypes.CDLL(built["stripped.so"])
    lib.hidden_address.restype = ctypes.c_void_p
    s = Symbolizer()
    assert s.symbol(lib.hidden_address()) is None
    assert s.symbol(address(lib.exported)) == ("exported", address(lib.exported))
    assert s.symbol(address(lib.hidden_address)) == ("hidden_address", address(lib.hidden_address))


def test_refresh_sees_libraries_loaded_later(built: dict[str, str]) -> None:
    s = Symbolizer()
    lib = ctypes.CDLL(built["late.so"])
    exported = address(lib.exported)
    assert s.mapping(exported) is None and s.symbol(exported) is None
    s.refresh()
    assert s.symbol(exported) == ("exported", exported)


def test_libc_build_id_matches_readelf() -> None:
    getpid = address(ctypes.CDLL(None).getpid)
    m = Symbolizer().mapping(getpid)
    assert m is not None and os.path.basename(m.path) == "libc.so.6"
    assert m.build_id == readelf_build_id(m.path)
    assert m in executable_mappings()


def text_at(path: str, base: int) -> MappedObject:
    """The mapping of path's text segment if the file were loaded at base."""
    offset, vaddr, size = text_segment(path)
    return MappedObject(base + vaddr - vaddr % 0x1000, base + vaddr + size, offset - offset % 0x1000, path, "")


def test_bias_of_a_shared_library_at_any_base(built: dict[str, str]) -> None:
    m = text_at(built["lib.so"], BASE)
    s = Symbolizer([m])
    symbols = readelf_symbols(built["lib.so"])
    hidden = BASE + symbols["hidden"][0]
    assert s.symbol(hidden + 3) == ("hidden", hidden)
    assert s.mapping(hidden) == MappedObject(m.start, m.limit, m.offset, m.path, readelf_build_id(m.path))


def test_nested_and_unsized_symbols(built: dict[str, str]) -> None:
    s = Symbolizer([text_at(built["lib.so"], BASE)])
    symbols = readelf_symbols(built["lib.so"])
    (outer, outer_size), (inner, inner_size), (label, label_size) = (
        symbols["outer"], symbols["inner"], symbols["label"])
    assert (outer_size, inner_size, label_size) == (7, 2, 0)
    assert s.symbol(BASE + inner + 1) == ("inner", BASE + inner)
    assert s.symbol(BASE + inner + inner_size) == ("outer", BASE + outer)  # past inner, still in outer
    assert s.symbol(BASE + label) == ("outer", BASE + outer)  # a sized symbol beats an unsized one
    # _init has size 0: it covers up to the next symbol, only for want of a sized one.
    assert symbols["_init"][1] == 0
    assert s.symbol(BASE + symbols["_init"][0] + 2) == ("_init", BASE + symbols["_init"][0])


def test_non_pie_executable_has_bias_zero(built: dict[str, str]) -> None:
    main = readelf_symbols(built["prog"])["main"][0]
    assert Symbolizer([text_at(built["prog"], 0)]).symbol(main + 1) == ("main", main)


def test_executable_mappings_of_handwritten_maps() -> None:
    maps = """\
55d0c0000000-55d0c0001000 r--p 00000000 fe:00 123 /usr/bin/prog
55d0c0001000-55d0c0002000 r-xp 00001000 fe:00 123                        /usr/bin/prog
7f0000000000-7f0000010000 r-xp 00002000 fe:00 456                        /tmp/dir with spaces/lib  two.so
7f0000020000-7f0000030000 rwxp 00000000 00:00 0 
7f0000040000-7f0000041000 r-xp 00000000 00:00 0                          [anon:jit code]
7f0000050000-7f0000052000 r-xp 00003000 fe:00 789                        /opt/old/libgone.so (deleted)
7f0000060000-7f0000061000 rw-p 00000000 00:00 0 
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
not a maps line
7f00000g0000-7f0000071000 r-xp 00000000 00:00 0 /bad/address
"""
    assert executable_mappings(maps) == [
        MappedObject(0x55D0C0001000, 0x55D0C0002000, 0x1000, "/usr/bin/prog", ""),
        MappedObject(0x7F0000000000, 0x7F0000010000, 0x2000, "/tmp/dir with spaces/lib  two.so", ""),
        MappedObject(0x7F0000020000, 0x7F0000030000, 0, "[anon]", ""),
        MappedObject(0x7F0000040000, 0x7F0000041000, 0, "[anon:jit code]", ""),
        MappedObject(0x7F0000050000, 0x7F0000052000, 0x3000, "/opt/old/libgone.so", ""),
        MappedObject(0x7FFD00000000, 0x7FFD00002000, 0, "[vdso]", ""),
        MappedObject(0xFFFFFFFFFF600000, 0xFFFFFFFFFF601000, 0, "[vsyscall]", ""),
    ]
    s = Symbolizer(executable_mappings(maps))
    assert s.mapping(0x7FFD00000010) == MappedObject(0x7FFD00000000, 0x7FFD00002000, 0, "[vdso]", "")
    assert s.symbol(0x7FFD00000010) is None and s.symbol(0x7F0000020010) is None
    assert s.mapping(0x7F0000010000) is None


def test_build_id_only_from_the_file_that_was_mapped(built: dict[str, str]) -> None:
    path = built["lib.so"]
    inode = os.stat(path).st_ino
    line = "7f0000001000-7f0000002000 r-xp 00001000 fe:00 {} {}\n"
    assert executable_mappings(line.format(inode, path))[0].build_id == readelf_build_id(path)
    assert executable_mappings(line.format(inode + 1, path))[0].build_id == ""  # replaced since
    assert executable_mappings(line.format(inode, path + " (deleted)"))[0].build_id == ""


def corrupt(data: bytes, **at: int) -> bytes:
    """data with single bytes replaced: corrupt(b, _4=1) sets byte 4 to 1."""
    out = bytearray(data)
    for key, value in at.items():
        out[int(key[1:])] = value
    return bytes(out)


@pytest.mark.parametrize("make", [
    lambda so: b"",
    lambda so: b"\x7fELF",
    lambda so: b"MZ" + bytes(range(256)) * 8,
    lambda so: so[:64],
    lambda so: so[: len(so) // 2],
    lambda so: corrupt(so, _4=1),  # ELFCLASS32
    lambda so: corrupt(so, _5=2),  # big-endian
    lambda so: so[:40] + b"\xff" * 8 + so[48:],  # e_shoff far past the end
    lambda so: so[:60] + b"\xff\xff" + so[62:],  # e_shnum 65535
], ids=["empty", "magic-only", "not-elf", "header-only", "half", "elf32", "big-endian", "shoff", "shnum"])
def test_malformed_files_give_no_symbols(built: dict[str, str], tmp_path: Path,
                                         make: Callable[[bytes], bytes]) -> None:
    path = tmp_path / "bad.so"
    path.write_bytes(make(Path(built["lib.so"]).read_bytes()))
    s = Symbolizer([MappedObject(BASE, BASE + 0x1000, 0x1000, str(path), "")])
    assert s.symbol(BASE + 0x100) is None
    assert s.mapping(BASE + 0x100) is not None


def test_missing_unreadable_and_special_files(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")  # opening it for reading must not block
    paths = [tmp_path / "missing.so", tmp_path, tmp_path / "fifo", Path("/dev/zero"), Path("/proc/self/maps")]
    s = Symbolizer([MappedObject(BASE + i * 0x1000, BASE + (i + 1) * 0x1000, 0, str(p), "")
                    for i, p in enumerate(paths)])
    for i in range(len(paths)):
        assert s.symbol(BASE + i * 0x1000 + 8) is None
        m = s.mapping(BASE + i * 0x1000 + 8)
        assert m is not None and m.build_id == ""


_names = itertools.count()


def symbolize_bytes(directory: Path, data: bytes, offsets: list[int]) -> None:
    """Maps data as a library's text at BASE and resolves some addresses in it; must not raise."""
    path = directory / f"fuzz{next(_names)}.so"  # a fresh path: no cached parse of an earlier example
    path.write_bytes(data)
    s = Symbolizer([MappedObject(BASE, BASE + 0x10000, 0x1000, str(path), ""),
                    MappedObject(BASE + 0x10000, BASE + 0x20000, 0, str(path), "")])
    for offset in offsets:
        found = s.symbol(BASE + offset)
        assert found is None or (isinstance(found[0], str) and found[1] <= BASE + offset)
        assert s.mapping(BASE + offset) is not None


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=2048), offsets=st.lists(st.integers(0, 0x1FFFF), max_size=4))
def test_fuzz_random_bytes(fuzz_dir: Path, data: bytes, offsets: list[int]) -> None:
    symbolize_bytes(fuzz_dir, b"\x7fELF\x02\x01\x01" + data, offsets)
    symbolize_bytes(fuzz_dir, data, offsets)


@settings(max_examples=300, deadline=None)
@given(mutations=st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 255)), min_size=1, max_size=12),
       keep=st.floats(0.05, 1.0), offsets=st.lists(st.integers(0, 0x1FFFF), max_size=4))
def test_fuzz_mutated_library(built: dict[str, str], fuzz_dir: Path, mutations: list[tuple[int, int]],
                              keep: float, offsets: list[int]) -> None:
    so = bytearray(Path(built["lib.so"]).read_bytes())
    for position, value in mutations:
        # Two thirds land where they matter most: the ELF and program headers, or the
        # symbol tables, string tables and section headers at the end of the file.
        start, end = [(0, 0x300), (len(so) - 0x1000, len(so)), (0, len(so))][position % 3]
        so[start + position % (end - start)] = value
    symbolize_bytes(fuzz_dir, bytes(so[: max(1, int(len(so) * keep))]), offsets + [0xF9, 0x10E])
