"""endpoints: Go's net/http/pprof endpoints, independent of any web server.

``Endpoints.handle(request)`` answers a request for a path under the prefix
(``/debug/pprof`` by default) at once, with a :class:`Response`, or after a
wait, with a :class:`Pending`: a CPU profile, or a delta profile (``seconds=``
on heap, allocs, block, mutex, goroutine, threadcreate). The transport
(cprof.server's thread, cprof.apps' WSGI and ASGI apps) waits, ending early
when the client goes away, then calls ``finish()`` or ``cancel()``.

Routes, headers, statuses and messages are Go's, so that ``go tool pprof``,
Grafana Alloy and Parca read these endpoints as they read a Go program's.
Where cprof differs (it is stricter with malformed parameters, and can ask
for a token), docs/LIVE_PROFILING.md says so.
"""

from __future__ import annotations

import functools
import hmac
import html
import ipaddress
import re
import sys
import time
from base64 import b64decode
from binascii import Error as Base64Error
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from ..collect import cpu, heap, runner
from ..collect.lookup import NamedProfile, lookup, profiles
from ..pprof import ops, textformat
from ..pprof.model import ValueType
from ..pprof.profile import Profile

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Callable, Iterable, Mapping, TypeVar

    T = TypeVar("T")

PREFIX = "/debug/pprof"
DEFAULT_CPU_SECONDS = 30
DEFAULT_MAX_SECONDS = 300
MAX_BODY = 1 << 20  # symbol's POST body: addresses, a few KiB in practice

# The index's descriptions: Go's, said of threads and asyncio tasks where Go
# says goroutines.
DESCRIPTIONS = {
    "allocs": "A sampling of all past memory allocations",
    "block": "Stack traces that led to blocking on synchronization primitives (threading's "
             "locks, queues, asyncio)",
    "cmdline": "The command line invocation of the current program",
    "goroutine": "Stack traces of all current threads and asyncio tasks. Use debug=2 as a "
                 "query parameter to export a full dump of every thread, with its lock waits.",
    "heap": "A sampling of memory allocations of live objects. You can specify the gc GET "
            "parameter to run a garbage collection before taking the heap sample.",
    "mutex": "Stack traces of holders of contended locks",
    "profile": "CPU profile. You can specify the duration in the seconds GET parameter. After "
               "you get the profile file, use the go tool pprof command to investigate the "
               "profile.",
    "symbol": "Maps given program counters to function names. Counters can be specified in a "
              "GET raw query or POST body, multiple counters are separated by '+'.",
    "threadcreate": "Stack traces that led to the creation of new OS threads",
}
_OWN_ROUTES = ("cmdline", "profile", "symbol")
_DELTA = ("allocs", "block", "goroutine", "heap", "mutex", "threadcreate")
# At most 18 digits: any int64 Go reads, and never int()'s 4,300-digit error.
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}\Z")
_LENGTH = re.compile(r"[0-9]{1,18}\Z")
# Sec-Fetch-Site values of requests a browser makes for its user: typed in
# ("none") or from a page of this server ("same-origin").
_OWN_FETCHES = ("none", "same-origin")

TEXT = "text/plain; charset=utf-8"
BINARY = "application/octet-stream"
HTML = "text/html; charset=utf-8"
NOSNIFF = ("X-Content-Type-Options", "nosniff")


@dataclass
class Request:
    """What a handler needs of an HTTP request. ``path`` is the decoded path
    (without the query), ``query`` the raw query string; header names are
    lower case."""

    method: str
    path: str
    query: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


@dataclass
class Pending:
    """A response that comes after ``seconds``: the transport calls
    ``finish()`` then, or ``cancel()`` if the client went away or the
    server is closing (which ends what the request started)."""

    seconds: float
    finish: Callable[[], Response]
    cancel: Callable[[], Response]


Result = Response | Pending


class BadRequest(Exception):
    """A malformed parameter: answered with 400 and this message."""


