"""Fast tests of the pure pieces (proxy walk, header checks, log escaping, status lines) and of
``HTTPProtocol`` in-process over a fake transport, including property-based tests: the answer to
a byte stream must not depend on how the stream is cut into reads."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from krandog_asgi.config import Config
from krandog_asgi.http.proxy import apply_proxy_headers
from krandog_asgi.http.response import (
    ClientDisconnected,
    check_header,
    error_response,
    escape_for_log,
    status_line,
)
from krandog_asgi.http_protocol import HTTPProtocol
from krandog_asgi.process.state import ServerState
from tests.support.fuzzing import split

# -- proxy.apply_proxy_headers ----------------------------------------------------------------


async def _noop_app(scope: Any, receive: Any, send: Any) -> None:
    pass


def make_config(**options: Any) -> Config:
    config = Config(app=_noop_app, **options)
    config.load()
    return config


def proxied_scope(headers: list[tuple[bytes, bytes]], kind: str = "http") -> dict[str, Any]:
    return {
        "type": kind,
        "scheme": "ws" if kind == "websocket" else "http",
        "client": ("127.0.0.1", 5000),
        "headers": headers,
    }


@pytest.mark.parametrize(
    ("allow", "xff", "client"),
    [
        ("127.0.0.1", [b"203.0.113.9"], "203.0.113.9"),
        ("127.0.0.1", [b"6.6.6.6, 203.0.113.9"], "203.0.113.9"),
        ("127.0.0.1", [b"6.6.6.6", b"203.0.113.9"], "203.0.113.9"),
        ("127.0.0.1,10.0.0.0/8", [b"6.6.6.6, 203.0.113.9, 10.0.0.2"], "203.0.113.9"),
        ("127.0.0.1,10.0.0.0/8", [b"10.0.0.3, 10.0.0.2"], "10.0.0.3"),
        ("*", [b"1.1.1.1, 2.2.2.2"], "1.1.1.1"),
        ("127.0.0.1", [b"203.0.113.9:4567"], "203.0.113.9"),
        ("127.0.0.1", [b"[2001:db8::7]:443"], "2001:db8::7"),
        ("127.0.0.1", [b"2001:db8::7"], "2001:db8::7"),
        ("127.0.0.1,2001:db8::/32", [b"203.0.113.9, 2001:db8::7"], "203.0.113.9"),
        ("127.0.0.1", [b" 203.0.113.9 ,  "], "203.0.113.9"),
    ],
)
def test_xff_walk(allow: str, xff: list[bytes], client: str) -> None:
    config = make_config(forwarded_allow_ips=allow)
    scope = proxied_scope([(b"x-forwarded-for", v) for v in xff])
    apply_proxy_headers(scope, config)
    assert scope["client"][0] == client
    assert isinstance(scope["client"][1], int)


def test_xff_empty_keeps_peer() -> None:
    scope = proxied_scope([(b"x-forwarded-for", b" , ")])
    apply_proxy_headers(scope, make_config())
    assert scope["client"] == ("127.0.0.1", 5000)


@pytest.mark.parametrize(
    ("kind", "protos", "scheme"),
    [
        ("http", [b"https"], "https"),
        ("http", [b"HTTPS"], "https"),
        ("http", [b"https", b"http"], "http"),
        ("http", [b"http, https"], "https"),
        ("http", [b"wss"], "https"),
        ("http", [b"javascript"], "http"),
        ("websocket", [b"https"], "wss"),
        ("websocket", [b"http"], "ws"),
    ],
)
def test_forwarded_proto(kind: str, protos: list[bytes], scheme: str) -> None:
    scope = proxied_scope([(b"x-forwarded-proto", p) for p in protos], kind)
    apply_proxy_headers(scope, make_config())
    assert scope["scheme"] == scheme


def test_trusted_proxy_literals_and_networks() -> None:
    config = make_config(forwarded_allow_ips="10.0.0.0/8, /tmp/app.sock, ::1")
    assert config.is_trusted_proxy("10.1.2.3")
    assert config.is_trusted_proxy("/tmp/app.sock")
    assert config.is_trusted_proxy("::1")
    assert not config.is_trusted_proxy("11.0.0.1")
    assert not config.is_trusted_proxy(None)
    assert not config.is_trusted_proxy("not an address")


# -- http_common ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (b"x-a", b"b\r\nx-injected: 1"),
        (b"x-a", b"b\n"),
        (b"x-a", b"\r"),
        (b"x-a", b"a\x00"),
        (b"x-a", b"a\x1b[31m"),
        (b"x-a", b"a\x7f"),
        (b"x a", b"b"),
        (b"x:a", b"b"),
        (b"", b"b"),
        (b"x\r\n", b"b"),
        (b"x\xc3\xa9", b"b"),
        (b"(x)", b"b"),
    ],
)
def test_check_header_rejects(name: bytes, value: bytes) -> None:
    with pytest.raises(ValueError, match="Invalid response header"):
        check_header(name, value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (b"x-a", b""),
        (b"X-Upper", b"v"),
        (b"x-a", b"a\tb c"),
        (b"x-a", b"caf\xc3\xa9"),
        (b"!#$%&'*+-.^_`|~09az", b"\x80\xff"),
    ],
)
def test_check_header_accepts(name: bytes, value: bytes) -> None:
    check_header(name, value)
    check_header(bytearray(name), bytearray(value))


@pytest.mark.parametrize(
    ("name", "value"), [("x-a", b"b"), (b"x-a", "b"), (b"x-a", 1), (None, b"")]
)
def test_check_header_types(name: Any, value: Any) -> None:
    with pytest.raises(TypeError):
        check_header(name, value)


TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


@given(st.binary(max_size=12), st.binary(max_size=24))
def test_check_header_property(name: bytes, value: bytes) -> None:
    """Accepted iff the name is a token and the value has no control byte but HTAB: nothing
    that could end a header line is ever accepted."""
    ok_name = TOKEN.fullmatch(name) is not None
    ok_value = not any((b < 0x20 and b != 0x09) or b == 0x7F for b in value)
    if ok_name and ok_value:
        check_header(name, value)
    else:
        with pytest.raises(ValueError):
            check_header(name, value)


def test_status_line() -> None:
    assert status_line(200) == b"HTTP/1.1 200 OK\r\n"
    assert status_line(418) == b"HTTP/1.1 418 I'm a Teapot\r\n"
    assert status_line(299) == b"HTTP/1.1 299 \r\n"
    for bad in (99, 1000, "200", 200.0, None):
        with pytest.raises(ValueError):
            status_line(bad)  # type: ignore[arg-type]


def test_error_response_is_complete_and_closes() -> None:
    data = error_response(431, "Too big", b"server: s\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"connection: close" in head
    assert b"server: s" in head
    assert f"content-length: {len(body)}".encode() in head
    assert body == b"Too big"


def test_client_disconnected_is_an_oserror() -> None:
    assert issubclass(ClientDisconnected, OSError)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/plain/path?x=1", "/plain/path?x=1"),
        ("/a\x1b[31mred", "/a\\x1b[31mred"),
        ("/a\nINFO: fake", "/a\\x0aINFO: fake"),
        ("/a\r\n", "/a\\x0d\\x0a"),
        ('/q"uote', '/q\\"uote'),
        ("/back\\slash", "/back\\\\slash"),
        ("/del\x7f", "/del\\x7f"),
        ("/nel\x85x", "/nel\\u0085x"),
        ("/ls\u2028x", "/ls\\u2028x"),
        ("/rlo\u202ex", "/rlo\\u202ex"),
        ("/café", "/café"),
    ],
)
def test_escape_for_log(text: str, expected: str) -> None:
    assert escape_for_log(text) == expected


@given(st.text(max_size=40))
def test_escape_for_log_property(text: str) -> None:
    out = escape_for_log(text)
    assert out.isprintable()
    assert '"' not in out.replace('\\"', "")
    assert len(out.splitlines()) <= 1


# -- HTTPProtocol in-process --------------------------------------------------------------------


class FakeTransport(asyncio.Transport):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.loop = loop
        self.out = bytearray()
        self.closing = False
        self.lost = False
        self.eof_written = False
        self.reading = True
        self.protocol: HTTPProtocol | None = None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def write(self, data: Any) -> None:
        assert not self.closing, "write after close"
        self.out += data

    def writelines(self, data: Any) -> None:
        for d in data:
            self.write(d)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self.loop.call_soon(self._lost)

    def abort(self) -> None:
        self.close()

    def _lost(self) -> None:
        if not self.lost and self.protocol is not None:
            self.lost = True
            self.protocol.connection_lost(None)

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof_written = True


async def unit_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Echoes method, path and body; ``/slow`` answers after a few loop iterations."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"].startswith("/slow"):
        for _ in range(5):
            await asyncio.sleep(0)
    out = f"{scope['method']} {scope['path']} {len(body)}:".encode() + body
    headers = [(b"content-length", str(len(out)).encode())]
    if scope["method"] == "HEAD":
        headers.append((b"x-head", b"1"))  # tells responses() there is no body to skip
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": out})


def connect_protocol(**options: Any) -> tuple[HTTPProtocol, FakeTransport]:
    """An HTTPProtocol of unit_app on a fake transport; call inside a running loop."""
    config = Config(app=unit_app, access_log=False, lifespan="off", **options)
    config.load()
    loop = asyncio.get_running_loop()
    state = ServerState(config, unit_app, loop)
    transport = FakeTransport(loop)
    protocol = HTTPProtocol(state)
    transport.protocol = protocol
    protocol.connection_made(transport)
    return protocol, transport


async def feed(chunks: list[bytes], eof: bool = False, **options: Any) -> FakeTransport:
    options.setdefault("server_header", False)
    options.setdefault("date_header", False)
    protocol, transport = connect_protocol(**options)
    for chunk in chunks:
        # A paused transport does not deliver data: wait until the protocol resumes it.
        for _ in range(200):
            if transport.reading or transport.closing:
                break
            await asyncio.sleep(0)
        if transport.closing:
            break
        protocol.data_received(chunk)
        await asyncio.sleep(0)
    if eof and not transport.closing and not protocol.eof_received():
        transport.close()
    for _ in range(200):
        await asyncio.sleep(0)
    return transport


def run_feed(chunks: list[bytes], eof: bool = False, **options: Any) -> FakeTransport:
    return asyncio.run(feed(chunks, eof, **options))


def responses(data: bytes) -> list[tuple[int, bytes]]:
    """(status, body) of each response in ``data`` (Content-Length framed, as unit_app does)."""
    out = []
    pos = 0
    while True:
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            break
        head = data[pos:end]
        status = int(head[9:12])
        match = re.search(rb"content-length: (\d+)", head)
        length = int(match.group(1)) if match and b"x-head: 1" not in head else 0
        out.append((status, data[end + 4 : end + 4 + length]))
        pos = end + 4 + length
    return out


def test_unit_basic_and_keep_alive() -> None:
    t = run_feed([b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"])
    assert responses(bytes(t.out)) == [(200, b"GET /a 0:"), (200, b"GET /b 0:")]
    assert not t.closing


def test_unit_trailers_do_not_leak() -> None:
    t = run_feed(
        [
            b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"2\r\nhi\r\n0\r\nHost: evil\r\nX-T: 1\r\n\r\n"
            b"GET /d HTTP/1.1\r\nHost: x\r\n\r\n"
        ]
    )
    assert responses(bytes(t.out)) == [(200, b"POST /c 2:hi"), (200, b"GET /d 0:")]


def test_unit_half_close_answers_complete_requests() -> None:
    t = run_feed(
        [b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /e HTTP/1.1\r\nHost: x\r\n\r\n"], eof=True
    )
    assert responses(bytes(t.out)) == [(200, b"GET /slow 0:"), (200, b"GET /e 0:")]
    assert t.closing


def test_unit_half_close_mid_body_closes_without_answer() -> None:
    t = run_feed([b"POST /f HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"], eof=True)
    assert bytes(t.out) == b""
    assert t.closing


def test_unit_header_timeout_is_not_reset_by_bytes() -> None:
    async def main() -> bytes:
        protocol, transport = connect_protocol(timeout_request_header=0.3)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for byte in b"GET /slowloris HTTP/1.1\r\n":
            protocol.data_received(bytes([byte]))
            await asyncio.sleep(0.02)
            if protocol.deadline and protocol.deadline <= loop.time():
                protocol.on_deadline(loop.time())  # what ServerState.tick does
            if transport.closing or transport.eof_written:
                break
        assert loop.time() - t0 < 0.45
        return bytes(transport.out)

    out = asyncio.run(main())
    assert out.startswith(b"HTTP/1.1 408 ")


# -- property: how the stream is cut into reads never changes the answers ------------------------

request_strategy = st.one_of(
    st.builds(lambda p: b"GET /g%d HTTP/1.1\r\nHost: x\r\n\r\n" % p, st.integers(0, 99)),
    st.builds(
        lambda body: (
            b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        ),
        st.binary(max_size=300),
    ),
    st.builds(
        lambda parts: (
            b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"".join(b"%x;e=1\r\n%s\r\n" % (len(p), p) for p in parts if p)
            + b"0\r\nX-Trailer: t\r\n\r\n"
        ),
        st.lists(st.binary(min_size=1, max_size=50), max_size=5),
    ),
    st.just(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"),
    st.just(b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n"),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(request_strategy, min_size=1, max_size=6), st.lists(st.integers(0, 5000), max_size=12)
)
def test_split_invariance(requests: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(requests)
    whole = run_feed([stream])
    pieces = run_feed(split(stream, cuts))
    assert bytes(pieces.out) == bytes(whole.out)
    assert len(responses(bytes(whole.out))) == len(requests)


garbage_strategy = st.sampled_from(
    [
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX",
        b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"\x00\x01\x02 garbage",
        b"GET / HTTP/1.1\nHost: x\n\n",
    ]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(request_strategy, max_size=4),
    garbage_strategy,
    st.lists(request_strategy, min_size=1, max_size=3),
    st.lists(st.integers(0, 5000), max_size=8),
)
# Found by CI: the second read starts "ET /g0 ...", a valid token the parser does not know, but
# the error is the garbage further on; it must stay a 4xx, not become a 501.
@example(
    before=[b"GET /g0 HTTP/1.1\r\nHost: x\r\n\r\n"],
    garbage=b"\x00\x01\x02 garbage",
    after=[b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"],
    cuts=[1],
)
def test_nothing_after_garbage_is_answered(
    before: list[bytes], garbage: bytes, after: list[bytes], cuts: list[int]
) -> None:
    """Valid requests before the bad one are answered in order; then one 4xx; then nothing."""
    stream = b"".join(before) + garbage + b"".join(after)
    t = run_feed(split(stream, cuts))
    got = responses(bytes(t.out))
    assert [s for s, _ in got[: len(before)]] == [200] * len(before)
    assert len(got) == len(before) + 1
    assert 400 <= got[-1][0] < 500
    assert t.eof_written or t.closing


# -- defaults and flags -------------------------------------------------------------------------


def test_documented_defaults() -> None:
    config = Config(app=_noop_app)
    assert config.limit_request_line == 8 * 1024
    assert config.limit_request_headers == 64 * 1024
    assert config.limit_request_fields == 100
    assert config.limit_request_body == 100 * 1024 * 1024
    assert config.timeout_request_body == 30.0
    assert config.limit_request_body_rate == 1024
    assert config.timeout_write_stall == 30.0
    assert config.limit_max_connections is None  # auto: from the open-file limit
    assert config.limit_connections_per_ip is None
    assert config.timeout_request_header == 10.0
    assert config.timeout_keep_alive == 5.0
    assert config.limit_concurrency is None
    assert config.limit_max_requests is None
    assert config.proxy_headers is True
    assert config.server_header is True
    assert config.date_header is True


def test_every_limit_has_a_flag() -> None:
    from krandog_asgi.cli import build_parser, options_from_args

    args = build_parser().parse_args(
        [
            "m:app",
            "--limit-request-line", "1k",
            "--limit-request-headers", "2KiB",
            "--limit-request-fields", "7",
            "--limit-request-body", "1m",
            "--timeout-request-header", "1.5",
            "--timeout-keep-alive", "2",
            "--limit-concurrency", "3",
            "--limit-max-requests", "4",
            "--limit-max-connections", "50",
            "--limit-connections-per-ip", "6",
            "--timeout-write-stall", "7",
            "--timeout-request-body", "9",
            "--limit-request-body-rate", "2k",
            "--root-path", "/r",
            "--forwarded-allow-ips", "10.0.0.0/8",
            "--no-proxy-headers",
            "--no-server-header",
            "--no-date-header",
            "--header", "X-A: b",
        ]
    )  # fmt: skip
    options = options_from_args(args)
    assert options["limit_request_line"] == 1024
    assert options["limit_request_headers"] == 2048
    assert options["limit_request_fields"] == 7
    assert options["limit_request_body"] == 1024 * 1024
    assert options["timeout_request_header"] == 1.5
    assert options["timeout_keep_alive"] == 2.0
    assert options["limit_concurrency"] == 3
    assert options["limit_max_requests"] == 4
    assert options["limit_max_connections"] == 50
    assert options["limit_connections_per_ip"] == 6
    assert options["timeout_write_stall"] == 7.0
    assert options["timeout_request_body"] == 9.0
    assert options["limit_request_body_rate"] == 2048
    assert options["root_path"] == "/r"
    assert options["forwarded_allow_ips"] == "10.0.0.0/8"
    assert options["proxy_headers"] is False
    assert options["server_header"] is False
    assert options["date_header"] is False
    assert options["headers"] == [("X-A", "b")]


def test_workers_default_comes_from_web_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    """As with uvicorn and gunicorn, ``$WEB_CONCURRENCY`` sets the worker count unless
    ``--workers`` is given; a bad value is a clear error, not a traceback."""
    from krandog_asgi.cli import build_parser, options_from_args

    def workers(*argv: str) -> int:
        return int(options_from_args(build_parser().parse_args(["m:app", *argv]))["workers"])

    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    assert workers() == 1
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert workers() == 3
    assert workers("--workers", "2") == 2
    for bad in ("many", "0"):
        monkeypatch.setenv("WEB_CONCURRENCY", bad)
        with pytest.raises(SystemExit, match="WEB_CONCURRENCY"):
            workers()
        assert workers("--workers", "2") == 2  # an explicit flag wins, even over a bad value
        build_parser().parse_args(["m:app"])  # and --help / parsing still work


def test_uvicorn_command_lines_parse_unchanged() -> None:
    """Switching from uvicorn must not mean rewriting its flags: its loop, http and ws choices
    are accepted (we always run uvloop, httptools and our own WebSocket)."""
    from krandog_asgi.cli import build_parser, options_from_args

    for ws in ("websockets", "websockets-sansio", "wsproto", "auto", "krandog"):
        args = build_parser().parse_args(
            ["m:app", "--loop", "uvloop", "--http", "httptools", "--ws", ws]
        )
        assert options_from_args(args)["ws"] is True
    assert options_from_args(build_parser().parse_args(["m:app", "--ws", "none"]))["ws"] is False
    with pytest.raises(SystemExit):
        build_parser().parse_args(["m:app", "--ws", "nonsense"])


def test_unit_one_large_read_of_pipelined_requests_is_parsed_in_bounded_steps() -> None:
    """A single read of thousands of tiny pipelined requests must not become thousands of
    queued request objects at once (review finding): parsing stops at the pipeline limit and
    resumes as responses go out, all answered in order."""
    from krandog_asgi.http_protocol import FEED_SLICE, PIPELINE_LIMIT

    async def main() -> tuple[int, int, FakeTransport]:
        protocol, transport = connect_protocol()
        requests = b"".join(b"GET /slow%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(3000))
        protocol.data_received(requests)
        deepest = len(protocol.pipeline)
        held_back = len(protocol.backlog)
        for _ in range(100_000):
            if transport.out.count(b"HTTP/1.1 200") >= 3000:
                break
            deepest = max(deepest, len(protocol.pipeline))
            await asyncio.sleep(0)
        return deepest, held_back, transport

    deepest, held_back, transport = asyncio.run(main())
    # At most one slice of input is parsed past the limit (each request here is > 32 bytes).
    assert deepest <= PIPELINE_LIMIT + FEED_SLICE // 32
    assert held_back > 0
    got = responses(bytes(transport.out))
    assert [body.split(b" ")[1] for _, body in got] == [b"/slow%d" % i for i in range(3000)]


PADDED_GET = b"GET /padded HTTP/1.1\r\nHost: a\r\nX-Pad: " + b"p" * 5000 + b"\r\n\r\n"


def test_unit_an_ignored_upgrade_past_the_first_slice_of_a_read_keeps_what_follows() -> None:
    """A large read is fed in slices (views of the read); the parser's stop at an upgrade
    deep in it hands on the bytes after the head, and the requests behind it are served."""
    h2c = (
        b"GET /h2c HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
    )
    after = b"GET /after HTTP/1.1\r\nHost: a\r\n\r\n"
    transport = run_feed([PADDED_GET + h2c + after])
    got = responses(bytes(transport.out))
    assert [body.split(b" ")[1] for _, body in got] == [b"/padded", b"/h2c", b"/after"]


def test_unit_a_parse_error_past_the_first_slice_of_a_read_is_answered_after_the_good_one() -> None:
    transport = run_feed([PADDED_GET + b"GET /x HTTP/1.1\r\nHost: a\r\nBad Name: v\r\n\r\n"])
    out = bytes(transport.out)
    assert out.startswith(b"HTTP/1.1 200 ")
    assert out.count(b"HTTP/1.1 400 ") == 1
    assert out.endswith(b"Invalid HTTP request received.")
    assert transport.eof_written  # and the connection ends (a lingering close)


def test_reload_include_adds_to_the_default_python_files() -> None:
    """As uvicorn: --reload-include adds patterns; *.py stays watched unless excluded."""
    from pathlib import Path

    from krandog_asgi.process.supervisor import _make_filter

    config = Config(app="m:app", reload_includes=["*.txt"])
    accept = _make_filter(config, [Path("/w")])
    assert accept(None, "/w/app.py")
    assert accept(None, "/w/notes.txt")
    assert not accept(None, "/w/image.png")
    config = Config(app="m:app", reload_includes=["*.txt"], reload_excludes=["*.py"])
    accept = _make_filter(config, [Path("/w")])
    assert not accept(None, "/w/app.py")
