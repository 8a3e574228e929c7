"""The ASGI app every server runs for the differential probe (``tests/support/http_probe.py``).

Plain ASGI 3, no import of ours, so uvicorn and hypercorn serve exactly the same app. By default
it reads the whole body and answers with a JSON echo of the request as the app saw it; paths
under ``/resp/`` send responses that break a framing rule on purpose (a body on HEAD, 204 or
304, a wrong Content-Length, CR/LF in a header value, ...) to see what each server puts on the
wire. Paths under ``/asgi/`` and every WebSocket path check ASGI behaviour that is not on the
wire (what ``receive`` returns after the response, what ``send`` raises once the client is
gone, scope types); they record into ``RESULTS``, which ``/asgi/results`` returns.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from http import HTTPStatus
from typing import Any

Scope = dict[str, Any]
RESULTS: dict[str, dict[str, Any]] = {}


def _text(value: bytes) -> str:
    return value.decode("latin-1")


async def _read(receive: Any) -> tuple[bytes, list[bool]]:
    chunks, more_flags = [], []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), more_flags
        chunks.append(message.get("body", b""))
        more_flags.append(bool(message.get("more_body", False)))
        if not message.get("more_body", False):
            return b"".join(chunks), more_flags


def _echo(scope: Scope, body: bytes, more_flags: list[bool]) -> bytes:
    info = {
        "method": scope["method"],
        "path": scope["path"],
        "raw_path": _text(scope["raw_path"]) if scope.get("raw_path") is not None else None,
        "query_string": _text(scope["query_string"]),
        "root_path": scope.get("root_path"),
        "http_version": scope["http_version"],
        "scheme": scope["scheme"],
        "headers": [[_text(n), _text(v)] for n, v in scope["headers"]],
        "body_len": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest()[:16],
        "body": _text(body[:64]),
        "events": len(more_flags),
        "extensions": sorted(scope.get("extensions") or {}),
    }
    return json.dumps(info).encode()


# Responses that break a rule on purpose: (status, headers, body chunks).
BROKEN: dict[str, tuple[int, list[tuple[bytes, bytes]], list[bytes]]] = {
    "/resp/body": (200, [(b"content-length", b"5")], [b"hello"]),
    "/resp/stream": (200, [], [b"hel", b"lo"]),
    "/resp/204-body": (204, [(b"content-length", b"5")], [b"hello"]),
    "/resp/304-body": (304, [(b"content-length", b"5")], [b"hello"]),
    "/resp/cl-too-long": (200, [(b"content-length", b"10")], [b"hello"]),
    "/resp/cl-too-short": (200, [(b"content-length", b"3")], [b"hello"]),
    "/resp/crlf-value": (200, [(b"x-a", b"a\r\nX-Injected: 1")], [b"hello"]),
    "/resp/lf-value": (200, [(b"x-a", b"a\nX-Injected: 1")], [b"hello"]),
    "/resp/nul-value": (200, [(b"x-a", b"a\x00b")], [b"hello"]),
    "/resp/crlf-name": (200, [(b"x-a\r\nx-injected", b"1")], [b"hello"]),
    "/resp/space-name": (200, [(b"x a", b"1")], [b"hello"]),
    "/resp/upper-name": (200, [(b"X-Upper-Case", b"Yes")], [b"hello"]),
    "/resp/set-cookie": (200, [(b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")], [b"hello"]),
    "/resp/connection-close": (200, [(b"connection", b"close")], [b"hello"]),
    "/resp/cl-twice": (200, [(b"content-length", b"5"), (b"content-length", b"5")], [b"hello"]),
    # ASGI: status is an int; an IntEnum such as HTTPStatus is one.
    "/resp/intenum-status": (HTTPStatus.IM_A_TEAPOT, [(b"content-length", b"5")], [b"hello"]),
}


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if "state" in scope:
                    scope["state"]["shared"] = [1]  # each request sees a shallow copy
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if scope.get("root_path") and path.startswith(scope["root_path"]):
        path = path[len(scope["root_path"]) :]
    if scope["type"] == "websocket":
        await _websocket(path, scope, receive, send)
        return
    if scope["type"] != "http":
        return
    if path.startswith("/asgi/"):
        await _asgi_check(path, scope, receive, send)
        return
    if path in BROKEN:
        status, headers, chunks = BROKEN[path]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        for i, chunk in enumerate(chunks):
            more = i < len(chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})
        return
    body, more_flags = await _read(receive)
    data = _echo(scope, body, more_flags)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(data)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


def _types(scope: Scope) -> dict[str, str]:
    return {k: type(v).__name__ for k, v in sorted(scope.items())}


async def _ok(send: Any, body: bytes = b"ok") -> None:
    headers = [(b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _raised(awaitable: Any) -> str:
    try:
        await awaitable
    except Exception as exc:
        return type(exc).__name__ + (" (OSError)" if isinstance(exc, OSError) else "")
    return "nothing raised"


async def _asgi_check(path: str, scope: Scope, receive: Any, send: Any) -> None:
    if path == "/asgi/results":
        await _ok(send, json.dumps(RESULTS, sort_keys=True).encode())
        return
    record = RESULTS.setdefault(path, {})
    if path == "/asgi/after-response":
        await receive()
        await _ok(send)
        try:
            message = await asyncio.wait_for(receive(), 1.0)
            record["receive after the response"] = message["type"]
        except asyncio.TimeoutError:
            record["receive after the response"] = "blocks"
        body = {"type": "http.response.body", "body": b"more"}
        record["send after the response"] = await _raised(send(body))
    elif path == "/asgi/second-receive":
        await receive()
        try:
            message = await asyncio.wait_for(receive(), 0.5)
            record["second receive, client still there"] = message["type"]
        except asyncio.TimeoutError:
            record["second receive, client still there"] = "blocks"
        await _ok(send)
    elif path == "/asgi/client-gone":
        await receive()
        record["receive once the client left"] = (await receive())["type"]
        start = {"type": "http.response.start", "status": 200, "headers": []}
        record["send once the client left"] = await _raised(send(start))
    elif path == "/asgi/scope":
        record["types"] = _types(scope)
        record["asgi"] = scope.get("asgi")
        record["extensions"] = repr(scope.get("extensions"))
        state = scope.get("state")
        record["state"] = repr(state)
        if state is not None:
            state["added"] = True  # must not reach the next request's copy
        await _ok(send)
    elif path == "/asgi/body-before-start":
        body = {"type": "http.response.body", "body": b"x"}
        record["body before start"] = await _raised(send(body))
        await _ok(send)


async def _websocket(path: str, scope: Scope, receive: Any, send: Any) -> None:
    record = RESULTS.setdefault("ws" + path, {})
    await receive()  # websocket.connect
    if path == "/deny":
        start = {"type": "websocket.http.response.start", "status": 418, "headers": []}
        await send(start)
        await send({"type": "websocket.http.response.body", "body": b"no", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"pe"})
        return
    if path == "/close-before-accept":
        await send({"type": "websocket.close"})
        return
    await send({"type": "websocket.accept"})
    if path == "/scope":
        record["types"] = _types(scope)
        record["asgi"] = scope.get("asgi")
        record["extensions"] = repr(scope.get("extensions"))
        await send({"type": "websocket.close", "code": 4000, "reason": "bye"})
    elif path == "/send-none":
        message = {"type": "websocket.send", "bytes": None, "text": None}
        record["send with bytes and text None"] = await _raised(send(message))
        await send({"type": "websocket.close", "code": 4001})
    elif path == "/disconnect":
        message = await receive()
        record["disconnect message"] = sorted(message)
        record["disconnect code, reason"] = [message.get("code"), message.get("reason")]
        text = {"type": "websocket.send", "text": "late"}
        record["send after the disconnect"] = await _raised(send(text))
        close = {"type": "websocket.close"}
        record["close after the disconnect"] = await _raised(send(close))