def content_length(value: str | None) -> int | Response:
    """The body's length from a Content-Length header (None: no body), or
    the 400 or 413 that answers a malformed (empty too) or oversized one.
    ASCII digits only: str.isdigit() takes '\u00b2', which int() refuses."""
    if value is None:
        return 0
    if not _LENGTH.match(value):
        return error(400, "malformed Content-Length: it must be a decimal number of bytes")
    if int(value) > MAX_BODY:
        return error(413, f"request body too large: at most {MAX_BODY} bytes")
    return int(value)


def guarded(answer: Callable[[], T]) -> T | Response:
    """``answer()``, or a 500 that names the fault when cprof fails (the
    client is told, the transport goes on serving; nothing is printed)."""
    try:
        return answer()
    except Exception as e:
        return error(500, f"failed to collect profile: {type(e).__name__}: {e}")


def error(status: int, message: str) -> Response:
    """Go's serveError: plain text, the message and a newline, X-Go-Pprof: 1."""
    return Response(status, [NOSNIFF, ("Content-Type", TEXT), ("X-Go-Pprof", "1")],
                    (message + "\n").encode())


def _attachment(name: str, body: bytes) -> Response:
    return Response(200, [NOSNIFF, ("Content-Type", BINARY),
                          ("Content-Disposition", f'attachment; filename="{name}"')], body)


def _text(body: str, content_type: str = TEXT) -> Response:
    return Response(200, [NOSNIFF, ("Content-Type", content_type)], body.encode())


class _Query:
    """The query's parameters, read as Go's FormValue does (the first value;
    an empty value is no value), but strictly: a value that is not an integer
    is a 400, where Go would silently use 0."""

    def __init__(self, raw: str) -> None:
        self.values = parse_qs(raw, keep_blank_values=True)

    def get(self, name: str) -> str:
        return self.values.get(name, [""])[0]

    def integer(self, name: str, default: int = 0) -> int:
        value = self.get(name)
        if value == "":
            return default
        if not _INTEGER.match(value):
            raise BadRequest(f'invalid value for "{name}" - must be an integer')
        return int(value)


