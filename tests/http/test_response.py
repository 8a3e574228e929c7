"""``http.response.ResponseWriter`` on a FakeTransport: the exact bytes of each framing
(Content-Length, chunked, close-delimited), the responses that carry no body (HEAD, 204, 304),
what the server does with the app's Connection / Transfer-Encoding / Server / Date headers, and
the Content-Length checks."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from krandog_asgi.http import response
from krandog_asgi.http.response import ContentTooLong, ResponseWriter
from tests.support.fakes import FakeTransport


@pytest.fixture(autouse=True, params=["accelerated", "python-only"])
def head_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every framing rule holds with the C head accelerator in front and without it."""
    if request.param == "python-only":
        monkeypatch.setattr(response, "cached_head", None)
    elif response.cached_head is None:
        pytest.skip("the C accelerator is not built (no C compiler)")


DEFAULTS = b"server: krandog-asgi\r\ndate: Mon, 07 Dec 2026 01:00:00 GMT\r\n"


class Writer(ResponseWriter):
    __slots__ = ()

    def __init__(self, transport: FakeTransport, keep_alive: bool = True) -> None:
        self.transport = transport
        self.keep_alive = keep_alive
        self.bytes_sent = 0
        self.pending_head = b""


def respond(
    status: int,
    headers: list[Any],
    chunks: list[tuple[bytes, bool]],
    *,
    head_request: bool = False,
    http10: bool = False,
    body_unread: bool = False,
    keep_alive: bool = True,
    defaults: bytes = b"",
) -> tuple[Writer, list[bytes]]:
    """Frame one response; the writes it made, one list item per ``transport.write``."""
    loop = asyncio.new_event_loop()
    try:
        transport = FakeTransport(loop)
        writer = Writer(transport, keep_alive)
        message = {"type": "http.response.start", "status": status, "headers": headers}
        if isinstance(headers, list | tuple):  # (a generator is read once, by the writer)
            warm = Writer(transport, keep_alive)  # a head seen before: the accelerator's case
            try:
                warm.frame_head(message, defaults, head_request, http10, body_unread)
            except ValueError:
                pass
        writer.frame_head(message, defaults, head_request, http10, body_unread)
        for body, more in chunks:
            writer.write_body(body, more)
        return writer, transport.written
    finally:
        loop.close()


CL5 = (b"content-length", b"5")


def test_content_length_body_goes_out_with_the_head_in_one_write() -> None:
    writer, writes = respond(200, [CL5], [(b"hello", False)])
    assert writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"]
    assert (writer.keep_alive, writer.chunked, writer.content_length) == (True, False, 5)


def test_content_length_body_in_pieces_is_written_as_sent() -> None:
    _, writes = respond(200, [CL5], [(b"he", True), (b"", True), (b"llo", False)])
    assert writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhe", b"llo"]


def test_without_content_length_http11_is_chunked() -> None:
    writer, writes = respond(200, [], [(b"hello", True), (b"", True), (b"world!", False)])
    assert writes == [
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n",
        b"6\r\nworld!\r\n0\r\n\r\n",
    ]
    assert writer.chunked is True


def test_an_empty_last_chunk_ends_a_chunked_body() -> None:
    _, writes = respond(200, [], [(b"a", True), (b"", False)])
    assert writes == [
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\na\r\n",
        b"0\r\n\r\n",
    ]


