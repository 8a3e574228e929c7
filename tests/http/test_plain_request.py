"""The C accelerator's parser-free read of a request with no body or a Content-Length one
(``http._speedups.plain_request``) and the connection's use of it (``HTTPProtocol.take_plain``).

``plain_request`` must give, for every request it takes, exactly the scope llhttp and the head
rules give (the same method, target, header list, key order), the body llhttp would deliver,
and the offset where the next request starts; every head in any other form, or that needs a
rule, limit or answer, and every body that does not end in the read, must be left to the
parser (None). The fuzz checks (tests/support/fuzzing.check_http_stream) compare
whole connections with and without it; these tests name each kind of head it must leave alone,
and the connection states in which the parser, not this shortcut, must see the next byte.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httptools
import pytest

from krandog_asgi import http_protocol
from krandog_asgi.http import cycle as cycle_module, request_head
from krandog_asgi.http.request_head import read_request_head_py
from tests.apps.http_app import read_body
from tests.http.test_cycle import OK_HEAD, connect, ok_app, settle
from tests.http.test_request_head import context
from tests.support.fakes import FakeClockLoop, run_with_fake_clock

pytestmark = pytest.mark.skipif(
    request_head.plain_request is None, reason="the C accelerator is not built (no C compiler)"
)
GET = b"GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n"


class _Collect:
    """What HTTPProtocol's parser callbacks collect of one head."""

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.complete = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value.rstrip()))

    def on_headers_complete(self) -> None:
        self.complete = True


def by_the_parser(head: bytes, conn: Any) -> Any:
    """The scope llhttp and the rules give ``head``, or "refused"/"incomplete"."""
    collect = _Collect()
    parser = httptools.HttpRequestParser(collect)
    parser.set_dangerous_leniencies(lenient_version=True, lenient_data_after_close=True)
    try:
        parser.feed_data(head)
    except httptools.HttpParserError:
        return "refused"
    if not collect.complete:
        return "incomplete"
    try:
        scope, _, _ = read_request_head_py(parser, collect.url, collect.headers, conn)
    except request_head.RequestError:
        return "refused"
    return scope


def plain(data: bytes, conn: Any = None, pos: int = 0) -> Any:
    conn = conn or context()
    constants = http_protocol._PLAIN_CONSTANTS
    return request_head.plain_request(data, pos, conn, constants)  # type: ignore[misc]


def warm(head: bytes, conn: Any) -> Any:
    """The parser's scope for ``head``: the rules see it first, as on a live connection (they
    fill the method and host caches the accelerator reads)."""
    return by_the_parser(head, conn)


def test_a_plain_get_gets_the_parsers_scope_key_for_key_and_its_end() -> None:
    conn = context()
    expected = warm(GET, conn)
    scope, end, body = plain(GET + b"GET / HTTP/1.1\r\n", conn)
    assert list(scope.items()) == list(expected.items())
    assert (end, body) == (len(GET), None)


@pytest.mark.parametrize(
    "head",
    [
        b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        b"HEAD /x HTTP/1.1\r\nhost:example.com\r\n\r\n",
        b"GET /a/b?q=%20&r=/?x HTTP/1.1\r\nHOST: example.com\r\nX-Odd-NAME: v\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Empty:\r\nX-Blank: \t \r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Pad: \t a \t b \t\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: Keep-Alive\r\n\r\n",
        b"GET //twice HTTP/1.1\r\nHost: example.com\r\n\r\n",
        b'GET /"<>\\^`{|}?"<>\\^`{|}~ HTTP/1.1\r\nHost: example.com\r\n\r\n',
        b"DELETE /x HTTP/1.1\r\nHost: example.com\r\nCookie: a=b; c=d\r\n\r\n",
    ],
)
def test_heads_it_takes_get_exactly_the_parsers_scope(head: bytes) -> None:
    conn = context()
    expected = warm(head, conn)
    assert isinstance(expected, dict), expected
    taken = plain(head + b"rest", conn)
    assert taken is not None, head
    assert list(taken[0].items()) == list(expected.items())
    assert taken[1:] == (len(head), None)


HOST = b"Host: example.com\r\n"


