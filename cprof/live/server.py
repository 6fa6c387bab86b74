"""server: cprof.serve(), net/http/pprof's endpoints on a thread of their own.

``server = cprof.serve(port=6060)`` and then, from anywhere that reaches it,
``go tool pprof http://127.0.0.1:6060/debug/pprof/profile?seconds=10``. The
server is the standard library's threading HTTP server: no event loop, a
thread per request, so a 30-second CPU profile does not hold up a heap
request. ``CPROF_SERVE=[HOST:]PORT`` in the environment starts one when
cprof is imported.
"""

from __future__ import annotations

import errno
import io
import ipaddress
import os
import resource
import select
import socket
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import unquote

from ..collect import heap, patches, quiet
from .endpoints import (DEFAULT_MAX_SECONDS, PREFIX, TEXT, Endpoints, Pending, Request, Response,
                        content_length, error, guarded, heap_on, heap_release)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Iterable

ENV_VAR = "CPROF_SERVE"
TOKEN_ENV_VAR = "CPROF_SERVE_TOKEN"
ALLOW_HOSTS_ENV_VAR = "CPROF_SERVE_ALLOW_HOSTS"  # comma-separated, as serve(allowed_hosts=)
# Limits a scraper or go tool pprof never meets (docs/SECURITY.md).
DEFAULT_MAX_CONNECTIONS = 64
DEFAULT_REQUEST_TIMEOUT = 15.0
DEFAULT_MAX_HEADER_BYTES = 64 * 1024
# Descriptors the server never takes from the program: a connection that
# would leave fewer free is refused.
FD_RESERVE = 16


