"""Hardening of the live endpoints (issue 14, items 5-10): a hostile or
careless client never crashes, hangs, starves or exposes the process that
serves profiles. Loopback only; every socket has a timeout and every loop a
bound in count and time."""

from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]

import cprof  # noqa: E402
from cprof.collect import cpu as collect  # noqa: E402
from gotools import pprof_fetch_raw  # noqa: E402
from test_http import (Reply, child_server, fetch, nothing_left_running,  # noqa: E402,F401
                       stop_child, wait_for)


# --- helpers ---------------------------------------------------------------------------


def connect(port: int, timeout: float = 5) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def read_all(s: socket.socket, limit: float = 5, one_response: bool = False) -> bytes:
    """What the server sends until it closes, within ``limit`` seconds; with
    ``one_response``, only up to the end of the first response when its head
    gives its length (a kept-alive connection stays open after it)."""
    s.settimeout(limit)
    reply = b""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            chunk = s.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not chunk:
            break
        reply += chunk
        if one_response:
            head, blank, body = reply.partition(b"\r\n\r\n")
            length = re.search(rb"\r\ncontent-length: *(\d+)\r", head + b"\r", re.I)
            if blank and length and len(body) >= int(length.group(1)):
                break
    return reply


def exchange(port: int, data: bytes, limit: float = 5) -> bytes:
    """The reply to ``data`` on a new connection: its first response."""
    with connect(port, limit) as s:
        s.sendall(data)
        return read_all(s, limit, one_response=True)


def status_of(reply: bytes) -> int:
    assert reply.startswith(b"HTTP/1."), reply[:200]
    return int(reply.split(b" ", 2)[1])


def response_on(s: socket.socket, method: str = "GET") -> http.client.HTTPResponse:
    """The response on ``s``, read as http.client reads it (1xx skipped)."""
    r = http.client.HTTPResponse(s, method=method)
    r.begin()
    return r


HALF_SENT = b"GET /debug/pprof/cmdline HTTP/1.1\r\nHost: 127.0.0.1\r\n"  # no blank line


# --- 5: connections, deadlines, descriptors --------------------------------------------


def test_connections_beyond_the_cap_are_refused_politely_and_at_once() -> None:
    with cprof.serve(port=0, heap_rate=0) as s:
        held = [connect(s.port) for _ in range(64)]  # the default cap
        try:
            for c in held:
                c.sendall(HALF_SENT)
            wait_for(lambda: s._httpd.connections == 64, 10)  # every one accepted
            start = time.monotonic()
            reply = exchange(s.port, b"GET /debug/pprof/cmdline HTTP/1.1\r\nHost: ::1\r\n\r\n", 3)
            assert time.monotonic() - start < 2
            assert status_of(reply) == 503 and b"too many connections" in reply
            assert b"Connection: close" in reply
        finally:
            for c in held:
                c.close()
        ok = wait_for(lambda: fetch(s.url + "cmdline", timeout=5).status == 200, 5)
        assert ok < 5


def test_a_request_sent_a_byte_at_a_time_is_cut_at_the_whole_request_deadline() -> None:
    with cprof.serve(port=0, heap_rate=0, request_timeout=1) as s, connect(s.port) as c:
        start = time.monotonic()
        data = b"GET /debug/pprof/cmdline HTTP/1.1\r\nX-Slow: " + b"y" * 100
        closed_after = None
        for byte in data[:40]:  # 40 x 0.1 s: four times the deadline
            try:
                c.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - start
                break
            c.settimeout(0.1)
            try:
                if c.recv(4096) == b"":
                    closed_after = time.monotonic() - start
                    break
            except TimeoutError:
                pass
        assert closed_after is not None, "the server still waits for the request"
        assert 0.9 < closed_after < 3
        assert fetch(s.url + "cmdline", timeout=5).status == 200


def test_an_idle_connection_is_closed_at_the_deadline() -> None:
    with cprof.serve(port=0, heap_rate=0, request_timeout=0.5) as s, connect(s.port) as c:
        start = time.monotonic()
        assert read_all(c, 5) == b""
        assert time.monotonic() - start < 2


def test_the_token_is_checked_before_the_body_is_read() -> None:
    with cprof.serve(port=0, heap_rate=0, token="t0ken") as s, connect(s.port, 3) as c:
        c.sendall(b"POST /debug/pprof/symbol HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Length: 1000000\r\n\r\n")  # and no body
        assert status_of(read_all(c, 3)) == 401