def by_the_parser_with_body(request: bytes) -> tuple[Any, bytes, int]:
    """The scope, the body and the end of the first request llhttp reads in ``request``."""
    collect = _Collect()
    body: list[bytes] = []
    end: list[int] = []
    collect.on_body = body.append  # type: ignore[attr-defined]
    collect.on_message_complete = lambda: end.append(1)  # type: ignore[attr-defined]
    parser = httptools.HttpRequestParser(collect)
    parser.set_dangerous_leniencies(lenient_version=True, lenient_data_after_close=True)
    for size in range(1, len(request) + 1):  # byte by byte: where the message ends
        parser.feed_data(request[size - 1 : size])
        if end:
            break
    scope, _, _ = read_request_head_py(parser, collect.url, collect.headers, context())
    return scope, b"".join(body), size


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /echo HTTP/1.1\r\n" + HOST + b"Content-Length: 2\r\n\r\nhi",
        b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 0\r\n\r\n",
        b"PUT /x?y HTTP/1.1\r\n" + HOST + b"content-LENGTH: 005\r\n\r\nab\r\nc",
        b"POST / HTTP/1.1\r\nContent-Length:  4 \t\r\n" + HOST + b"\r\n\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"Content-Length: 3\r\nConnection: keep-alive\r\n\r\nGET",
        b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 22\r\n\r\nGET / HTTP/1.1\r\nX: y\r\n",
    ],
)
def test_a_content_length_body_in_the_read_comes_with_the_parsers_scope(
    request_bytes: bytes,
) -> None:
    conn = context()
    warm(b"POST / HTTP/1.1\r\n" + HOST + b"\r\n", conn)
    warm(b"PUT / HTTP/1.1\r\n" + HOST + b"\r\n", conn)
    expected, expected_body, expected_end = by_the_parser_with_body(request_bytes + SIMPLE)
    taken = plain(request_bytes + SIMPLE, conn)
    assert taken is not None, request_bytes
    scope, end, body = taken
    assert list(scope.items()) == list(expected.items())
    assert (body, end) == (expected_body, expected_end) == (body, len(request_bytes))
    assert type(body) is bytes


def test_a_body_that_does_not_end_in_the_read_is_left_to_the_parser_at_every_cut() -> None:
    conn = context()
    head = b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 10\r\n\r\n"
    warm(head + b"0123456789", conn)
    for cut in range(len(head) + 10):
        assert plain((head + b"0123456789")[:cut], conn) is None, cut
    assert plain(head + b"0123456789", conn) is not None


def test_a_body_over_limit_request_body_is_left_to_the_413() -> None:
    request = b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\n\r\nhello"
    warm(request, context())
    assert plain(request, context(limit_request_body=5)) is not None
    assert plain(request, context(limit_request_body=4)) is None


@pytest.mark.parametrize(
    "head",
    [
        # framing, expectations, upgrades, proxies and connection options: the rules decide
        b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\n"
        + HOST
        + b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\nhi",
        # a Content-Length other than one value of plain digits: llhttp or the rules answer
        b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\nhi",
        b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 2, 2\r\n\r\nhi",
        b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: +2\r\n\r\nhi",
        b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: -2\r\n\r\nhi",
        b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 0x2\r\n\r\nhi",
        b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 1 1\r\n\r\nhi",
        b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length:\r\n\r\nhi",
        b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: " + b"1" * 19 + b"\r\n\r\nhi",
        b"GET / HTTP/1.1\r\n" + HOST + b"Expect: 100-continue\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"Upgrade: h2c\r\nConnection: upgrade\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"X-Forwarded-For: 1.2.3.4\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"x-forwarded-proto: https\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"Connection: keep-alive, x\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"Proxy-Connection: keep-alive\r\n\r\n",
        # Host: none, two, or one the rules have not passed yet
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + HOST + b"\r\n",
        b"GET / HTTP/1.1\r\nHost: not-seen.example\r\n\r\n",
        # the request line: anything but one plain form
        b"get / HTTP/1.1\r\n" + HOST + b"\r\n",
        b"BREW / HTTP/1.1\r\n" + HOST + b"\r\n",
        b"GET  / HTTP/1.1\r\n" + HOST + b"\r\n",
        b"GET / HTTP/1.0\r\n" + HOST + b"\r\n",
        b"GET / HTTP/1.1 \r\n" + HOST + b"\r\n",
        b"GET * HTTP/1.1\r\n" + HOST + b"\r\n",
        b"GET http://example.com/ HTTP/1.1\r\n" + HOST + b"\r\n",
        b"GET /a#frag HTTP/1.1\r\n" + HOST + b"\r\n",
        b"GET /%7e HTTP/1.1\r\n" + HOST + b"\r\n",
        b"GET /\x7f HTTP/1.1\r\n" + HOST + b"\r\n",
        b"GET /\xe9 HTTP/1.1\r\n" + HOST + b"\r\n",
        b"GET / HTTP/1.1\n" + HOST + b"\r\n",
        b"\r\nGET / HTTP/1.1\r\n" + HOST + b"\r\n",
        # field lines: anything but "token: visible ASCII CRLF"
        b"GET / HTTP/1.1\r\n" + HOST + b"X : y\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"X: y\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"X: y\rz\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"X: a\r\n b\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"X: a\r\n\tb\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"X: caf\xc3\xa9\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"X: a\x00b\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"X: a\x0bb\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"X(y): z\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b": z\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + HOST + b"\n",
    ],
)
def test_heads_that_need_the_parser_or_a_rule_are_left_to_them(head: bytes) -> None:
    conn = context()
    warm(b"GET / HTTP/1.1\r\n" + HOST + b"\r\n", conn)  # GET and the host are known
    warm(b"DELETE / HTTP/1.1\r\n" + HOST + b"\r\n", conn)
    warm(b"POST / HTTP/1.1\r\n" + HOST + b"\r\n", conn)
    assert plain(head + b"GET / HTTP/1.1\r\n" + HOST + b"\r\n", conn) is None


