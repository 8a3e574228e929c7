"""Hypothesis properties of the HTTP request path and the WebSocket opening handshake, in memory
(``HTTPProtocol`` on the ``FakeTransport`` of tests/support/fakes.py; checks in
tests/support/fuzzing.py).

Any bytes, in any chunking: each request is served (200, or 101 for an upgrade) or answered
with one 4xx/501/505 after which the connection closes; never a 500, never an exception, an
error log line or a task left behind. Request heads are built from drawn parts (methods,
targets, versions, header names and values over alphabets with CR, LF, NUL, obs-fold and
obs-text, framing headers that conflict, bodies that lie), plus raw bytes; upgrade requests
draw every handshake header (absent, valid, repeated, garbage). ``check_request`` itself
raises nothing but ``HandshakeError`` with 400 or 426.
"""

from __future__ import annotations

import base64

from hypothesis import HealthCheck, example, given, settings, strategies as st

from krandog_asgi.websocket.connection import Connection, Side
from krandog_asgi.websocket.handshake import HandshakeError, check_request, check_response
from tests.support.fuzzing import check_http_stream

FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

tokens = st.text(
    "abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-_.!#$%&'*+^`|~", min_size=1, max_size=12
)
header_bytes = st.binary(max_size=24) | st.sampled_from(
    [b"", b" ", b"\t", b"\r", b"\n", b"\r\n", b"\x00", b"\x7f", b"\xe9", b"a\r\n b", b"a\n\tb"]
)
value_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.sampled_from(["\t", "é"]),
    max_size=30,
).map(lambda t: t.encode("utf-8"))


def mostly(
    valid: st.SearchStrategy[bytes], broken: st.SearchStrategy[bytes]
) -> st.SearchStrategy[bytes]:
    """``valid`` nine times in ten: a broken part in every request would keep parsing shallow."""
    return st.integers(0, 9).flatmap(lambda n: broken if n == 0 else valid)


NAMES = [b"Host", b"Content-Length", b"Transfer-Encoding", b"Connection", b"Expect"]
NAMES += [b"X-Forwarded-For", b"Upgrade", b"Cookie"]
VALUES = [b"x", b"0", b"5", b"-1", b"1, 2", b"99999999999999999999", b"chunked"]
VALUES += [b"gzip, chunked", b"chunked, gzip", b"identity", b"close", b"keep-alive"]
VALUES += [b"100-continue", b"websocket"]


