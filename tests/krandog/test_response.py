"""krandog/response.py: every form a handler may return, turned into the exact (status,
headers, body) the app sends; every invalid one refused with the reason the log shows; the
errors a handler raises and the error responses' texts."""

from __future__ import annotations

from typing import Any

import pytest

from krandog_asgi.krandog.response import (
    BadRequest,
    HTTPError,
    InvalidResponse,
    NoResponse,
    build_response,
    error_response,
    internal_error,
)

TEXT = (b"content-type", b"text/plain; charset=utf-8")
BINARY = (b"content-type", b"application/octet-stream")
JSON = (b"content-type", b"application/json")


def length(n: int) -> tuple[bytes, bytes]:
    return (b"content-length", str(n).encode())


# -- return forms -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        pytest.param("plain ü", (200, [TEXT, length(8)], "plain ü".encode()), id="str"),
        pytest.param(b"\x00\x01", (200, [BINARY, length(2)], b"\x00\x01"), id="bytes"),
        pytest.param(bytearray(b"ab"), (200, [BINARY, length(2)], b"ab"), id="bytearray"),
        pytest.param(memoryview(b"cd"), (200, [BINARY, length(2)], b"cd"), id="memoryview"),
        pytest.param(
            {"message": "hé", "n": 1},
            (200, [JSON, length(23)], '{"message":"hé","n":1}'.encode()),
            id="dict-is-json",
        ),
        pytest.param([1, "two", None], (200, [JSON, length(14)], b'[1,"two",null]'), id="list"),
        pytest.param({}, (200, [JSON, length(2)], b"{}"), id="empty-dict-is-json"),
        pytest.param(
            {"status": 1, "a": 1},
            (200, [JSON, length(18)], b'{"status":1,"a":1}'),
            id="dict-with-other-keys-is-json",
        ),
        pytest.param(
            {
                "status": 201,
                "headers": {"Content-Type": "text/x-custom", "X-Multi": ["a", "b"]},
                "body": "created",
            },
            (
                201,
                [
                    (b"content-type", b"text/x-custom"),
                    (b"x-multi", b"a"),
                    (b"x-multi", b"b"),
                    length(7),
                ],
                b"created",
            ),
            id="response-with-headers",
        ),
        pytest.param(
            {"headers": [("X-One", "1"), (b"x-two", b"2"), ["X-N", 3]], "body": b"pairs"},
            (
                200,
                [(b"x-one", b"1"), (b"x-two", b"2"), (b"x-n", b"3"), BINARY, length(5)],
                b"pairs",
            ),
            id="header-pairs-bytes-and-ints",
        ),
        pytest.param(
            {"status": 202, "body": {"ok": True}},
            (202, [JSON, length(11)], b'{"ok":true}'),
            id="json-body",
        ),
        pytest.param({"body": "x"}, (200, [TEXT, length(1)], b"x"), id="no-status"),
        pytest.param({"body": None}, (200, [TEXT, length(0)], b""), id="none-body-is-empty"),
        pytest.param({"status": 204}, (204, [], b""), id="204-no-body-no-length"),
        pytest.param(
            {"status": 304, "headers": {"ETag": "x"}, "body": "dropped"},
            (304, [(b"etag", b"x")], b""),
            id="304-no-body",
        ),
        pytest.param(
            {"headers": {"X-Only": "yes"}},
            (200, [(b"x-only", b"yes"), TEXT, length(0)], b""),
            id="headers-only",
        ),
        pytest.param(
            {
                "headers": {
                    "Content-Length": "999",
                    "Transfer-Encoding": "chunked",
                    "Connection": "x",
                },
                "body": "four",
            },
            (200, [TEXT, length(4)], b"four"),
            id="framing-headers-are-ours",
        ),
    ],
)
def test_return_forms(result: Any, expected: Any) -> None:
    assert build_response(result) == expected


# -- invalid returns ----------------------------------------------------------------------------


class NotARequest:
    pass


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        ({"status": "200", "body": "x"}, "status must be an int from 200 to 599, got '200'"),
        ({"status": 99, "body": "x"}, "status must be an int from 200 to 599, got 99"),
        ({"status": 600}, "status must be an int from 200 to 599, got 600"),
        ({"status": True, "body": "x"}, "status must be an int from 200 to 599, got True"),
        (NotARequest(), "the handler returned/contained a NotARequest"),
        (("body", 200), "the handler returned/contained a tuple"),
        ({"status": 200, "body": 3.5}, "the body returned/contained a float"),
        ({"status": 200, "body": {"x": {1, 2}}}, "the body could not be sent as JSON"),
        ({"body": [float("nan")]}, "the body could not be sent as JSON"),
        ({"headers": {"X-Evil": "a\r\nInjected: yes"}}, "header 'X-Evil' contains a control"),
        ({"headers": {"Bad Name": "x"}, "body": "x"}, "invalid header name 'Bad Name'"),
        ({"headers": {b"\xff": "x"}}, "invalid header name 'ÿ'"),
        ({"headers": {"X": 1.5}}, "header 'X' must be a str, not float"),
        ({"headers": {"X": True}}, "header 'X' must be a str, not bool"),
        ({"headers": {"X": "€"}}, "header 'X' is not latin-1 text"),
        (
            {"headers": "X-Foo: bar", "body": "x"},
            "headers must be a dict or a list of pairs, not str",
        ),
        ({"headers": [("a", "b", "c")]}, "headers must be a dict or (name, value) pairs, got"),
    ],
)
def test_invalid_return_is_refused_with_its_reason(result: Any, reason: str) -> None:
    with pytest.raises(InvalidResponse) as info:
        build_response(result)
    assert str(info.value).startswith(reason)
    assert not isinstance(info.value, NoResponse)


def test_none_for_an_http_request_is_its_own_mistake() -> None:
    with pytest.raises(NoResponse, match=r"the handler returned nothing \(None\)"):
        build_response(None)


# -- errors and error responses -----------------------------------------------------------------


def test_http_error_carries_its_status_and_a_default_text() -> None:
    assert (HTTPError(418, "teapot").status, HTTPError(418, "teapot").message) == (418, "teapot")
    assert HTTPError(404).message == "Not Found"
    assert HTTPError(599).message == "Error"  # no standard phrase
    bad = BadRequest("no JSON")
    assert (bad.status, bad.message) == (400, "no JSON")
    assert isinstance(bad, HTTPError)
    assert isinstance(bad, ValueError)


def test_error_response_texts() -> None:
    assert error_response(413, "Request body too large\n") == (
        413,
        [TEXT, length(23)],
        b"Request body too large\n",
    )
    assert internal_error() == (500, [TEXT, length(22)], b"Internal Server Error\n")
    assert internal_error("détail") == (
        500,
        [TEXT, length(31)],
        "Internal Server Error: détail\n".encode(),
    )