class Endpoints:
    """The routes of net/http/pprof under ``prefix``, with an optional token
    (``Authorization: Bearer TOKEN``, or HTTP basic auth with the token as
    password, which ``go tool pprof http://user:TOKEN@host/...`` sends) and a
    cap on ``seconds``.

    Without a token, a request naming any host but an IP address,
    ``localhost`` or one of ``allowed_hosts`` (``"*"``: any) is refused
    with 403: a web page whose name an attacker rebinds to 127.0.0.1 sends
    its own name. Token or not, a browser's cross-site request (its
    ``Sec-Fetch-Site`` header says so) is refused: an ``<img>`` on any page
    could otherwise hold the CPU profiler for ``max_seconds``."""

    def __init__(self, prefix: str = PREFIX, *, token: str | None = None,
                 max_seconds: int = DEFAULT_MAX_SECONDS,
                 allowed_hosts: Iterable[str] = ()) -> None:
        if not prefix.startswith("/") or prefix.endswith("/"):
            raise ValueError(f"prefix must start with '/' and not end with one, not {prefix!r}")
        if token is not None and not token:
            raise ValueError("token must not be empty (None for no token)")
        if isinstance(max_seconds, bool) or not isinstance(max_seconds, int) or max_seconds < 1:
            raise ValueError(f"max_seconds must be a positive int, not {max_seconds!r}")
        if isinstance(allowed_hosts, str):
            raise ValueError(f"allowed_hosts must be a list of host names, not the string "
                             f"{allowed_hosts!r}")
        self.prefix = prefix
        self.token = token
        self.max_seconds = max_seconds
        self.allowed_hosts = frozenset(h.strip().lower().rstrip(".") for h in allowed_hosts)

    def route(self, path: str) -> str | None:
        """The profile name a path asks for ("" for the index), or None when
        the path is not under the prefix."""
        if path == self.prefix:
            return ""
        if path.startswith(self.prefix + "/"):
            return path[len(self.prefix) + 1:]
        return None

    def handle(self, request: Request) -> Result | None:
        """The answer to ``request``, or None when its path is not ours."""
        name = self.route(request.path)
        if name is None:
            return None
        refusal = self.admit(request)
        if refusal is not None:
            return refusal
        if request.path == self.prefix:  # as Go's ServeMux: the index ends with '/'
            # Relative, so that it holds wherever the app is mounted.
            location = self.prefix.rsplit("/", 1)[1] + "/" + (
                "?" + request.query if request.query else "")
            return Response(301, [("Location", location), ("Content-Type", HTML)],
                            f'<a href="{html.escape(location)}">Moved Permanently</a>.\n'.encode())
        try:
            return self._dispatch(name, request)
        except BadRequest as e:
            return error(400, str(e))

    def admit(self, request: Request) -> Response | None:
        """The refusal of a request for one of our paths (a foreign host, a
        cross-site fetch, no token, a wrong method), judged on its head
        alone, so that a transport reads no body for a request it refuses;
        None when it may go on."""
        fetch_site = request.headers.get("sec-fetch-site", "").strip().lower()
        if fetch_site and fetch_site not in _OWN_FETCHES:
            return error(403, "Forbidden: a browser's cross-site request (Sec-Fetch-Site: "
                              f"{fetch_site}); open the profile's URL itself")
        if not self._authorized(request.headers.get("authorization", "")):
            return Response(401, [NOSNIFF, ("Content-Type", TEXT),
                                  ("WWW-Authenticate", 'Bearer realm="cprof"'),
                                  ("WWW-Authenticate", 'Basic realm="cprof"')],
                            b"Unauthorized: this server needs its token, as 'Authorization: "
                            b"Bearer TOKEN' or as the password of http://user:TOKEN@host/\n")
        host = request.headers.get("host")
        if self.token is None and host is not None and not self.host_allowed(host):
            return error(403, f"Forbidden: the host {host[:100]!r} is not one this server "
                              "answers without a token (an IP address or localhost); "
                              "allow it with allowed_hosts= or cprof serve --allow-host, "
                              "or set a token")
        name = self.route(request.path)
        allowed = ("GET", "HEAD", "POST") if name == "symbol" else ("GET", "HEAD")
        if request.method not in allowed:
            return Response(405, [NOSNIFF, ("Content-Type", TEXT), ("Allow", ", ".join(allowed))],
                            b"Method Not Allowed\n")
        return None

    def host_allowed(self, host: str) -> bool:
        """Whether a Host header names this server as no rebound DNS name
        can: an IP address, localhost, or a name of ``allowed_hosts``."""
        name = host.strip().lower()
        if name.startswith("["):
            name = name[1:name.find("]")] if "]" in name else name
        elif name.count(":") == 1:
            name = name.partition(":")[0]
        name = name.rstrip(".")
        if "*" in self.allowed_hosts or name in self.allowed_hosts or name == "localhost":
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True

    def _authorized(self, header: str) -> bool:
        """Whether the Authorization header carries the token, compared as
        bytes (the token's UTF-8, the header's bytes as sent)."""
        if self.token is None:
            return True
        scheme, _, credentials = header.strip().partition(" ")
        given = _wire_bytes(credentials.strip())
        if scheme.lower() == "basic":
            try:
                given = b64decode(given, validate=True).partition(b":")[2]
            except (Base64Error, ValueError):
                return False
        elif scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given, self.token.encode())

    def _dispatch(self, name: str, request: Request) -> Result:
        """The route's answer (``name`` is the path under the prefix)."""
        query = _Query(request.query)
        if name == "":
            return _text(index_html(), HTML)
        if name == "cmdline":
            return _text("\x00".join(runner.command_line or sys.orig_argv))
        if name == "symbol":
            words = request.body if request.method == "POST" else request.query.encode()
            return _text(symbols(words))
        if name == "profile":
            return self._cpu(query)
        try:
            profile = lookup(name)
        except ValueError:
            return error(404, "Unknown profile")
        if query.get("seconds") != "":
            return self._delta(profile, query)
        gc = query.integer("gc") > 0 and profile.name == "heap"
        debug = query.integer("debug")
        if debug != 0:
            return _text(_profile_text(profile, debug, gc))
        return _attachment(name, _named_profile(profile, gc).to_bytes())

    def _seconds(self, query: _Query, default: int | None = None) -> int:
        raw = query.get("seconds")
        if raw == "" and default is not None:
            return min(default, self.max_seconds)
        if not _INTEGER.match(raw) or int(raw) <= 0:
            raise BadRequest('invalid value for "seconds" - must be a positive integer')
        seconds = int(raw)
        if seconds > self.max_seconds:
            raise BadRequest(f"profile duration exceeds server's limit of {self.max_seconds} "
                             f"seconds (max_seconds)")
        return seconds

    def _cpu(self, query: _Query) -> Result:
        seconds = self._seconds(query, DEFAULT_CPU_SECONDS)
        try:
            mine = cpu.start_cpu_profile()  # 100 Hz, as Go's endpoint
        except RuntimeError as e:
            return error(500, f"Could not enable CPU profiling: {e}")

        # Only the profile this request started is stopped: the program may
        # have stopped it meanwhile and started its own.
        def finish() -> Response:
            try:
                return _attachment("profile", cpu.stop_cpu_profile(mine).to_bytes())
            except RuntimeError:  # stopped by someone else meanwhile
                return error(500, "failed to collect profile: the CPU profile was stopped "
                                  "by the program")

        def cancel() -> Response:
            try:
                cpu.stop_cpu_profile(mine)
            except RuntimeError:
                pass
            return error(500, "context canceled")

        return Pending(seconds, finish, cancel)

    def _delta(self, named: NamedProfile, query: _Query) -> Result:
        """Go's serveDeltaProfile: the profile now and after ``seconds``, the
        first subtracted from the second."""
        seconds = self._seconds(query)
        if named.name not in _DELTA:
            raise BadRequest('"seconds" parameter is not supported for this profile type')
        if query.integer("debug") != 0:
            raise BadRequest("seconds and debug params are incompatible")
        p0, t0 = _named_profile(named, False), time.time_ns()

        def finish() -> Response:
            p1, t1 = _named_profile(named, False), time.time_ns()
            delta = ops.subtract(p1, p0)
            delta = ops.with_samples(delta, delta.samples, time_ns=t1, duration_ns=t1 - t0,
                                     comments=[*p1.comments, f"delta: what changed in the "
                                               f"{seconds} s after the request"])
            return _attachment(f"{named.name}-delta", delta.to_bytes())

        return Pending(seconds, finish, lambda: error(500, "context canceled"))


