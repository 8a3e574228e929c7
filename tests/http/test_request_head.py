"""The request-head rules and scope building (``http.request_head``) as plain functions: a head is
what the parser collected (method, version, target, headers), no socket and no event loop.
Every refusal is a ``RequestError`` carrying the status and text the client gets. Each test runs
with the C scope fast path in front of the rules and without it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from krandog_asgi.config import Config
from krandog_asgi.http import request_head
from krandog_asgi.http.request_head import (
    ASGI_VERSION,
    RequestError,
    absolute_target,
    check_framing,
    check_head_size,
    is_unknown_method,
    read_request_head,
)

Headers = list[tuple[bytes, bytes]]


@pytest.fixture(autouse=True, params=["accelerated", "rules-only"])
def scope_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every rule holds with the C scope fast path in front and without it."""
    if request.param == "rules-only":
        monkeypatch.setattr(request_head, "fast_scope", None)
    elif request_head.fast_scope is None:
        pytest.skip("the C accelerator is not built (no C compiler)")


async def _app(scope: Any, receive: Any, send: Any) -> None:
    pass


class Parser:
    """What httptools' request parser reports once a head is complete."""

    def __init__(self, method: bytes, version: str, upgrade: bool) -> None:
        self.method, self.version, self.upgrade = method, version, upgrade

    def get_method(self) -> bytes:
        return self.method

    def get_http_version(self) -> str:
        return self.version

    def should_upgrade(self) -> bool:
        return self.upgrade


def context(trusted_peer: bool = False, **options: Any) -> SimpleNamespace:
    config = Config(app=_app, **options)
    config.load()
    return SimpleNamespace(
        config=config,
        server_addr=("127.0.0.1", 8000),
        client=("127.0.0.1", 50000),
        scheme="http",
        trusted_peer=trusted_peer,
        state=SimpleNamespace(lifespan_state={"db": "pool"}),
    )


def read(
    url: bytes = b"/",
    headers: Headers | None = None,
    *,
    method: bytes = b"GET",
    version: str = "1.1",
    upgrade: bool = False,
    conn: SimpleNamespace | None = None,
) -> tuple[dict[str, Any], bool, bool]:
    headers = [(b"host", b"example.com")] if headers is None else headers
    parser = Parser(method, version, upgrade)
    scope, expect_continue, websocket = read_request_head(
        parser,
        url,
        headers,
        conn or context(),  # type: ignore[arg-type]
    )
    return dict(scope), expect_continue, websocket


def refused(*args: Any, **kwargs: Any) -> tuple[int, str]:
    with pytest.raises(RequestError) as info:
        read(*args, **kwargs)
    return info.value.status, info.value.message


# -- the scope --------------------------------------------------------------------------------


def test_plain_get_builds_the_whole_scope_in_asgi_order() -> None:
    headers = [(b"host", b"example.com"), (b"accept", b"*/*")]
    scope, expect_continue, websocket = read(b"/a%20b/c?x=1&y=2", headers)
    assert list(scope) == [
        "type",
        "asgi",
        "http_version",
        "server",
        "client",
        "scheme",
        "method",
        "root_path",
        "path",
        "raw_path",
        "query_string",
        "headers",
        "state",
    ]
    assert scope == {
        "type": "http",
        "asgi": ASGI_VERSION,
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": "GET",
        "root_path": "",
        "path": "/a b/c",
        "raw_path": b"/a%20b/c",
        "query_string": b"x=1&y=2",
        "headers": headers,
        "state": {"db": "pool"},
    }
    assert (expect_continue, websocket) == (False, False)


def test_lifespan_state_is_copied_per_request() -> None:
    conn = context()
    first, _, _ = read(conn=conn)
    first["state"]["mine"] = 1
    second, _, _ = read(conn=conn)
    assert second["state"] == {"db": "pool"}
    assert conn.state.lifespan_state == {"db": "pool"}


def test_fragment_is_dropped_and_bad_utf8_is_replaced() -> None:
    scope, _, _ = read(b"/p%FFq?a=b#frag")
    assert scope["path"] == "/p\ufffdq"
    assert scope["raw_path"] == b"/p%FFq"
    assert scope["query_string"] == b"a=b"


def test_root_path_prefixes_path_and_raw_path() -> None:
    scope, _, _ = read(b"/items", conn=context(root_path="/api"))
    assert (scope["root_path"], scope["path"], scope["raw_path"]) == (
        "/api",
        "/api/items",
        b"/api/items",
    )


def test_absolute_form_authority_replaces_host() -> None:
    scope, _, _ = read(b"http://other.example:8080/x?q", [(b"host", b"example.com")])
    assert scope["raw_path"] == b"/x"
    assert scope["query_string"] == b"q"
    assert scope["headers"] == [(b"host", b"other.example:8080")]