def test_an_empty_chunked_response_is_head_and_last_chunk_in_one_write() -> None:
    _, writes = respond(200, [], [(b"", False)])
    assert writes == [b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"]


def test_without_content_length_http10_is_close_delimited() -> None:
    writer, writes = respond(200, [], [(b"hello", True), (b"", False)], http10=True)
    assert writes == [b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nhello"]
    assert (writer.keep_alive, writer.chunked) == (False, False)


def test_http10_keep_alive_is_said_out_loud() -> None:
    writer, writes = respond(200, [CL5], [(b"hello", False)], http10=True)
    assert writes == [
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: keep-alive\r\n\r\nhello"
    ]
    assert writer.keep_alive is True


def test_head_response_keeps_content_length_but_sends_no_body() -> None:
    writer, writes = respond(200, [CL5], [(b"hello", False)], head_request=True)
    assert writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"]
    assert (writer.no_body, writer.keep_alive, writer.bytes_sent) == (True, True, 0)


def test_head_response_without_length_is_neither_chunked_nor_closing() -> None:
    writer, writes = respond(200, [], [(b"x", False)], head_request=True)
    assert writes == [b"HTTP/1.1 200 OK\r\n\r\n"]
    assert (writer.chunked, writer.keep_alive) == (False, True)


def test_204_drops_content_length_and_body() -> None:
    writer, writes = respond(204, [(b"Content-Length", b"0"), (b"x-a", b"1")], [(b"", False)])
    assert writes == [b"HTTP/1.1 204 No Content\r\nx-a: 1\r\n\r\n"]
    assert writer.content_length is None


def test_304_keeps_content_length_and_sends_no_body() -> None:
    _, writes = respond(304, [(b"content-length", b"5")], [(b"hello", False)])
    assert writes == [b"HTTP/1.1 304 Not Modified\r\ncontent-length: 5\r\n\r\n"]


@pytest.mark.parametrize("status", [100, 101, 103, 199, 600, "200", None])
def test_informational_and_non_codes_are_refused(status: Any) -> None:
    with pytest.raises(ValueError, match="Invalid HTTP status code"):
        respond(status, [], [])


def test_app_connection_close_closes_and_is_written_once() -> None:
    writer, writes = respond(200, [CL5, (b"Connection", b"Close")], [(b"hello", False)])
    assert writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello"]
    assert writer.keep_alive is False


def test_app_connection_keep_alive_does_not_override_the_server() -> None:
    writer, writes = respond(
        200, [CL5, (b"connection", b"keep-alive")], [(b"hello", False)], keep_alive=False
    )
    assert writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello"]
    assert writer.keep_alive is False


def test_app_transfer_encoding_is_dropped_the_server_frames() -> None:
    _, writes = respond(200, [(b"transfer-encoding", b"chunked")], [(b"ab", False)])
    assert writes == [b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"]


def test_default_headers_follow_the_status_line() -> None:
    _, writes = respond(200, [CL5], [(b"hello", False)], defaults=DEFAULTS)
    assert writes == [b"HTTP/1.1 200 OK\r\n" + DEFAULTS + b"content-length: 5\r\n\r\nhello"]


def test_app_server_and_date_replace_the_defaults() -> None:
    _, writes = respond(200, [(b"Server", b"mine"), CL5], [(b"hello", False)], defaults=DEFAULTS)
    assert writes == [
        b"HTTP/1.1 200 OK\r\ndate: Mon, 07 Dec 2026 01:00:00 GMT\r\nServer: mine\r\n"
        b"content-length: 5\r\n\r\nhello"
    ]
    _, writes = respond(200, [(b"date", b"yesterday")], [(b"", False)], defaults=DEFAULTS)
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\nserver: krandog-asgi\r\ndate: yesterday\r\n")


def test_a_request_body_never_asked_for_closes_the_connection() -> None:
    writer, writes = respond(200, [CL5], [(b"hello", False)], body_unread=True)
    assert writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello"]
    assert writer.keep_alive is False


def test_headers_as_lists_and_bytearrays_are_accepted() -> None:
    _, writes = respond(200, [[bytearray(b"x-a"), b"1"], CL5], [(b"hello", False)])
    assert writes == [b"HTTP/1.1 200 OK\r\nx-a: 1\r\ncontent-length: 5\r\n\r\nhello"]


@pytest.mark.parametrize("value", [b"5x", b"-1", b"", b" 5"])
def test_invalid_content_length_is_refused(value: bytes) -> None:
    with pytest.raises(ValueError, match="Invalid content-length"):
        respond(200, [(b"content-length", value)], [])


def test_repeated_content_length_must_agree() -> None:
    _, writes = respond(200, [CL5, CL5], [(b"hello", False)])
    # RFC 9110 §8.6: sent once; two fields (even equal) make strict clients refuse the response
    assert writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"]
    with pytest.raises(ValueError, match="Invalid content-length"):
        respond(200, [CL5, (b"content-length", b"6")], [])


def test_header_that_could_split_the_response_is_refused() -> None:
    with pytest.raises(ValueError, match="Invalid response header value"):
        respond(200, [(b"x-a", b"1\r\nx-b: 2")], [])


def test_body_over_content_length_raises_before_writing() -> None:
    loop = asyncio.new_event_loop()
    transport = FakeTransport(loop)
    writer = Writer(transport)
    writer.frame_head({"status": 200, "headers": [CL5]}, b"", False, False, False)
    writer.write_body(b"hel", True)
    with pytest.raises(ContentTooLong, match="longer than Content-Length"):
        writer.write_body(b"lo!", False)
    assert transport.written == [b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhel"]
    assert isinstance(ContentTooLong("x"), RuntimeError)
    loop.close()


def test_body_under_content_length_is_logged_and_closes(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, "krandog_asgi.error"):
        writer, writes = respond(200, [CL5], [(b"hel", False)])
    assert writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhel"]
    assert writer.keep_alive is False
    assert "shorter than Content-Length" in caplog.text


def test_a_tuple_header_with_a_bytearray_value_is_accepted() -> None:
    """A (bytes, bytearray) tuple cannot be a cache key: it is rendered, not remembered."""
    value = bytearray(b"fine")
    for _ in range(2):
        _, writes = respond(200, [CL5, (b"x-v", value)], [(b"hello", False)])
        assert writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-v: fine\r\n\r\nhello"]


# -- the rendered-heads cache: a repeated header list gives the same answer, every time --------


@pytest.mark.parametrize(
    ("status", "headers", "defaults"),
    [
        (200, [CL5, (b"content-type", b"text/plain")], DEFAULTS),
        (204, [CL5], b""),  # Content-Length dropped on every 204, cached or not
        (200, [CL5, (b"connection", b"close")], b""),  # the close is remembered too
        (200, [CL5, (b"server", b"mine")], DEFAULTS),  # the app's Server replaces ours
        (200, [(b"x-a", b"1")], b""),  # chunked
    ],
)
def test_a_repeated_header_list_is_framed_the_same_each_time(
    status: int, headers: list[Any], defaults: bytes
) -> None:
    body = [(b"" if status == 204 else b"hello", False)]
    first = respond(status, headers, body, defaults=defaults)
    again = respond(status, list(headers), body, defaults=defaults)  # equal, not the same
    assert first[1] == again[1]
    assert first[0].keep_alive == again[0].keep_alive


def test_headers_given_as_a_generator_are_read_once_and_framed() -> None:
    headers = iter([CL5, (b"x-a", b"1")])
    _, writes = respond(200, headers, [(b"hello", False)])  # type: ignore[arg-type]
    assert writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-a: 1\r\n\r\nhello"]


def test_a_bytearray_header_is_checked_each_time_it_is_sent() -> None:
    value = bytearray(b"fine")
    _, writes = respond(200, [CL5, (b"x-v", value)], [(b"hello", False)])
    assert b"x-v: fine\r\n" in writes[0]
    value[:] = b"bad\r\nx-injected: 1"
    with pytest.raises(ValueError, match="Invalid response header value"):
        respond(200, [CL5, (b"x-v", value)], [(b"hello", False)])


def test_same_names_with_another_content_length_are_framed_anew() -> None:
    respond(200, [CL5], [(b"hello", False)])
    _, writes = respond(200, [(b"content-length", b"2")], [(b"hi", False)])
    assert writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi"]