def _wire_bytes(header: str) -> bytes:
    """A header value's bytes as the client sent them: transports decode
    headers as latin-1 (http.server, PEP 3333, ASGI), so encoding back
    gives them; a str from elsewhere that latin-1 cannot hold is UTF-8."""
    try:
        return header.encode("latin-1")
    except UnicodeEncodeError:
        return header.encode()


# How many servers and apps asked for the heap profiler that heap_on started
# (one they did not start is left to whoever did).
_heap_holders = 0


def heap_on(rate: int) -> bool:
    """Turn the heap profiler on at ``rate`` (0: leave it as it is), as Go's
    runtime always samples allocations; True when the caller holds it and
    must give it back with heap_release()."""
    global _heap_holders
    if isinstance(rate, bool) or not isinstance(rate, int) or rate < 0:
        raise ValueError(f"heap_rate must be a non-negative int, not {rate!r}")
    if rate == 0:
        return False
    if not heap.running():
        try:
            heap.start_heap_profile(rate)
        except RuntimeError:  # started by another thread meanwhile: not ours
            return False
        _heap_holders = 0
    elif _heap_holders == 0:
        return False  # the program's own heap profile
    _heap_holders += 1
    return True


def heap_release() -> None:
    """The heap profiler is no longer needed by one holder: stopped when the
    last one lets go."""
    global _heap_holders
    _heap_holders -= 1
    if _heap_holders == 0 and heap.running():
        heap.stop_heap_profile()


