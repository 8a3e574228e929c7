"""krandog/request.py: the ``req`` a handler gets. HTTP requests decode their body on demand;
WebSocket messages and events take every field from their connection, ``req.ws``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from krandog_asgi.krandog.request import HTTPRequest, WebSocketEvent, WebSocketMessage
from krandog_asgi.krandog.response import BadRequest
from krandog_asgi.krandog.sender import WebSocket
from tests.support.asgi import AsgiPeer, http_scope, websocket_scope
from tests.support.fakes import run

# -- HTTP ---------------------------------------------------------------------------------------


def request(body: bytes, content_type: str | None = None) -> HTTPRequest:
    headers = [(b"content-type", content_type.encode())] if content_type else []
    return HTTPRequest(http_scope("POST", "/items", headers), body)


def test_http_request_fields() -> None:
    req = request(b"{}")
    assert req.type == "http"
    assert (req.method, req.pathname, req.body) == ("POST", "/items", b"{}")
    assert repr(req) == "<HTTPRequest POST '/items'>"


@pytest.mark.parametrize(
    ("body", "content_type", "text"),
    [
        pytest.param("héllo".encode(), None, "héllo", id="utf-8-by-default"),
        pytest.param("héllo".encode("latin-1"), "text/plain; charset=latin-1", "héllo", id="l1"),
        pytest.param("é".encode("latin-1"), 'text/plain; Charset="ISO-8859-1"', "é", id="quoted"),
        pytest.param(b"ok \xff", "text/plain; charset=no-such-codec", "ok \ufffd", id="unknown"),
        pytest.param(b"\xff", None, "\ufffd", id="bad-bytes-replaced"),
    ],
)
def test_text_decodes_with_the_content_type_charset(
    body: bytes, content_type: str | None, text: str
) -> None:
    assert request(body, content_type).text == text


def test_json_parses_the_body_and_a_bad_body_is_a_400() -> None:
    assert request(b'{"a": [1, null]}').json() == {"a": [1, None]}
    for body in (b"{not json", b"\xff\xfe\xfa", b""):
        with pytest.raises(BadRequest, match="The request body is not valid JSON") as info:
            request(body).json()
        assert info.value.status == 400
        assert isinstance(info.value, ValueError)


# -- WebSocket messages and events --------------------------------------------------------------


def with_connection(check: Any, **scope: Any) -> None:
    """Run ``check(ws)`` with a connection on a loop (a WebSocket belongs to one)."""

    async def main() -> None:
        check(WebSocket(websocket_scope(**scope), AsgiPeer().send, 1 << 20))
        await asyncio.sleep(0)

    run(main())


def test_message_fields_come_from_its_connection() -> None:
    def check(ws: WebSocket) -> None:
        req = WebSocketMessage(ws, "x" * 50)
        assert req.type == "websocket"
        assert req.ws is ws
        assert req.data == "x" * 50
        assert req.pathname == "/room" == ws.pathname
        assert req.url == "ws://example.com/room?a=1" == ws.url
        assert req.headers is ws.headers
        assert req.query is ws.query
        assert req.query["a"] == "1"
        assert req.client == ("127.0.0.1", 4000)
        assert repr(req) == f"<WebSocketMessage '/room' {'x' * 40!r}>"
        assert repr(WebSocketMessage(ws, b"\x00")) == "<WebSocketMessage '/room' b'\\x00'>"

    with_connection(
        check,
        path="/room",
        headers=[(b"host", b"example.com")],
        query_string=b"a=1",
        client=("127.0.0.1", 4000),
    )


def test_events_carry_type_code_reason_and_the_offered_subprotocols() -> None:
    def check(ws: WebSocket) -> None:
        upgrade = WebSocketEvent("websocket.upgrade", ws)
        assert (upgrade.type, upgrade.code, upgrade.reason) == ("websocket.upgrade", None, "")
        assert upgrade.data is None
        assert upgrade.method == "GET"  # handlers written for HTTP fields work on it
        assert upgrade.protocols == ["chat", "superchat"]
        upgrade.protocols.append("mutated")  # a copy: the scope stays as the server gave it
        assert upgrade.protocols == ["chat", "superchat"]
        assert upgrade.pathname == "/chat"
        assert repr(upgrade) == "<WebSocketEvent websocket.upgrade '/chat'>"
        close = WebSocketEvent("websocket.close", ws, 4001, "bye")
        assert (close.type, close.code, close.reason) == ("websocket.close", 4001, "bye")

    def none_offered(ws: WebSocket) -> None:
        assert WebSocketEvent("websocket.open", ws).protocols == []

    with_connection(check, path="/chat", subprotocols=["chat", "superchat"])
    with_connection(none_offered)