def test_an_incomplete_head_is_left_to_the_parser_at_every_cut() -> None:
    conn = context()
    warm(GET, conn)
    for cut in range(len(GET)):
        assert plain(GET[:cut], conn) is None, cut
    assert plain(GET, conn) is not None


def test_it_reads_from_pos_and_gives_the_end_in_the_whole_buffer() -> None:
    conn = context()
    warm(GET, conn)
    data = b"xyz" + GET + GET
    _, end, _ = plain(data, conn, pos=3)
    assert end == 3 + len(GET)
    assert plain(data, conn, pos=end)[1] == len(data)
    assert plain(data, conn, pos=len(data)) is None
    with pytest.raises(ValueError):
        plain(data, conn, pos=len(data) + 1)


def test_with_root_path_the_rules_build_the_scope() -> None:
    conn = context(root_path="/mounted")
    warm(GET, conn)
    assert plain(GET, conn) is None


@pytest.mark.parametrize(
    ("option", "head"),
    [
        ("limit_request_line", b"GET /" + b"a" * 99 + b" HTTP/1.1\r\n" + HOST + b"\r\n"),
        ("limit_request_fields", b"GET / HTTP/1.1\r\n" + HOST + b"A: 1\r\nB: 2\r\n\r\n"),
        ("limit_request_headers", b"GET / HTTP/1.1\r\n" + HOST + b"X-Long: 123456789\r\n\r\n"),
    ],
)
def test_a_head_over_a_limit_is_left_to_the_connections_answer(option: str, head: bytes) -> None:
    """At the limit it is taken; one over, the parser path answers (414, 431)."""
    sizes = {
        "limit_request_line": 100,
        "limit_request_fields": 3,
        "limit_request_headers": len(b"/") + len(b"host") + len(b"example.com") + 4 + 19,
    }
    at_limit: dict[str, Any] = {option: sizes[option]}
    over: dict[str, Any] = {option: sizes[option] - 1}
    warm(head, context(**at_limit))
    assert plain(head, context(**at_limit)) is not None
    assert plain(head, context(**over)) is None


# -- the connection: when the parser must see the next byte ------------------------------------


def serve(*reads: bytes, app: Any = ok_app, rounds: int = 20) -> tuple[bytes, int]:
    """What ``app``'s connection wrote for ``reads``, and how many heads the accelerator took."""
    taken = 0
    real = request_head.plain_request

    def counting(*args: Any) -> Any:
        nonlocal taken
        result = real(*args)  # type: ignore[misc]
        taken += result is not None
        return result

    async def main(loop: FakeClockLoop) -> bytes:
        protocol, transport = connect(app)
        for data in reads:
            protocol.data_received(data)
            await settle(loop, rounds)
        transport.close()
        await settle(loop)
        return transport.data

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(http_protocol, "plain_request", counting)
        return run_with_fake_clock(main), taken


SIMPLE = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
POST = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi"


def test_plain_requests_of_a_read_are_taken_and_answered_in_order() -> None:
    serve(SIMPLE)  # the rules pass host "h" once
    written, taken = serve(SIMPLE * 3, SIMPLE)
    assert written == (OK_HEAD + b"ok") * 4
    assert taken == 4


CHUNKED = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"


def test_the_rest_of_a_read_after_a_head_it_does_not_take_goes_to_the_parser() -> None:
    serve(SIMPLE, POST)
    written, taken = serve(SIMPLE + POST + CHUNKED + POST + SIMPLE)
    assert written == (OK_HEAD + b"ok") * 5
    assert taken == 2  # the chunked POST and all after it in that read: the parser's


@pytest.mark.parametrize(("first", "takes"), [(POST, 1), (CHUNKED, 0)])
def test_a_head_the_parser_has_begun_is_never_read_again_from_the_next_read(
    first: bytes, takes: int
) -> None:
    """The parser holds "GET" of a head begun after the POST in the same read (taken by the
    accelerator or read by the parser): the next read continues that head ("GETGET /x": a
    400), though on its own it looks like a plain GET."""
    serve(SIMPLE, POST)
    written, taken = serve(first + b"GET", b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
    assert written.startswith(OK_HEAD + b"ok" + b"HTTP/1.1 400 ")
    assert taken == takes


async def echo_app(scope: Any, receive: Any, send: Any) -> None:
    body, _ = await read_body(receive)
    length = b"%d" % len(body)
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", length)]}
    )
    await send({"type": "http.response.body", "body": body})


