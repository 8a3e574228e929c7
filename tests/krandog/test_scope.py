"""krandog/scope.py: what requests and connections read from their ASGI scope. Headers and
the query are parsed here, also from input no ASGI server sends (mixed-case names, bytes that
are not UTF-8), so a request object never depends on the server's care."""

from __future__ import annotations

from typing import Any

import pytest

from krandog_asgi.krandog.scope import Headers, Query, ScopeFields

# -- headers and the query string ---------------------------------------------------------------


def test_headers_and_query_parsing() -> None:
    headers = Headers(
        [(b"X-Test", b"a"), (b"x-test", b"b"), (b"Cookie", b"c=1"), (b"cookie", b"d=2")]
    )
    assert list(headers) == ["x-test", "cookie"]
    assert headers["X-TEST"] == headers["x-test"] == "a, b"
    assert headers["cookie"] == "c=1; d=2"
    assert headers.getall("X-Test") == ["a", "b"]
    assert "X-Test" in headers
    assert "missing" not in headers
    assert headers.get("missing") is None
    assert len(headers) == 2
    assert dict(headers) == {"x-test": "a, b", "cookie": "c=1; d=2"}

    query = Query(b"a=1&b=&a=2&c=%C3%A9&d=x+y&e")
    assert query["a"] == "1"
    assert query.getall("a") == ["1", "2"]
    assert query.getall("zzz") == []
    assert query["b"] == ""
    assert query["e"] == ""
    assert query["c"] == "é"
    assert query["d"] == "x y"
    assert list(query) == ["a", "b", "c", "d", "e"]
    assert query.multi_items()[:3] == [("a", "1"), ("b", ""), ("a", "2")]
    assert "a" in query
    assert "zzz" not in query
    assert dict(Query(b"")) == {}


def test_headers_keep_the_raw_pairs_and_decode_latin1() -> None:
    raw = [(b"X-Name", b"caf\xe9"), (b"x-name", b"2")]
    headers = Headers(iter(raw))  # any iterable: it is copied once
    assert headers.raw == raw
    assert headers["x-name"] == "café, 2"
    assert headers.getall("X-NAME") == ["café", "2"]
    assert 42 not in headers  # type: ignore[comparison-overlap]  # only str names are looked up
    assert repr(headers) == "Headers({'x-name': 'café, 2'})"


def test_query_from_str_or_bytes_never_raises_on_bad_utf8() -> None:
    assert Query("a=1&a=2").getall("a") == ["1", "2"]
    query = Query(b"a=%ff&%ff=1&\xff=2")
    assert query["a"] == "\ufffd"
    assert query.multi_items() == [("a", "\ufffd"), ("\ufffd", "1"), ("\ufffd", "2")]
    assert repr(Query(b"a=1")) == "Query([('a', '1')])"


# -- the URL, client and lazy parsing -----------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "url"),
    [
        pytest.param(
            {"path": "/a b/é", "headers": [(b"host", b"example.com")], "query_string": b"x=1&y"},
            "http://example.com/a%20b/%C3%A9?x=1&y",
            id="host-header-and-quoted-path",
        ),
        pytest.param(
            {"path": "/a/b", "raw_path": b"/a%2Fb", "headers": [], "server": ("10.0.0.1", 8000)},
            "http://10.0.0.1:8000/a%2Fb",
            id="raw-path-and-server-address",
        ),
        pytest.param(
            {
                "path": "/items",
                "root_path": "/api",
                "headers": [],
                "server": ("example.org", None),
                "scheme": "https",
            },
            "https://example.org/api/items",
            id="root-path-scheme-and-portless-server",
        ),
        pytest.param({"path": "/", "headers": []}, "http://localhost/", id="nothing-known"),
    ],
)
def test_url_is_rebuilt_from_the_scope(scope: dict[str, Any], url: str) -> None:
    assert ScopeFields(scope).url == url


def test_pathname_client_and_fields_parsed_once() -> None:
    scope = {
        "path": "/p",
        "headers": [(b"a", b"1")],
        "query_string": b"q=1",
        "client": ["127.0.0.1", 5000],
    }
    fields = ScopeFields(scope)
    assert fields.pathname == "/p"
    assert fields.client == ("127.0.0.1", 5000)  # a tuple, whatever the server gave
    assert fields.headers is fields.headers
    assert fields.query is fields.query
    assert fields.scope is scope
    assert ScopeFields({"path": "/", "headers": [], "client": None}).client is None
    assert ScopeFields({"path": "/", "headers": []}).client is None
