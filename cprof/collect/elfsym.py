"""Native program counters of this process -> pprof mappings and ELF function names, after the fact.

The sampler records bare addresses; this module maps them to the executable mappings of
/proc/self/maps and to the function symbols of each mapped ELF64 little-endian file.
Files are read with pread, never mmap: a library rewritten under a live mapping would turn
an mmap read into SIGBUS. A file that is missing, replaced, unreadable or malformed gives no
symbols and an empty build id; nothing here raises for bad input.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import os
import stat
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, TypeVar

    _T = TypeVar("_T")

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")  # Elf64_Ehdr
_PHDR = struct.Struct("<IIQQQQQQ")  # Elf64_Phdr: type flags offset vaddr paddr filesz memsz align
_SHDR = struct.Struct("<IIQQQQIIQQ")  # Elf64_Shdr: name type flags addr offset size link info align entsize
_SYM = struct.Struct("<IBBHQQ")  # Elf64_Sym: name info other shndx value size
_NHDR = struct.Struct("<III")  # Elf64_Nhdr: namesz descsz type
_PT_LOAD, _PT_NOTE, _PF_X = 1, 4, 1
_SHT_SYMTAB, _SHT_NOTE, _SHT_DYNSYM = 2, 7, 11
_FUNC_TYPES = (2, 10)  # STT_FUNC, STT_GNU_IFUNC
_BIND_RANK = {1: 0, 2: 1, 0: 2}  # STB_GLOBAL before STB_WEAK before STB_LOCAL
_NT_GNU_BUILD_ID = 3
_PAGE = 4096
_DELETED = " (deleted)"


class _Malformed(ValueError):
    """The file is not a well-formed ELF64 little-endian object."""


@dataclass(frozen=True)
class MappedObject:
    """One executable mapping of this process, as a pprof Mapping describes it."""

    start: int  # first address of the executable mapping (r-xp) in this process
    limit: int  # one past the last
    offset: int  # file offset of `start`
    path: str  # absolute path of the file ("[vdso]", "[anon]" etc. for special ones)
    build_id: str  # hex of NT_GNU_BUILD_ID, "" if none/unreadable


@dataclass(frozen=True)
class _Region:
    """A mapping and how to read its file: `source` is the path to open ("" for none), `inode`
    the inode /proc/self/maps names (0: unknown), so a file replaced since it was mapped is not read."""

    obj: MappedObject
    source: str
    inode: int


class _Reader:
    """Bounds-checked reads of an open regular file of known size."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.size = fd, size

    def read(self, offset: int, n: int) -> bytes:
        if offset < 0 or n < 0 or offset + n > self.size:
            raise _Malformed(f"{n} bytes at offset {offset} lie outside the file")
        data = os.pread(self.fd, n, offset)
        if len(data) != n:
            raise _Malformed("the file shrank while being read")
        return data

    def table(self, entry: struct.Struct, offset: int, count: int) -> list[tuple[Any, ...]]:
        return list(entry.iter_unpack(self.read(offset, entry.size * count)))


class _Headers:
    """Program and section headers of one file, and its build id."""

    def __init__(self, r: _Reader) -> None:
        ident, _, _, _, _, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum, shstrndx = (
            _EHDR.unpack(r.read(0, _EHDR.size)))
        if ident[:4] != b"\x7fELF" or ident[4] != 2 or ident[5] != 1:
            raise _Malformed("not an ELF64 little-endian file")
        self.phdrs = r.table(_PHDR, phoff, phnum) if phentsize == _PHDR.size else []
        self.shdrs: list[tuple[Any, ...]] = []
        try:  # a truncated file may lose its section headers and keep its segments
            if shoff and shentsize == _SHDR.size:
                if shnum == 0:  # extended numbering: the count is section 0's sh_size
                    shnum = r.table(_SHDR, shoff, 1)[0][5]
                self.shdrs = r.table(_SHDR, shoff, shnum)
        except _Malformed:
            pass
        self.build_id = _build_id(r, self.phdrs, self.shdrs)
        self.shstrndx = shstrndx  # the section holding the sections' names

    def bias(self, m: MappedObject) -> int | None:
        """Load bias of the file at mapping m (process address - link-time address), from the
        PT_LOAD segment holding m's file offset; executable segments first, since a page may
        hold the end of one segment and the start of the next."""
        loads = [p for p in self.phdrs if p[0] == _PT_LOAD]
        for _, _, p_offset, p_vaddr, _, p_filesz, _, _ in sorted(loads, key=lambda p: not p[1] & _PF_X):
            if p_offset - p_offset % _PAGE <= m.offset < p_offset + p_filesz:
                return int(m.start - (p_vaddr + (m.offset - p_offset)))
        return None


