"""The ASGI ``websocket`` adapter (``ws_protocol.WebSocketProtocol``) in memory: a ServerState on
a FakeTransport, an app driven from the test. Each test checks the ASGI events the app saw and
the bytes that went to the client (decoded with the client side of our own core).

Sections: the handshake answered (accept, 403, denial response, 500), messages after the accept,
closing (by the app, by the client, by the transport, at shutdown), and the messages a phase
does not allow (one error type, ``UnexpectedMessage``).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from krandog_asgi import ws_protocol
from krandog_asgi.asgi_types import UnexpectedMessage
from krandog_asgi.config import Config
from krandog_asgi.http.response import ClientDisconnected
from krandog_asgi.http_protocol import HTTPProtocol
from krandog_asgi.process.state import ServerState
from krandog_asgi.websocket.connection import CloseReceived, Connection, Side
from krandog_asgi.websocket.frames import OP_CLOSE, OP_TEXT, build_close_payload, build_frame
from krandog_asgi.ws_protocol import PENDING_LIMIT, Phase, WebSocketProtocol
from tests.apps.ws_answers import INVALID_ANSWERS, INVALID_DENIALS
from tests.support.fakes import PEER, FakeTransport, run

MASK = b"\x01\x02\x03\x04"
KEY_HEADERS = [
    (b"host", b"example.com"),
    (b"upgrade", b"websocket"),
    (b"connection", b"Upgrade"),
    (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
    (b"sec-websocket-version", b"13"),
]
ACCEPT_KEY = b"sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"

App = Callable[[Any, Any, Any], Awaitable[None]]


def open_protocol(
    app: App,
    *,
    headers: list[tuple[bytes, bytes]] = KEY_HEADERS,
    rest: bytes = b"",
    **options: Any,
) -> tuple[WebSocketProtocol, FakeTransport]:
    """The adapter as ``HTTPProtocol`` hands it over: the parsed upgrade request and the bytes
    that followed it."""
    loop = asyncio.get_running_loop()
    config = Config(app=app, access_log=False, ws_ping_interval=None, **options)
    config.load()
    state = ServerState(config, app, loop)
    scope = {
        "type": "http",
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": PEER,
        "scheme": "http",
        "method": "GET",
        "root_path": "",
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "headers": list(headers),
        "state": {},
    }
    transport = FakeTransport(loop)
    protocol = WebSocketProtocol(state, scope, transport)
    transport.set_protocol(protocol)
    protocol.start(rest)
    return protocol, transport


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def text_frame(text: str) -> bytes:
    return build_frame(OP_TEXT, text.encode(), mask=MASK)


def close_frame(code: int, reason: str = "") -> bytes:
    return build_frame(OP_CLOSE, build_close_payload(code, reason), mask=MASK)


def split_response(data: bytes) -> tuple[bytes, list[object]]:
    """The HTTP head and, after a 101, the frames as a client would see them."""
    head, _, rest = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101 "):
        return head, [rest]
    client = Connection(Side.CLIENT, lambda _: None)
    events = client.receive_data(rest)
    return head, [e if isinstance(e, str | bytes) else repr(e) for e in events]


def disconnect(code: int, reason: str = "") -> dict[str, Any]:
    return {"type": "websocket.disconnect", "code": code, "reason": reason}


CONNECT = {"type": "websocket.connect"}


# -- the handshake answered ------------------------------------------------------------------


def test_accept_answers_101_and_messages_flow_both_ways() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(await receive())
        await send({"type": "websocket.accept", "headers": [(b"x-app", b"yes")]})
        message = await receive()
        seen.append(message)
        await send({"type": "websocket.send", "text": message["text"].upper()})
        await send({"type": "websocket.send", "bytes": b"\x00\x01"})
        seen.append(await receive())

    async def main() -> None:
        protocol, transport = open_protocol(app)
        await settle()
        assert protocol.phase is Phase.CONNECTED
        protocol.data_received(text_frame("hello"))
        await settle()
        protocol.data_received(close_frame(1000))
        await settle()
        head, frames = split_response(transport.data)
        assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
        assert ACCEPT_KEY in head + b"\r\n"
        assert b"x-app: yes\r\n" in head + b"\r\n"
        assert frames == ["HELLO", b"\x00\x01", "CloseReceived(1000, '')"]
        assert transport.closing  # RFC 6455 §7.1.1: the server closes TCP first

    run(main())
    assert seen == [
        CONNECT,
        {"type": "websocket.receive", "text": "hello"},
        disconnect(1000),
    ]


def test_frames_sent_with_the_upgrade_request_reach_the_app_after_the_accept() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(await receive())
        await send({"type": "websocket.accept"})
        seen.append(await receive())

    async def main() -> None:
        protocol, _ = open_protocol(app, rest=text_frame("early"))
        await settle()
        assert protocol.task is not None
        await asyncio.wait_for(protocol.task, 1)

    run(main())
    assert seen == [CONNECT, {"type": "websocket.receive", "text": "early"}]


def test_a_client_that_floods_before_the_accept_is_paused_then_resumed() -> None:
    """At most PENDING_LIMIT bytes are held for an app that has not answered yet; reading
    resumes at the accept and every early message reaches the app, in order."""
    gate: asyncio.Future[None] | None = None
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert gate is not None
        await receive()
        await gate
        await send({"type": "websocket.accept"})
        seen.extend([(await receive())["text"] for _ in range(3)])

    async def main() -> None:
        nonlocal gate
        gate = asyncio.get_running_loop().create_future()
        protocol, transport = open_protocol(app)
        await settle()
        big = "x" * (PENDING_LIMIT // 2 + 1)
        protocol.data_received(text_frame("a" + big))
        assert transport.reading
        protocol.data_received(text_frame("b" + big))
        assert not transport.reading  # over the limit: no more is read until the accept
        protocol.data_received(text_frame("c"))  # already in flight when reading paused
        gate.set_result(None)
        await settle()
        assert transport.reading
        assert protocol.task is not None
        await asyncio.wait_for(protocol.task, 1)

    run(main())
    assert [m[:1] for m in seen] == ["a", "b", "c"]


def test_scope_becomes_a_websocket_scope() -> None:
    scopes: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await receive()
        await send({"type": "websocket.close"})

    async def main() -> None:
        open_protocol(app, headers=[*KEY_HEADERS, (b"sec-websocket-protocol", b"chat, superchat")])
        await settle()

    run(main())
    (scope,) = scopes
    assert scope["type"] == "websocket"
    assert scope["scheme"] == "ws"
    assert "method" not in scope
    assert scope["subprotocols"] == ["chat", "superchat"]
    assert scope["extensions"] == {"websocket.http.response": {}}


def test_close_before_accept_refuses_with_403() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(await receive())
        await send({"type": "websocket.close"})
        seen.append(await receive())

    async def main() -> None:
        protocol, transport = open_protocol(app)
        await settle()
        assert protocol.phase is Phase.REJECTED
        assert transport.data.startswith(b"HTTP/1.1 403 ")
        assert transport.closing

    run(main())
    assert seen == [CONNECT, disconnect(1000)]


def test_denial_response_is_streamed_into_one_framed_response() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 418,
                "headers": [(b"x-reason", b"teapot"), (b"content-length", b"999")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"short ", "more_body": True})
        await asyncio.sleep(0)
        await send({"type": "websocket.http.response.body", "body": b"and stout"})

    async def main() -> None:
        protocol, transport = open_protocol(app)
        await settle()
        assert protocol.phase is Phase.REJECTED
        head, body = transport.data.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 418 ")
        assert b"x-reason: teapot" in head
        assert b"content-length: 999" not in head  # the body is framed by us
        assert b"content-length: 15\r\nconnection: close" in head
        assert body == b"short and stout"
        assert transport.closing

    run(main())


def test_denial_response_in_progress_writes_nothing_until_its_end() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.http.response.start", "status": 403})
        await send({"type": "websocket.http.response.body", "body": b"no", "more_body": True})
        await asyncio.sleep(3600)

    async def main() -> None:
        protocol, transport = open_protocol(app)
        await settle()
        assert protocol.phase is Phase.RESPONSE
        assert transport.data == b""
        assert protocol.task is not None
        protocol.task.cancel()
        await settle()
        # The app is gone with its response unfinished: a 500 instead.
        assert transport.data.startswith(b"HTTP/1.1 500 ")

    run(main())


def test_invalid_upgrade_request_is_refused_without_starting_the_app() -> None:
    started: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        started.append(True)

    async def main() -> None:
        headers = [(n, b"8" if n == b"sec-websocket-version" else v) for n, v in KEY_HEADERS]
        protocol, transport = open_protocol(app, headers=headers)
        await settle()
        assert protocol.phase is Phase.REJECTED
        assert protocol.task is None
        assert transport.data.startswith(b"HTTP/1.1 426 ")
        assert b"sec-websocket-version: 13\r\n" in transport.data
        assert transport.closing

    run(main())
    assert started == []


def test_app_crash_before_accept_is_500(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        raise RuntimeError("boom")

    async def main() -> None:
        _, transport = open_protocol(app)
        await settle()
        assert transport.data.startswith(b"HTTP/1.1 500 ")

    with caplog.at_level(logging.ERROR, "krandog_asgi.error"):
        run(main())
    assert "Exception in ASGI application" in caplog.text


def test_return_without_answering_is_500_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()

    async def main() -> None:
        _, transport = open_protocol(app)
        await settle()
        assert transport.data.startswith(b"HTTP/1.1 500 ")

    with caplog.at_level(logging.ERROR, "krandog_asgi.error"):
        run(main())
    assert "returned without accepting or closing" in caplog.text


def test_subprotocol_the_client_did_not_offer_abandons_the_handshake() -> None:
    """RFC 6455 §4.2.2: no client can take an upgrade to a subprotocol it did not offer. The
    app hears why (an error of the message, not of its timing), the connection closes without
    an answer (as daphne and hypercorn do it, and Falcon's server tests expect), and whatever
    the app sends afterwards meets a closed connection."""
    errors: list[BaseException] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        try:
            await send({"type": "websocket.accept", "subprotocol": "other"})
        except RuntimeError as exc:
            errors.append(exc)
        try:
            await send({"type": "websocket.close", "code": 1011})  # as Falcon's cleanup does
        except OSError as exc:
            errors.append(exc)
        raise errors[0]

    async def main() -> None:
        protocol, transport = open_protocol(
            app, headers=[*KEY_HEADERS, (b"sec-websocket-protocol", b"chat")]
        )
        await settle()
        assert protocol.phase is Phase.ABANDONED
        assert transport.data == b""
        assert transport.closing

    run(main())
    assert "was not offered by the client" in str(errors[0])
    assert not isinstance(errors[0], UnexpectedMessage)  # the message is wrong, not its timing
    assert isinstance(errors[1], ClientDisconnected)


# An invalid answer to the upgrade fails the handshake closed: the connection closes without an
# answer, never a 101 nor the 403 a later websocket.close would produce; the bad send raises the
# validation error, every later message raises ClientDisconnected (ASGI: an OSError on a closed
# connection), receive() gives a 1006 disconnect.
@pytest.mark.parametrize("answer", list(INVALID_ANSWERS.values()), ids=list(INVALID_ANSWERS))
def test_an_invalid_answer_abandons_the_handshake_and_later_messages_raise(
    answer: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    outcome: dict[str, Any] = {"later": []}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        try:
            await send(answer)
        except (RuntimeError, ValueError, TypeError) as exc:
            outcome["answer"] = exc
        # The cleanup an app (or a framework) does after a failed accept: none of it may
        # produce an ordinary 403 or reach the wire at all.
        for later in (
            {"type": "websocket.close", "code": 1000},
            {"type": "websocket.send", "text": "x"},
            {"type": "websocket.accept"},
        ):
            try:
                await send(later)
            except ClientDisconnected as exc:
                outcome["later"].append(exc)
        outcome["receive"] = await receive()

    async def main() -> None:
        headers = [*KEY_HEADERS, (b"sec-websocket-protocol", b"chat")]
        protocol, transport = open_protocol(app, headers=headers)
        await settle()
        assert protocol.phase is Phase.ABANDONED
        assert protocol.conn is None
        assert transport.data == b""  # no 101, no 403, no 500: nothing
        assert transport.closing

    with caplog.at_level(logging.ERROR, "krandog_asgi.error"):
        run(main())
    assert isinstance(outcome["answer"], RuntimeError | ValueError | TypeError)
    assert not isinstance(outcome["answer"], UnexpectedMessage)  # the message is wrong
    assert len(outcome["later"]) == 3
    assert isinstance(outcome["later"][0], OSError)
    assert outcome["receive"] == disconnect(1006)
    abandoned = [r for r in caplog.records if "handshake abandoned" in r.getMessage()]
    assert len(abandoned) == 1
    assert abandoned[0].levelno == logging.ERROR
    assert str(outcome["answer"]) in abandoned[0].getMessage()  # it says why


def test_an_app_that_lets_an_invalid_accept_raise_gets_nothing_sent_and_a_logged_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept", "headers": [(b"upgrade", b"h2c")]})

    async def main() -> None:
        protocol, transport = open_protocol(app)
        await settle()
        assert protocol.task is not None
        assert protocol.task.done()
        assert transport.data == b""  # not even the 500 an app crash before accept gets
        assert transport.closing

    with caplog.at_level(logging.ERROR, "krandog_asgi.error"):
        run(main())
    assert "handshake abandoned" in caplog.text
    assert "Exception in ASGI application" in caplog.text
    assert "returned without accepting" not in caplog.text


@pytest.mark.parametrize("answer", list(INVALID_DENIALS.values()), ids=list(INVALID_DENIALS))
def test_an_invalid_denial_response_is_a_500_at_once_and_the_later_close_is_refused(
    answer: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    raised: list[BaseException] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        for message in (answer, {"type": "websocket.close"}):
            try:
                await send(message)
            except (RuntimeError, ValueError, TypeError) as exc:
                raised.append(exc)

    async def main() -> None:
        protocol, transport = open_protocol(app)
        await settle()
        assert protocol.phase is Phase.REJECTED
        assert transport.data.startswith(b"HTTP/1.1 500 ")
        assert transport.data.count(b"HTTP/1.1 ") == 1  # the later close is no 403
        assert transport.closing

    with caplog.at_level(logging.ERROR, "krandog_asgi.error"):
        run(main())
    assert len(raised) == 2
    assert not isinstance(raised[0], UnexpectedMessage)  # the message is wrong
    assert isinstance(raised[1], UnexpectedMessage)  # the handshake was already answered
    assert "Invalid WebSocket denial response, 500 sent instead" in caplog.text


def test_valid_accept_headers_reach_the_101() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(
            {
                "type": "websocket.accept",
                "subprotocol": "chat",
                "headers": [(b"x-a", b"1 \t obs-text \xe9"), (b"Set-Cookie", b"a=b")],
            }
        )

    async def main() -> None:
        _protocol, transport = open_protocol(
            app, headers=[*KEY_HEADERS, (b"sec-websocket-protocol", b"chat")]
        )
        await settle()
        head = transport.data.split(b"\r\n\r\n", 1)[0]
        assert head.startswith(b"HTTP/1.1 101 ")
        assert b"\r\nsec-websocket-protocol: chat\r\n" in head
        assert b"\r\nx-a: 1 \t obs-text \xe9\r\n" in head
        assert head.endswith(b"\r\nSet-Cookie: a=b")

    run(main())


def test_receive_waiting_before_the_accept_gets_the_first_message() -> None:
    got: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        early = asyncio.ensure_future(receive())
        await asyncio.sleep(0)
        await send({"type": "websocket.accept"})
        got.append(await early)

    async def main() -> None:
        protocol, _ = open_protocol(app)
        await settle()
        protocol.data_received(text_frame("first"))
        await settle()

    run(main())
    assert got == [{"type": "websocket.receive", "text": "first"}]


def test_client_that_leaves_before_the_answer_is_a_1006_disconnect() -> None:
    seen: list[Any] = []
    errors: list[BaseException] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(await receive())
        waiting = asyncio.ensure_future(receive())
        await asyncio.sleep(0)
        transport.close()  # the client is gone while the app decides
        seen.append(await waiting)
        try:
            await send({"type": "websocket.accept"})
        except ClientDisconnected as exc:
            errors.append(exc)

    transport: FakeTransport

    async def main() -> None:
        nonlocal transport
        _, transport = open_protocol(app)
        await settle()
        assert transport.data == b""

    run(main())
    assert seen == [CONNECT, disconnect(1006)]
    assert len(errors) == 1


# -- closing -----------------------------------------------------------------------------------


def test_app_close_sends_its_code_and_reason_and_waits_for_the_answer() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4000, "reason": "done"})
        seen.append(await receive())

    async def main() -> None:
        protocol, transport = open_protocol(app)
        await settle()
        assert protocol.phase is Phase.CLOSED
        assert split_response(transport.data)[1] == ["CloseReceived(4000, 'done')"]
        assert not transport.closing  # the client's answer is still to come
        protocol.data_received(close_frame(4000))
        await settle()
        assert transport.closing

    run(main())
    assert seen == [disconnect(4000)]


def test_client_close_reaches_the_app_and_is_echoed() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        seen.append(await receive())
        try:
            await send({"type": "websocket.send", "text": "too late"})
        except ClientDisconnected:
            seen.append("ClientDisconnected")

    async def main() -> None:
        protocol, transport = open_protocol(app)
        await settle()
        protocol.data_received(close_frame(4321, "client says bye"))
        await settle()
        frames = split_response(transport.data)[1]
        assert frames == [repr(CloseReceived(4321, "client says bye"))]

    run(main())
    assert seen == [disconnect(4321, "client says bye"), "ClientDisconnected"]


def test_abrupt_loss_is_a_1006_disconnect_and_send_raises() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        seen.append(await receive())
        with pytest.raises(ClientDisconnected):
            await send({"type": "websocket.send", "text": "anyone?"})
        seen.append("ClientDisconnected")

    async def main() -> None:
        protocol, _ = open_protocol(app)
        await settle()
        protocol.connection_lost(None)
        await settle()

    run(main())
    assert seen == [disconnect(1006), "ClientDisconnected"]


def test_app_crash_after_accept_closes_1011() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        raise RuntimeError("boom")

    async def main() -> None:
        _, transport = open_protocol(app)
        await settle()
        assert split_response(transport.data)[1] == ["CloseReceived(1011, '')"]

    run(main())


def test_app_return_after_accept_closes_1000() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})

    async def main() -> None:
        _, transport = open_protocol(app)
        await settle()
        assert split_response(transport.data)[1] == ["CloseReceived(1000, '')"]

    run(main())


def test_shutdown_closes_an_open_connection_with_1012() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        seen.append(await receive())

    async def main() -> None:
        protocol, transport = open_protocol(app)
        await settle()
        protocol.shutdown()
        frames = split_response(transport.data)[1]
        assert frames == ["CloseReceived(1012, 'server shutting down')"]
        protocol.data_received(close_frame(1012))
        await settle()

    run(main())
    assert seen == [disconnect(1012)]


# -- messages a phase does not allow ----------------------------------------------------------

ACCEPT = {"type": "websocket.accept"}
CLOSE = {"type": "websocket.close"}
SEND = {"type": "websocket.send", "text": "x"}
START = {"type": "websocket.http.response.start", "status": 403}
MORE = {"type": "websocket.http.response.body", "body": b"", "more_body": True}
BODY = {"type": "websocket.http.response.body", "body": b""}


@pytest.mark.parametrize(
    ("before", "message", "error"),
    [
        ([], SEND, "'websocket.send' before 'websocket.accept'"),
        ([], BODY, "'websocket.http.response.body' without a response start"),
        ([ACCEPT], ACCEPT, "Unexpected 'websocket.accept': the handshake was already answered."),
        ([ACCEPT], START, "Unexpected 'websocket.http.response.start': the handshake was"),
        ([ACCEPT], BODY, "'websocket.http.response.body' without a response start"),
        ([ACCEPT, CLOSE], CLOSE, "'websocket.close' sent twice"),
        ([ACCEPT, CLOSE], SEND, "'websocket.send' after 'websocket.close'"),
        ([ACCEPT, CLOSE], ACCEPT, "Unexpected 'websocket.accept': the handshake was already"),
        ([START], ACCEPT, "Unexpected 'websocket.accept': the handshake was already answered."),
        ([START], CLOSE, "Unexpected 'websocket.close': the handshake was already answered."),
        ([START], SEND, "'websocket.send' before 'websocket.accept'"),
        ([START, MORE], START, "Unexpected 'websocket.http.response.start': the handshake"),
        ([START, BODY], BODY, "'websocket.http.response.body' without a response start"),
        ([START, BODY], CLOSE, "Unexpected 'websocket.close': the handshake was already"),
        ([CLOSE], ACCEPT, "Unexpected 'websocket.accept': the handshake was already answered."),
        ([CLOSE], SEND, "'websocket.send' before 'websocket.accept'"),
        ([], {"type": "websocket.foo"}, "Unexpected ASGI message type 'websocket.foo' in a"),
        ([ACCEPT], {"type": "http.response.start"}, "Unexpected ASGI message type"),
    ],
)
def test_a_message_the_phase_does_not_allow_raises_unexpected_message(
    before: list[dict[str, Any]], message: dict[str, Any], error: str
) -> None:
    raised: list[BaseException] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        for earlier in before:
            await send(earlier)
        try:
            await send(message)
        except Exception as exc:
            raised.append(exc)

    async def main() -> None:
        open_protocol(app)
        await settle()

    run(main())
    assert len(raised) == 1
    assert isinstance(raised[0], UnexpectedMessage)
    assert isinstance(raised[0], RuntimeError)  # what apps and older tests catch
    assert re.match(re.escape(error), str(raised[0])), str(raised[0])


def test_send_with_both_text_and_bytes_is_a_value_error_and_the_connection_goes_on() -> None:
    errors: list[BaseException] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(ACCEPT)
        try:
            await send({"type": "websocket.send", "text": "a", "bytes": b"b"})
        except ValueError as exc:
            errors.append(exc)
        await send({"type": "websocket.send", "text": "a", "bytes": None})

    async def main() -> None:
        _, transport = open_protocol(app)
        await settle()
        assert split_response(transport.data)[1] == ["a", "CloseReceived(1000, '')"]

    run(main())
    assert "both" in str(errors[0])


# -- a broadcast: one message object sent to many connections --------------------------------------


def room_app(sends: list[Any]) -> App:
    """Accepts, joins the room (its ``send`` goes to the test), waits for the client's close."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(ACCEPT)
        sends.append(send)
        await receive()

    return app


def test_one_message_sent_to_many_connections_is_framed_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[bytes] = []
    real_build = ws_protocol.build_frame

    def counting_build(opcode: int, payload: bytes) -> bytes:
        built.append(payload)
        return real_build(opcode, payload)

    monkeypatch.setattr(ws_protocol, "build_frame", counting_build)
    sends: list[Any] = []

    async def main() -> None:
        opened = [open_protocol(room_app(sends)) for _ in range(3)]
        await settle()
        text = "hello room"
        for send in sends:
            await send({"type": "websocket.send", "text": text})
        data = b"\x01\x02"
        for send in sends:
            await send({"type": "websocket.send", "bytes": data})
        for protocol, _ in opened:
            protocol.data_received(close_frame(1000))
        await settle()
        for _, transport in opened:
            assert split_response(transport.data)[1] == [
                "hello room",
                b"\x01\x02",
                "CloseReceived(1000, '')",
            ]

    run(main())
    assert built == [b"hello room", b"\x01\x02"]


def test_a_bytearray_changed_between_sends_goes_out_as_it_is_then() -> None:
    sends: list[Any] = []

    async def main() -> None:
        opened = [open_protocol(room_app(sends)) for _ in range(2)]
        await settle()
        buffer = bytearray(b"abc")
        await sends[0]({"type": "websocket.send", "bytes": buffer})
        buffer[0] = ord("x")
        await sends[1]({"type": "websocket.send", "bytes": buffer})
        assert split_response(opened[0][1].data)[1] == [b"abc"]
        assert split_response(opened[1][1].data)[1] == [b"xbc"]
        for protocol, _ in opened:
            protocol.data_received(close_frame(1000))
        await settle()

    run(main())


def test_a_connection_with_compression_never_gets_the_shared_frame() -> None:
    sends: list[Any] = []
    deflate = [*KEY_HEADERS, (b"sec-websocket-extensions", b"permessage-deflate")]

    async def main() -> None:
        plain = open_protocol(room_app(sends))
        compressed = open_protocol(room_app(sends), headers=deflate)
        await settle()
        text = "compressible " * 20
        for send in sends:
            await send({"type": "websocket.send", "text": text})
        assert split_response(plain[1].data)[1] == [text]
        head, _, frames = compressed[1].data.partition(b"\r\n\r\n")
        assert b"permessage-deflate" in head
        assert frames[0] == 0xC1  # FIN + RSV1: compressed for this connection alone
        assert len(frames) < len(text)
        for protocol, _ in (plain, compressed):
            protocol.data_received(close_frame(1000))
        await settle()

    run(main())


# -- how the app is run -------------------------------------------------------------------------


def test_an_app_that_raises_before_returning_a_coroutine_is_refused_with_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def app(scope: Any, receive: Any, send: Any) -> Any:
        raise RuntimeError("not even a coroutine")

    async def main() -> None:
        _, transport = open_protocol(app)  # type: ignore[arg-type]
        await settle()
        assert transport.data.startswith(b"HTTP/1.1 500 ")

    with caplog.at_level(logging.ERROR, logger="krandog_asgi.error"):
        run(main())
    assert "not even a coroutine" in caplog.text


def test_an_app_returning_an_awaitable_that_is_not_a_coroutine_is_awaited() -> None:
    class Session:
        """An ASGI app object whose call returns a plain awaitable (a generator-based one)."""

        def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
            async def body() -> None:
                await receive()
                await send(ACCEPT)
                message = await receive()
                await send({"type": "websocket.send", "text": message["text"] + "!"})

            return body().__await__()

    class Awaitable:
        def __init__(self, it: Any) -> None:
            self.it = it

        def __await__(self) -> Any:
            return self.it

    app = Session()

    def wrapped(scope: Any, receive: Any, send: Any) -> Any:
        return Awaitable(app(scope, receive, send))

    async def main() -> None:
        protocol, transport = open_protocol(wrapped)  # type: ignore[arg-type]
        await settle()
        protocol.data_received(text_frame("hi"))
        await settle()
        assert split_response(transport.data)[1] == ["hi!", "CloseReceived(1000, '')"]

    run(main())


# -- the upgrade through HTTPProtocol: what an open connection keeps ---------------------------


def test_upgraded_connections_share_their_repeating_scope_values_and_keep_their_own() -> None:
    """Long-lived scopes hold one copy of what every connection has in common (server address,
    client host, path, handshake values), while each keeps its own key, and the app sees the
    same scope as without sharing."""
    scopes: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await receive()
        await send({"type": "websocket.accept"})
        await receive()

    def upgrade(key: bytes) -> bytes:
        return (
            b"GET /chat?room=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        config = Config(app=app, access_log=False, lifespan="off", ws_ping_interval=None)
        config.load()
        state = ServerState(config, app, loop)
        transports = []
        for key in (b"dGhlIHNhbXBsZSBub25jZQ==", b"AQIDBAUGBwgJCgsMDQ4PEA=="):
            transport = FakeTransport(loop)
            protocol = HTTPProtocol(state)
            transport.set_protocol(protocol)
            protocol.connection_made(transport)
            protocol.data_received(bytearray(upgrade(key)))  # fresh objects for each request
            transports.append(transport)
        await settle()
        assert all(t.data.startswith(b"HTTP/1.1 101 ") for t in transports)
        one, two = scopes
        for scope in scopes:
            assert scope["type"] == "websocket"
            assert scope["http_version"] == "1.1"
            assert scope["path"] == "/chat"
            assert scope["raw_path"] == b"/chat"
            assert scope["query_string"] == b"room=1"
            assert scope["server"] == ("127.0.0.1", 8000)
            assert scope["client"] == PEER
            assert scope["extensions"]["websocket.http.response"] == {}
            assert [n for n, _ in scope["headers"]] == [
                b"host",
                b"upgrade",
                b"connection",
                b"sec-websocket-key",
                b"sec-websocket-version",
            ]
        assert one["server"] is two["server"]
        assert one["client"][0] is two["client"][0]
        assert one["path"] is two["path"]
        assert one["raw_path"] is two["raw_path"]
        shared = [a[1] is b[1] for a, b in zip(one["headers"], two["headers"], strict=False)]
        assert shared == [True, True, True, False, True]
        assert one["headers"][3][1] == b"dGhlIHNhbXBsZSBub25jZQ=="
        assert two["headers"][3][1] == b"AQIDBAUGBwgJCgsMDQ4PEA=="
        for transport in transports:
            transport.close()
        await settle()

    run(main())


def test_an_idle_connection_holds_no_vectored_writer_until_a_large_message() -> None:
    """Large frames go out as (header, payload) buffers; the writer for that is given to the
    core by the first message that can need it, so an idle connection does not hold it."""
    payload = bytes(range(256)) * 256  # 64 KiB
    go = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "small"})
        await go.wait()
        await send({"type": "websocket.send", "bytes": payload})
        await receive()

    async def main() -> None:
        protocol, transport = open_protocol(app)
        await settle()
        assert protocol.conn is not None
        assert protocol.conn.writev is None
        before = len(transport.written)
        go.set()
        await settle()
        assert protocol.conn.writev is not None
        assert len(transport.written) - before == 2  # the header, then the payload as given
        assert transport.written[-1] == payload
        assert split_response(transport.data)[1] == ["small", payload]

    run(main())
