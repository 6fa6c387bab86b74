"""server: cprof.serve(), net/http/pprof's endpoints on a thread of their own.

``server = cprof.serve(port=6060)`` and then, from anywhere that reaches it,
``go tool pprof http://127.0.0.1:6060/debug/pprof/profile?seconds=10``. The
server is the standard library's threading HTTP server: no event loop, a
thread per request, so a 30-second CPU profile does not hold up a heap
request. ``CPROF_SERVE=[HOST:]PORT`` in the environment starts one when
cprof is imported.
"""

from __future__ import annotations

import ipaddress
import os
import select
import socket
import sys
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import unquote

from . import heapprof
from .http import (DEFAULT_MAX_SECONDS, MAX_BODY, PREFIX, Endpoints, Pending, Request, Response,
                   error, heap_on, heap_release)

ENV_VAR = "CPROF_SERVE"
TOKEN_ENV_VAR = "CPROF_SERVE_TOKEN"


class ExposedWarning(UserWarning):
    """cprof.serve bound to an address other hosts can reach."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a request in flight never holds up the program's exit
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], endpoints: Endpoints) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.endpoints = endpoints
        self.in_flight: set[threading.Thread] = set()
        self.in_flight_lock = threading.Lock()
        # A byte written here ends every wait in flight (close()).
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

    def server_close(self) -> None:
        """Close the socket, end the waits in flight and wait for their
        requests (daemon threads, which ThreadingMixIn does not join)."""
        super().server_close()
        if self.closing_write < 0:
            return
        os.write(self.closing_write, b"x")
        with self.in_flight_lock:
            threads = list(self.in_flight)
        for t in threads:
            t.join(10)
        self._close_pipe()


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "cprof"
    timeout = 60  # a client that stops sending (or reading) is dropped, not waited for
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

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.in_flight_lock:
                self.server.in_flight.discard(threading.current_thread())

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
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
        super().send_error(code, message, explain)

    def do_GET(self) -> None:
        self._serve()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def _serve(self) -> None:
        path, _, query = self.path.partition("?")
        body = b""
        length = self.headers.get("Content-Length")
        if length is not None:
            if not length.isdigit() or int(length) > MAX_BODY:
                self._send(error(413 if length.isdigit() else 400,
                                 "request body too large or malformed Content-Length"))
                self.close_connection = True
                return
            body = self.rfile.read(int(length))
        request = Request(self.command, unquote(path), query,
                          {k.lower(): v for k, v in self.headers.items()}, body)
        try:
            result = self.server.endpoints.handle(request)
            if result is None:
                result = error(404, "404 page not found")
            if isinstance(result, Pending):
                # A client that hung up gets nothing; a server closing (the
                # program ended, say) answers with what it has so far.
                gone = self._client_gone(result.seconds)
                result = result.cancel() if gone else result.finish()
        except Exception as e:  # a fault of cprof's: the client is told, the server goes on
            result = error(500, f"failed to collect profile: {type(e).__name__}: {e}")
        self._send(result)

    def _client_gone(self, seconds: float) -> bool:
        """Sleep ``seconds``, or less if the server closes; True as soon as
        the client hangs up. Only hang-ups wake the poll (POLLRDHUP), not a
        pipelined request arriving."""
        closing = self.server.closing_read
        if closing < 0:
            return False
        poll = select.poll()
        poll.register(self.connection, select.POLLRDHUP | select.POLLHUP | select.POLLERR)
        poll.register(closing, select.POLLIN)
        return any(fd != closing for fd, _ in poll.poll(seconds * 1000))

    def _send(self, response: Response) -> None:
        try:
            self.send_response(response.status)
            for name, value in response.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
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
        self._thread.start()

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
        if self._started_heap:
            heap_release()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def serve(host: str = "127.0.0.1", port: int = 6060, *, token: str | None = None,
          max_seconds: int = DEFAULT_MAX_SECONDS, heap_rate: int = heapprof.DEFAULT_RATE,
          prefix: str = PREFIX) -> Server:
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
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an int from 0 to 65535, not {port!r}")
    endpoints = Endpoints(prefix, token=token, max_seconds=max_seconds)
    httpd = _HTTPServer((host, port), endpoints)
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


def serve_from_environment() -> Server | None:
    """Start serving when ``CPROF_SERVE=[HOST:]PORT`` is set (with the token
    in ``CPROF_SERVE_TOKEN``, if any). The variables are taken out of
    os.environ, so that the program's child processes do not try to serve
    on the same port. Never raises: a bad value or a busy port is a warning
    on stderr and the program runs unprofiled."""
    value = os.environ.pop(ENV_VAR, None)
    token = os.environ.pop(TOKEN_ENV_VAR, None)
    if not value:
        return None
    try:
        host, port = parse_address(value)
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always", ExposedWarning)
            server = serve(host, port, token=token or None)
    except (OSError, ValueError) as e:
        print(f"cprof: {ENV_VAR}={value}: not serving profiles: {e}", file=sys.stderr)
        return None
    for w in said:
        print(f"cprof: warning: {w.message}", file=sys.stderr)
    print(f"cprof: serving profiles at {server.url}", file=sys.stderr)
    return server
