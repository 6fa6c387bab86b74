"""Go's pprof as a reference: build and run tests/go/genprofiles, run `go tool
pprof -raw` and `-top` on a profile and parse what they print.

Helpers only, no tests. Go is required, not optional: CI installs it, so a
missing `go` fails the test that needs it with the Debian package to install.
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GO_PACKAGE = "golang-go"


def require_go() -> str:
    """The path of `go`; fails the calling test when it is not installed."""
    go = shutil.which("go")
    if go is None:
        pytest.fail(f"'go' not found in PATH: these tests compare cprof with Go's pprof; "
                    f"install the Go toolchain (Debian/Ubuntu: apt-get install {GO_PACKAGE})",
                    pytrace=False)
    return go


@functools.cache
def _scratch() -> Path:
    """A private directory for this test session, removed at exit."""
    path = Path(tempfile.mkdtemp(prefix="cprof-go-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def _env() -> dict[str, str]:
    """The environment for Go: HOME and pprof's directories point into the
    session's scratch directory, so nothing is written to the user's home;
    TZ=UTC makes pprof's `Time:` lines independent of the machine."""
    home = _scratch() / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "GOFLAGS"}
    env.update(HOME=str(home), PPROF_TMPDIR=str(home), PPROF_BINARY_PATH=str(home),
               TZ="UTC", GOENV="off", GOTOOLCHAIN="local")
    return env


def _run(cmd: list[str], what: str, timeout: float = 120) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8",
                       env=_env(), timeout=timeout)
    if r.returncode != 0:
        pytest.fail(f"{what} failed (exit {r.returncode}): {' '.join(cmd)}\n{r.stderr[-3000:]}",
                    pytrace=False)
    return r.stdout


@functools.cache
def go_profiles_dir() -> Path:
    """A directory of fresh Go runtime/pprof profiles (cpu, heap, allocs,
    mutex, block, goroutine, threadcreate .prof), made once per session by
    building and running tests/go/genprofiles."""
    require_go()
    binary = _scratch() / "genprofiles"
    out = _scratch() / "profiles"
    _run(["sh", str(ROOT / "tests" / "go" / "build.sh"), str(binary)], "building genprofiles",
         timeout=300)
    _run([str(binary), str(out)], "running genprofiles")
    return out


def _pprof(args: list[str], path: str | os.PathLike[str]) -> str:
    go = require_go()
    return _run([go, "tool", "pprof", *args, "-symbolize=none", os.fspath(path)],
                f"go tool pprof {args[0]}")


# --- -raw ---------------------------------------------------------------------


@dataclass
class RawSample:
    values: tuple[int, ...]
    location_ids: tuple[int, ...]
    labels: dict[str, list[str]] = field(default_factory=dict)
    num_labels: dict[str, list[tuple[int, str]]] = field(default_factory=dict)


@dataclass
class RawLocation:
    id: int
    address: int
    mapping_id: int | None
    functions: list[str]  # leaf first: the inlined callee, then its callers


@dataclass
class RawProfile:
    """What `go tool pprof -raw` prints (google/pprof's Profile.String()),
    after pprof has merged the profile: samples with equal locations and
    labels are summed, all-zero samples and samples without locations are
    dropped, and locations are renumbered in order of first use."""

    text: str
    comments: list[str]
    period_type: tuple[str, str] | None
    period: int
    time: str | None
    duration: str | None
    sample_types: list[str]  # "type/unit"
    default_sample_type: str | None
    samples: list[RawSample]
    locations: dict[int, RawLocation]
    mappings: list[str]


_SAMPLE = re.compile(r"^((?: +-?\d+)+): ((?:\d+ )*)$")
_LOCATION = re.compile(r"^ *(\d+): (0x[0-9a-f]+) (?:M=(\d+) )?(?:\[F\] )?(.*)$")
_INLINED = " " * 13
_LABEL_INDENT = " " * 16
_LABEL = re.compile(r"(\S+?):\[(.*?)\](?: |$)")
# "name file:line s=start" with "(system_name)" appended when it differs.
_FRAME = re.compile(r"^(\S+) (.*):(-?\d+) s=(-?\d+)(?:\(.*\))?$")


def _frame_name(text: str) -> str:
    if text == "??":
        return "??"
    m = _FRAME.match(text)
    if m is None:
        raise ValueError(f"unexpected frame in pprof -raw: {text!r}")
    return m.group(1)


def _numeric(values: str) -> list[tuple[int, str]] | None:
    """`[1 2]` or, with units, `[1 ms 2 ms]`; None if not numeric."""
    tokens = values.split(" ") if values else []
    try:
        if all(re.fullmatch(r"-?\d+", t) for t in tokens):
            return [(int(t), "") for t in tokens]
        if len(tokens) % 2 == 0:
            return [(int(tokens[i]), tokens[i + 1]) for i in range(0, len(tokens), 2)]
    except ValueError:
        pass
    return None


