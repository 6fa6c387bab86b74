"""listing: source annotated line by line, as ``go tool pprof -list`` prints it.

For every function whose name matches, and every source file it has lines
in, pprof prints a ROUTINE header with the function's flat and cum (summed
over its lines, so a recursive call on two lines counts twice), then the
file's lines from the function's first line (or 5 before the first sampled
line when the profile has no start line) to 5 after the last sampled line,
each with the flat and cum of the samples at that line ("." for none).

Files are found as pprof finds them: the profile's path, trimmed of
``trim_path`` (or, with none, of everything up to the last component of a
search directory it contains), is opened as is when absolute, else searched
in each directory of ``source_path`` (default: the current directory) and its
parents. A file that cannot be read gives pprof's error line instead.
"""

from __future__ import annotations

import array
import os
import re
from dataclasses import dataclass

from ..pprof.units import scaled_label
from .graph import base_name, clean_path
from .text import percentage

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Iterator

    from ..pprof.profile import Profile

_MARGIN = 5  # lines shown before the first and after the last sampled line
_MAX_LINE = 64 * 1024  # Go's bufio.Scanner stops at a longer line


@dataclass(frozen=True)
class SourceLine:
    """One line of a listing with the flat and cum of its samples."""

    lineno: int
    text: str
    flat: int
    cum: int


@dataclass(frozen=True)
class Routine:
    """One function in one file: its totals and annotated lines, or the
    ``error`` that kept the file from being read. A function with no file
    at all has ``filename`` "" and prints as pprof's "No source information"."""

    name: str
    filename: str
    flat: int
    cum: int
    lines: tuple[SourceLine, ...] = ()
    error: str | None = None


@dataclass
class ListReport:
    """The routines of ``go tool pprof -list``; ``str()`` prints them as
    pprof does, every value in its own best unit. ``total`` is the sum of the
    absolute values of ``sample_type`` over all samples."""

    routines: list[Routine]
    sample_type: str
    sample_unit: str
    total: int

    def __iter__(self) -> Iterator[Routine]:
        return iter(self.routines)

    def __len__(self) -> int:
        return len(self.routines)

    def __getitem__(self, i: int) -> Routine:
        return self.routines[i]

    def format_value(self, value: int) -> str:
        return scaled_label(value, self.sample_unit, "minimum")

    def __str__(self) -> str:
        fmt = self.format_value
        out = [f"Total: {fmt(self.total)}"]
        for r in self.routines:
            if not r.filename:
                out.append(f"No source information for {r.name}")
                continue
            out.append(f"ROUTINE ======================== {r.name} in {r.filename}")
            out.append(f"{fmt(r.flat):>10} {fmt(r.cum):>10} (flat, cum) "
                       f"{percentage(r.cum, self.total)} of Total")
            if r.error is not None:
                out.append(f" Error: {r.error}")
                continue
            for ln in r.lines:
                flat = fmt(ln.flat) if ln.flat else "."
                cum = fmt(ln.cum) if ln.cum else "."
                out.append(f"{flat:>10} {cum:>10} {ln.lineno:6d}:{ln.text}")
        return "\n".join(out) + "\n"


def list_source(profile: Profile, regex: str, *, sample_type: str | int | None = None,
                source_path: str | None = None, trim_path: str = "") -> ListReport:
    """The source of the functions whose name matches ``regex`` (searched, as
    Go's MatchString), annotated as ``go tool pprof -list``; ``source_path``
    and ``trim_path`` as pprof's -source_path and -trim_path. Raises
    ValueError when no function matches."""
    rx = re.compile(regex)
    index = profile.sample_index(sample_type)
    vt = profile.sample_types[index]
    total = profile.report_total(index)
    by_name: dict[str, list[_Node]] = {}
    for nd in _listed_lines(profile, index, rx, source_path or "", trim_path):
        by_name.setdefault(nd[0], []).append(nd)
    if not by_name:
        raise ValueError(f"no matches found for regexp: {regex}")
    reader = _SourceReader(source_path or os.getcwd(), trim_path)
    routines = []
    for name in sorted(by_name):
        by_file: dict[str, list[_Node]] = {}
        for nd in by_name[name]:
            if nd[1]:
                by_file.setdefault(nd[1], []).append(nd)
        if not by_file:
            routines.append(Routine(name, "", 0, 0))
        for filename in sorted(by_file):
            fns = by_file[filename]
            flat, cum = sum(nd[5] for nd in fns), sum(nd[6] for nd in fns)
            lines = _annotate(filename, reader, fns)
            error = reader.errors.get(filename)
            routines.append(Routine(name, filename, flat, cum, () if error else lines, error))
    return ListReport(routines, vt.type, vt.unit, total)


# A node of pprof's line-granularity graph with its values: (name, file, start
# line, line, binary, flat, cum).
_Node = tuple[str, str, int, int, str, int, int]