def test_absolute_form_gives_an_http10_request_its_host() -> None:
    scope, _, _ = read(b"http://h.example", [(b"accept", b"*/*")], version="1.0")
    assert scope["raw_path"] == b"/"
    assert scope["headers"] == [(b"host", b"h.example"), (b"accept", b"*/*")]


@pytest.mark.parametrize(
    ("url", "result"),
    [
        (b"https://a.example/p", (b"/p", b"a.example")),
        (b"HTTP://a.example?q=1", (b"/?q=1", b"a.example")),
        (b"ws://[::1]:9/", (b"/", b"[::1]:9")),
    ],
)
def test_absolute_target_splits_authority_and_path(url: bytes, result: tuple[bytes, bytes]) -> None:
    assert absolute_target(url) == result


@pytest.mark.parametrize(
    "url", [b"ftp://a.example/", b"http:///p", b"http://u@a.example/", b"a.example/p", b"*"]
)
def test_other_targets_are_400(url: bytes) -> None:
    assert refused(url) == (400, "Invalid request target.")


def test_asterisk_is_the_target_of_options_only() -> None:
    scope, _, _ = read(b"*", method=b"OPTIONS")
    assert (scope["method"], scope["raw_path"]) == ("OPTIONS", b"*")


def test_proxy_headers_apply_only_from_a_trusted_peer() -> None:
    headers = [
        (b"host", b"h"),
        (b"x-forwarded-for", b"203.0.113.9"),
        (b"x-forwarded-proto", b"https"),
    ]
    untrusted, _, _ = read(headers=headers)
    assert (untrusted["client"], untrusted["scheme"]) == (("127.0.0.1", 50000), "http")
    trusted, _, _ = read(headers=headers, conn=context(trusted_peer=True))
    assert trusted["client"][0] == "203.0.113.9"
    assert trusted["scheme"] == "https"


# -- versions, methods, Host --------------------------------------------------------------------


@pytest.mark.parametrize(("version", "served"), [("1.0", "1.0"), ("1.1", "1.1"), ("1.9", "1.1")])
def test_http1_versions(version: str, served: str) -> None:
    scope, _, _ = read(version=version)
    assert scope["http_version"] == served


@pytest.mark.parametrize("version", ["2.0", "0.9", "3.1"])
def test_other_versions_are_505(version: str) -> None:
    assert refused(version=version) == (505, "HTTP version not supported.")


def test_connect_is_501() -> None:
    assert refused(b"example.com:443", method=b"CONNECT") == (501, "CONNECT is not supported.")


def test_extension_methods_pass_through() -> None:
    scope, _, _ = read(method=b"PURGE")
    assert scope["method"] == "PURGE"


@pytest.mark.parametrize(
    ("headers", "version"),
    [
        ([], "1.1"),
        ([(b"host", b"a"), (b"host", b"a")], "1.1"),
        ([(b"host", b"a"), (b"host", b"b")], "1.0"),
    ],
)
def test_exactly_one_host(headers: Headers, version: str) -> None:
    assert refused(headers=headers, version=version) == (
        400,
        "A request must carry exactly one Host header.",
    )


def test_http10_may_omit_host() -> None:
    scope, _, _ = read(headers=[], version="1.0")
    assert scope["headers"] == []


@pytest.mark.parametrize("host", [b"a b", b"a/b", b"exa mple.com", b"[::1", b"a@b"])
def test_invalid_host_is_400(host: bytes) -> None:
    assert refused(headers=[(b"host", host)]) == (400, "Invalid Host header.")


def test_head_size_counts_only_the_head() -> None:
    headers = [(b"a", b"x" * 10)]  # 1 + 10 + 4 bytes, plus the 1-byte target
    check_head_size(b"/", headers, 16)
    with pytest.raises(RequestError) as info:
        check_head_size(b"/", headers, 15)
    assert (info.value.status, info.value.message) == (431, "Request header fields too large.")


# -- framing and expectations -------------------------------------------------------------------


def framing(
    headers: Headers, version: str = "1.1", limit: int | None = None, **kwargs: Any
) -> bool:
    """check_framing with the facts read_request_head gathers from ``headers``."""
    te = [v for n, v in headers if n == b"transfer-encoding"]
    expect = [v for n, v in headers if n == b"expect"]
    length = [v for n, v in headers if n == b"content-length"]
    return check_framing(
        headers,
        version,
        bool(te),
        any(v.lower() != b"chunked" for v in te),
        b",".join(expect) if expect else None,
        length[-1] if length else None,
        limit,
    )


@pytest.mark.parametrize(
    ("value", "status", "message"),
    [
        (b"gzip, chunked", 501, "Only the chunked transfer coding is supported."),
        (b"chunked, gzip", 400, "Invalid Transfer-Encoding."),
        (b"chunked, chunked", 400, "Invalid Transfer-Encoding."),
        (b"gzip", 400, "Invalid Transfer-Encoding."),
    ],
)
def test_transfer_codings_other_than_chunked(value: bytes, status: int, message: str) -> None:
    with pytest.raises(RequestError) as info:
        framing([(b"transfer-encoding", value)])
    assert (info.value.status, info.value.message) == (status, message)