@st.composite
def header_lines(draw: st.DrawFn) -> bytes:
    """One header line, mostly well formed, sometimes broken in the name, value or separator."""
    name = draw(mostly(st.sampled_from(NAMES) | tokens.map(str.encode), header_bytes))
    value = draw(mostly(st.sampled_from(VALUES) | value_text, header_bytes))
    sep = draw(mostly(st.sampled_from([b": ", b":", b":\t"]), st.sampled_from([b" : ", b""])))
    end = draw(mostly(st.just(b"\r\n"), st.sampled_from([b"\n", b"\r", b"\r\n "])))
    return name + sep + value + end


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    method = draw(
        mostly(
            st.sampled_from([b"GET", b"POST", b"HEAD", b"PUT", b"OPTIONS", b"DELETE"]),
            st.sampled_from([b"CONNECT", b"PRI", b"get", b"BREW"])
            | tokens.map(str.encode)
            | header_bytes,
        )
    )
    target = draw(
        mostly(
            st.sampled_from([b"/", b"/a?b=c", b"/%7e", b"http://x/y", b"//a"]),
            st.sampled_from([b"*", b"x:80", b"/%00", b"", b"/\x7f"]) | header_bytes,
        )
    )
    version = draw(
        mostly(
            st.sampled_from([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0"]),
            st.sampled_from([b"HTTP/2.0", b"HTTP/1.9", b"HTTP/0.9", b"http/1.1"]) | header_bytes,
        )
    )
    lines = [b"Host: x\r\n"] if draw(st.integers(0, 5)) else []
    lines += draw(st.lists(header_lines(), max_size=4))
    body = draw(
        st.sampled_from([b"", b"", b"hello", b"5\r\nhello\r\n0\r\n\r\n", b"0\r\n\r\n"])
        | st.binary(max_size=30)
    )
    return method + b" " + target + b" " + version + b"\r\n" + b"".join(lines) + b"\r\n" + body


cuts = st.lists(st.integers(0, 2000), max_size=8)


@FAST
@given(stream=st.lists(requests(), min_size=1, max_size=4).map(b"".join), cuts=cuts)
@example(stream=b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", cuts=[])
@example(
    stream=b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    cuts=[3],
)
def test_any_request_head_is_served_or_refused_with_one_4xx(stream: bytes, cuts: list[int]) -> None:
    check_http_stream(stream, cuts)


@FAST
@given(stream=st.binary(max_size=300), cuts=cuts)
def test_raw_bytes_are_refused_with_one_4xx_and_never_raise(stream: bytes, cuts: list[int]) -> None:
    check_http_stream(stream, cuts)


# Plain requests, the C accelerator's parser-free path (http._speedups.plain_request): mostly
# complete bodyless GETs the rules pass and POSTs with a Content-Length body (true or not),
# over alphabets that reach every byte class it must leave to llhttp (controls, DEL,
# obs-text, "#", "%", bare CR or LF, obs-fold, whitespace around values), in pipelined runs
# cut anywhere. check_http_stream holds the connection to the same scopes and bytes as
# without the accelerator.
edge_bytes = st.sampled_from(list(b'\x00\t\x0b\x0c\r\n "#%<>\\^`{|}\x7f\x80\xe9\xff'))
plain_byte = st.integers(0x21, 0x7E) | edge_bytes
plain_value = mostly(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.just("\t"), max_size=20).map(
        str.encode
    ),
    st.lists(plain_byte | st.just(0x20), max_size=12).map(bytes),
)
plain_name = mostly(
    st.sampled_from([b"Accept", b"user-agent", b"COOKIE", b"Connection", b"X-Forwarded-For"])
    | tokens.map(str.encode),
    st.lists(plain_byte, min_size=1, max_size=8).map(bytes),
)


@st.composite
def plain_requests(draw: st.DrawFn) -> bytes:
    method = draw(mostly(st.sampled_from([b"GET", b"GET", b"HEAD", b"DELETE"]), header_bytes))
    visible = st.lists(st.integers(0x21, 0x7E), max_size=16).map(bytes)
    target = b"/" + draw(mostly(visible, st.lists(plain_byte, max_size=16).map(bytes)))
    lines = [b"Host: x\r\n"] if draw(st.integers(0, 9)) else []
    for _ in range(draw(st.integers(0, 3))):
        name, value = draw(plain_name), draw(plain_value)
        if name.lower() == b"connection":
            value = draw(st.sampled_from([b"keep-alive", b"Keep-Alive", b"close", value]))
        sep = draw(st.sampled_from([b": ", b":", b":\t ", b" :"]))
        lines.append(name + sep + value + draw(mostly(st.just(b"\r\n"), header_bytes)))
    lead = draw(st.sampled_from([b"", b"", b"", b"\r\n"]))
    head = lead + method + b" " + target + b" HTTP/1.1\r\n" + b"".join(lines) + b"\r\n"
    if draw(st.integers(0, 3)) == 0:
        body = draw(st.binary(max_size=40) | st.just(b"GET / HTTP/1.1\r\n") | st.just(b"z" * 5000))
        length = draw(
            mostly(st.just(b"%d" % len(body)), st.sampled_from([b"0%d" % len(body), b"1"]))
        )
        head += b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n" + body
    return head


@FAST
@given(stream=st.lists(plain_requests(), min_size=1, max_size=6).map(b"".join), cuts=cuts)
@example(stream=b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n" * 3, cuts=[])
@example(stream=b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET", cuts=[])
def test_plain_heads_are_served_as_the_parser_serves_them(stream: bytes, cuts: list[int]) -> None:
    check_http_stream(stream, cuts)


def test_the_http_property_sees_both_outcomes() -> None:
    served = check_http_stream(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", [4])
    assert served.startswith(b"HTTP/1.1 200 ")
    refused = check_http_stream(b"GET / HTTP/1.1\r\nHost: x\r\nX : y\r\n\r\n", [])
    assert refused.startswith(b"HTTP/1.1 400 ")


# -- the WebSocket opening handshake --------------------------------------------------------------

KEY = base64.b64encode(b"0123456789abcdef")
handshake_values = (
    st.sampled_from(
        [
            b"websocket",
            b"Upgrade",
            b"keep-alive, Upgrade",
            b"13",
            b"8",
            b"13, 8",
            KEY,
            b"short",
            b"chat, superchat",
            b"a b",
            b"permessage-deflate",
            b"permessage-deflate; client_max_window_bits",
            b"permessage-deflate; server_max_window_bits=8",
            b'permessage-deflate; x="1',
            b"",
        ]
    )
    | value_text
    | header_bytes
)
HANDSHAKE_FIELDS = [
    b"Connection",
    b"Upgrade",
    b"Sec-WebSocket-Key",
    b"Sec-WebSocket-Version",
    b"Sec-WebSocket-Protocol",
    b"Sec-WebSocket-Extensions",
]
VALID = [b"Upgrade", b"websocket", KEY, b"13", b"chat", b"permessage-deflate"]


@st.composite
def upgrade_requests(draw: st.DrawFn) -> tuple[bytes, list[tuple[bytes, list[bytes]]]]:
    """An upgrade request whose handshake headers are each absent, valid, garbage or repeated."""
    fields = []
    for name, valid in zip(HANDSHAKE_FIELDS, VALID, strict=True):
        choice = draw(st.sampled_from(["valid"] * 3 + ["absent", "drawn", "twice"]))
        values = {
            "valid": [valid],
            "absent": [],
            "drawn": [draw(handshake_values)],
            "twice": [valid, draw(handshake_values)],
        }[choice]
        fields.append((name, values))
    lines = [b"GET /ws HTTP/1.1\r\n", b"Host: x\r\n"]
    lines += [name + b": " + value + b"\r\n" for name, values in fields for value in values]
    frame = b"\x81\x82abcd" + bytes([ord("h") ^ ord("a"), ord("i") ^ ord("b")])
    return b"".join(lines) + b"\r\n" + frame, fields


def _asks_for_websocket(fields: list[tuple[bytes, list[bytes]]]) -> bool:
    values = dict(fields)
    upgrade = b",".join(values[b"Upgrade"]).lower()
    connection = b",".join(values[b"Connection"]).lower()
    return b"websocket" in upgrade and b"upgrade" in connection


def _offered_subprotocols(fields: list[tuple[bytes, list[bytes]]]) -> list[str]:
    values = dict(fields)[b"Sec-WebSocket-Protocol"]
    return [t.strip().decode("latin-1") for v in values for t in v.split(b",") if t.strip()]


@FAST
@given(request=upgrade_requests(), cuts=cuts)
def test_any_handshake_headers_give_a_101_or_a_4xx(
    request: tuple[bytes, list[tuple[bytes, list[bytes]]]], cuts: list[int]
) -> None:
    """A request that asks for a WebSocket gets a 101 or a 4xx; one without both Upgrade and
    Connection tokens is plain HTTP (a 200, then the frame bytes are garbage: a 400)."""
    stream, fields = request
    out = check_http_stream(stream, cuts)
    assert out.startswith((b"HTTP/1.1 101 ", b"HTTP/1.1 4", b"HTTP/1.1 200 ")), out[:200]
    # A CR or LF in a value moves the end of the head (and the frame with it): the fields
    # after it are not headers, so the model cannot say what the request asked for.
    framed = not any(b"\r" in v or b"\n" in v for _, values in fields for v in values)
    if out.startswith(b"HTTP/1.1 200 ") and framed:
        assert not _asks_for_websocket(fields)
    if out.startswith(b"HTTP/1.1 101 "):
        head, _, frames = out.partition(b"\r\n\r\n")
        lines = [line.split(b": ", 1) for line in head.split(b"\r\n")[1:]]
        answer = check_response(
            [(name.lower(), value) for name, value in lines],
            KEY.decode(),
            subprotocols=_offered_subprotocols(fields),  # the app picks the first offered
            deflate_offered=True,
        )
        client = Connection(
            Side.CLIENT, lambda _: None, deflate=answer.deflate, mask_key=lambda: b"abcd"
        )
        events = client.receive_data(frames)
        if framed:
            assert events[:1] == ["hi"]  # the echo of the frame sent after the head


@FAST
@given(request=upgrade_requests())
def test_check_request_raises_only_handshake_errors(
    request: tuple[bytes, list[tuple[bytes, list[bytes]]]],
) -> None:
    _, fields = request
    headers = [(name.lower(), value) for name, values in fields for value in values]
    status = 101
    try:
        handshake = check_request("GET", "1.1", headers)
    except HandshakeError as exc:
        status = exc.status
    else:
        assert len(base64.b64decode(handshake.key)) == 16
    assert status in (101, 400, 426)