class ExposedWarning(UserWarning):
    """cprof.serve bound to an address other hosts can reach."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Limits:
    """What one client may take of the server (docs/SECURITY.md): at most
    ``max_connections`` at once (more get 503 at once); ``request_timeout``
    seconds to send a whole request head and body, and as long to send the
    next one on a kept-alive connection; ``max_header_bytes`` of request
    line and headers (431 beyond)."""

    max_connections: int = DEFAULT_MAX_CONNECTIONS
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES

    def __post_init__(self) -> None:
        for name in ("max_connections", "max_header_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, not {value!r}")
        t = self.request_timeout
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t < 1e6:
            raise ValueError(f"request_timeout must be a positive number of seconds, not {t!r}")


class _HeadTooLarge(Exception):
    """The request line and headers exceed max_header_bytes."""


class _Closing(Exception):
    """The server closes: the request being read is dropped."""


class _RequestReader(io.RawIOBase):
    """The connection's bytes, within the request's deadline (not a timeout
    per recv: a byte at a time holds nothing past it) and, until the head
    is read, its size cap; the server closing ends a read at once."""

    def __init__(self, sock: socket.socket, closing: int) -> None:
        super().__init__()
        self.sock = sock
        self.closing = closing
        self.deadline = 0.0
        self.left: int | None = None

    def start(self, seconds: float, head_bytes: int) -> None:
        """A new request: ``seconds`` to come, ``head_bytes`` for its head."""
        self.deadline = time.monotonic() + seconds
        self.left = head_bytes

    def head_read(self) -> None:
        self.left = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self.left is not None:
            if self.left <= 0:
                raise _HeadTooLarge()
            view = view[:self.left]
        remaining = self.deadline - time.monotonic()
        poll = select.poll()
        poll.register(self.sock, select.POLLIN | select.POLLPRI)
        if self.closing >= 0:
            poll.register(self.closing, select.POLLIN)
        ready = dict(poll.poll(max(0.0, remaining) * 1000)) if remaining > 0 else {}
        if self.closing in ready:
            raise _Closing()
        if not ready:
            raise TimeoutError("the request did not arrive within request_timeout")
        n = self.sock.recv_into(view)
        if self.left is not None:
            self.left -= n
        return n


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a request in flight never holds up the program's exit
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], endpoints: Endpoints, limits: Limits) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.endpoints = endpoints
        self.limits = limits
        self.connections = 0  # open connections, each with its thread
        self.in_flight: set[threading.Thread] = set()
        self.in_flight_lock = threading.Lock()
        self.backoff = 0.0
        self.closing = threading.Event()
        # A byte written here ends every wait and read in flight (close()).
        self.closing_read, self.closing_write = os.pipe()
        try:
            super().__init__(address, _Handler)
        except BaseException:
            self._close_pipe()
            raise

    def _close_pipe(self) -> None:
        if self.closing_write >= 0:
            os.close(self.closing_read)
            os.close(self.closing_write)
            self.closing_read = self.closing_write = -1

    def get_request(self) -> tuple[socket.socket, Any]:
        """accept(), backing off (up to a second) while the process is out
        of descriptors or memory: the listening socket stays readable, so
        retrying at once would spin a core."""
        try:
            request = super().get_request()
        except OSError as e:
            if e.errno in _SCARCE:
                self.backoff = min(1.0, max(0.05, self.backoff * 2))
                time.sleep(self.backoff)
            raise
        self.backoff = 0.0
        return request

    def verify_request(self, request: Any, client_address: Any) -> bool:
        """Refuse, with a 503 and at once, a connection over max_connections
        or one that would leave the program fewer than FD_RESERVE free
        descriptors (descriptors are numbered lowest free first, so a high
        number says the lower ones are taken)."""
        with self.in_flight_lock:
            full = self.connections >= self.limits.max_connections
        if full:
            why = f"too many connections (max_connections={self.limits.max_connections})"
        elif request.fileno() >= _descriptor_limit() - FD_RESERVE:
            why = "too many connections: the process is short of file descriptors"
        else:
            return True
        _refuse(request, why)
        return False

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.in_flight_lock:
            self.connections += 1
        try:
            super().process_request(request, client_address)
        except BaseException:
            with self.in_flight_lock:
                self.connections -= 1
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.in_flight_lock:
                self.connections -= 1

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line on stderr, never a traceback in the program's output."""
        e = sys.exc_info()[1]
        print(f"cprof: serving a request failed: {type(e).__name__}: {e}"[:300],
              file=sys.stderr)

    def server_close(self) -> None:
        """Close the socket, end the waits and reads in flight (idle
        kept-alive connections among them) and wait, 10 s at most in all,
        for their threads (daemon threads, which ThreadingMixIn does not
        join)."""
        super().server_close()
        if self.closing_write < 0:
            return
        self.closing.set()
        os.write(self.closing_write, b"x")
        with self.in_flight_lock:
            threads = list(self.in_flight)
        deadline = time.monotonic() + 10
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if all(not t.is_alive() for t in threads):
            self._close_pipe()  # else left open: a thread still polls it


# Errors of accept() that say the process is short of a resource.
_SCARCE = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def _descriptor_limit() -> int:
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return sys.maxsize if soft == resource.RLIM_INFINITY else int(soft)