def test_a_refused_client_is_not_invited_to_send_its_body() -> None:
    with cprof.serve(port=0, heap_rate=0, token="t0ken") as s:
        head = (b"POST /debug/pprof/symbol HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\n"
                b"Expect: 100-continue\r\n")
        reply = exchange(s.port, head + b"\r\n", 3)
        assert status_of(reply) == 401 and b"100 Continue" not in reply
        with connect(s.port, 3) as c:  # admitted: invited, then answered
            c.sendall(head + b"Authorization: Bearer t0ken\r\n\r\n")
            assert c.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
            c.sendall(b"0x1")
            r = response_on(c, "POST")
            assert r.status == 200 and r.read() == b"num_symbols: 1\n"


def test_a_request_head_over_the_cap_gets_431() -> None:
    with cprof.serve(port=0, heap_rate=0, max_header_bytes=4096) as s:
        head = b"GET /debug/pprof/cmdline HTTP/1.1\r\n" + b"X-A: b\r\n" * 1000 + b"\r\n"
        assert status_of(exchange(s.port, head)) == 431
        ok = b"GET /debug/pprof/cmdline HTTP/1.1\r\nHost: 127.0.0.1\r\nX: " + b"y" * 3000
        assert status_of(exchange(s.port, ok + b"\r\n\r\n")) == 200


ULIMITED_CHILD = """\
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))
import cprof
server = cprof.serve(port=0, heap_rate=0{extra})
print(f"serving profiles at {{server.url}}", file=sys.stderr, flush=True)
sys.stdin.readline()  # the parent holds its connections now
t0 = time.process_time()
time.sleep(1.5)
cpu = time.process_time() - t0
files = []
try:
    for _ in range(10):
        files.append(open(sys.executable, "rb"))
    opened = len(files)
except OSError as e:
    opened = f"{{len(files)}}, then {{e}}"
print(json.dumps({{"cpu": cpu, "opened": opened}}), flush=True)
for f in files:
    f.close()
sys.stdin.readline()
"""


