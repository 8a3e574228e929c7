"""One ASGI app with many endpoints, used by the HTTP integration tests (``http_app:app``).

Endpoints are chosen by path; query parameters tune them. ``/events`` returns (and clears) what
the app recorded about earlier requests, for behaviour that is not visible on the wire (what
``receive`` returned after a disconnect, what ``send`` raised, ...). The server runs one worker,
so module globals are shared by every request.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

EVENTS: list[dict[str, Any]] = []
COUNTERS = {"started": 0, "requests": 0}
LIFESPAN_STATE_KEY = "boot"


def record(kind: str, **data: Any) -> None:
    EVENTS.append({"kind": kind, "t": time.monotonic(), **data})


def jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return repr(value)


def scope_info(scope: dict[str, Any]) -> dict[str, Any]:
    """The scope as JSON, with the Python types of the fields the spec constrains."""
    out = jsonable({k: v for k, v in scope.items() if k != "state"})
    out["state"] = jsonable(scope.get("state"))
    out["types"] = {
        "headers": [[type(n).__name__, type(v).__name__] for n, v in scope["headers"]],
        "client": [type(x).__name__ for x in scope["client"]] if scope.get("client") else None,
        "server": [type(x).__name__ for x in scope["server"]] if scope.get("server") else None,
        "raw_path": type(scope.get("raw_path")).__name__,
        "query_string": type(scope["query_string"]).__name__,
        "path": type(scope["path"]).__name__,
    }
    return out


async def read_body(receive: Any) -> tuple[bytes, list[dict[str, Any]]]:
    chunks: list[bytes] = []
    messages: list[dict[str, Any]] = []
    while True:
        message = await receive()
        messages.append(
            {
                "type": message["type"],
                "size": len(message.get("body", b"")),
                "more_body": message.get("more_body", False),
            }
        )
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks), messages


async def respond(
    send: Any,
    body: bytes = b"",
    status: int = 200,
    headers: list[tuple[bytes, bytes]] | None = None,
    content_length: bool = True,
) -> None:
    hdrs = list(headers or [(b"content-type", b"text/plain")])
    if content_length:
        hdrs.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


async def respond_json(send: Any, data: Any, status: int = 200) -> None:
    await respond(send, json.dumps(data).encode(), status, [(b"content-type", b"application/json")])


def q(scope: dict[str, Any], name: str, default: str = "") -> str:
    values = parse_qs(scope["query_string"].decode("latin-1")).get(name)
    return values[0] if values else default


async def lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            scope["state"][LIFESPAN_STATE_KEY] = "yes"
            scope["state"]["shared"] = {"mutable": True}
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(scope, receive, send)
        return
    assert scope["type"] == "http"
    COUNTERS["requests"] += 1
    path = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    handler = ROUTES.get(path)
    if handler is None:
        for prefix, fn in PREFIX_ROUTES:
            if path.startswith(prefix):
                handler = fn
                break
    if handler is None:
        handler = h_default
    await handler(scope, receive, send)


# -- endpoints ------------------------------------------------------------------------------


async def h_default(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Anything else: answer with the method and the path, so responses can be told apart."""
    body = f"{scope['method']} {scope['path']}".encode()
    await respond(send, body)


async def h_scope(scope: dict[str, Any], receive: Any, send: Any) -> None:
    # Mutate the per-request state: the next request must not see it (shallow copy).
    state = scope.get("state")
    info = scope_info(scope)
    if state is not None:
        state["mutated_by_request"] = True
    await respond_json(send, info)


async def h_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body, messages = await read_body(receive)
    headers = [
        (b"content-type", b"application/octet-stream"),
        (b"x-messages", str(len(messages)).encode()),
    ]
    await respond(send, body, headers=headers)


async def h_messages(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body, messages = await read_body(receive)
    await respond_json(send, {"total": len(body), "messages": messages})


async def h_no_read(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers without reading the request body."""
    await respond(send, b"did not read")


async def h_stream(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A response without Content-Length, in ``n`` parts of ``size`` bytes."""
    n = int(q(scope, "n", "3"))
    size = int(q(scope, "size", "5"))
    status = int(q(scope, "status", "200"))
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"x/y")]}
    )
    for i in range(n):
        await send(
            {"type": "http.response.body", "body": bytes([97 + i % 26]) * size, "more_body": True}
        )
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def random_body(seed: int, size: int) -> bytes:
    """The bytes ``/random`` sends, which a test can make again to compare."""
    return random.Random(seed).randbytes(size)