def _heap_off(name: str) -> Profile:
    """What heap and allocs serve while no heap profile has run: an empty
    profile, as Go's with MemProfileRate=0, that says why."""
    return Profile(heap.SAMPLE_TYPES, [], period_type=ValueType("space", "bytes"),
                   period=0, time_ns=time.time_ns(),
                   default_sample_type="alloc_space" if name == "allocs" else "",
                   comments=["heap profiling is off: cprof.start_heap_profile() (or cprof.serve "
                             "with heap_rate > 0) turns it on"])


def _named_profile(named: NamedProfile, gc: bool) -> Profile:
    if named.name in ("heap", "allocs"):
        try:
            profile = heap.heap_profile(named.name, gc=gc)
        except RuntimeError:
            return _heap_off(named.name)
        if not heap.running():
            return ops.with_samples(profile, profile.samples, comments=[
                *profile.comments, "heap profiling has stopped: this is the profile as it "
                "stopped"])
        return profile
    return named.profile()


def _profile_text(named: NamedProfile, debug: int, gc: bool) -> str:
    if named.name in ("heap", "allocs"):
        try:
            return heap.heap_text(gc=gc)
        except RuntimeError:
            return textformat.heap_text([], 0) + "# " + _heap_off(named.name).comments[0] + "\n"
    return named.text(debug)


def index_html() -> str:
    """Go's index page: every profile with its count, then the descriptions."""
    rows = [(p.name, len(_named_profile(p, False).samples)) for p in profiles()]
    rows += [(name, 0) for name in _OWN_ROUTES]
    rows.sort()
    out = ["<html>\n<head>\n<title>/debug/pprof/</title>\n<style>\n.profile-name{\n"
           "\tdisplay:inline-block;\n\twidth:6rem;\n}\n</style>\n</head>\n<body>\n"
           "/debug/pprof/\n<br>\n<p>Set debug=1 as a query parameter to export in legacy text "
           "format</p>\n<br>\nTypes of profiles available:\n<table>\n"
           "<thead><td>Count</td><td>Profile</td></thead>\n"]
    out += [f"<tr><td>{count}</td><td><a href='{name}?debug=1'>{name}</a></td></tr>\n"
            for name, count in rows]
    out.append("</table>\n<a href=\"goroutine?debug=2\">full goroutine stack dump</a>\n<br>\n"
               "<p>\nProfile Descriptions:\n<ul>\n")
    out += [f"<li><div class=profile-name>{name}: </div> {html.escape(DESCRIPTIONS[name])}</li>\n"
            for name, _ in rows]
    out.append("</ul>\n</p>\n</body>\n</html>\n")
    return "".join(out)


def symbols(words: bytes) -> str:
    """Go's Symbol: "num_symbols: 1", then ``0xADDR name`` for each address
    in ``words`` ('+'-separated, any base Go's ParseUint(s, 0, 64) reads) that
    falls in a native symbol of this process."""
    out = ["num_symbols: 1\n"]
    for word in words.split(b"+"):
        try:
            pc = int(word.decode("ascii"), 0)
        except (UnicodeDecodeError, ValueError):
            continue
        if 0 < pc < 1 << 64:
            name = native_symbol(pc)
            if name is not None:
                out.append(f"{pc:#x} {name}\n")
    return "".join(out)


@functools.cache
def _dladdr() -> tuple[Any, Any]:
    """libc's dladdr and its Dl_info, through ctypes (imported when first
    needed: most processes never serve /symbol)."""
    import ctypes

    class DlInfo(ctypes.Structure):
        _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                    ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]

    dladdr = ctypes.CDLL(None).dladdr
    dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(DlInfo)]
    return dladdr, DlInfo


def native_symbol(pc: int) -> str | None:
    """The dynamic symbol containing address ``pc`` (dladdr: it looks the
    address up in the loaded objects' tables, never reads it), if any."""
    dladdr, info_type = _dladdr()
    info = info_type()
    if dladdr(pc, info) == 0 or not info.dli_sname:
        return None
    return str(info.dli_sname.decode(errors="replace"))
