"""krandog/app.py: the ASGI app around a handler, driven in memory (tests/support/asgi.py).
Each test asserts the exact ASGI events the app sends: the WebSocket message loop (accept, one
call per message, batching, the reads it holds back, 1011 on errors), lifecycle and upgrade
events (denials through ``websocket.http.response.*``), HTTP for every outcome (413, the 500
texts, HTTPError), lifespan, and how handlers are wrapped and detected."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from typing import Any

import pytest

from krandog_asgi.krandog.app import (
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_SEND_QUEUE_LIMIT,
    KrandogApp,
    is_krandog_app,
    krandog_app,
)
from krandog_asgi.krandog.response import BadRequest, HTTPError, build_response
from krandog_asgi.krandog.sender import CLOSED, OPEN
from tests.support.asgi import AsgiPeer, call_app, http_scope, websocket_events, websocket_scope
from tests.support.fakes import run

ACCEPT = {"type": "websocket.accept"}
DENIAL: dict[str, Any] = {"websocket.http.response": {}}  # the scope extension for denial responses


def text(data: str) -> dict[str, Any]:
    return {"type": "websocket.send", "text": data}


def close(code: int = 1000, reason: str = "") -> dict[str, Any]:
    return {"type": "websocket.close", "code": code, "reason": reason}


def websocket(app: Any, *data: str | bytes, scope: dict[str, Any] | None = None) -> AsgiPeer:
    """One connection: connect, the messages, a disconnect with 1000."""
    return run(call_app(app, scope or websocket_scope(), *websocket_events(*data)))


def echo(req: Any) -> None:
    if req.type == "websocket":
        req.ws.send(req.data)


# -- the WebSocket message loop -----------------------------------------------------------------


def test_accept_then_one_handler_call_per_message_in_order() -> None:
    peer = websocket(krandog_app(echo), "a", b"\x00b", "")
    assert peer.sent == [
        ACCEPT,
        text("a"),
        {"type": "websocket.send", "bytes": b"\x00b"},
        text(""),
    ]
    assert peer.receives == 5  # connect, three messages, disconnect: nothing read after it


def test_each_message_gets_its_own_request_object() -> None:
    """A handler may keep ``req`` (e.g. to answer later): a later message must not change it."""
    kept: list[Any] = []

    def handler(req: Any) -> None:
        if req.type == "websocket":
            kept.append(req)
            req.ws.send(req.data)

    peer = websocket(krandog_app(handler), *[f"m{i}" for i in range(10)])
    assert [m.get("text") for m in peer.sent if m["type"] == "websocket.send"] == [
        f"m{i}" for i in range(10)
    ]
    assert [req.data for req in kept] == [f"m{i}" for i in range(10)]
    assert len({id(req) for req in kept}) == 10
    assert len({id(req.ws) for req in kept}) == 1  # one req.ws per connection
    assert kept[0].ws.readyState == CLOSED


def test_a_receive_without_text_is_binary_and_empty_bytes_stay_bytes() -> None:
    seen: list[Any] = []
    events: list[dict[str, Any]] = [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "bytes": None, "text": None},
        {"type": "websocket.receive", "bytes": b""},
        {"type": "websocket.disconnect", "code": 1000},
    ]
    app = krandog_app(lambda req: seen.append(req.data) if req.type == "websocket" else None)
    run(call_app(app, websocket_scope(), *events))
    assert seen == [b"", b""]


def test_a_call_that_does_not_start_with_connect_sends_nothing() -> None:
    calls: list[Any] = []
    peer = run(
        call_app(krandog_app(calls.append), websocket_scope(), {"type": "websocket.disconnect"})
    )
    assert (peer.sent, calls) == ([], [])


def test_messages_after_the_handler_closed_are_not_delivered() -> None:
    seen: list[Any] = []

    def handler(req: Any) -> None:
        seen.append(req.data)
        if req.data == "close":
            req.ws.close(4000, "bye")
            req.ws.send("dropped: sent after close")

    peer = websocket(krandog_app(handler), "close", "after")
    assert peer.sent == [ACCEPT, close(4000, "bye")]
    assert seen == ["close"]  # as in the browser: nothing is delivered once closing


# -- a sync handler's own sends: batched, and they hold back reading ----------------------------


def test_own_sends_go_out_together_once_the_handler_returns() -> None:
    during: list[int] = []
    peer_box: list[AsgiPeer] = []

    def handler(req: Any) -> None:
        for i in range(3):
            req.ws.send(f"{req.data}{i}")
        during.append(len(peer_box[0].sent))

    async def main() -> AsgiPeer:
        peer = AsgiPeer(*websocket_events("a", "b"))
        peer_box.append(peer)
        await krandog_app(handler)(websocket_scope(), peer.receive, peer.send)
        return peer

    peer = run(main())
    assert during == [1, 4]  # only the accept / the first batch had gone out meanwhile
    assert peer.sent == [ACCEPT, *(text(f"{m}{i}") for m in "ab" for i in range(3))]


def test_no_message_is_read_while_the_handlers_sends_are_held() -> None:
    """Backpressure for a sync handler: a client that does not read slows down only itself."""

    async def main() -> None:
        peer = AsgiPeer(*websocket_events("a", "b"))
        peer.hold()
        task = asyncio.create_task(krandog_app(echo)(websocket_scope(), peer.receive, peer.send))
        for _ in range(10):
            await asyncio.sleep(0)
        assert peer.sent == [ACCEPT, text("a")]
        assert peer.receives == 2  # connect and "a"; "b" waits until "a" is out
        peer.release()
        await asyncio.wait_for(task, 1)
        assert peer.sent == [ACCEPT, text("a"), text("b")]

    run(main())


def test_sends_an_async_handler_did_not_await_hold_back_reading_too() -> None:
    async def handler(req: Any) -> None:
        req.ws.send(req.data)  # not awaited: a writer task takes it over when it is held

    async def main() -> None:
        peer = AsgiPeer(*websocket_events("a", "b"))
        peer.hold()
        task = asyncio.create_task(krandog_app(handler)(websocket_scope(), peer.receive, peer.send))
        for _ in range(10):
            await asyncio.sleep(0)
        assert (peer.sent, peer.receives) == ([ACCEPT, text("a")], 2)
        peer.release()
        await asyncio.wait_for(task, 1)
        assert peer.sent == [ACCEPT, text("a"), text("b")]

    run(main())


def test_sends_from_other_connections_queue_behind_a_batch_being_handed_over() -> None:
    connections: dict[str, Any] = {}

    def handler(req: Any) -> None:
        connections[req.pathname] = req.ws
        if req.data == "own":
            req.ws.send("own")
        elif req.data == "to-a":
            connections["/a"].send("from b")

    async def main() -> None:
        app = krandog_app(handler)
        a = AsgiPeer(*websocket_events("own", code=None))
        b = AsgiPeer(*websocket_events("to-a"))
        a.hold()
        task = asyncio.create_task(app(websocket_scope("/a"), a.receive, a.send))
        for _ in range(10):
            await asyncio.sleep(0)
        await app(websocket_scope("/b"), b.receive, b.send)
        assert a.sent == [ACCEPT, text("own")]  # "from b" waits behind the batch...
        assert connections["/a"].bufferedAmount == 6
        a.release()
        for _ in range(10):
            await asyncio.sleep(0)
        assert a.sent == [ACCEPT, text("own"), text("from b")]  # ...and follows it
        a.push({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(task, 1)

    run(main())


# -- handler errors and return values -----------------------------------------------------------


def test_a_handler_exception_closes_with_1011_after_what_it_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[Any] = []

    def handler(req: Any) -> None:
        seen.append(req.data)
        req.ws.send("before")
        raise ValueError("handler failed on purpose")

    with caplog.at_level(logging.ERROR, "krandog_asgi.error"):
        peer = websocket(krandog_app(handler), "raise", "after", scope=websocket_scope("/err"))
    assert peer.sent == [ACCEPT, text("before"), close(1011)]
    assert seen == ["raise"]
    record = caplog.records[0]
    assert record.getMessage() == (
        "Exception in krandog handler for a WebSocket message on /err; closing with 1011"
    )
    assert record.exc_info is not None
    assert "handler failed on purpose" in caplog.text


@pytest.mark.parametrize("kind", ["async", "returns-coroutine", "threads"])
def test_other_handler_kinds_close_with_1011_on_an_exception(kind: str) -> None:
    async def failing(req: Any) -> None:
        raise ValueError("no")

    def sync_failing(req: Any) -> None:
        raise ValueError("no")

    app = {
        "async": lambda: krandog_app(failing),
        "returns-coroutine": lambda: krandog_app(lambda req: failing(req)),
        "threads": lambda: krandog_app(sync_failing, threads=True),
    }[kind]()
    assert websocket(app, "x", "y").sent == [ACCEPT, close(1011)]


def test_a_return_value_for_a_message_warns_once_and_keeps_the_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def later(req: Any) -> dict[str, int]:
        return {"status": 200}

    def handler(req: Any) -> Any:
        if req.data == "count":
            req.ws.send("still open")
            return None
        return {"status": 200} if req.data == "return" else later(req)

    app = krandog_app(handler)
    with caplog.at_level(logging.WARNING, "krandog_asgi.error"):
        peer = websocket(app, "return", "return", "coroutine", "count")
    assert peer.sent == [ACCEPT, text("still open")]  # krandog would have closed it
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert warnings[0].startswith("krandog handler returned dict for a WebSocket message")
    assert app.warned_return


# -- async and threaded handlers ----------------------------------------------------------------


def test_an_async_handler_is_awaited_and_the_next_message_waits_for_it() -> None:
    async def main() -> None:
        gate = asyncio.Event()

        async def handler(req: Any) -> None:
            if req.data == "slow":
                await gate.wait()
            await req.ws.send(req.data)

        peer = AsgiPeer(*websocket_events("slow", "fast"))
        app = krandog_app(handler)
        assert app.is_async
        task = asyncio.create_task(app(websocket_scope(), peer.receive, peer.send))
        for _ in range(10):
            await asyncio.sleep(0)
        assert (peer.sent, peer.receives) == ([ACCEPT], 2)
        gate.set()
        await asyncio.wait_for(task, 1)
        assert peer.sent == [ACCEPT, text("slow"), text("fast")]

    run(main())


def test_threads_run_a_sync_handler_in_a_worker_and_its_sends_keep_their_order() -> None:
    threads: set[str] = set()

    def handler(req: Any) -> Any:
        threads.add(threading.current_thread().name)
        if req.type == "http":
            return "ok"
        for i in range(20):
            req.ws.send(f"{req.data}{i}")
        return None

    app = krandog_app(handler, threads=True)
    peer = websocket(app, "a", "b")
    assert peer.sent == [ACCEPT, *(text(f"{m}{i}") for m in "ab" for i in range(20))]
    assert threading.main_thread().name not in threads
    assert run(call_app(app, http_scope(), {"type": "http.request"})).sent[1]["body"] == b"ok"


def test_async_handlers_ignore_the_thread_option() -> None:
    async def handler(req: Any) -> str:
        return threading.current_thread().name

    app = krandog_app(handler, threads=True)
    assert not app.threads
    peer = run(call_app(app, http_scope(), {"type": "http.request"}))
    assert peer.sent[1]["body"] == threading.main_thread().name.encode()


# -- lifecycle events ---------------------------------------------------------------------------


def test_lifecycle_open_after_the_accept_and_close_once_it_is_over() -> None:
    events: list[tuple[Any, ...]] = []

    def handler(req: Any) -> None:
        events.append((req.type, req.ws.readyState, getattr(req, "code", None)))
        if req.type == "websocket.open":
            req.ws.send("welcome")
        elif req.type == "websocket.close":
            events.append((req.reason, req.pathname))

    events_in = [
        *websocket_events("hi", code=None),
        {"type": "websocket.disconnect", "code": 4001, "reason": "b leaves"},
    ]
    app = krandog_app(handler, lifecycle=True)
    peer = run(call_app(app, websocket_scope("/b"), *events_in))
    assert peer.sent == [ACCEPT, text("welcome")]
    assert events == [
        ("websocket.open", OPEN, None),
        ("websocket", OPEN, None),
        ("websocket.close", CLOSED, 4001),
        ("b leaves", "/b"),
    ]


def test_a_disconnect_without_a_code_is_reported_as_1005() -> None:
    closes: list[tuple[Any, Any]] = []

    def handler(req: Any) -> None:
        if req.type == "websocket.close":
            closes.append((req.code, req.reason))

    events: list[dict[str, Any]] = [
        {"type": "websocket.connect"},
        {"type": "websocket.disconnect", "reason": None},
    ]
    run(call_app(krandog_app(handler, lifecycle=True), websocket_scope(), *events))
    assert closes == [(1005, "")]


def test_an_exception_in_the_open_event_closes_with_1011(caplog: pytest.LogCaptureFixture) -> None:
    def handler(req: Any) -> None:
        if req.type == "websocket.open":
            raise RuntimeError("open failed")

    with caplog.at_level(logging.ERROR, "krandog_asgi.error"):
        peer = websocket(krandog_app(handler, lifecycle=True), "x")
    assert peer.sent == [ACCEPT, close(1011)]
    assert "Exception in krandog handler for a WebSocket websocket.open on /" in caplog.text


# -- upgrade events -----------------------------------------------------------------------------


def upgrade_handler(req: Any) -> Any:
    """The same routes as tests/apps/krandog_upgrade.py."""
    if req.type != "websocket.upgrade":
        if req.type == "websocket":
            req.ws.send(req.data)
        return None
    calls.append(req.ws.readyState)
    path = req.pathname
    if path == "/deny":
        return {"status": 401, "headers": {"WWW-Authenticate": "Bearer"}, "body": "no token\n"}
    if path == "/deny-str":
        return "go away"
    if path == "/close":
        req.ws.close()
        return None
    if path == "/raise":
        raise RuntimeError("upgrade handler failed")
    if path == "/http-error":
        raise HTTPError(429, "slow down")
    if path == "/bad-return":
        return 3.5
    if path == "/proto":
        req.ws.protocol = req.protocols[-1]
    if path == "/bad-proto":
        req.ws.protocol = "not-offered"
    req.ws.send("queued while connecting")
    return None


calls: list[int] = []


def upgrade(path: str, *, extension: bool = True) -> AsgiPeer:
    scope = websocket_scope(path, subprotocols=["a", "b"])
    if extension:
        scope["extensions"] = DENIAL
    return websocket(krandog_app(upgrade_handler, upgrade=True), "echo me", scope=scope)


def test_upgrade_accepted_with_sends_made_while_connecting_right_after_the_accept() -> None:
    calls.clear()
    assert upgrade("/plain").sent == [ACCEPT, text("queued while connecting"), text("echo me")]
    assert calls == [0]  # the handler saw the connection CONNECTING
    assert upgrade("/proto").sent == [
        {"type": "websocket.accept", "subprotocol": "b"},
        text("queued while connecting"),
        text("echo me"),
    ]


def denial(status: int, body: bytes, *extra: tuple[bytes, bytes]) -> list[dict[str, Any]]:
    headers = [
        *extra,
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(body)),
    ]
    return [
        {"type": "websocket.http.response.start", "status": status, "headers": headers},
        {"type": "websocket.http.response.body", "body": body},
    ]


@pytest.mark.parametrize(
    ("path", "sent", "logged"),
    [
        ("/deny", denial(401, b"no token\n", (b"www-authenticate", b"Bearer")), None),
        ("/deny-str", denial(200, b"go away"), None),
        ("/close", [{"type": "websocket.close"}], None),
        (
            "/raise",
            denial(500, b"Internal Server Error\n"),
            "Exception in krandog handler for WebSocket upgrade /raise",
        ),
        ("/http-error", denial(429, b"slow down\n"), None),
        (
            "/bad-return",
            denial(500, b"Internal Server Error\n"),
            "krandog handler, WebSocket upgrade /bad-return: the handler returned/contained a"
            " float",
        ),
        (
            "/bad-proto",
            denial(500, b"Internal Server Error\n"),
            "ws.protocol 'not-offered' was not offered by the client",
        ),
    ],
)
def test_upgrade_denied(
    path: str, sent: list[dict[str, Any]], logged: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, "krandog_asgi.error"):
        peer = upgrade(path)
    assert peer.sent == sent  # and the handler never sees a message of it
    if logged:
        assert logged in caplog.text
    else:
        assert not caplog.records


def test_without_the_denial_extension_a_denial_is_a_close_before_the_accept() -> None:
    """ASGI: closing before the accept makes the server answer 403."""
    assert upgrade("/deny", extension=False).sent == [{"type": "websocket.close"}]


def test_a_denied_upgrade_fires_no_close_event() -> None:
    seen: list[str] = []

    def handler(req: Any) -> Any:
        seen.append(req.type)
        return "no" if req.type == "websocket.upgrade" else None

    scope = websocket_scope(extensions=DENIAL)
    websocket(krandog_app(handler, upgrade=True, lifecycle=True), "x", scope=scope)
    assert seen == ["websocket.upgrade"]


# -- HTTP ---------------------------------------------------------------------------------------


def http(app: Any, *events: dict[str, Any], **scope: Any) -> AsgiPeer:
    return run(call_app(app, {**http_scope(), **scope}, *events))


def response(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> list[Any]:
    return [
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": body},
    ]


def text_response(status: int, body: str) -> list[Any]:
    payload = body.encode()
    return response(
        status,
        [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"%d" % len(payload)),
        ],
        payload,
    )


REQUEST = {"type": "http.request", "body": b""}


@pytest.mark.parametrize(
    "result",
    [
        "plain text ü",
        b"\x00\x01binary",
        {"message": "hello", "n": 1},
        [1, "two", None],
        {"status": 201, "headers": {"X-Multi": ["a", "b"]}, "body": "created"},
        {"status": 204},
        {"headers": {"Content-Length": "999"}, "body": "four"},
    ],
)
@pytest.mark.parametrize("kind", ["sync", "async", "returns-coroutine"])
def test_every_return_form_is_one_start_and_one_body(result: Any, kind: str) -> None:
    async def ahandler(req: Any) -> Any:
        return result

    handler = {
        "sync": lambda req: result,
        "async": ahandler,
        "returns-coroutine": lambda req: ahandler(req),
    }[kind]
    assert http(krandog_app(handler), REQUEST).sent == response(*build_response(result))


def test_the_body_is_read_in_full_before_the_handler_runs() -> None:
    bodies: list[bytes] = []

    def handler(req: Any) -> str:
        bodies.append(req.body)
        return "ok"

    app = krandog_app(handler)
    chunks: list[dict[str, Any]] = [
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"", "more_body": True},
        {"type": "http.request", "body": b"c"},
    ]
    assert http(app, *chunks).sent == text_response(200, "ok")
    assert http(app, {"type": "http.request"}).sent == text_response(200, "ok")
    assert bodies == [b"abc", b""]


def test_a_body_over_the_limit_is_413_before_the_handler_runs() -> None:
    calls: list[Any] = []
    app = krandog_app(calls.append, max_body_size=1024)
    too_large = text_response(413, "Request body too large\n")
    declared = http(app, REQUEST, headers=[(b"Content-Length", b"1025")])
    assert declared.sent == too_large
    assert declared.receives == 0  # answered from the header, nothing read
    streamed = [{"type": "http.request", "body": b"y" * 200, "more_body": True}] * 10
    peer = http(app, *streamed)
    assert peer.sent == too_large
    assert peer.receives == 6  # stopped at the chunk that crossed 1024 bytes
    exact = http(krandog_app(lambda req: req.body), {"type": "http.request", "body": b"x" * 1024})
    assert exact.sent[1]["body"] == b"x" * 1024
    assert calls == []


def test_a_client_that_leaves_during_the_body_gets_nothing() -> None:
    calls: list[Any] = []
    events: list[dict[str, Any]] = [
        {"type": "http.request", "body": b"a", "more_body": True},
        {"type": "http.disconnect"},
    ]
    assert http(krandog_app(calls.append), *events).sent == []
    assert calls == []


def test_none_for_an_http_request_is_a_500_that_says_so(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, "krandog_asgi.error"):
        peer = http(krandog_app(lambda req: None), REQUEST, path="/none")
    assert peer.sent == text_response(
        500, "Internal Server Error: the handler returned nothing for an HTTP request\n"
    )
    assert re.search(r"GET /none: the handler returned nothing \(None\)", caplog.text)


def test_an_invalid_return_is_a_500_with_the_reason_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, "krandog_asgi.error"):
        peer = http(krandog_app(lambda req: {"status": "200"}), REQUEST, path="/bad-status")
    assert peer.sent == text_response(
        500,
        "Internal Server Error: the handler returned an invalid response (see the server log)\n",
    )
    assert caplog.records[0].getMessage() == (
        "krandog handler, GET /bad-status: status must be an int from 200 to 599, got '200'"
    )


def test_a_handler_exception_is_a_bare_500_with_the_traceback_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def handler(req: Any) -> Any:
        raise RuntimeError("boom in the handler")

    with caplog.at_level(logging.ERROR, "krandog_asgi.error"):
        peer = http(krandog_app(handler), REQUEST, path="/raise")
    assert peer.sent == text_response(500, "Internal Server Error\n")
    record = caplog.records[0]
    assert record.getMessage() == "Exception in krandog handler for GET /raise"
    assert record.exc_info is not None
    assert "boom" in str(record.exc_info[1])


def test_http_error_and_bad_request_answer_with_their_status() -> None:
    def teapot(req: Any) -> Any:
        raise HTTPError(418, "I am a teapot, said the handler")

    assert http(krandog_app(teapot), REQUEST).sent == text_response(
        418, "I am a teapot, said the handler\n"
    )
    assert http(krandog_app(lambda req: req.json()), REQUEST).sent == text_response(
        400, "The request body is not valid JSON: Expecting value: line 1 column 1 (char 0)\n"
    )

    def not_found(req: Any) -> Any:
        raise HTTPError(404)

    assert http(krandog_app(not_found), REQUEST).sent == text_response(404, "Not Found\n")
    assert issubclass(BadRequest, HTTPError)


# -- lifespan and other scopes ------------------------------------------------------------------


def test_lifespan_startup_and_shutdown_are_acknowledged() -> None:
    events = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    peer = run(call_app(krandog_app(echo), {"type": "lifespan"}, *events))
    assert peer.types() == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_an_unknown_scope_type_is_refused() -> None:
    with pytest.raises(ValueError, match="Unsupported ASGI scope type 'webtransport'"):
        run(call_app(krandog_app(echo), {"type": "webtransport"}))


# -- wrapping and detection ---------------------------------------------------------------------


def test_krandog_app_wraps_bare_or_as_a_decorator_with_options() -> None:
    def handler(req: Any) -> None: ...

    app = krandog_app(handler)
    assert isinstance(app, KrandogApp)
    assert is_krandog_app(app)
    assert not is_krandog_app(handler)
    assert (app.threads, app.lifecycle, app.upgrade, app.is_async) == (False, False, False, False)
    assert (app.max_body_size, app.send_queue_limit) == (DEFAULT_MAX_BODY_SIZE, 16 * 1024 * 1024)
    assert DEFAULT_SEND_QUEUE_LIMIT == 16 * 1024 * 1024
    assert repr(app).startswith("<KrandogApp 'test_krandog_app_wraps_bare_or_as_a_decorator")

    @krandog_app(threads=True, lifecycle=True, upgrade=True, max_body_size=1, send_queue_limit=2)
    def decorated(req: Any) -> None: ...

    assert isinstance(decorated, KrandogApp)
    assert (decorated.threads, decorated.lifecycle, decorated.upgrade) == (True, True, True)
    assert (decorated.max_body_size, decorated.send_queue_limit) == (1, 2)

    class AsyncCallable:
        async def __call__(self, req: Any) -> None: ...

    assert krandog_app(AsyncCallable()).is_async
