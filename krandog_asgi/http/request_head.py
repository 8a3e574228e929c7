"""The rules a request head must pass, and the ASGI ``http`` scope built from it.

Pure functions of what the parser collected (method, version, target, header list) and of the
connection's fixed facts: no socket, no event loop, so every rule is testable on its own. A
refused head raises ``RequestError``, which carries the status and the text of the answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote_to_bytes

import httptools

from krandog_asgi._abnf import HOST, TOKEN_PATTERN
from krandog_asgi.http.proxy import apply_proxy_headers

if TYPE_CHECKING:
    from krandog_asgi.asgi_types import Scope
    from krandog_asgi.config import Config
    from krandog_asgi.process.state import ServerState

__all__ = [
    "ASGI_VERSION",
    "FAST_CONSTANTS",
    "HeadContext",
    "HeadParser",
    "RequestError",
    "absolute_target",
    "check_framing",
    "check_head_size",
    "fast_scope",
    "is_unknown_method",
    "plain_request",
    "read_request_head",
    "read_request_head_py",
]

ASGI_VERSION = {"version": "3.0", "spec_version": "2.5"}
# Method strings by the parser's bytes: decoded once per method, not once per request.
METHODS: dict[bytes, str] = {}

# Request header names the server looks at while building the scope.
_HOST, _EXPECT, _TE, _CL, _UPGRADE, _FORWARDED = 1, 2, 3, 4, 5, 6
_REQUEST_HEADERS = {
    b"host": _HOST,
    b"expect": _EXPECT,
    b"transfer-encoding": _TE,
    b"content-length": _CL,
    b"upgrade": _UPGRADE,
    b"x-forwarded-for": _FORWARDED,
    b"x-forwarded-proto": _FORWARDED,
}

# Host values already validated (clients repeat them); None stands for "no Host" (HTTP/1.0).
_GOOD_HOSTS: set[bytes | None] = {None}
_ABSOLUTE_SCHEMES = {b"http", b"https", b"ws", b"wss"}
_METHOD_TOKEN_RE = re.compile(rb"[\r\n]*(%s) " % TOKEN_PATTERN.encode("ascii"))

Headers = list[tuple[bytes, bytes]]  # names lower-cased, values as sent

FastScope = Callable[[Any, bytes, Headers, Any, tuple[Any, ...]], "dict[str, Any] | None"]
PlainRequest = Callable[
    [bytes, int, Any, tuple[Any, ...]], "tuple[dict[str, Any], int, bytes | None] | None"
]
fast_scope: FastScope | None
plain_request: PlainRequest | None
try:  # the C accelerator (setup.py); optional: the rules below build every scope without it
    from krandog_asgi.http._speedups import fast_scope, plain_request
except ImportError:  # pragma: no cover - exercised by tests/test_runtime_compat.py
    fast_scope = plain_request = None
# What the accelerator reads the common case against: the caches the rules fill, and the
# constant version string (a WebSocket scope keeps its version, so never the parser's copy).
FAST_CONSTANTS = (ASGI_VERSION, METHODS, _GOOD_HOSTS, "1.1")


class RequestError(Exception):
    """A request refused by a head or body rule: answered with ``status`` and ``message``, then
    the connection closes (no byte after a refused request can be trusted)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class HeadParser(Protocol):
    """What the rules ask of the parser once a head is complete (httptools' request parser)."""

    def get_method(self) -> bytes: ...

    def get_http_version(self) -> str: ...

    def should_upgrade(self) -> bool: ...


class HeadContext(Protocol):
    """The connection's fixed facts a scope is built from (``HTTPProtocol`` has them all)."""

    config: Config
    server_addr: tuple[str, int | None] | None
    client: tuple[str, int] | None
    scheme: str
    trusted_peer: bool
    state: ServerState  # for lifespan_state


def read_request_head(
    parser: HeadParser, url: bytes, headers: Headers, conn: HeadContext
) -> tuple[Scope, bool, bool]:
    """Apply every head rule and build the scope: ``(scope, expect_continue, websocket)``, where
    ``websocket`` is true for a WebSocket upgrade the server takes over.

    A head the rules would pass unchanged (the plain GET or POST most requests are) is
    recognized by the C accelerator, which builds its scope in one call; it returns None for
    anything else, which the rules below then decide."""
    if fast_scope is not None:
        scope = fast_scope(parser, url, headers, conn, FAST_CONSTANTS)
        if scope is not None:
            return scope, False, False
    return read_request_head_py(parser, url, headers, conn)


