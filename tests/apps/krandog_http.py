"""One route per HTTP return form and error case; ``handler`` is sync, ``ahandler`` async."""

from __future__ import annotations

import asyncio
from typing import Any

from krandog_asgi import HTTPError, krandog_app


class NotARequest:
    pass


ROUTES: dict[str, Any] = {
    "/str": "plain text ü",
    "/bytes": b"\x00\x01binary",
    "/dict": {"message": "hello", "n": 1},
    "/list": [1, "two", None],
    "/empty-dict": {},
    "/response": {
        "status": 201,
        "headers": {"Content-Type": "text/x-custom", "X-Multi": ["a", "b"]},
        "body": "created",
    },
    "/response-pairs": {"headers": [("X-One", "1"), (b"x-two", b"2")], "body": b"pairs"},
    "/response-json-body": {"status": 202, "body": {"ok": True}},
    "/no-status": {"body": "defaults to 200"},
    "/status-only": {"status": 204},
    "/headers-only": {"headers": {"X-Only": "yes"}},
    "/content-length-ignored": {"headers": {"Content-Length": "999"}, "body": "four"},
    "/none": None,
    "/bad-status": {"status": "200", "body": "x"},
    "/bad-status-range": {"status": 99, "body": "x"},
    "/bad-status-bool": {"status": True, "body": "x"},
    "/bad-type": NotARequest(),
    "/bad-tuple": ("body", 200),
    "/bad-body": {"status": 200, "body": 3.5},
    "/bad-json": {"status": 200, "body": {"x": {1, 2}}},
    "/bad-header-crlf": {"headers": {"X-Evil": "a\r\nInjected: yes"}, "body": "x"},
    "/bad-header-name": {"headers": {"Bad Name": "x"}, "body": "x"},
    "/bad-headers-type": {"headers": "X-Foo: bar", "body": "x"},
}


def route(req: Any) -> Any:
    path = req.pathname
    if path == "/raise":
        raise RuntimeError("boom in the handler")
    if path == "/http-error":
        raise HTTPError(418, "I am a teapot, said the handler")
    if path == "/json":
        return {"got": req.json()}
    if path == "/text":
        return {"text": req.text, "length": len(req.body)}
    if path == "/echo-body":
        return {"status": 200, "body": req.body}
    if path == "/ws-in-http":
        return {"status": 200, "body": "handled as HTTP"}
    return ROUTES.get(path, {"status": 404, "body": "no such route\n"})


def handler(req: Any) -> Any:
    if req.type == "websocket":
        return None
    return route(req)


async def ahandler(req: Any) -> Any:
    await asyncio.sleep(0)
    if req.type == "websocket":
        return None
    return route(req)


def returns_coroutine(req: Any) -> Any:
    """A sync callable that returns an awaitable: the result is awaited."""
    return ahandler(req)


small_body = krandog_app(handler, max_body_size=1024)