async def h_random(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``/random?sizes=a,b,c&seed=s``: ``random_body(s, a+b+c)`` in chunks of those sizes;
    ``cl=1`` with its Content-Length (else chunked), ``reuse=1`` from one bytearray the app
    overwrites after every ``send`` (as an app reusing a read buffer does)."""
    sizes = [int(x) for x in q(scope, "sizes", "65536").split(",")]
    body = random_body(int(q(scope, "seed", "1")), sum(sizes))
    headers = [(b"content-type", b"application/octet-stream")]
    if q(scope, "cl") == "1":
        headers.append((b"content-length", b"%d" % len(body)))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    reuse = q(scope, "reuse") == "1"
    pos = 0
    for size in sizes:
        chunk: bytes | bytearray = body[pos : pos + size]
        if reuse:
            chunk = bytearray(chunk)
        pos += size
        await send({"type": "http.response.body", "body": chunk, "more_body": pos < len(body)})
        if reuse:
            chunk[:] = b"\0" * len(chunk)


async def h_status(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``/status/<code>``: that status, a body anyway, and Content-Length unless ``cl=0``."""
    status = int(scope["path"].rsplit("/", 1)[1])
    cl = q(scope, "cl", "1") == "1"
    await respond(send, b"body that must not be sent", status, content_length=cl)


async def h_slow(scope: dict[str, Any], receive: Any, send: Any) -> None:
    delay = float(q(scope, "delay", "0.5"))
    await asyncio.sleep(delay)
    await respond(send, f"slow {q(scope, 'id')}".encode())


async def h_headers(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``/headers?kind=...``: send response headers the server must refuse (or accept)."""
    kind = q(scope, "kind")
    bad: dict[str, list[Any]] = {
        "crlf-value": [(b"x-a", b"a\r\nx-injected: 1")],
        "lf-value": [(b"x-a", b"a\nx-injected: 1")],
        "cr-value": [(b"x-a", b"a\rb")],
        "nul-value": [(b"x-a", b"a\x00b")],
        "ctl-value": [(b"x-a", b"a\x01b")],
        "del-value": [(b"x-a", b"a\x7fb")],
        "space-name": [(b"x a", b"b")],
        "colon-name": [(b"x:a", b"b")],
        "crlf-name": [(b"x\r\nx-injected", b"1")],
        "empty-name": [(b"", b"b")],
        "str-name": [("x-a", b"b")],
        "str-value": [(b"x-a", "b")],
        "int-value": [(b"x-a", 1)],
        "bad-cl": [(b"content-length", b"abc")],
        "neg-cl": [(b"content-length", b"-1")],
        "two-cl": [(b"content-length", b"1"), (b"content-length", b"2")],
        "not-pair": [(b"x-a", b"b", b"c")],
        # Accepted: obs-text, tabs and inner spaces are legal in field values.
        "ok-obs-text": [(b"x-a", b"caf\xc3\xa9 \t x")],
        "ok-set-cookie": [(b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")],
        "ok-upper": [(b"X-Upper", b"v")],
        "ok-tuple-list": [[b"x-list", b"v"]],
        "ok-cl-twice": [(b"content-length", b"2"), (b"Content-Length", b"02")],
    }
    headers = bad[kind]
    body = b"ok"
    try:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
    except Exception as exc:
        record("headers", tag=kind, raised=type(exc).__name__)
        raise
    record("headers", tag=kind, raised=None)
    await send({"type": "http.response.body", "body": body})


async def h_bad_status(scope: dict[str, Any], receive: Any, send: Any) -> None:
    raw = q(scope, "status")
    status: Any = int(raw) if raw.lstrip("-").isdigit() else raw
    if raw.startswith("enum-"):  # an IntEnum member: an int, as ASGI asks
        status = HTTPStatus(int(raw[5:]))
    elif raw in ("true", "200.0"):
        status = True if raw == "true" else 200.0
    try:
        await send({"type": "http.response.start", "status": status, "headers": []})
    except Exception as exc:
        record("status", status=raw, raised=type(exc).__name__)
        raise
    record("status", status=raw, raised=None)
    await send({"type": "http.response.body", "body": b"x"})


async def h_raise(scope: dict[str, Any], receive: Any, send: Any) -> None:
    raise RuntimeError("boom-before-start")


async def h_raise_after_start(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})
    await asyncio.sleep(0.05)
    raise RuntimeError("boom-after-start")


async def h_raise_after_start_nobody(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Raises right after ``http.response.start``, before any body: a 500 can still be sent."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    raise RuntimeError("boom-after-start-no-body")


async def h_no_response(scope: dict[str, Any], receive: Any, send: Any) -> None:
    return None


async def h_incomplete(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})


async def h_short_cl(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]}
    )
    await send({"type": "http.response.body", "body": b"12345"})


async def h_long_cl(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"3")]}
    )
    try:
        await send({"type": "http.response.body", "body": b"123456"})
    except Exception as exc:
        record("long-cl", raised=type(exc).__name__)
        raise


async def h_te_from_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The app sets Transfer-Encoding itself; the server must own framing."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"transfer-encoding", b"chunked"), (b"content-length", b"5")],
        }
    )
    await send({"type": "http.response.body", "body": b"hello"})


async def h_protocol_errors(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Misuse of send; each error is recorded, then a valid response is sent."""
    kind = q(scope, "kind")
    raised = None
    runtime_error = False
    try:
        if kind == "body-before-start":
            await send({"type": "http.response.body", "body": b"x"})
        elif kind == "unknown-type":
            await send({"type": "http.response.nope"})
        elif kind == "start-twice":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.start", "status": 200, "headers": []})
    except Exception as exc:
        raised = type(exc).__name__
        runtime_error = isinstance(exc, RuntimeError)
    record("protocol", tag=kind, raised=raised, runtime_error=runtime_error)
    if kind == "start-twice":
        await send({"type": "http.response.body", "body": b"after"})
    else:
        await respond(send, b"after")


async def h_after_complete(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Send the response, then try again and then call receive."""
    await respond(send, b"done")
    raised = None
    try:
        await send({"type": "http.response.body", "body": b"more"})
    except Exception as exc:
        raised = type(exc).__name__
    message = await asyncio.wait_for(receive(), 2)
    record("after-complete", raised=raised, receive=message["type"])


async def h_wait_disconnect(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Read the body, then wait for ``http.disconnect`` and try to send afterwards."""
    tag = q(scope, "tag")
    body, _ = await read_body(receive)
    record("waiting", tag=tag, body=len(body))
    try:
        message = await asyncio.wait_for(receive(), 10)
    except asyncio.TimeoutError:
        record("disconnect", tag=tag, message="timeout")
        return
    record("disconnect", tag=tag, message=message["type"])
    try:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"late"})
    except OSError as exc:
        record("send-after-disconnect", tag=tag, raised=type(exc).__name__, oserror=True)
        raise
    except Exception as exc:
        record("send-after-disconnect", tag=tag, raised=type(exc).__name__, oserror=False)
        raise
    record("send-after-disconnect", tag=tag, raised=None, oserror=False)


async def read_body_recorded(receive: Any, tag: str) -> int | None:
    """Read the body message by message and record how it ended ("body-wait": complete,
    http.disconnect, or timeout after 10 s without a message); its size if it completed."""
    total = 0
    while True:
        try:
            message = await asyncio.wait_for(receive(), 10)
        except asyncio.TimeoutError:
            record("body-wait", tag=tag, message="timeout", total=total)
            return None
        if message["type"] == "http.disconnect":
            record("body-wait", tag=tag, message="http.disconnect", total=total)
            return None
        total += len(message.get("body", b""))
        if not message.get("more_body"):
            record("body-wait", tag=tag, message="complete", total=total)
            return total


async def h_wait_body(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Read the body and record what arrives (disconnect mid-body); answer with its size."""
    total = await read_body_recorded(receive, q(scope, "tag"))
    if total is not None:
        await respond(send, str(total).encode())


async def h_answer_then_read(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Start a streamed response first, then read the body; record how the body ended."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"started\n", "more_body": True})
    total = await read_body_recorded(receive, q(scope, "tag"))
    if total is not None:
        await send({"type": "http.response.body", "body": str(total).encode()})


async def h_stream_forever(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Stream until send fails; record the exception."""
    tag = q(scope, "tag")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    sent = 0
    try:
        for _ in range(100_000):
            await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
            sent += 65536
            await asyncio.sleep(0)
    except OSError as exc:
        record("stream-end", tag=tag, raised=type(exc).__name__, oserror=True, sent=sent)
        raise
    record("stream-end", tag=tag, raised=None, sent=sent)


async def h_big(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``size`` bytes in 64 KiB parts; records how much was handed to send over time."""
    tag = q(scope, "tag")
    size = int(q(scope, "size", str(1 << 20)))
    part = 65536
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(size).encode())],
        }
    )
    sent = 0
    start = time.monotonic()
    marks = []
    while sent < size:
        n = min(part, size - sent)
        await send({"type": "http.response.body", "body": b"z" * n, "more_body": sent + n < size})
        sent += n
        marks.append((time.monotonic() - start, sent))
    record("big", tag=tag, marks=marks[-1:], sent=sent)
    # Progress at fixed times, for the flow-control test.
    PROGRESS[tag] = marks


PROGRESS: dict[str, list[tuple[float, int]]] = {}


async def h_progress(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """How much ``/big?tag=`` had handed to send after ``t`` seconds."""
    tag = q(scope, "tag")
    at = float(q(scope, "t", "1"))
    marks = PROGRESS.get(tag, [])
    sent = max((s for t, s in marks if t <= at), default=0)
    await respond_json(send, {"sent": sent, "marks": len(marks)})


async def h_slow_reader(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Wait ``delay`` seconds before reading the body (flow control of the request side)."""
    await asyncio.sleep(float(q(scope, "delay", "1")))
    body, messages = await read_body(receive)
    await respond_json(send, {"total": len(body), "messages": len(messages)})


async def h_expect(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Sleep, then read the body (``read=1``) or answer without reading it (``read=0``)."""
    await asyncio.sleep(float(q(scope, "delay", "0.3")))
    if q(scope, "read", "1") == "1":
        body, _ = await read_body(receive)
        await respond(send, b"read " + body)
    else:
        await respond(send, b"refused", 413 if q(scope, "status") == "413" else 200)


async def h_events(scope: dict[str, Any], receive: Any, send: Any) -> None:
    tag = q(scope, "tag")
    events = [e for e in EVENTS if not tag or e.get("tag") == tag]
    await respond_json(send, events)


async def h_clear(scope: dict[str, Any], receive: Any, send: Any) -> None:
    EVENTS.clear()
    await respond(send, b"cleared")


async def h_count(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await respond_json(send, COUNTERS)


async def h_return_value(scope: dict[str, Any], receive: Any, send: Any) -> Any:
    await respond(send, b"returned a value")
    return 42


async def h_head_stream(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """For HEAD: a streaming response (no Content-Length) with body the server must drop."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"abc", "more_body": True})
    await send({"type": "http.response.body", "body": b"def"})


async def h_server_header(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await respond(send, b"own", headers=[(b"server", b"my-app"), (b"date", b"yesterday")])


async def h_connection_close(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The app asks for the connection to be closed."""
    await respond(send, b"bye", headers=[(b"connection", b"close")])


async def h_log_path(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await respond(send, b"logged")


ROUTES = {
    "/scope": h_scope,
    "/echo": h_echo,
    "/messages": h_messages,
    "/no-read": h_no_read,
    "/stream": h_stream,
    "/random": h_random,
    "/slow": h_slow,
    "/headers": h_headers,
    "/bad-status": h_bad_status,
    "/raise": h_raise,
    "/raise-after-start": h_raise_after_start,
    "/raise-after-start-nobody": h_raise_after_start_nobody,
    "/no-response": h_no_response,
    "/incomplete": h_incomplete,
    "/short-cl": h_short_cl,
    "/long-cl": h_long_cl,
    "/te-from-app": h_te_from_app,
    "/protocol-errors": h_protocol_errors,
    "/after-complete": h_after_complete,
    "/wait-disconnect": h_wait_disconnect,
    "/wait-body": h_wait_body,
    "/stream-forever": h_stream_forever,
    "/answer-then-read": h_answer_then_read,
    "/big": h_big,
    "/progress": h_progress,
    "/slow-reader": h_slow_reader,
    "/expect": h_expect,
    "/events": h_events,
    "/clear": h_clear,
    "/count": h_count,
    "/return-value": h_return_value,
    "/head-stream": h_head_stream,
    "/server-header": h_server_header,
    "/connection-close": h_connection_close,
}
PREFIX_ROUTES = [("/status/", h_status), ("/log/", h_log_path), ("/scope/", h_scope)]
