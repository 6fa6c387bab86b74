"""apps: the net/http/pprof endpoints as a WSGI app and as an ASGI app.

Mount them in an existing web application, so that profiles are served on
its port, behind its middleware::

    app.wsgi_app = cprof.wsgi_app(app.wsgi_app)        # Flask: /debug/pprof/...
    application = cprof.wsgi_app(get_wsgi_application())  # Django (wsgi.py)
    app.mount("/debug/pprof", cprof.asgi_app())        # FastAPI, Starlette

Given an ``app``, requests outside the prefix go to it; without one they
get 404. Paths are matched whole (SCRIPT_NAME + PATH_INFO, root_path +
path), so an app mounted at the prefix and one wrapping the whole site
both work. The profile and delta waits run off the event loop in the ASGI
app and end early when the client disconnects; a WSGI server cannot tell
the app of a disconnect, so there the wait lasts its ``seconds``.
"""

from __future__ import annotations

import time
from http import HTTPStatus

from ..collect import heap
from .endpoints import (DEFAULT_MAX_SECONDS, MAX_BODY, PREFIX, Endpoints, Pending, Request,
                        Response, content_length, error, guarded, heap_on)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Awaitable, Callable, Iterable, MutableMapping

    WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
    Scope = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
    Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
    ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _ours(endpoints: Endpoints, *paths: str) -> str | None:
    """The first of ``paths`` under the endpoints' prefix."""
    return next((p for p in paths if endpoints.route(p) is not None), None)


def _status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"


def wsgi_app(app: WSGIApp | None = None, *, prefix: str = PREFIX, token: str | None = None,
             max_seconds: int = DEFAULT_MAX_SECONDS, heap_rate: int = heap.DEFAULT_RATE,
             allowed_hosts: Iterable[str] = ()) -> WSGIApp:
    """A WSGI application serving the endpoints under ``prefix``, passing
    every other request to ``app`` (404 without one). As cprof.serve, it
    turns the heap profiler on at ``heap_rate`` (0: leave it off)."""
    endpoints = Endpoints(prefix, token=token, max_seconds=max_seconds,
                          allowed_hosts=allowed_hosts)
    heap_on(heap_rate)

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        # PEP 3333: paths are bytes decoded as latin-1; the URL's are UTF-8.
        script, info = environ.get("SCRIPT_NAME", ""), environ.get("PATH_INFO", "")
        path = _ours(endpoints, *(p.encode("latin-1").decode("utf-8", "replace")
                                  for p in (info, script + info)))
        if path is None:
            if app is not None:
                return app(environ, start_response)
            response = error(404, "404 page not found")
        else:
            response = guarded(lambda: _wsgi_response(endpoints, environ, path))
        start_response(_status_line(response.status), response.headers)
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [response.body]

    return application


def _wsgi_response(endpoints: Endpoints, environ: dict[str, Any], path: str) -> Response:
    headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items()
               if key.startswith("HTTP_")}
    request = Request(environ.get("REQUEST_METHOD", "GET"), path, environ.get("QUERY_STRING", ""),
                      headers)
    refusal = endpoints.admit(request)  # before a byte of the body is read
    if refusal is not None:
        return refusal
    length = content_length(environ.get("CONTENT_LENGTH") or None)  # PEP 3333: "" is none
    if isinstance(length, Response):
        return length
    if length > 0:
        request.body = environ["wsgi.input"].read(length)
    result = endpoints.handle(request)
    assert result is not None  # the path is ours
    if isinstance(result, Pending):
        time.sleep(result.seconds)
        return result.finish()
    return result


def asgi_app(app: ASGIApp | None = None, *, prefix: str = PREFIX, token: str | None = None,
             max_seconds: int = DEFAULT_MAX_SECONDS, heap_rate: int = heap.DEFAULT_RATE,
             allowed_hosts: Iterable[str] = ()) -> ASGIApp:
    """An ASGI application serving the endpoints under ``prefix``, passing
    every other request (and lifespan and websocket events) to ``app``;
    without one, 404 for other paths. Profiles are built in a worker
    thread, never on the event loop. As cprof.serve, it turns the heap
    profiler on at ``heap_rate`` (0: leave it off)."""
    endpoints = Endpoints(prefix, token=token, max_seconds=max_seconds,
                          allowed_hosts=allowed_hosts)
    heap_on(heap_rate)

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        path = None
        if scope["type"] == "http":
            path = _ours(endpoints, scope["path"], scope.get("root_path", "") + scope["path"])
        if path is not None:
            await _asgi_serve(endpoints, scope, receive, send, path)
        elif app is not None:
            await app(scope, receive, send)
        elif scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["type"] == "http":
            await _asgi_send(send, error(404, "404 page not found"), scope["method"])

    return application


async def _asgi_serve(endpoints: Endpoints, scope: Scope, receive: Receive, send: Send,
                      path: str) -> None:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    request = Request(scope["method"], path, scope.get("query_string", b"").decode("latin-1"),
                      headers)
    refusal = endpoints.admit(request)  # before a byte of the body is read
    if refusal is not None:
        await _asgi_send(send, refusal, scope["method"])
        return
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        if len(body) > MAX_BODY:
            await _asgi_send(send, error(413, "request body too large"), scope["method"])
            return
        if not message.get("more_body", False):
            break
    request.body = body
    import asyncio  # here: most programs that import cprof never serve ASGI

    result: Response | Pending = await asyncio.to_thread(
        guarded, lambda: endpoints.handle(request) or error(404, "404 page not found"))
    if isinstance(result, Pending):
        pending = result
        try:
            await asyncio.wait_for(_disconnected(receive), pending.seconds)
        except asyncio.TimeoutError:
            result = await asyncio.to_thread(guarded, pending.finish)
        else:
            await asyncio.to_thread(guarded, pending.cancel)
            return
    assert isinstance(result, Response)
    await _asgi_send(send, result, scope["method"])


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _asgi_send(send: Send, response: Response, method: str) -> None:
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
    headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else response.body})


async def _lifespan(receive: Receive, send: Send) -> None:
    """The lifespan protocol for a server running the endpoints alone."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