def read_request_head_py(
    parser: HeadParser, url: bytes, headers: Headers, conn: HeadContext
) -> tuple[Scope, bool, bool]:
    """``read_request_head`` by the rules alone, in one pass over the headers (the tests hold
    the accelerator to it)."""
    config = conn.config
    # The constants, not the parser's fresh copies: a WebSocket scope keeps its version.
    version = parser.get_http_version()
    version = "1.1" if version == "1.1" else _http_version(version)
    hosts = 0
    host = expect = content_length = None
    framing = has_te = bad_te = proxied = False
    upgrade = b""
    interesting = _REQUEST_HEADERS
    for name, value in headers:
        kind = interesting.get(name)
        if kind is None:
            continue
        if kind == _HOST:
            hosts += 1
            host = value
        elif kind == _CL:
            content_length = value
            framing = True
        elif kind == _TE:
            has_te = framing = True
            bad_te = bad_te or value.lower() != b"chunked"
        elif kind == _EXPECT:
            expect = value if expect is None else expect + b"," + value  # one list
            framing = True
        elif kind == _UPGRADE:
            upgrade += value + b","
        else:
            proxied = True
    # RFC 9112 §3.2: exactly one Host in 1.1, and never an invalid one.
    if hosts != 1 and (version == "1.1" or hosts > 1):
        raise RequestError(400, "A request must carry exactly one Host header.")
    if host not in _GOOD_HOSTS:
        _check_host(host)
    expect_continue = False
    if framing:
        expect_continue = check_framing(
            headers, version, has_te, bad_te, expect, content_length, config.limit_request_body
        )
    method_b = parser.get_method()
    method = METHODS.get(method_b) or _method_name(method_b)
    raw = url
    if raw[:1] != b"/" and (raw != b"*" or method != "OPTIONS"):
        raw, headers = _absolute_form(raw, headers, hosts)
    # Integer membership: ``b"#" in raw`` raises and clears a TypeError inside CPython first.
    if 0x23 in raw:  # "#"
        raw = raw.partition(b"#")[0]
    raw_path, _, query = raw.partition(b"?")
    if 0x25 in raw_path:  # "%"
        path = unquote_to_bytes(raw_path).decode("utf-8", "replace")
    else:
        path = raw_path.decode("utf-8", "replace")
    root_path = config.root_path
    scope: Scope = {
        "type": "http",
        "asgi": ASGI_VERSION,
        "http_version": version,
        "server": conn.server_addr,
        "client": conn.client,
        "scheme": conn.scheme,
        "method": method,
        "root_path": root_path,
        "path": root_path + path if root_path else path,
        "raw_path": root_path.encode("utf-8") + raw_path if root_path else raw_path,
        "query_string": query,
        "headers": headers,
        "state": conn.state.lifespan_state.copy(),
    }
    if proxied and conn.trusted_peer:
        apply_proxy_headers(scope, config)
    websocket = False
    if upgrade and parser.should_upgrade():
        websocket = _is_websocket_upgrade(config, version, upgrade, has_te, content_length)
    return scope, expect_continue, websocket


def check_head_size(url: bytes, headers: Headers, limit: int) -> None:
    """431 when the head itself is over ``limit``; called only when the bytes read were, since
    the bytes read are an upper bound (they may include the previous request's tail)."""
    size = len(url) + sum(len(n) + len(v) + 4 for n, v in headers)
    if size > limit:
        raise RequestError(431, "Request header fields too large.")


def _http_version(version: str) -> str:
    if version[0] != "1" or version[1] != ".":
        raise RequestError(505, "HTTP version not supported.")
    return "1.0" if version == "1.0" else "1.1"  # RFC 9110 §6.2: a higher 1.x is served as 1.1


def _method_name(method_b: bytes) -> str:
    method = method_b.decode("ascii")
    if method == "CONNECT":
        # A tunnel cannot be expressed in ASGI http, and the parser would treat what follows
        # the head as tunnel data: refuse before anything is skipped.
        raise RequestError(501, "CONNECT is not supported.")
    METHODS[method_b] = method
    return method


def _check_host(host: bytes | None) -> None:
    if host is None or HOST.fullmatch(host) is None:
        raise RequestError(400, "Invalid Host header.")
    if len(_GOOD_HOSTS) >= 256:
        _GOOD_HOSTS.clear()
        _GOOD_HOSTS.add(None)
    _GOOD_HOSTS.add(host)