def upload(body: bytes) -> bytes:
    return b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body)


def echoed(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%b" % (len(body), body)


def test_an_upload_in_one_read_reaches_the_app_whole_and_in_pieces_as_the_parser_gives_it() -> None:
    serve(SIMPLE, POST)
    big = bytes(range(256)) * 80  # 20 KiB: more than one parser slice
    whole = upload(big) + upload(b"x") + SIMPLE
    written, taken = serve(whole, app=echo_app)
    assert written == echoed(big) + echoed(b"x") + echoed(b"")
    assert taken == 3
    cut = len(upload(big))
    pieces, taken = serve(whole[:100], whole[100:cut], whole[cut:], app=echo_app)
    assert pieces == written
    assert taken == 2  # the first upload's body is not in its first read: the parser's


def test_a_large_upload_taken_in_one_read_pauses_reading_as_the_parser_path_does() -> None:
    serve(SIMPLE, POST)
    paused: list[bool] = []

    async def late_reader(scope: Any, receive: Any, send: Any) -> None:
        paused.append(protocol.read_paused)
        await echo_app(scope, receive, send)
        paused.append(protocol.read_paused)

    async def main(loop: FakeClockLoop) -> bytes:
        nonlocal protocol
        protocol, transport = connect(late_reader)
        protocol.data_received(upload(b"u" * (cycle_module.HIGH_WATER + 1)))
        await settle(loop)
        return transport.data

    protocol: Any = None
    written = run_with_fake_clock(main)
    assert written == echoed(b"u" * (cycle_module.HIGH_WATER + 1))
    assert paused == [True, False]


def test_a_read_of_more_plain_requests_than_the_pipeline_holds_is_answered_whole_in_order() -> None:
    serve(SIMPLE)
    requests = b"".join(b"GET /%d HTTP/1.1\r\nHost: h\r\n\r\n" % i for i in range(100))
    paths: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        paths.append(scope["path"])
        await ok_app(scope, receive, send)

    written, taken = serve(requests, app=app, rounds=400)
    assert paths == [f"/{i}" for i in range(100)]
    assert written == (OK_HEAD + b"ok") * 100
    assert taken == 100

    async def queued(loop: FakeClockLoop) -> tuple[int, int, bool]:
        protocol, transport = connect(ok_app)
        protocol.data_received(requests)  # nothing runs yet: what one read queues
        seen = len(protocol.pipeline), len(protocol.backlog), protocol.read_paused
        await settle(loop, 400)
        transport.close()
        await settle(loop)
        return seen

    pipelined, held, paused = run_with_fake_clock(queued)
    assert pipelined == http_protocol.PIPELINE_LIMIT
    assert held == len(requests) - requests.index(b"GET /33 ")  # the rest waits, unparsed
    assert paused


def test_what_follows_a_closing_request_is_left_to_the_parser_which_ignores_it() -> None:
    """The closing request's answer is still being made when the next read comes."""
    serve(SIMPLE)
    paths: list[str] = []

    async def slow_app(scope: Any, receive: Any, send: Any) -> None:
        paths.append(scope["path"])
        for _ in range(30):  # past the first read's settle(): answered after the next read
            await asyncio.sleep(0)
        await ok_app(scope, receive, send)

    closing = b"GET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
    written, taken = serve(closing, SIMPLE, app=slow_app)
    assert written.count(b"HTTP/1.1 200 OK\r\n") == 1
    assert (paths, taken) == (["/c"], 0)


def test_only_crlf_between_requests_keeps_the_parser_at_the_boundary() -> None:
    serve(SIMPLE)
    written, taken = serve(SIMPLE, b"\r\n", SIMPLE)
    assert written == (OK_HEAD + b"ok") * 2
    assert taken == 2


def test_a_read_that_is_not_bytes_is_left_to_the_parser() -> None:
    conn = context()
    warm(GET, conn)
    assert plain(GET, conn) is not None
    assert plain(bytearray(GET), conn) is None  # type: ignore[arg-type]
    assert plain(memoryview(GET), conn) is None  # type: ignore[arg-type]


def test_wrong_argument_types_raise() -> None:
    conn, constants = context(), http_protocol._PLAIN_CONSTANTS
    fast: Any = request_head.plain_request
    with pytest.raises(TypeError):
        fast(GET, 0, conn)  # too few
    with pytest.raises(TypeError):
        fast(GET, "0", conn, constants)
    with pytest.raises(TypeError):
        fast(GET, 0, conn, constants[:4])  # without the common names
    with pytest.raises(TypeError):
        fast(GET, 0, conn, (*constants[:4], []))
    with pytest.raises(ValueError):
        fast(GET, -1, conn, constants)