@pytest.mark.parametrize("extra", ["", ", max_connections=1000"], ids=["default", "uncapped"])
def test_under_ulimit_128_the_program_keeps_its_descriptors_and_nothing_spins(
        tmp_path: Path, extra: str) -> None:
    """120 half-sent requests to a process limited to 128 descriptors: its
    own open() still works, its server neither spins nor stops serving. The
    cap keeps them out by default; the reserve, when the cap is raised."""
    (tmp_path / "child.py").write_text(ULIMITED_CHILD.format(extra=extra))
    proc = subprocess.Popen([sys.executable, str(tmp_path / "child.py")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    held: list[socket.socket] = []
    try:
        assert proc.stderr is not None and proc.stdin is not None and proc.stdout is not None
        line = proc.stderr.readline()
        assert "serving profiles at" in line, line + proc.stderr.read()
        port = int(line.rsplit(":", 1)[1].split("/")[0])
        for _ in range(120):
            c = connect(port)
            held.append(c)
            try:
                c.sendall(HALF_SENT)
            except OSError:  # refused and closed: as good
                pass
        time.sleep(0.5)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        report = json.loads(proc.stdout.readline())
        assert report["opened"] == 10, report
        assert report["cpu"] < 0.5, report  # 1.5 s of a spinning accept loop: ~1.5 s
        for c in held:
            c.close()
        held.clear()
        url = f"http://127.0.0.1:{port}/debug/pprof/cmdline"
        assert wait_for(lambda: fetch(url, timeout=5).status == 200, 10) < 10
        proc.stdin.write("end\n")
        proc.stdin.flush()
        assert proc.wait(10) == 0
    finally:
        for c in held:
            c.close()
        proc.kill()
        proc.communicate(timeout=10)


EXHAUSTED_CHILD = """\
import resource, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
import cprof
server = cprof.serve(port=0, heap_rate=0)
print(f"serving profiles at {server.url}", file=sys.stderr, flush=True)
files = []
try:
    while len(files) < 100:  # the program itself takes every descriptor
        files.append(open(sys.executable, "rb"))
except OSError:
    pass
print(len(files), flush=True)
sys.stdin.readline()  # a client waits in the listen queue now
t0 = time.process_time()
time.sleep(1.5)
print(time.process_time() - t0, flush=True)
for f in files:
    f.close()
sys.stdin.readline()
"""


def test_out_of_descriptors_the_accept_loop_backs_off_instead_of_spinning(
        tmp_path: Path) -> None:
    (tmp_path / "child.py").write_text(EXHAUSTED_CHILD)
    proc = subprocess.Popen([sys.executable, str(tmp_path / "child.py")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None and proc.stdin is not None and proc.stdout is not None
        line = proc.stderr.readline()
        assert "serving profiles at" in line, line + proc.stderr.read()
        port = int(line.rsplit(":", 1)[1].split("/")[0])
        assert int(proc.stdout.readline()) < 100
        with connect(port, 10) as waiting:
            waiting.sendall(b"GET /debug/pprof/cmdline HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            b"Connection: close\r\n\r\n")
            proc.stdin.write("go\n")
            proc.stdin.flush()
            cpu = float(proc.stdout.readline())
            assert cpu < 0.2, f"{cpu:.2f} s of CPU in 1.5 s: the accept loop spins"
            # Descriptors free again: the waiting client is answered.
            assert status_of(read_all(waiting, 10)) == 200
        proc.stdin.write("end\n")
        proc.stdin.flush()
        assert proc.wait(10) == 0
    finally:
        proc.kill()
        proc.communicate(timeout=10)


# --- 6: close() and idle connections ---------------------------------------------------


def test_close_does_not_wait_for_idle_keep_alive_connections() -> None:
    s = cprof.serve(port=0, heap_rate=0)
    pooled = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
    try:
        for _ in range(2):  # a scraper's pooled connection, kept alive
            pooled.request("GET", "/debug/pprof/cmdline")
            assert pooled.getresponse().read()
        silent = connect(s.port)  # connected, never a byte
        half = connect(s.port)
        half.sendall(HALF_SENT)
        time.sleep(0.2)
        start = time.monotonic()
        s.close()
        assert time.monotonic() - start < 1
        silent.close()
        half.close()
    finally:
        pooled.close()
        s.close()


# --- 7: DNS rebinding and cross-site requests ------------------------------------------


def test_without_a_token_only_local_host_names_are_answered() -> None:
    with cprof.serve(port=0, heap_rate=0) as s:
        for host in (f"127.0.0.1:{s.port}", f"localhost:{s.port}", "localhost", "[::1]:80"):
            assert fetch(s.url + "cmdline", headers={"Host": host}).status == 200, host
        for host in (f"evil.example:{s.port}", "rebind.attacker.test", "localhost.evil.test"):
            r = fetch(s.url + "cmdline", headers={"Host": host})
            assert r.status == 403 and "allowed_hosts" in r.text, (host, r.text)
            assert r.text.count("\n") == 1
        r = fetch(s.url + "goroutine?debug=2", headers={"Host": "evil.example"})
        assert r.status == 403 and "Thread" not in r.text
    with cprof.serve(port=0, heap_rate=0, allowed_hosts=["myapp.internal"]) as s:
        assert fetch(s.url + "cmdline", headers={"Host": "MyApp.internal:80"}).status == 200
        assert fetch(s.url + "cmdline", headers={"Host": "other.internal"}).status == 403
    with cprof.serve(port=0, heap_rate=0, token="tk") as s:  # the token protects instead
        r = fetch(s.url + "cmdline", headers={"Host": "anywhere.example",
                                              "Authorization": "Bearer tk"})
        assert r.status == 200


def test_the_wsgi_app_checks_the_host_too() -> None:
    app = cprof.wsgi_app(heap_rate=0)
    got: list[str] = []

    def start_response(status: str, headers: Any) -> None:
        got.append(status)

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/debug/pprof/cmdline",
               "HTTP_HOST": "rebound.example", "wsgi.input": None}
    app(environ, start_response)
    app({**environ, "HTTP_HOST": "localhost:8000"}, start_response)
    assert got == ["403 Forbidden", "200 OK"]


def test_a_browsers_cross_site_request_starts_nothing() -> None:
    """<img src="http://127.0.0.1:6060/debug/pprof/profile?seconds=300"> on
    any web page: refused (Sec-Fetch-Site), token or not, and the program's
    own CPU profiler stays free."""
    for token in (None, "tk"):
        with cprof.serve(port=0, heap_rate=0, token=token) as s:
            headers = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "image"}
            if token:
                headers["Authorization"] = "Basic " + "dTp0aw=="  # u:tk, a browser's cached login
            start = time.monotonic()
            r = fetch(s.url + "profile?seconds=5", headers=headers)
            assert r.status == 403 and time.monotonic() - start < 2
            assert collect._session is None
            with cprof.cpu():
                pass
            r = fetch(s.url + "cmdline", headers={**headers, "Sec-Fetch-Site": "same-origin"})
            assert r.status == 200


def test_go_tool_pprof_by_localhost_and_by_address() -> None:
    with cprof.serve(port=0, heap_rate=0) as s:
        for host in ("127.0.0.1", "localhost"):
            raw = pprof_fetch_raw(f"http://{host}:{s.port}/debug/pprof/profile", seconds=1)
            assert raw.sample_types == ["samples/count", "cpu/nanoseconds"]


def test_cprof_serve_allow_host(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text("import time\ntime.sleep(60)\n")
    proc, url = child_server(["-m", "cprof", "serve", "--port", "0", "--allow-host", "app.svc",
                              "--max-connections", "8", "--request-timeout", "5", "--",
                              str(script)], cwd=tmp_path)
    try:
        assert fetch(url + "cmdline", headers={"Host": "app.svc:6060"}).status == 200
        assert fetch(url + "cmdline", headers={"Host": "other.svc"}).status == 403
    finally:
        stop_child(proc)


def test_cprof_serve_environment_allow_hosts(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("import time, cprof\ntime.sleep(60)\n")
    proc, url = child_server(["app.py"], cwd=tmp_path, env={
        "CPROF_SERVE": "127.0.0.1:0", "CPROF_SERVE_ALLOW_HOSTS": "app.svc, worker.svc"})
    try:
        for host, status in (("app.svc", 200), ("worker.svc:6060", 200), ("other.svc", 403)):
            assert fetch(url + "cmdline", headers={"Host": host}).status == status, host
    finally:
        stop_child(proc)


# --- 8: malformed requests -------------------------------------------------------------


@pytest.mark.parametrize("length", [b"\xb2", b"9" * 4300, b"\xd9\xa1", b"1_0", b"+5", b" "],
                         ids=["superscript", "4300 digits", "arabic", "underscore", "plus",
                              "blank"])
def test_a_malformed_content_length_is_400_and_no_traceback(
        length: bytes, capfd: pytest.CaptureFixture[str]) -> None:
    with cprof.serve(port=0, heap_rate=0) as s:
        for _ in range(3):
            reply = exchange(s.port, b"POST /debug/pprof/symbol HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             b"Content-Length: " + length + b"\r\n\r\n0x1")
            assert status_of(reply) == 400, reply
        assert fetch(s.url + "cmdline").status == 200
    err = capfd.readouterr().err
    assert "Traceback" not in err and err.count("\n") <= 1, err


@pytest.mark.parametrize("length", ["\xb2", "9" * 4300, "x"])
def test_a_malformed_content_length_under_wsgi_is_400(length: str) -> None:
    app = cprof.wsgi_app(heap_rate=0)
    got: list[str] = []
    app({"REQUEST_METHOD": "POST", "PATH_INFO": "/debug/pprof/symbol", "CONTENT_LENGTH": length,
         "HTTP_HOST": "localhost", "wsgi.input": None}, lambda status, headers: got.append(status))
    assert got == ["400 Bad Request"]


@pytest.mark.parametrize("query", ["seconds=" + "9" * 5000, "debug=" + "1" * 5000,
                                   "gc=" + "1" * 5000, "seconds=" + "0" * 5000 + "1"])
def test_integers_of_thousands_of_digits_are_400(query: str) -> None:
    with cprof.serve(port=0, heap_rate=0) as s:
        r = fetch(s.url + "heap?" + query)
        assert r.status == 400 and "must be" in r.text, r.text
        if query.startswith("seconds"):  # the only parameter of profile's
            assert fetch(s.url + "profile?" + query).status == 400


def test_a_fault_under_wsgi_is_a_500_not_an_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    import cprof.live.endpoints

    def broken(*args: Any) -> Any:
        raise MemoryError("no room")

    monkeypatch.setattr(cprof.live.endpoints, "index_html", broken)
    app = cprof.wsgi_app(heap_rate=0)
    got: list[str] = []
    body = app({"REQUEST_METHOD": "GET", "PATH_INFO": "/debug/pprof/", "HTTP_HOST": "localhost",
                "wsgi.input": None}, lambda status, headers: got.append(status))
    assert got == ["500 Internal Server Error"]
    assert b"".join(body) == b"failed to collect profile: MemoryError: no room\n"


# --- 9: each owner stops only its own CPU profile --------------------------------------


def test_the_endpoint_never_stops_the_programs_own_cpu_profile() -> None:
    with cprof.serve(port=0, heap_rate=0) as s:
        for ending in ("finish", "cancel"):
            replies: list[Reply] = []
            sock = connect(s.port, 10)
            sock.sendall(b"GET /debug/pprof/profile?seconds=2 HTTP/1.1\r\nHost: localhost\r\n\r\n")
            if ending == "finish":
                t = threading.Thread(target=lambda: replies.append(
                    Reply(response_on(sock).status, {}, b"")))
                t.start()
            wait_for(lambda: collect._session is not None, 5)
            collect.stop_cpu_profile()  # the program stops the endpoint's profile...
            mine = collect.start_cpu_profile()  # ...and starts its own
            if ending == "finish":
                t.join(10)
                assert replies[0].status == 500
            else:
                sock.close()  # the client hangs up: the endpoint cancels
                time.sleep(0.5)
            sock.close()
            assert collect._session is not None, f"{ending} stopped the program's profile"
            assert collect.stop_cpu_profile(mine).sample_types


def test_a_cpu_block_stops_only_its_own_profile() -> None:
    block = cprof.cpu()
    block.__enter__()
    collect.stop_cpu_profile()
    other = collect.start_cpu_profile()
    with pytest.raises(RuntimeError, match="not the one"):
        block.__exit__(None, None, None)
    assert collect._session is not None
    collect.stop_cpu_profile(other)
    with pytest.raises(RuntimeError, match="no CPU profile is running"):
        collect.stop_cpu_profile(other)


# --- 10: half-closed clients, non-ASCII tokens, the Server header ----------------------


def test_a_half_closed_client_gets_its_profile() -> None:
    with cprof.serve(port=0, heap_rate=0) as s, connect(s.port, 10) as c:
        c.sendall(b"GET /debug/pprof/profile?seconds=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        c.shutdown(socket.SHUT_WR)
        start = time.monotonic()
        r = response_on(c)
        body = r.read()
        assert r.status == 200, body
        assert time.monotonic() - start > 0.9
        assert cprof.load(body).sample_types


def test_a_client_that_hangs_up_still_ends_the_wait_at_once() -> None:
    with cprof.serve(port=0, heap_rate=0) as s:
        with connect(s.port) as c:
            c.sendall(b"GET /debug/pprof/profile?seconds=30 HTTP/1.1\r\nHost: localhost\r\n\r\n")
            wait_for(lambda: collect._session is not None, 5)
        assert wait_for(lambda: collect._session is None, 5) < 2


def test_a_non_ascii_token_matches_as_bearer_and_basic() -> None:
    import base64
    token = "t\u00f6k\u00e9n-\u4ee4\u724c"
    with cprof.serve(port=0, heap_rate=0, token=token) as s:
        bearer = b"Authorization: Bearer " + token.encode()
        basic = b"Authorization: Basic " + base64.b64encode(b"u:" + token.encode())
        for auth in (bearer, basic):
            reply = exchange(s.port, b"GET /debug/pprof/cmdline HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             + auth + b"\r\n\r\n")
            assert status_of(reply) == 200, reply
        wrong = b"Authorization: Bearer " + token.encode()[:-1]
        reply = exchange(s.port, b"GET /debug/pprof/cmdline HTTP/1.0\r\n" + wrong + b"\r\n\r\n")
        assert status_of(reply) == 401


def test_the_server_header_does_not_tell_the_python_version() -> None:
    with cprof.serve(port=0, heap_rate=0) as s:
        for reply in (exchange(s.port, b"GET /debug/pprof/cmdline HTTP/1.0\r\n\r\n"),
                      exchange(s.port, b"BREW\r\n\r\n"),
                      exchange(s.port, b"GET /x HTTP/1.0\r\n\r\n")):
            head = reply.split(b"\r\n\r\n")[0].lower()
            assert b"\r\nserver: cprof\r\n" in head + b"\r\n", head
            assert b"python" not in head


@pytest.fixture(autouse=True)
def bounded() -> Iterator[None]:
    """No test here may take long: a hang is a failure, not a stuck run."""
    start = time.monotonic()
    yield
    assert time.monotonic() - start < 60
