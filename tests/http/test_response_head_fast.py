"""The C accelerator's response head (``http._speedups.cached_head``) against
``ResponseWriter.frame_head_py``.

For a head whose status line and header list frame_head has rendered before, it must leave the
writer exactly as the Python path does (the bytes and every framing field), over every
combination of the inputs that change the framing; for any head it cannot frame from the
caches it must return False and touch nothing.
"""

from __future__ import annotations

import enum
import itertools
from typing import Any

import pytest

from krandog_asgi.http import response
from krandog_asgi.http.response import HEAD_CACHES, ResponseWriter

pytestmark = pytest.mark.skipif(
    response.cached_head is None, reason="the C accelerator is not built (no C compiler)"
)
FIELDS = ("pending_head", "keep_alive", "chunked", "content_length", "no_body", "status")
DEFAULTS = b"server: krandog-asgi\r\ndate: Mon, 07 Dec 2026 01:00:00 GMT\r\n"


class Writer(ResponseWriter):
    __slots__ = ()

    def __init__(self, keep_alive: bool) -> None:
        self.keep_alive = keep_alive
        self.bytes_sent = 0
        self.pending_head = b""


def fields(writer: Writer) -> tuple[Any, ...]:
    return tuple(getattr(writer, name, "<unset>") for name in FIELDS)


def both(message: dict[str, Any], *flags: bool, keep_alive: bool = True) -> tuple[Any, Any, bool]:
    """(the Python path's fields, the accelerator's fields, whether it framed the head); the
    Python path runs first, so the caches are warm as on a live server."""
    python, fast = Writer(keep_alive), Writer(keep_alive)
    python.frame_head_py(message, DEFAULTS, *flags)
    done = response.cached_head(fast, message, DEFAULTS, *flags, HEAD_CACHES)  # type: ignore[misc]
    return fields(python), fields(fast), done


HEADERS = [
    [],
    [(b"content-length", b"5")],
    [(b"content-type", b"text/plain"), (b"content-length", b"0")],
    [(b"content-type", b"text/plain")],
    [(b"connection", b"close"), (b"content-length", b"2")],
    [(b"connection", b"keep-alive")],
    [(b"transfer-encoding", b"chunked"), (b"x-a", b"b")],
]


@pytest.mark.parametrize("status", [200, 204, 304, 404, 500])
@pytest.mark.parametrize("headers", HEADERS, ids=range(len(HEADERS)))
def test_a_head_seen_before_is_framed_exactly_as_the_python_path(
    status: int, headers: list[Any]
) -> None:
    for flags in itertools.product([False, True], repeat=4):
        head_request, http10, body_unread, keep_alive = flags
        for shape in (list, tuple):
            message = {"type": "http.response.start", "status": status, "headers": shape(headers)}
            python, fast, done = both(
                message, head_request, http10, body_unread, keep_alive=keep_alive
            )
            has_length = any(n == b"content-length" for n, _ in headers)
            if status == 204 and has_length:
                assert not done  # the Python path drops the length: its business
                assert fast == (b"", keep_alive, *["<unset>"] * 4)
            else:
                assert done, (status, headers, flags)
                assert fast == python, (status, headers, flags)


def test_no_headers_key_is_an_empty_list() -> None:
    python, fast, done = both({"type": "http.response.start", "status": 200}, False, False, False)
    assert done
    assert fast == python


class Status(enum.IntEnum):
    OK = 200


@pytest.mark.parametrize(
    "message",
    [
        {"status": 200, "headers": [(b"server", b"mine")]},  # the app's own Server
        {"status": Status.OK, "headers": []},  # an IntEnum: logged as a plain code
        {"status": 299, "headers": []},  # a status line not made yet
        {"status": 200, "headers": iter([])},  # any iterable: frame_head reads it
        {"status": 200, "headers": [[b"x-list", b"1"]]},  # not hashable
        {"status": 200, "headers": [(bytearray(b"x-ba"), b"1")]},  # not hashable
        {"status": 200, "headers": [(b"x-never-seen", b"1")]},  # not rendered yet
    ],
)
def test_heads_it_cannot_frame_from_the_caches_are_left_to_frame_head(
    message: dict[str, Any],
) -> None:
    response.FINAL_STATUS_LINES.pop(299, None)
    writer = Writer(True)
    assert not response.cached_head(writer, message, DEFAULTS, False, False, False, HEAD_CACHES)  # type: ignore[misc]
    assert fields(writer) == (b"", True, *["<unset>"] * 4)
    writer.frame_head(message, DEFAULTS, False, False, False)  # and frame_head still does it
    assert writer.pending_head.startswith(b"HTTP/1.1 2")


def test_own_defaults_are_not_framed_even_once_cached() -> None:
    message = {"status": 200, "headers": [(b"date", b"then")]}
    python, _, done = both(message, False, False, False)
    assert not done
    assert b"date: then\r\n" in python[0]
    assert b"date: Mon" not in python[0]  # the app's Date replaced ours, our Server stays
    assert b"server: krandog-asgi\r\n" in python[0]


def test_wrong_argument_types_raise() -> None:
    fast: Any = response.cached_head
    message = {"status": 200, "headers": []}
    with pytest.raises(TypeError):
        fast(Writer(True), message, DEFAULTS, False, False, False)  # no caches
    with pytest.raises(TypeError):
        fast(Writer(True), message, DEFAULTS, False, False, False, (HEAD_CACHES[0],))
    with pytest.raises(TypeError):
        fast(Writer(True), message, DEFAULTS, False, False, False, ([], {}))
    # a message or defaults of another type: frame_head's business, not an error
    assert (
        fast(Writer(True), [("status", 200)], DEFAULTS, False, False, False, HEAD_CACHES) is False
    )
    assert fast(Writer(True), message, "defaults", False, False, False, HEAD_CACHES) is False
