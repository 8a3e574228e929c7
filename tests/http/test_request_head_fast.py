"""The C accelerator's scope fast path (``http._speedups.fast_scope``) against the head rules.

It must build exactly the scope ``read_request_head_py`` builds for the requests it takes, and
return None, leaving the request to the rules, for every head that needs one of them. The
fuzz checks (tests/support/fuzzing.check_http_stream) compare the two on every generated
request stream; these tests name each kind of head it must leave alone.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import httptools
import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

from krandog_asgi.http import request_head
from krandog_asgi.http.request_head import RequestError, read_request_head_py
from tests.http.test_request_head import Parser, context

pytestmark = pytest.mark.skipif(
    request_head.fast_scope is None, reason="the C accelerator is not built (no C compiler)"
)
Headers = list[tuple[bytes, bytes]]
HOST = [(b"host", b"example.com")]


def both(
    url: bytes = b"/",
    headers: Headers | None = None,
    *,
    method: bytes = b"GET",
    version: str = "1.1",
    conn: SimpleNamespace | None = None,
) -> tuple[Any, Any]:
    """(what the rules give, what the fast path gives) for one head; the rules run first, so
    the caches they fill (methods, hosts) are warm as on a live connection."""
    headers = HOST if headers is None else headers
    parser, conn = Parser(method, version, False), conn or context()
    try:
        rules: Any = read_request_head_py(parser, url, headers, conn)  # type: ignore[arg-type]
    except (RequestError, ValueError) as error:  # (ValueError: a length httptools would refuse)
        rules = error
    fast = request_head.fast_scope(parser, url, headers, conn, request_head.FAST_CONSTANTS)  # type: ignore[misc]
    return rules, fast


def test_a_plain_get_gets_the_rules_scope_key_for_key_in_order() -> None:
    rules, fast = both(b"/a/b?x=1&y=%20", [*HOST, (b"accept", b"*/*")])
    scope, expect_continue, websocket = rules
    assert (expect_continue, websocket) == (False, False)
    assert list(fast.items()) == list(scope.items())
    assert fast["query_string"] == b"x=1&y=%20"  # % in the query is the app's business


def test_its_state_is_a_copy_per_request() -> None:
    conn = context()
    _, first = both(conn=conn)
    _, second = both(conn=conn)
    assert first["state"] == {"db": "pool"}
    assert first["state"] is not second["state"]
    assert first["state"] is not conn.state.lifespan_state


def test_non_ascii_paths_decode_as_the_rules_do() -> None:
    rules, fast = both(b"/caf\xc3\xa9/\xff")
    assert fast is not None
    assert fast["path"] == rules[0]["path"] == "/café/\ufffd"


def test_a_real_parser_gives_the_same_scope() -> None:
    parser = httptools.HttpRequestParser(SimpleNamespace())
    parser.feed_data(b"GET /x?q HTTP/1.1\r\nHost: example.com\r\n\r\n")
    conn = context()
    rules = read_request_head_py(parser, b"/x?q", HOST, conn)  # type: ignore[arg-type]
    fast = request_head.fast_scope(parser, b"/x?q", HOST, conn, request_head.FAST_CONSTANTS)
    assert fast is not None
    assert list(fast.items()) == list(rules[0].items())


@pytest.mark.parametrize(
    "url",
    [b"*", b"http://example.com/", b"/a#frag", b"/a%20b", b"/a%2Fb?x", b"", b"a/b"],
)
def test_targets_the_rules_must_split_are_left_to_them(url: bytes) -> None:
    _, fast = both(url, method=b"OPTIONS" if url == b"*" else b"GET")
    assert fast is None


# Every field the rules look at (their own table, so a field added there and not in C fails
# here) but Host and Content-Length, which the fast path reads itself, and a second Host (a 400).
RULE_FIELDS = [
    (name, b"0")
    for name in sorted(request_head._REQUEST_HEADERS)
    if name not in (b"host", b"content-length")
]


@pytest.mark.parametrize(("name", "value"), [*RULE_FIELDS, (b"host", b"example.com")])
def test_heads_with_a_field_that_asks_for_a_rule_are_left_to_the_rules(
    name: bytes, value: bytes
) -> None:
    _, fast = both(headers=[*HOST, (name, value)])
    assert fast is None


@pytest.mark.parametrize(
    ("length", "limit"),
    [(b"0", 10), (b"10", 10), (b"0016384", 16384), (b"123456789012345678", None), (b"5", 2**70)],
)
def test_one_plain_length_within_the_body_limit_gets_the_rules_scope(
    length: bytes, limit: int | None
) -> None:
    headers = [(b"content-type", b"text/plain"), *HOST, (b"content-length", length)]
    rules, fast = both(b"/upload", headers, method=b"POST", conn=context(limit_request_body=limit))
    scope, expect_continue, websocket = rules
    assert (expect_continue, websocket) == (False, False)
    assert fast is not None
    assert list(fast.items()) == list(scope.items())


@pytest.mark.parametrize(
    "length",
    [b"11", b"", b" 5", b"+5", b"-1", b"1_0", b"5 ", b"0x5", b"\xd9\xa5", b"1234567890123456789"],
)
def test_a_length_over_the_limit_or_not_plain_digits_is_left_to_the_rules(length: bytes) -> None:
    headers = [*HOST, (b"content-length", length)]
    rules, fast = both(b"/", headers, method=b"POST", conn=context(limit_request_body=10))
    assert fast is None
    if length == b"11":
        assert isinstance(rules, RequestError)
        assert rules.status == 413


def test_two_lengths_are_left_to_the_rules() -> None:
    headers = [*HOST, (b"content-length", b"1"), (b"content-length", b"1")]
    assert both(b"/", headers, method=b"POST")[1] is None


def test_a_length_with_a_rule_field_beside_it_is_left_to_the_rules() -> None:
    for name, value in RULE_FIELDS:
        headers = [*HOST, (b"content-length", b"3"), (name, value)]
        assert both(b"/", headers, method=b"POST")[1] is None, name


@pytest.mark.parametrize("version", ["1.0", "1.2", "2.0", "0.9"])
def test_other_versions_are_left_to_the_rules(version: str) -> None:
    assert both(version=version)[1] is None


def test_no_host_is_left_to_the_rules() -> None:
    rules, fast = both(headers=[(b"accept", b"*/*")])
    assert isinstance(rules, RequestError)
    assert rules.status == 400
    assert fast is None


def test_a_host_or_a_method_the_rules_have_not_passed_yet_is_left_to_them() -> None:
    parser, conn = Parser(b"GET", "1.1", False), context()
    unseen = [(b"host", b"never-seen-before.example:81")]
    constants = request_head.FAST_CONSTANTS
    assert request_head.fast_scope(parser, b"/", unseen, conn, constants) is None
    read_request_head_py(parser, b"/", unseen, conn)  # type: ignore[arg-type]
    assert request_head.fast_scope(parser, b"/", unseen, conn, constants) is not None
    method = Parser(b"NEVERSEEN", "1.1", False)
    assert request_head.fast_scope(method, b"/", HOST, conn, constants) is None


def test_a_root_path_is_left_to_the_rules() -> None:
    assert both(conn=context(root_path="/api"))[1] is None


def test_header_items_other_than_byte_pairs_are_left_to_the_rules() -> None:
    parser, conn = Parser(b"GET", "1.1", False), context()
    constants = request_head.FAST_CONSTANTS
    odd = ([[b"host", b"example.com"]], [("host", b"example.com")], [(b"host", [b"x"])])
    for headers in odd:
        assert request_head.fast_scope(parser, b"/", headers, conn, constants) is None


def test_wrong_argument_types_raise() -> None:
    parser, conn = Parser(b"GET", "1.1", False), context()
    fast, constants = request_head.fast_scope, request_head.FAST_CONSTANTS
    with pytest.raises(TypeError):
        fast(parser, bytearray(b"/"), HOST, conn, constants)  # type: ignore[misc,arg-type]
    with pytest.raises(TypeError):
        fast(parser, b"/", tuple(HOST), conn, constants)  # type: ignore[misc,arg-type]
    with pytest.raises(TypeError):
        fast(parser, b"/", HOST, conn, constants[:3])  # type: ignore[misc]
    with pytest.raises(TypeError):
        fast(parser, b"/", HOST)  # type: ignore[misc,call-arg]


def test_errors_of_the_parser_and_the_connection_propagate() -> None:
    class Broken(Parser):
        def get_http_version(self) -> str:
            raise RuntimeError("parser gone")

    constants = request_head.FAST_CONSTANTS
    with pytest.raises(RuntimeError, match="parser gone"):
        request_head.fast_scope(Broken(b"GET", "1.1", False), b"/", HOST, context(), constants)
    conn = context()
    del conn.scheme
    with pytest.raises(AttributeError):
        request_head.fast_scope(Parser(b"GET", "1.1", False), b"/", HOST, conn, constants)


PARTS = st.sampled_from(
    [b"/", b"/a", b"x", b"\xc3\xa9", b"?"] * 4 + [b"#", b"%", b"%41", b"\xff", b"*", b"&"]
)
# Mostly the fields of a plain GET, so that about half the heads are the fast path's to build.
NAMES = [b"accept", b"cookie", b"hosts", b"hos", b"user-agent"] * 6 + [b"host", b"content-length"]
NAMES += [b"transfer-encoding", b"expect", b"upgrade", b"x-forwarded-for", b"x-forwarded-proto"]
VALUES = [b"example.com", b"0", b"5", b"chunked", b"100-continue", b"websocket", b"", b"a b"]
VALUES += [b"70000", b"1_0", b"05"]
HOSTS = st.sampled_from([[(b"host", b"example.com")]] * 8 + [[], [(b"host", b"a b")]])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    url=st.sampled_from([b"/"] * 6 + [b"", b"*", b"http://h"]).flatmap(
        lambda start: st.lists(PARTS, max_size=5).map(lambda parts: start + b"".join(parts))
    ),
    host=HOSTS,
    headers=st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(VALUES)), max_size=4),
    method=st.sampled_from([b"GET"] * 6 + [b"HEAD", b"POST", b"OPTIONS", b"CONNECT", b"BREW"]),
    version=st.sampled_from(["1.1"] * 6 + ["1.0", "1.2", "2.0"]),
    root_path=st.sampled_from([""] * 6 + ["/api"]),
    limit=st.sampled_from([None, 0, 5, 65536]),
)
def test_on_any_head_the_fast_path_gives_the_rules_scope_or_none(
    url: bytes,
    host: Headers,
    headers: Headers,
    method: bytes,
    version: str,
    root_path: str,
    limit: int | None,
) -> None:
    conn = context(root_path=root_path, limit_request_body=limit)
    rules, fast = both(url, host + headers, method=method, version=version, conn=conn)
    event("left to the rules" if fast is None else "built by the fast path")
    if fast is None:
        return
    assert not isinstance(rules, Exception), rules
    scope, expect_continue, websocket = rules
    assert (expect_continue, websocket) == (False, False)
    assert list(fast.items()) == list(scope.items())