def _refuse(sock: socket.socket, why: str) -> None:
    """A 503 sent without waiting (a client that does not read loses it),
    then the connection closed: the accepting thread never blocks."""
    body = f"{why}; try again later\n".encode()
    head = (f"HTTP/1.1 503 Service Unavailable\r\nServer: cprof\r\nContent-Type: {TEXT}\r\n"
            f"Retry-After: 1\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n")
    try:
        sock.setblocking(False)
        sock.send(head.encode() + body)
        sock.shutdown(socket.SHUT_WR)
        for _ in range(16):  # what has arrived: unread, closing would reset the connection
            if not sock.recv(65536):
                break
    except OSError:
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "cprof"
    # A client that stops reading the response is dropped after this long
    # (sendall's total); reading the request has the server's request_timeout.
    timeout = 60
    # Errors the standard library answers itself (a malformed request line,
    # headers too long): plain text, as Go's server answers them.
    error_message_format = "%(code)d %(message)s\n"
    error_content_type = "text/plain; charset=utf-8"

    def setup(self) -> None:
        me = threading.current_thread()
        me.name = "cprof-http-request"
        with self.server.in_flight_lock:
            self.server.in_flight.add(me)
        super().setup()
        self.rfile.close()  # the socket's file, replaced by one that keeps the deadline
        self.reader = _RequestReader(self.connection, self.server.closing_read)
        self.rfile = io.BufferedReader(self.reader)
        # After the last response: None, close at once; False, wait for the
        # client to close first; True, shut our side and drain the rest.
        self.linger: bool | None = None

    def _linger(self, shut: bool) -> None:
        """Close gently: a socket closed with input unread sends a reset,
        which can destroy the response in the client's buffers, and the
        side that closes first keeps the port in TIME_WAIT. So wait (a
        bounded time) for the client's end of stream, discarding what it
        still sends; ``shut`` first tells it ours (a client still sending a
        refused request, or reading until the end)."""
        try:
            if shut:
                self.connection.shutdown(socket.SHUT_WR)
            end = time.monotonic() + self.LINGER_SECONDS
            drained = 0
            poll = select.poll()
            poll.register(self.connection, select.POLLIN | select.POLLRDHUP)
            while drained < self.LINGER_BYTES and (left := end - time.monotonic()) > 0:
                if not poll.poll(left * 1000):
                    return
                data = self.connection.recv(65536)
                if not data:
                    return
                drained += len(data)
        except OSError:
            pass

    # After a response that ends the connection: how long to wait for the
    # client to close first, and how much of what it still sends to discard.
    LINGER_SECONDS = 1.0
    LINGER_BYTES = 1 << 20

    def finish(self) -> None:
        try:
            super().finish()
            if self.linger is not None:
                self._linger(shut=self.linger)
        finally:
            with self.server.in_flight_lock:
                self.server.in_flight.discard(threading.current_thread())

    def version_string(self) -> str:
        return self.server_version  # not the Python version, which helps only an attacker

    def handle_one_request(self) -> None:
        limits = self.server.limits
        self.reader.start(limits.request_timeout, limits.max_header_bytes)
        self.command, self.request_version = "", "HTTP/1.0"  # until the request line says
        try:
            super().handle_one_request()
        except _HeadTooLarge:
            self.close_connection = True
            self.linger = True
            self.send_error(431, f"Request Header Fields Too Large (max_header_bytes="
                                 f"{limits.max_header_bytes})")
        except (_Closing, ConnectionError):
            self.close_connection = True

    def handle_expect_100(self) -> bool:
        """No 100 Continue before the request is admitted (_serve sends it):
        a refused client must not be invited to send its body."""
        return True

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        self.reader.head_read()
        if self.request_version == "HTTP/0.9":  # as Go's server: no HTTP/0.9
            self.send_error(400, "HTTP/0.9 is not supported")
            return False
        return True

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        # Every answer has a status line, even to a request line too broken
        # to say its HTTP version (the standard library would answer as to
        # HTTP/0.9: a bare body).
        if getattr(self, "request_version", "") == "HTTP/0.9":
            self.request_version = "HTTP/1.0"
        try:
            super().send_error(code, message, explain)
        except OSError:  # the client went away
            self.close_connection = True

    def do_GET(self) -> None:
        self._serve()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def _serve(self) -> None:
        path, _, query = self.path.partition("?")
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = Request(self.command or "GET", unquote(path), query, headers)
        endpoints = self.server.endpoints
        if endpoints.route(request.path) is None:
            self._send(error(404, "404 page not found"))
            return
        refusal = endpoints.admit(request)  # before a byte of the body is read
        length = content_length(self.headers.get("Content-Length"))
        if refusal is not None or isinstance(length, Response):
            # The body, if any, is left unread: the connection cannot go on.
            self.close_connection = True
            self.linger = True
            self._send(refusal if refusal is not None else length)  # type: ignore[arg-type]
            return
        if "transfer-encoding" in headers:
            self.close_connection = True
            self.linger = True
            self._send(error(501, "Transfer-Encoding is not supported: send Content-Length"))
            return
        if length and headers.get("expect", "").lower() == "100-continue":
            self.send_response_only(100)  # now that the request is admitted
            self.end_headers()
        request.body = self.rfile.read(length) if length else b""
        if len(request.body) < length:
            self.close_connection = True
            return  # the client hung up mid-body
        self._send(guarded(lambda: self._answer(request)))

    def _answer(self, request: Request) -> Response:
        result = self.server.endpoints.handle(request)
        if result is None:
            return error(404, "404 page not found")
        if isinstance(result, Pending):
            # A client that hung up gets nothing; a server closing (the
            # program ended, say) answers with what it has so far, and ends
            # the connection.
            if self._client_gone(result.seconds):
                return result.cancel()
            if self.server.closing.is_set():
                # The client closes first, on our Connection: close: the
                # port keeps no TIME_WAIT and can be served on again at once.
                self.close_connection = True
                self.linger = False
            return result.finish()
        return result

    def _client_gone(self, seconds: float) -> bool:
        """Sleep ``seconds``, or less if the server closes; True as soon as
        the client hangs up. Only hang-ups wake the poll (POLLRDHUP), not a
        pipelined request arriving. A client that only shut its sending side
        (half-closed, as some do after their request) is still reading: the
        first POLLRDHUP is answered with an interim 100 Continue, to which a
        closed socket answers with a reset (POLLERR/POLLHUP) and a
        half-closed one does not."""
        closing = self.server.closing_read
        if closing < 0:
            return False
        deadline = time.monotonic() + seconds
        poll = select.poll()
        poll.register(self.connection, select.POLLRDHUP | select.POLLHUP | select.POLLERR)
        poll.register(closing, select.POLLIN)
        while (left := deadline - time.monotonic()) > 0:
            events = dict(poll.poll(left * 1000))
            if closing in events:
                return False
            mine = events.get(self.connection.fileno(), 0)
            if mine & (select.POLLHUP | select.POLLERR):
                return True
            if mine & select.POLLRDHUP:
                if self.request_version != "HTTP/1.1":
                    return True  # an HTTP/1.0 client may not take a 1xx
                poll.modify(self.connection, select.POLLHUP | select.POLLERR)
                try:
                    self.connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                except OSError:
                    return True
        return False

    def _send(self, response: Response) -> None:
        try:
            self.send_response(response.status)
            for name, value in response.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            if self.close_connection:
                self.send_header("Connection", "close")
                if self.linger is None:
                    self.linger = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        except OSError:  # the client went away or stopped reading
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a profiler's server is not the application's access log