def _parse_labels(sample: RawSample, lines: list[str]) -> None:
    """pprof prints string labels on one line, then numeric ones on another;
    a single line is numeric when every value is a number (with a unit)."""
    parsed = [{k: v for k, v in _LABEL.findall(line)} for line in lines]
    if len(parsed) == 2:
        strings, numbers = parsed
    elif len(parsed) == 1 and all(_numeric(v) is not None for v in parsed[0].values()):
        strings, numbers = {}, parsed[0]
    elif len(parsed) == 1:
        strings, numbers = parsed[0], {}
    else:
        raise ValueError(f"unexpected label lines in pprof -raw: {lines!r}")
    sample.labels = {k: v.split(" ") for k, v in strings.items()}
    sample.num_labels = {k: _numeric(v) or [] for k, v in numbers.items()}


def parse_raw(text: str) -> RawProfile:
    lines = text.splitlines()
    header: dict[str, str] = {}
    comments: list[str] = []
    i = 0
    while lines[i] != "Samples:":
        key, _, value = lines[i].partition(": ")
        if key == "Comment":
            comments.append(value)
        else:
            header[key] = value
        i += 1
    types = lines[i + 1].split()
    default = next((t.split("/")[0] for t in types if t.endswith("[dflt]")), None)
    sample_types = [t.removesuffix("[dflt]") for t in types]
    i += 2
    samples: list[RawSample] = []
    label_lines: list[str] = []
    while lines[i] != "Locations":
        if lines[i].startswith(_LABEL_INDENT):
            label_lines.append(lines[i][len(_LABEL_INDENT):])
        else:
            if label_lines:
                _parse_labels(samples[-1], label_lines)
                label_lines = []
            m = _SAMPLE.match(lines[i])
            if m is None:
                raise ValueError(f"unexpected sample line in pprof -raw: {lines[i]!r}")
            samples.append(RawSample(tuple(int(v) for v in m.group(1).split()),
                                     tuple(int(v) for v in m.group(2).split())))
        i += 1
    if label_lines:
        _parse_labels(samples[-1], label_lines)
    i += 1
    locations: dict[int, RawLocation] = {}
    last: RawLocation | None = None
    while lines[i] != "Mappings":
        if lines[i].startswith(_INLINED) and last is not None:
            last.functions.append(_frame_name(lines[i][len(_INLINED):]))
        else:
            m = _LOCATION.match(lines[i])
            if m is None:
                raise ValueError(f"unexpected location line in pprof -raw: {lines[i]!r}")
            rest = m.group(4)
            last = RawLocation(int(m.group(1)), int(m.group(2), 16),
                               int(m.group(3)) if m.group(3) else None,
                               [_frame_name(rest)] if rest else [])
            locations[last.id] = last
        i += 1
    period_type = tuple(header["PeriodType"].split(" ", 1)) if "PeriodType" in header else None
    return RawProfile(
        text=text, comments=comments, period_type=period_type,  # type: ignore[arg-type]
        period=int(header.get("Period", "0")), time=header.get("Time"),
        duration=header.get("Duration"), sample_types=sample_types,
        default_sample_type=default, samples=samples, locations=locations,
        mappings=lines[i + 1:])


def pprof_raw_text(path: str | os.PathLike[str]) -> str:
    """`go tool pprof -raw -symbolize=none PATH`, as printed."""
    return _pprof(["-raw"], path)


def pprof_raw(path: str | os.PathLike[str]) -> RawProfile:
    return parse_raw(pprof_raw_text(path))


def pprof_fetch_raw(url: str, seconds: int | None = None) -> RawProfile:
    """`go tool pprof -raw [-seconds=N] URL`: pprof fetches the profile over
    HTTP itself (adding ?seconds=N), as against a Go program's endpoints."""
    go = require_go()
    args = [f"-seconds={seconds}"] if seconds is not None else []
    text = _run([go, "tool", "pprof", "-raw", *args, url], f"go tool pprof -raw {url}",
                timeout=120 + (seconds or 0))
    return parse_raw(text)


def raw_share(raw: RawProfile, function: str, sample_type: str) -> float:
    """The share of ``sample_type``'s total in samples whose stack holds
    ``function`` (pprof's cum %), from what -raw printed."""
    index = raw.sample_types.index(sample_type)
    total = sum(s.values[index] for s in raw.samples)
    inside = sum(s.values[index] for s in raw.samples
                 if any(function in raw.locations[i].functions for i in s.location_ids))
    return inside / total if total else 0.0


# --- -top and pprof's printed quantities ------------------------------------------

