"""Bytes from outside reach the live endpoints: paths, query strings,
headers and bodies (Endpoints.handle), and whatever a client sends down the
socket (cprof.serve). Any of them gets an HTTP answer, never an exception,
a crash or a hang, and the server goes on serving."""

from __future__ import annotations

import random
import re
import socket
from typing import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cprof
from cprof.collect import cpu as collect
from cprof.collect import heap as heapprof
from cprof.live.endpoints import Endpoints, Pending, Request, Response

NAMES = ["", "cmdline", "profile", "symbol", "heap", "allocs", "goroutine", "threads", "mutex",
         "block", "threadcreate", "trace", "nosuch"]
PARAMS = ["seconds", "debug", "gc", "x"]
VALUES = st.one_of(st.sampled_from(["", "0", "1", "2", "-1", "+1", "1.5", "abc", "999999",
                                    "0x10", "١", " 1", "1 "]), st.text(max_size=8))
QUERIES = st.one_of(
    st.lists(st.tuples(st.sampled_from(PARAMS), VALUES), max_size=4).map(
        lambda pairs: "&".join(f"{k}={v}" for k, v in pairs)),
    st.text(max_size=40))
HEADERS = st.one_of(st.just(""), st.sampled_from(["Bearer t", "Bearer", "Basic dTp0",
                                                  "Basic !!!", "Basic " + "A" * 9]),
                    st.text(max_size=40))
STATUSES = {200, 301, 400, 401, 404, 405, 500}


@pytest.fixture(scope="module", autouse=True)
def heap_profile() -> Iterator[None]:
    cprof.start_heap_profile()
    yield
    cprof.stop_heap_profile()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.one_of(st.sampled_from(NAMES), st.text(max_size=20)), query=QUERIES,
       method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "BREW"]), auth=HEADERS,
       body=st.binary(max_size=64), token=st.sampled_from([None, "t"]))
def test_any_request_gets_an_answer(name: str, query: str, method: str, auth: str, body: bytes,
                                    token: str | None) -> None:
    endpoints = Endpoints(token=token, max_seconds=5)
    result = endpoints.handle(Request(method, "/debug/pprof/" + name, query,
                                      {"authorization": auth}, body))
    assert result is not None
    if isinstance(result, Pending):
        assert 0 < result.seconds <= 5
        result = result.cancel()
        assert collect._session is None
    assert isinstance(result, Response) and result.status in STATUSES
    assert isinstance(result.body, bytes)
    for key, value in result.headers:
        assert "\n" not in key + value and "\r" not in key + value
    assert heapprof.running()


def garbage(rng: random.Random) -> bytes:
    """A request line and headers as a confused or hostile client sends them."""
    kind = rng.randrange(6)
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 300))
    if kind == 1:
        return b"GET /debug/pprof/" + rng.randbytes(20) + b" HTTP/1.1\r\n\r\n"
    if kind == 2:
        return b"GET /debug/pprof/heap HTTP/1.1\r\n" + b"X: " + b"y" * 70000 + b"\r\n\r\n"
    if kind == 3:
        return b"POST /debug/pprof/symbol HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n"
    if kind == 4:
        return b"POST /debug/pprof/symbol HTTP/1.1\r\nContent-Length: -5\r\n\r\n0x1"
    return b"GET /debug/pprof/heap?" + rng.randbytes(30).replace(b" ", b"") + b" HTTP/1.0\r\n\r\n"


def test_the_server_survives_garbage_on_the_socket() -> None:
    rng = random.Random(7)
    with cprof.serve(port=0, heap_rate=0) as server:
        for _ in range(200):
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
                s.sendall(garbage(rng))
                s.shutdown(socket.SHUT_WR)
                reply = b""
                while chunk := s.recv(65536):
                    reply += chunk
            assert reply == b"" or re.match(rb"HTTP/1\.[01] [2345]\d\d ", reply), reply[:100]
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(b"GET /debug/pprof/cmdline HTTP/1.0\r\n\r\n")
            reply = b""
            while chunk := s.recv(65536):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200 ")
