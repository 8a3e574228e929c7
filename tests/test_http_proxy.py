"""``--proxy-headers`` / ``--forwarded-allow-ips`` over the network (the walk itself is unit-tested
in ``test_http_units.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.http_client import Conn, get
from tests.support.servers import RunningServer, module_server


def scope_with(server: RunningServer, extra: str) -> dict:
    with Conn(server.port) as c:
        resp = c.request(get("/scope", extra=extra))
    assert resp.status == 200
    return resp.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def untrusted() -> Iterator[RunningServer]:
    with module_server("http_app:app", "--forwarded-allow-ips", "10.0.0.1") as srv:
        yield srv


@pytest.fixture(scope="module")
def chain() -> Iterator[RunningServer]:
    with module_server(
        "http_app:app", "--forwarded-allow-ips", "127.0.0.1, 10.0.0.0/8, ::1"
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def disabled() -> Iterator[RunningServer]:
    with module_server("http_app:app", "--no-proxy-headers") as srv:
        yield srv


def test_trusted_peer_sets_client_and_scheme(http_app: RunningServer) -> None:
    scope = scope_with(http_app, "X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\n")
    assert scope["client"][0] == "203.0.113.7"
    assert isinstance(scope["client"][1], int)
    assert scope["scheme"] == "https"


def test_client_cannot_spoof_by_prepending(http_app: RunningServer) -> None:
    """Only the hop written by our trusted proxy (the rightmost) counts."""
    scope = scope_with(http_app, "X-Forwarded-For: 6.6.6.6, 203.0.113.7\r\n")
    assert scope["client"][0] == "203.0.113.7"


def test_duplicate_xff_headers_are_joined(http_app: RunningServer) -> None:
    scope = scope_with(http_app, "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 198.51.100.1\r\n")
    assert scope["client"][0] == "198.51.100.1"


def test_walk_skips_trusted_hops(chain: RunningServer) -> None:
    scope = scope_with(chain, "X-Forwarded-For: 6.6.6.6, 203.0.113.7, 10.1.2.3, 10.0.0.9\r\n")
    assert scope["client"][0] == "203.0.113.7"


def test_all_hops_trusted_gives_the_leftmost(chain: RunningServer) -> None:
    scope = scope_with(chain, "X-Forwarded-For: 10.1.1.1, 10.2.2.2\r\n")
    assert scope["client"][0] == "10.1.1.1"


def test_hop_with_port_and_ipv6(chain: RunningServer) -> None:
    scope = scope_with(chain, "X-Forwarded-For: [2001:db8::1]:4711, 10.0.0.1:80\r\n")
    assert scope["client"][0] == "2001:db8::1"
    scope = scope_with(chain, "X-Forwarded-For: 2001:db8::2\r\n")
    assert scope["client"][0] == "2001:db8::2"


def test_last_proto_wins(http_app: RunningServer) -> None:
    scope = scope_with(http_app, "X-Forwarded-Proto: https\r\nX-Forwarded-Proto: http\r\n")
    assert scope["scheme"] == "http"
    scope = scope_with(http_app, "X-Forwarded-Proto: http, https\r\n")
    assert scope["scheme"] == "https"


def test_unknown_proto_is_ignored(http_app: RunningServer) -> None:
    scope = scope_with(http_app, "X-Forwarded-Proto: gopher\r\n")
    assert scope["scheme"] == "http"


def test_untrusted_peer_is_ignored(untrusted: RunningServer) -> None:
    scope = scope_with(untrusted, "X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\n")
    assert scope["client"][0] == "127.0.0.1"
    assert scope["scheme"] == "http"


def test_no_proxy_headers_flag(disabled: RunningServer) -> None:
    scope = scope_with(disabled, "X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\n")
    assert scope["client"][0] == "127.0.0.1"
    assert scope["scheme"] == "http"


def test_headers_stay_in_scope(http_app: RunningServer) -> None:
    scope = scope_with(http_app, "X-Forwarded-For: 203.0.113.7\r\n")
    assert ["x-forwarded-for", "203.0.113.7"] in scope["headers"]


def test_trust_all(serve) -> None:
    srv = serve("http_app:app", "--forwarded-allow-ips", "*")
    scope = scope_with(srv, "X-Forwarded-For: 1.1.1.1, 2.2.2.2\r\n")
    # Every hop is trusted, so the walk ends at the leftmost one.
    assert scope["client"][0] == "1.1.1.1"


def test_env_var_default(serve) -> None:
    srv = serve("http_app:app", env={"FORWARDED_ALLOW_IPS": "10.9.9.9"})
    scope = scope_with(srv, "X-Forwarded-For: 203.0.113.7\r\n")
    assert scope["client"][0] == "127.0.0.1"