# pprof's measurement units (internal/measurement), by canonical printed name,
# in bytes or nanoseconds.
_PRINTED_UNITS = {
    "": 1.0,
    "B": 1.0, "kB": 2.0**10, "MB": 2.0**20, "GB": 2.0**30, "TB": 2.0**40, "PB": 2.0**50,
    "ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9, "hrs": 3600e9,
}
# Aliases of sample units (lower case, plural "s" dropped beyond two letters).
_SAMPLE_UNITS = {
    "b": 1.0, "byte": 1.0, "kb": 2.0**10, "kbyte": 2.0**10, "kilobyte": 2.0**10,
    "mb": 2.0**20, "mbyte": 2.0**20, "megabyte": 2.0**20, "gb": 2.0**30, "gbyte": 2.0**30,
    "gigabyte": 2.0**30,
    "ns": 1.0, "nanosecond": 1.0, "us": 1e3, "microsecond": 1e3, "ms": 1e6,
    "millisecond": 1e6, "s": 1e9, "sec": 1e9, "second": 1e9, "hour": 3600e9, "hr": 3600e9,
}


def in_base_units(value: int, unit: str) -> float:
    """A sample value in pprof's base unit for its kind (bytes, nanoseconds,
    or the plain number for counts and unknown units)."""
    u = unit.lower()
    if len(u) > 2:
        u = u.removesuffix("s")
    return value * _SAMPLE_UNITS.get(u, 1.0)


@dataclass(frozen=True)
class Quantity:
    """A number pprof printed (`1.49s`, `842.22kB`, `17`), in base units, with
    the rounding error its two printed decimals allow."""

    text: str
    value: float
    tolerance: float

    def matches(self, base_value: float) -> bool:
        return abs(base_value - self.value) <= self.tolerance


_QUANTITY = re.compile(r"^(-?\d+(?:\.\d+)?)([A-Za-z]*)$")


def parse_quantity(text: str, zero_unit: str = "") -> Quantity:
    """Parse a value printed by pprof's ScaledLabel (`%.2f` then the unit,
    ".00" dropped). pprof prints a value that rounds to zero as a bare "0";
    ``zero_unit`` is the report's unit that it was rounded in."""
    m = _QUANTITY.match(text)
    if m is None or m.group(2) not in _PRINTED_UNITS:
        raise ValueError(f"not a pprof quantity: {text!r}")
    number, unit = m.groups()
    factor = _PRINTED_UNITS[unit or (zero_unit if float(number) == 0 else "")]
    value = float(number) * factor
    return Quantity(text, value, 0.005 * factor * (1 + 1e-9) + abs(value) * 1e-12)


@dataclass(frozen=True)
class TopRow:
    name: str
    flat: Quantity
    flat_pct: str
    sum_pct: str
    cum: Quantity
    cum_pct: str
    inline: str  # "", "(inline)" or "(partial-inline)"


@dataclass(frozen=True)
class Top:
    shown: Quantity
    total: Quantity
    rows: list[TopRow]
    text: str


_SHOWING = re.compile(r"^Showing nodes accounting for (\S+), (\S+) of (\S+) total$")
_ROW = re.compile(r"^ *(\S+) +(\S+%) +(\S+%) +(\S+) +(\S+%)  (.*?)(?: (\((?:partial-)?inline\)))?$")


def parse_top(text: str) -> Top:
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("Showing nodes"))
    showing = _SHOWING.match(lines[at])
    if showing is None or lines[at + 1].split() != ["flat", "flat%", "sum%", "cum", "cum%"]:
        raise ValueError(f"unexpected pprof -top header: {lines[at:at + 2]!r}")
    rows: list[re.Match[str]] = []
    for line in lines[at + 2:]:
        m = _ROW.match(line)
        if m is None:
            raise ValueError(f"unexpected pprof -top row: {line!r}")
        rows.append(m)
    # One report prints every value in the same unit; a bare "0" was rounded in it.
    printed = [showing.group(1), showing.group(3)] + [r.group(g) for r in rows for g in (1, 4)]
    units = {m.group(2) for m in map(_QUANTITY.match, printed) if m and m.group(2)}
    if len(units) > 1:
        raise ValueError(f"pprof -top printed several units {sorted(units)}:\n{text}")
    unit = units.pop() if units else ""

    def q(t: str) -> Quantity:
        return parse_quantity(t, unit)

    return Top(
        shown=q(showing.group(1)), total=q(showing.group(3)),
        rows=[TopRow(r.group(6), q(r.group(1)), r.group(2), r.group(3), q(r.group(4)),
                     r.group(5), r.group(7) or "") for r in rows],
        text=text)


def pprof_top(path: str | os.PathLike[str], sample_index: str | int | None = None) -> Top:
    """`go tool pprof -top` with every node shown, parsed."""
    args = ["-top", "-nodecount=100000", "-nodefraction=0", "-edgefraction=0"]
    if sample_index is not None:
        args.append(f"-sample_index={sample_index}")
    return parse_top(_pprof(args, path))