class Server:
    """A running cprof server: ``host``, ``port``, ``url`` (of the index)
    and ``close()``; a context manager too."""

    def __init__(self, httpd: _HTTPServer, started_heap: bool) -> None:
        self._httpd = httpd
        self._started_heap = started_heap
        self.host = str(httpd.server_address[0])
        self.port: int = httpd.server_address[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{host}:{self.port}{httpd.endpoints.prefix}/"
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.25},
                                        name="cprof-http", daemon=True)
        patches.thread_creators.use()  # the threadcreate profile and dumps' "created by"
        quiet.start(self._thread)  # its request threads inherit its signal mask

    def __repr__(self) -> str:
        state = "closed" if self.closed else "serving"
        return f"<cprof.Server {state} at {self.url}>"

    @property
    def closed(self) -> bool:
        return not self._thread.is_alive()

    def close(self) -> None:
        """Stop serving: requests in flight end (a CPU profile one started
        stops), the port is released, and a heap profile serve() started is
        stopped. Closing twice is harmless."""
        if self.closed:
            return
        self._httpd.shutdown()
        self._thread.join()
        self._httpd.server_close()
        patches.thread_creators.release()
        if self._started_heap:
            heap_release()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def serve(host: str = "127.0.0.1", port: int = 6060, *, token: str | None = None,
          max_seconds: int = DEFAULT_MAX_SECONDS, heap_rate: int = heap.DEFAULT_RATE,
          prefix: str = PREFIX, allowed_hosts: Iterable[str] = (),
          max_connections: int = DEFAULT_MAX_CONNECTIONS,
          request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
          max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES) -> Server:
    """Serve Go's net/http/pprof endpoints (``/debug/pprof/...``) from a
    background thread and return the :class:`Server`.

    ``port=0`` takes a free port (``server.port`` says which). The default
    host is the loopback interface; any other host is reachable by others
    and gets an :class:`ExposedWarning` (give a ``token`` then: requests
    must carry ``Authorization: Bearer TOKEN`` or use it as a basic-auth
    password). ``max_seconds`` caps ``seconds=`` of CPU and delta profiles.
    Like Go's runtime, the heap profiler runs while serving, sampling one
    allocation per ``heap_rate`` bytes (0: leave it off; a heap profile
    already running is kept as it is).

    Without a token, only requests that name the server by an IP address,
    ``localhost`` or a name of ``allowed_hosts`` (``["*"]``: any) are
    answered: DNS rebinding cannot reach it. ``max_connections``,
    ``request_timeout`` (seconds for a whole request) and
    ``max_header_bytes`` bound what clients may take (docs/SECURITY.md).
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an int from 0 to 65535, not {port!r}")
    endpoints = Endpoints(prefix, token=token, max_seconds=max_seconds,
                          allowed_hosts=allowed_hosts)
    limits = Limits(max_connections, request_timeout, max_header_bytes)
    httpd = _HTTPServer((host, port), endpoints, limits)
    if not is_loopback(host):
        advice = "" if token else (" (a token keeps them out: serve(token=...), cprof serve "
                                   "--token-file, CPROF_SERVE_TOKEN)")
        warnings.warn(f"cprof serves profiles on {host}:{httpd.server_address[1]}, which other "
                      f"hosts can reach: anyone who can connect can profile this process"
                      f"{advice}", ExposedWarning, stacklevel=2)
    try:
        started_heap = heap_on(heap_rate)
    except ValueError:
        httpd.server_close()
        raise
    return Server(httpd, started_heap)


def parse_address(value: str) -> tuple[str, int]:
    """``PORT``, ``:PORT``, ``HOST:PORT`` or ``[IPV6]:PORT`` as (host, port);
    the host defaults to 127.0.0.1."""
    host, sep, port = value.strip().rpartition(":")
    if not sep:
        host = ""
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{value!r} is not [HOST:]PORT (a port from 0 to 65535)")
    return host or "127.0.0.1", int(port)


# The server CPROF_SERVE started, if any (cprof serve closes it: it serves on its own port).
from_environment: Server | None = None


def serve_from_environment() -> Server | None:
    """Start serving when ``CPROF_SERVE=[HOST:]PORT`` is set (with the token
    in ``CPROF_SERVE_TOKEN``, if any, and host names to answer without one
    in ``CPROF_SERVE_ALLOW_HOSTS``, comma-separated). The variables are taken out of
    os.environ, so that the program's child processes do not try to serve
    on the same port. Never raises: a bad value or a busy port is a warning
    on stderr and the program runs unprofiled."""
    value = os.environ.pop(ENV_VAR, None)
    token = os.environ.pop(TOKEN_ENV_VAR, None)
    hosts = [h for h in os.environ.pop(ALLOW_HOSTS_ENV_VAR, "").split(",") if h.strip()]
    if not value:
        return None
    try:
        host, port = parse_address(value)
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always", ExposedWarning)
            server = serve(host, port, token=token or None, allowed_hosts=hosts)
    except (OSError, ValueError) as e:
        print(f"cprof: {ENV_VAR}={value}: not serving profiles: {e}", file=sys.stderr)
        return None
    for w in said:
        print(f"cprof: warning: {w.message}", file=sys.stderr)
    print(f"cprof: serving profiles at {server.url}", file=sys.stderr)
    global from_environment
    from_environment = server
    return server
