"""From what a handler returns (or raises) to the (status, headers, body) the app sends.

The errors a handler raises carry their status (``HTTPError``, ``BadRequest``); a return value
that is no response raises ``InvalidResponse`` with the reason, which the app logs and answers
with a 500, so a handler's slip never reaches the client as a malformed response.
"""

from __future__ import annotations

import http
import json
from collections.abc import Mapping
from typing import Any

from krandog_asgi._abnf import FIELD_VALUE_FORBIDDEN_TEXT, TOKEN_TEXT

__all__ = [
    "BadRequest",
    "HTTPError",
    "InvalidResponse",
    "NoResponse",
    "Response",
    "build_response",
    "error_response",
    "internal_error",
]

Response = tuple[int, list[tuple[bytes, bytes]], bytes]

_RESPONSE_KEYS = frozenset({"status", "headers", "body"})
_NO_BODY_STATUS = frozenset({204, 304})
_SKIPPED_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})
_TEXT = b"text/plain; charset=utf-8"
_BINARY = b"application/octet-stream"
_JSON = b"application/json"


class HTTPError(Exception):
    """Raise from a handler to answer an HTTP request with ``status`` and a short text body."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message or _phrase(status)


class BadRequest(HTTPError, ValueError):
    """The client sent something the request object cannot parse (e.g. a body that is not JSON)."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


class InvalidResponse(Exception):
    """The handler returned something that is not a response; the message says what and why."""


class NoResponse(InvalidResponse):
    """The handler returned None for an HTTP request (a krandog habit for WebSocket messages)."""


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def error_response(status: int, text: str) -> Response:
    body = text.encode("utf-8")
    return status, [(b"content-type", _TEXT), (b"content-length", b"%d" % len(body))], body


def internal_error(detail: str = "") -> Response:
    return error_response(500, "Internal Server Error" + (f": {detail}" if detail else "") + "\n")


def _json_body(value: Any) -> bytes:
    try:
        return json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidResponse(f"the body could not be sent as JSON: {exc}") from None


def _header_list(headers: Any) -> list[tuple[str, Any]]:
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        pairs: list[tuple[str, Any]] = []
        for name, value in headers.items():
            if isinstance(value, list | tuple):
                pairs.extend((name, v) for v in value)
            else:
                pairs.append((name, value))
        return pairs
    if isinstance(headers, list | tuple):
        pairs = []
        for item in headers:
            if not (isinstance(item, list | tuple) and len(item) == 2):
                raise InvalidResponse(
                    f"headers must be a dict or (name, value) pairs, got {item!r}"
                )
            pairs.append((item[0], item[1]))
        return pairs
    raise InvalidResponse(
        f"headers must be a dict or a list of pairs, not {type(headers).__name__}"
    )


def _encode_header(name: Any, value: Any) -> tuple[bytes, bytes]:
    if isinstance(name, bytes):
        name = name.decode("latin-1")
    if not isinstance(name, str) or TOKEN_TEXT.fullmatch(name) is None:
        raise InvalidResponse(f"invalid header name {name!r}")
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    elif isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidResponse(f"header {name!r} must be a str, not {type(value).__name__}")
    if FIELD_VALUE_FORBIDDEN_TEXT.search(value):
        raise InvalidResponse(f"header {name!r} contains a control character (CR/LF/NUL)")
    try:
        return name.lower().encode("latin-1"), value.encode("latin-1")
    except UnicodeEncodeError:
        raise InvalidResponse(f"header {name!r} is not latin-1 text") from None


def _payload(body: Any, result: Any) -> tuple[bytes, bytes]:
    """The body's bytes and the Content-Type they get unless the handler set one."""
    if body is None:
        return b"", _TEXT
    if isinstance(body, str):
        return body.encode("utf-8"), _TEXT
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body), _BINARY
    if isinstance(body, dict | list):
        return _json_body(body), _JSON
    where = "the body" if body is not result else "the handler"
    raise InvalidResponse(
        f"{where} returned/contained a {type(body).__name__}; expected str, bytes, dict, "
        "list or {'status', 'headers', 'body'}"
    )


def build_response(result: Any) -> Response:
    """Turn a handler's return value into (status, headers, body), or raise ``InvalidResponse``.

    Accepted: ``{"status", "headers", "body"}`` (any subset, status 200 by default), or a bare
    str (text/plain), bytes (application/octet-stream), dict or list (application/json). A dict
    is a response object only if its keys are all among status/headers/body; else it is JSON.
    """
    if result is None:
        raise NoResponse(
            "the handler returned nothing (None) for an HTTP request; return a str, bytes, "
            "a dict/list (sent as JSON) or {'status': ..., 'headers': ..., 'body': ...}"
        )
    status = 200
    headers: list[tuple[str, Any]] = []
    body: Any = result
    if isinstance(result, dict) and result and result.keys() <= _RESPONSE_KEYS:
        status = result.get("status", 200)
        if type(status) is not int or not 200 <= status <= 599:
            raise InvalidResponse(f"status must be an int from 200 to 599, got {status!r}")
        headers = _header_list(result.get("headers"))
        body = result.get("body")
    payload, content_type = _payload(body, result)
    out: list[tuple[bytes, bytes]] = []
    has_type = False
    for name, value in headers:
        raw_name, raw_value = _encode_header(name, value)
        text_name = raw_name.decode("latin-1")
        if text_name in _SKIPPED_HEADERS:
            continue  # framing is ours: the body length is known
        has_type = has_type or text_name == "content-type"
        out.append((raw_name, raw_value))
    if status in _NO_BODY_STATUS:
        return status, out, b""
    if not has_type:
        out.append((b"content-type", content_type))
    out.append((b"content-length", b"%d" % len(payload)))
    return status, out, payload