def _absolute_form(url: bytes, headers: Headers, hosts: int) -> tuple[bytes, Headers]:
    """RFC 9112 §3.2.2: an absolute-form target's authority replaces the Host header."""
    target, authority = absolute_target(url)
    headers = [(n, authority if n == b"host" else v) for n, v in headers]
    if not hosts:
        headers.insert(0, (b"host", authority))  # HTTP/1.0 may omit Host
    return target, headers


def absolute_target(url: bytes) -> tuple[bytes, bytes]:
    """``http://host:port/path?q`` -> (``/path?q``, ``host:port``); anything else is a 400."""
    scheme, sep, rest = url.partition(b"://")
    if not sep or scheme.lower() not in _ABSOLUTE_SCHEMES:
        raise RequestError(400, "Invalid request target.")
    end = len(rest)
    for delim in b"/?#":
        pos = rest.find(delim)
        if 0 <= pos < end:
            end = pos
    authority, target = rest[:end], rest[end:]
    if not authority or b"@" in authority or HOST.fullmatch(authority) is None:
        raise RequestError(400, "Invalid request target.")
    if target[:1] != b"/":
        target = b"/" + target
    return target, authority


def check_framing(
    headers: Headers,
    version: str,
    has_te: bool,
    bad_te: bool,
    expect: bytes | None,
    content_length: bytes | None,
    limit: int | None,
) -> bool:
    """Rules for requests that carry a body or an expectation; returns ``expect_continue``."""
    if has_te:
        if version == "1.0":
            # RFC 9112 §6.1: chunked framing from an HTTP/1.0 client cannot be trusted.
            raise RequestError(400, "Transfer-Encoding is not allowed in HTTP/1.0 requests.")
        if bad_te:
            _check_transfer_codings(headers)
    if content_length is not None and limit is not None and int(content_length) > limit:
        raise RequestError(413, "Request body too large.")
    if expect is None or version == "1.0":
        return False  # RFC 9110 §10.1.1: an HTTP/1.0 expectation MUST be ignored
    if expect.lower() == b"100-continue":
        return True
    # Expect is a list (RFC 9110 §10.1.1); empty elements are ignored (§5.6.1), and only a
    # member other than 100-continue is a 417.
    members = [m.strip().lower() for m in expect.split(b",")]
    members = [m for m in members if m]
    if any(m != b"100-continue" for m in members):
        raise RequestError(417, "Expectation Failed.")
    return bool(members)


def _check_transfer_codings(headers: Headers) -> None:
    """Transfer-Encoding other than a plain ``chunked``: only chunked, once and last, passes."""
    # RFC 9110 §5.6.1: empty list elements are ignored (`, chunked` is chunked; the parser
    # itself refuses a trailing empty element).
    codings = [
        c.strip().lower() for n, v in headers if n == b"transfer-encoding" for c in v.split(b",")
    ]
    codings = [c for c in codings if c]
    if codings == [b"chunked"]:
        return
    if not codings or codings[-1] != b"chunked" or codings.count(b"chunked") > 1:
        # RFC 9112 §6.3: chunked not final (or applied twice): no reliable length.
        raise RequestError(400, "Invalid Transfer-Encoding.")
    # RFC 9112 §6.1: a transfer coding we do not implement.
    raise RequestError(501, "Only the chunked transfer coding is supported.")


def _is_websocket_upgrade(
    config: Config, version: str, upgrade: bytes, has_te: bool, content_length: bytes | None
) -> bool:
    # RFC 9110 §7.8: Upgrade in an HTTP/1.0 request is ignored, and so is any protocol we do
    # not take (h2c); such a request is served as HTTP/1.1, a body it has included (the
    # connection frames it: ``HTTPProtocol.frame_ignored_upgrade_body``).
    if not (config.ws and version == "1.1" and b"websocket" in upgrade.lower()):
        return False
    if has_te or (content_length is not None and content_length != b"0"):
        # A handshake has no body; whatever follows the head is WebSocket frames.
        raise RequestError(400, "Upgrade requests with a body are not supported.")
    return True


def is_unknown_method(head: bytes) -> bool:
    """Whether the request line at the start of ``head`` has a method that is a valid token
    the parser does not know (501), as opposed to garbage (400). Only runs on the error path."""
    match = _METHOD_TOKEN_RE.match(head)
    if match is None:
        return False
    probe = httptools.HttpRequestParser(_Ignore())
    try:
        probe.feed_data(match.group(1) + b" / HTTP/1.1\r\n")
    except httptools.HttpParserInvalidMethodError:
        return True
    except httptools.HttpParserError:
        pass
    return False


class _Ignore:
    """A parser callback object that wants no callbacks."""