def _listed_lines(profile: Profile, index: int, rx: re.Pattern[str], search_path: str,
                  trim_path: str) -> list[_Node]:
    """The nodes of the functions ``rx`` matches, summed by the C engine
    (csrc/analysis/listing.c): here each function is matched once and its
    file named as pprof names it (trimmed, then cleaned)."""
    data = profile._analysis_data()
    files = {"": 0}  # a file's name -> its id for the engine
    matches: dict[str, bool] = {}
    fn_file = array.array("i")
    for i in range(data.counts()[2]):
        _, name, _, filename, _ = data.function(i)
        listed = matches.get(name)
        if listed is None:
            listed = matches[name] = rx.search(name) is not None
        if not listed:
            fn_file.append(-1)
            continue
        trimmed = _trim(filename, trim_path, search_path) if filename else ""
        fn_file.append(files.setdefault(clean_path(trimmed) if trimmed else "", len(files)))
    names = list(files)
    return [(name, names[file], start, line, objfile, flat, cum)
            for name, file, start, line, objfile, flat, cum
            in data.listing(index, fn_file, rx.search("") is not None)]


def _annotate(filename: str, reader: _SourceReader, fns: list[_Node]) -> tuple[SourceLine, ...]:
    """pprof's getSourceFromFile: the range of lines to show, quirks
    included (a node that moves the start does not move the end)."""
    _, _, start_line, lineno, _, _, _ = fns[0]
    start = start_line if start_line else lineno - _MARGIN
    end = lineno + _MARGIN
    at: dict[int, list[_Node]] = {}
    for nd in fns:
        _, _, node_start, lineno, _, _, _ = nd
        if not node_start:
            node_start = lineno - _MARGIN
        if node_start < start:
            start = node_start
        elif lineno + _MARGIN > end:
            end = lineno + _MARGIN
        at.setdefault(lineno, []).append(nd)
    out = []
    for n in range(max(start, 1), end + 1):
        text = reader.line(filename, n)
        if text is None:
            break
        here = at.get(n, [])
        out.append(SourceLine(n, text, sum(nd[5] for nd in here), sum(nd[6] for nd in here)))
    return tuple(out)


class _SourceReader:
    """Source files by the name the profile gives them, read once; the
    error that kept a file from being read, in Go's words."""

    def __init__(self, search_path: str, trim_path: str) -> None:
        self.search_path = search_path
        self.trim_path = trim_path
        self.files: dict[str, list[str]] = {}
        self.errors: dict[str, str] = {}

    def line(self, path: str, lineno: int) -> str | None:
        lines = self.files.get(path)
        if lines is None:
            lines = self.files[path] = self._read(path)
        return lines[lineno - 1] if 0 < lineno <= len(lines) else None

    def _read(self, path: str) -> list[str]:
        data = self._open(path)
        if data is None:
            return []
        lines = data.split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        out = []
        for raw in lines:
            if len(raw) >= _MAX_LINE:
                break  # pprof's scanner gives up here, silently
            out.append(raw.removesuffix(b"\r").decode("utf-8", "replace"))
        return out

    def _open(self, name: str) -> bytes | None:
        """pprof's openSourceFile."""
        path = _trim(name, self.trim_path, self.search_path)
        if path.startswith("/"):
            try:
                return _read_file(path)
            except OSError as e:
                self.errors[name] = f"open {path}: {_go_error(e)}"
                return None
        for d in _split_list(self.search_path):
            while True:
                try:
                    return _read_file(_join(d, path))
                except OSError:
                    pass
                parent = _dir(d)
                if parent == d:
                    break
                d = parent
        self.errors[name] = f"could not find file {path} on path {self.search_path}"
        return None


def _read_file(path: str) -> bytes:
    # Go opens a directory without error and then reads nothing from it.
    if os.path.isdir(path):
        return b""
    with open(path, "rb") as f:
        return f.read()


def _go_error(e: OSError) -> str:
    """The text of Go's syscall error for an errno (strerror, lower case)."""
    text = os.strerror(e.errno) if e.errno is not None else str(e)
    return text[:1].lower() + text[1:]


def _trim(path: str, trim_path: str, search_path: str) -> str:
    """pprof's trimPath: with no ``trim_path``, everything up to a search
    directory's last component is cut; then a configured (or /proc/self/cwd)
    prefix."""
    if not trim_path:
        for d in _split_list(search_path):
            want = f"/{base_name(d)}/"
            found = path.find(want)
            if found != -1:
                return path[found + len(want):]
    for prefix in _split_list(trim_path) + ["/proc/self/cwd/./", "/proc/self/cwd/"]:
        if not prefix.endswith("/"):
            prefix += "/"
        if path.startswith(prefix):
            return path[len(prefix):]
    return path


# --- Go's path/filepath on Unix ---------------------------------------------------

def _split_list(paths: str) -> list[str]:
    return paths.split(os.pathsep) if paths else []


def _dir(path: str) -> str:
    return clean_path(path[:path.rfind("/") + 1])


def _join(directory: str, path: str) -> str:
    return clean_path(f"{directory}/{path}" if directory else path)
