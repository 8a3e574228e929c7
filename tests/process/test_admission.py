"""``process.admission`` in memory: the order of eviction, refusals, per-IP counts and the
default limit taken from the open-file limit. On real sockets: tests/test_limits_connections.py.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from krandog_asgi.config import Config
from krandog_asgi.flags import auto_count, optional_count
from krandog_asgi.process import admission
from krandog_asgi.process.admission import Admission, default_connection_limit


class FakeConn:
    def __init__(self, idle: bool = True) -> None:
        self.idle = idle
        self.closed = False
        self.transport = self

    def is_idle(self) -> bool:
        return self.idle

    def close(self) -> None:
        self.closed = True


async def _app(scope: Any, receive: Any, send: Any) -> None:
    pass


def make(**options: Any) -> Admission:
    return Admission(Config(app=_app, **options), set())


def test_below_the_limit_every_connection_is_admitted() -> None:
    adm = make(limit_max_connections=2)
    a, b = FakeConn(), FakeConn()
    assert adm.admit(a, "1.1.1.1", 0.0)
    assert adm.admit(b, "1.1.1.1", 0.0)
    assert adm.connections == {a, b}


def test_at_the_limit_the_connection_idle_longest_is_closed() -> None:
    adm = make(limit_max_connections=3)
    conns = [FakeConn() for _ in range(3)]
    for conn in conns:
        assert adm.admit(conn, "1.1.1.1", 0.0)
    adm.idle[conns[1]] = None  # idle first
    adm.idle[conns[0]] = None
    adm.idle[conns[2]] = None
    new = FakeConn()
    assert adm.admit(new, "1.1.1.1", 0.0)
    assert [c.closed for c in conns] == [False, True, False]
    assert conns[1] not in adm.connections
    assert new in adm.connections
    assert list(adm.idle) == [conns[0], conns[2]]


def test_a_stale_idle_entry_is_skipped() -> None:
    """A connection listed as idle that is busy now (or gone) is not closed."""
    adm = make(limit_max_connections=2)
    busy, idle = FakeConn(idle=False), FakeConn()
    adm.admit(busy, None, 0.0)
    adm.admit(idle, None, 0.0)
    adm.idle[busy] = None
    adm.idle[idle] = None
    assert adm.admit(FakeConn(), None, 0.0)
    assert not busy.closed
    assert idle.closed


def test_when_nothing_is_idle_the_new_connection_is_refused_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    adm = make(limit_max_connections=1)
    adm.admit(FakeConn(idle=False), None, 0.0)
    with caplog.at_level(logging.WARNING, "krandog_asgi.error"):
        assert not adm.admit(FakeConn(), None, 1.0)
        assert not adm.admit(FakeConn(), None, 2.0)  # within the interval: counted, not logged
        assert not adm.admit(FakeConn(), None, 1.0 + admission.REFUSAL_LOG_INTERVAL)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "Refusing connections: --limit-max-connections 1 reached, none idle (1 refused so far)",
        "Refusing connections: --limit-max-connections 1 reached, none idle (3 refused so far)",
    ]
    assert len(adm.connections) == 1


def test_limit_zero_means_no_limit() -> None:
    adm = make(limit_max_connections=0)
    for _ in range(100):
        assert adm.admit(FakeConn(idle=False), None, 0.0)


def test_per_ip_counts_are_released_and_other_addresses_are_unaffected() -> None:
    adm = make(limit_connections_per_ip=2, limit_max_connections=0)
    assert adm.admit(FakeConn(), "10.0.0.1", 0.0)
    assert adm.admit(FakeConn(), "10.0.0.1", 0.0)
    assert not adm.admit(FakeConn(), "10.0.0.1", 0.0)
    assert adm.admit(FakeConn(), "10.0.0.2", 0.0)
    assert adm.admit(FakeConn(), None, 0.0)  # a UNIX socket peer has no address to count
    adm.release("10.0.0.1")
    assert adm.admit(FakeConn(), "10.0.0.1", 0.0)
    adm.release("10.0.0.1")
    adm.release("10.0.0.1")
    adm.release("10.0.0.2")
    assert adm.per_ip == {}


def test_a_per_ip_refusal_evicts_nobody() -> None:
    adm = make(limit_connections_per_ip=1, limit_max_connections=1)
    idle = FakeConn()
    adm.admit(idle, "10.0.0.1", 0.0)
    adm.idle[idle] = None
    assert not adm.admit(FakeConn(), "10.0.0.1", 0.0)
    assert not idle.closed


def test_default_limit_is_nine_tenths_of_the_open_file_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import resource

    monkeypatch.setattr(resource, "getrlimit", lambda _: (20000, 40000))
    assert default_connection_limit() == 18000
    monkeypatch.setattr(resource, "getrlimit", lambda _: (100, 100))
    assert default_connection_limit() == 68  # at least 32 descriptors are kept
    monkeypatch.setattr(resource, "getrlimit", lambda _: (resource.RLIM_INFINITY, 0))
    assert default_connection_limit() == 0
    monkeypatch.setattr(resource, "getrlimit", lambda _: (1000, 1000))
    assert make().limit == 900  # the Config default (None) means this


def test_flag_spellings() -> None:
    assert auto_count("auto") is None
    assert auto_count("none") == 0
    assert auto_count("off") == 0
    assert auto_count("0") == 0
    assert auto_count("500") == 500
    assert optional_count("0") is None
    assert optional_count("off") is None
    assert optional_count("8") == 8
