"""An app that answers the upgrade request with an invalid message, then does the cleanup a
framework would do: for tests/test_ws_handshake_hardening.py (real sockets) and the in-memory
tests of tests/test_ws_protocol.py, which share the tables.

/<case>          WebSocket: send INVALID_ANSWERS[<case>] (or INVALID_DENIALS[<case>]), then
                 websocket.close, websocket.send and receive(); what each did is recorded
                 under <case>
/report/<case>   HTTP: JSON of what the WebSocket app recorded for <case> (404 until then)
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

RECORD: dict[str, dict[str, Any]] = {}

# An accept the app got wrong: the handshake is abandoned, the connection closed unanswered.
INVALID_ANSWERS = {
    "subprotocol not offered": {"type": "websocket.accept", "subprotocol": "other"},
    "subprotocol as bytes": {"type": "websocket.accept", "subprotocol": b"chat"},
    "header name with a space": {"type": "websocket.accept", "headers": [(b"x y", b"1")]},
    "empty header name": {"type": "websocket.accept", "headers": [(b"", b"1")]},
    "header name with a colon": {"type": "websocket.accept", "headers": [(b"x:y", b"1")]},
    "CRLF in a header value": {
        "type": "websocket.accept",
        "headers": [(b"x-a", b"1\r\nset-cookie: evil=1")],
    },
    "LF in a header value": {"type": "websocket.accept", "headers": [(b"x-a", b"1\nx: 2")]},
    "NUL in a header value": {"type": "websocket.accept", "headers": [(b"x-a", b"1\x00")]},
    "str header name": {"type": "websocket.accept", "headers": [("x-a", b"1")]},
    "str header value": {"type": "websocket.accept", "headers": [(b"x-a", "1")]},
    "int header value": {"type": "websocket.accept", "headers": [(b"x-a", 1)]},
    "header not a pair": {"type": "websocket.accept", "headers": [(b"x-a",)]},
    "headers not a list": {"type": "websocket.accept", "headers": 5},
    "sec-websocket-accept": {
        "type": "websocket.accept",
        "headers": [(b"Sec-WebSocket-Accept", b"forged")],
    },
    "upgrade": {"type": "websocket.accept", "headers": [(b"Upgrade", b"h2c")]},
    "connection": {"type": "websocket.accept", "headers": [(b"connection", b"close")]},
    "sec-websocket-extensions": {
        "type": "websocket.accept",
        "headers": [(b"sec-websocket-extensions", b"permessage-deflate")],
    },
    "sec-websocket-protocol": {
        "type": "websocket.accept",
        "headers": [(b"sec-websocket-protocol", b"chat")],
    },
    "content-length": {"type": "websocket.accept", "headers": [(b"content-length", b"0")]},
    "transfer-encoding": {
        "type": "websocket.accept",
        "headers": [(b"transfer-encoding", b"chunked")],
    },
}

# A denial response the app got wrong: answered with a 500 at once instead.
INVALID_DENIALS = {
    "denial with status 101": {"type": "websocket.http.response.start", "status": 101},
    "denial without a status": {"type": "websocket.http.response.start"},
    "denial with a CRLF header": {
        "type": "websocket.http.response.start",
        "status": 403,
        "headers": [(b"x-a", b"1\r\n\r\nHTTP/1.1 200 OK")],
    },
}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    case = unquote(scope["path"].rpartition("/")[2])
    if scope["type"] == "http":
        found = case in RECORD and "receive" in RECORD[case]
        body = json.dumps(RECORD.get(case)).encode()
        await send({"type": "http.response.start", "status": 200 if found else 404})
        await send({"type": "http.response.body", "body": body})
        return
    await receive()
    record: dict[str, Any] = {}
    try:
        await send(INVALID_ANSWERS.get(case) or INVALID_DENIALS[case])
        record["answer"] = "accepted"
    except Exception as exc:
        record["answer"] = type(exc).__name__
    for later in (
        {"type": "websocket.close", "code": 1000},
        {"type": "websocket.send", "text": "x"},
    ):
        try:
            await send(later)
            record[later["type"]] = "no-op"
        except Exception as exc:
            record[later["type"]] = type(exc).__name__
    record["receive"] = await receive()
    RECORD[case] = record