@pytest.mark.parametrize("value", [b"chunked", b"Chunked", b", chunked", b"chunked , "])
def test_chunked_alone_passes(value: bytes) -> None:
    assert framing([(b"transfer-encoding", value)]) is False


def test_transfer_encoding_in_http10_is_400() -> None:
    with pytest.raises(RequestError) as info:
        framing([(b"transfer-encoding", b"chunked")], version="1.0")
    assert info.value.status == 400


def test_declared_body_over_the_limit_is_413() -> None:
    assert framing([(b"content-length", b"10")], limit=10) is False
    with pytest.raises(RequestError) as info:
        framing([(b"content-length", b"11")], limit=10)
    assert (info.value.status, info.value.message) == (413, "Request body too large.")


@pytest.mark.parametrize(
    ("expect", "result"),
    [(b"100-continue", True), (b"100-Continue", True), (b"100-continue, ", True), (b" , ", False)],
)
def test_expect_100_continue(expect: bytes, result: bool) -> None:
    assert framing([(b"expect", expect)]) is result


def test_other_expectations_are_417() -> None:
    with pytest.raises(RequestError) as info:
        framing([(b"expect", b"100-continue, x-thing")])
    assert (info.value.status, info.value.message) == (417, "Expectation Failed.")


def test_http10_expectations_are_ignored() -> None:
    assert framing([(b"expect", b"x-thing")], version="1.0") is False


def test_read_request_head_reports_expect_continue() -> None:
    headers = [(b"host", b"h"), (b"content-length", b"5"), (b"expect", b"100-continue")]
    _, expect_continue, _ = read(headers=headers, method=b"POST")
    assert expect_continue is True


def test_repeated_expect_fields_form_one_list() -> None:
    headers = [(b"host", b"h"), (b"expect", b"100-continue"), (b"expect", b"x-other")]
    assert refused(headers=headers)[0] == 417


# -- upgrades ---------------------------------------------------------------------------------

WS_HEADERS = [(b"host", b"h"), (b"connection", b"upgrade"), (b"upgrade", b"WebSocket")]


def test_websocket_upgrade_is_reported() -> None:
    scope, _, websocket = read(headers=WS_HEADERS, upgrade=True)
    assert websocket is True
    assert scope["type"] == "http"  # ws_protocol builds the websocket scope from it


def test_upgrade_is_not_websocket_when_ws_is_off_or_for_http10_or_other_protocols() -> None:
    assert read(headers=WS_HEADERS, upgrade=True, conn=context(ws=False))[2] is False
    assert read(headers=WS_HEADERS, upgrade=True, version="1.0")[2] is False
    h2c = [(b"host", b"h"), (b"upgrade", b"h2c")]
    assert read(headers=h2c, upgrade=True)[2] is False
    assert read(headers=WS_HEADERS, upgrade=False)[2] is False  # the parser saw no upgrade


@pytest.mark.parametrize("extra", [(b"content-length", b"3"), (b"transfer-encoding", b"chunked")])
def test_upgrade_with_a_body_is_400(extra: tuple[bytes, bytes]) -> None:
    assert refused(headers=[*WS_HEADERS, extra], upgrade=True) == (
        400,
        "Upgrade requests with a body are not supported.",
    )


@pytest.mark.parametrize("extra", [(b"content-length", b"3"), (b"transfer-encoding", b"chunked")])
def test_ignored_upgrade_with_a_body_passes(extra: tuple[bytes, bytes]) -> None:
    """RFC 9110 §7.8: an Upgrade we do not take is ignored; the body is the connection's to
    frame (only a WebSocket handshake must not have one)."""
    h2c = [(b"host", b"h"), (b"connection", b"upgrade"), (b"upgrade", b"h2c"), extra]
    assert read(headers=h2c, upgrade=True)[2] is False
    assert read(headers=[*WS_HEADERS, extra], upgrade=True, conn=context(ws=False))[2] is False


def test_upgrade_with_an_empty_body_passes() -> None:
    assert read(headers=[*WS_HEADERS, (b"content-length", b"0")], upgrade=True)[2] is True


# -- the error path -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "unknown"),
    [
        (b"BREW / HTTP/1.1\r\n", True),
        (b"\r\nM-SEARCH2 * HTTP/1.1\r\n", True),
        (b"G(T / HTTP/1.1\r\n", False),
        (b"GET / HTTP/1.1\r\n", False),  # known: whatever failed, it was not the method
        (b"\x00\x01", False),
    ],
)
def test_unknown_but_valid_methods_are_told_from_garbage(head: bytes, unknown: bool) -> None:
    assert is_unknown_method(head) is unknown


def test_request_error_carries_status_and_message() -> None:
    error = RequestError(414, "Request-URI too long.")
    assert (error.status, error.message, str(error)) == (
        414,
        "Request-URI too long.",
        "Request-URI too long.",
    )