def _build_id(r: _Reader, phdrs: list[tuple[Any, ...]], shdrs: list[tuple[Any, ...]]) -> str:
    """Hex NT_GNU_BUILD_ID from the PT_NOTE segments, else the SHT_NOTE sections; "" if none."""
    notes = [(p[2], p[5], p[7]) for p in phdrs if p[0] == _PT_NOTE]
    notes += [(s[4], s[5], s[8]) for s in shdrs if s[1] == _SHT_NOTE]
    for offset, size, align in notes:
        try:
            data = r.read(offset, size)
        except _Malformed:
            continue
        step = 8 if align == 8 else 4
        pos = 0
        while pos + _NHDR.size <= len(data):
            namesz, descsz, kind = _NHDR.unpack_from(data, pos)
            name_at = pos + _NHDR.size
            desc_at = name_at + -(-namesz // step) * step
            if kind == _NT_GNU_BUILD_ID and data[name_at : name_at + namesz] == b"GNU\0":
                desc = data[desc_at : desc_at + descsz]
                return desc.hex() if len(desc) == descsz else ""
            pos = desc_at + -(-descsz // step) * step
    return ""


class _Symbols:
    """Function symbols of one file at link-time addresses, sorted for bisection.

    Symbols with a size cover [start, start + size); a nested one wins inside its parent.
    A symbol of size 0 (hand-written assembly) is a fallback: it covers up to the next
    symbol or the end of its section, and only addresses no sized symbol covers.
    At one address, the name with fewest leading underscores wins, then global before
    weak before local, then the shorter name: libc's `getpid` rather than `__getpid`.
    """

    def __init__(self, r: _Reader, shdrs: list[tuple[Any, ...]]) -> None:
        best: dict[int, tuple[tuple[int, int, int, str], int, int]] = {}  # start -> rank, size, shndx
        for table in (s for s in shdrs if s[1] in (_SHT_SYMTAB, _SHT_DYNSYM) and s[6] < len(shdrs)):
            strtab = shdrs[table[6]]
            strings = r.read(strtab[4], strtab[5])
            for name_at, info, _, shndx, value, size in r.table(_SYM, table[4], table[5] // _SYM.size):
                if info & 0xF not in _FUNC_TYPES or shndx == 0 or name_at >= len(strings):
                    continue
                end = strings.find(b"\0", name_at)
                name = strings[name_at : end if end >= 0 else None].decode("utf-8", "replace")
                name = name.split("@", 1)[0]  # debug files keep symbol versions: f@@GLIBC_2.34
                rank = (len(name) - len(name.lstrip("_")), _BIND_RANK.get(info >> 4, 3), len(name), name)
                old = best.get(value, (rank, 0, shndx))
                best[value] = (min(rank, old[0]), max(size, old[1]), shndx if rank <= old[0] else old[2])
        everything = sorted(best)
        self.starts: list[int] = []
        self.spans: list[tuple[int, str, int]] = []  # end, name, innermost earlier symbol still open (or -1)
        self.zero_starts: list[int] = []
        self.zero_spans: list[tuple[int, str]] = []  # end, name
        open_: list[int] = []
        for i, start in enumerate(everything):
            (*_, name), size, shndx = best[start]
            if size:
                while open_ and self.spans[open_[-1]][0] <= start:
                    open_.pop()
                self.spans.append((start + size, name, open_[-1] if open_ else -1))
                open_.append(len(self.starts))
                self.starts.append(start)
                continue
            bounds = everything[i + 1 : i + 2]
            if 0 < shndx < len(shdrs) and shdrs[shndx][3] <= start:
                bounds.append(shdrs[shndx][3] + shdrs[shndx][5])
            if bounds:
                self.zero_starts.append(start)
                self.zero_spans.append((min(bounds), name))

    def find(self, address: int) -> tuple[str, int] | None:
        """(name, link-time start) of the function covering a link-time address, or None."""
        i = bisect.bisect_right(self.starts, address) - 1
        while i >= 0:
            end, name, parent = self.spans[i]
            if address < end:
                return name, self.starts[i]
            i = parent
        j = bisect.bisect_right(self.zero_starts, address) - 1
        if j >= 0 and address < self.zero_spans[j][0]:
            return self.zero_spans[j][1], self.zero_starts[j]
        return None


_Key = tuple[str, int, int, int]  # path, inode, size, mtime_ns: one version of one file


def _identity(path: str, inode: int) -> _Key | None:
    """The current version of a regular file, if it still is the one mapped (same inode)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(st.st_mode) or (inode and st.st_ino != inode):
        return None
    return path, st.st_ino, st.st_size, st.st_mtime_ns


def _read_file(key: _Key, parse: Callable[[_Reader], _T]) -> _T | None:
    """Opens the file version named by key and parses it; None if it changed or anything fails."""
    try:
        fd = os.open(key[0], os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, ValueError):
        return None
    try:
        st = os.fstat(fd)
        if (key[0], st.st_ino, st.st_size, st.st_mtime_ns) != key or not stat.S_ISREG(st.st_mode):
            return None
        return parse(_Reader(fd, st.st_size))
    except (OSError, ValueError, IndexError, struct.error):
        return None
    finally:
        os.close(fd)


DEBUG_ROOT = "/usr/lib/debug/.build-id"


def _debug_file(build_id: str) -> _Key | None:
    """The separate debug file a -dbg package installs for a build id: the
    same link-time addresses, the full symbol table of a stripped library."""
    if len(build_id) < 3:
        return None
    return _identity(os.path.join(DEBUG_ROOT, build_id[:2], build_id[2:] + ".debug"), 0)


@functools.lru_cache(maxsize=512)
def _headers(key: _Key) -> _Headers | None:
    return _read_file(key, _Headers)


@functools.lru_cache(maxsize=256)
def _symbols(key: _Key) -> _Symbols | None:
    head = _headers(key)
    return None if head is None else _read_file(key, lambda r: _Symbols(r, head.shdrs))


def _regions(maps_text: str | None, proc: str = "self") -> list[_Region]:
    """Executable mappings from /proc/self/maps text (read now if None), or of
    process ``proc``'s maps text; no build ids yet."""
    if maps_text is None:
        try:
            with open("/proc/self/maps", encoding="utf-8", errors="surrogateescape") as f:
                maps_text = f.read()
        except OSError:
            return []
    regions = []
    for line in maps_text.splitlines():
        fields = line.split(maxsplit=5)  # address perms offset dev inode [path, spaces kept]
        if len(fields) < 5 or fields[1][2:3] != "x":
            continue
        try:
            start, limit = (int(a, 16) for a in fields[0].split("-"))
            offset, inode = int(fields[2], 16), int(fields[4])
        except ValueError:
            continue
        path = source = fields[5] if len(fields) == 6 else ""
        if path.endswith(_DELETED):  # the path names another file now, or none: read the mapped one
            path = path[: -len(_DELETED)]
            source = f"/proc/{proc}/map_files/{start:x}-{limit:x}"
        if not path.startswith("/"):
            path, source = path or "[anon]", ""
        regions.append(_Region(MappedObject(start, limit, offset, path, ""), source, inode))
    return regions


def _open_region(region: _Region) -> tuple[MappedObject, _Key | None, _Headers | None]:
    """The region's mapping with its build id filled in, its file version and headers if readable."""
    key = _identity(region.source, region.inode) if region.source else None
    head = _headers(key) if key else None
    if head is None or region.obj.build_id:
        return region.obj, key, head
    return dataclasses.replace(region.obj, build_id=head.build_id), key, head


def _section_address(r: _Reader, head: _Headers, name: bytes) -> int | None:
    """The link-time address of the section called ``name``, if the file has one."""
    if head.shstrndx >= len(head.shdrs):
        return None
    names = head.shdrs[head.shstrndx]
    wanted = name + b"\0"
    for sh in head.shdrs:
        if sh[0] + len(wanted) <= names[5] and r.read(names[4] + sh[0], len(wanted)) == wanted:
            return int(sh[3])
    return None


def section_addresses(maps_text: str, name: str, proc: str = "self") -> list[tuple[str, int]]:
    """(path, address in the process) of the section ``name`` (".PyRuntime")
    of each file mapped executable in process ``proc``, given its maps text;
    files that cannot be read, or lack the section, are left out."""
    found = []
    seen = set()
    for region in _regions(maps_text, proc):
        obj, key, head = _open_region(region)
        if key is None or head is None or obj.path in seen:
            continue
        seen.add(obj.path)
        address = _read_file(key, lambda r: _section_address(r, head, name.encode()))
        bias = head.bias(obj)
        if address is not None and bias is not None:
            found.append((obj.path, bias + address))
    return found


def executable_mappings(maps_text: str | None = None) -> list[MappedObject]:
    """Executable mappings of this process from /proc/self/maps (or the given text), with build ids."""
    return [_open_region(r)[0] for r in _regions(maps_text)]


class Symbolizer:
    """Resolves addresses of this process; reads /proc/self/maps once (call refresh() after dlopen),
    each ELF file's symbols once, lazily. Given `mappings`, it resolves within those instead
    (saved mappings, tests) and refresh() keeps them."""

    def __init__(self, mappings: Sequence[MappedObject] | None = None) -> None:
        self._fixed = None
        if mappings is not None:
            self._fixed = [_Region(m, m.path if m.path.startswith("/") else "", 0) for m in mappings]
        self._regions: list[_Region] = []
        self._starts: list[int] = []
        self._resolved: dict[_Region, tuple[MappedObject, _Key | None, int | None]] = {}
        self.refresh()

    def refresh(self) -> None:
        """Re-reads /proc/self/maps, after libraries were loaded or unloaded."""
        regions = _regions(None) if self._fixed is None else self._fixed
        self._regions = sorted(regions, key=lambda r: r.obj.start)
        self._starts = [r.obj.start for r in self._regions]
        self._resolved.clear()

    def _resolve(self, pc: int) -> tuple[MappedObject, _Key | None, int | None] | None:
        """The mapping holding pc (with its build id), its file version and load bias."""
        i = bisect.bisect_right(self._starts, pc) - 1
        if i < 0 or pc >= self._regions[i].obj.limit:
            return None
        region = self._regions[i]
        done = self._resolved.get(region)
        if done is None:
            obj, key, head = _open_region(region)
            done = self._resolved[region] = (obj, key, None if head is None else head.bias(obj))
        return done

    def mapping(self, pc: int) -> MappedObject | None:
        """The executable mapping holding pc, with its build id; None if pc is in none."""
        done = self._resolve(pc)
        return None if done is None else done[0]

    def symbol(self, pc: int) -> tuple[str, int] | None:
        """(function name, start address in the process) of the function symbol containing pc, from
        the file's separate debug file if one is installed (found by build id, as gdb does), else
        its .symtab (static functions too) merged with .dynsym; None if none covers it."""
        done = self._resolve(pc)
        if done is None or done[1] is None or done[2] is None:
            return None
        found = None
        for key in (_debug_file(done[0].build_id), done[1]):
            symbols = None if key is None else _symbols(key)
            found = None if symbols is None else symbols.find(pc - done[2])
            if found is not None:
                break
        return None if found is None else (found[0], found[1] + done[2])
