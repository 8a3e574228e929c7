"""process.sharing: equal values of long-lived scopes are held once, and the table is bounded."""

from __future__ import annotations

from krandog_asgi.process.sharing import Sharing


def _fresh(value: bytes) -> bytes:
    """An equal but distinct bytes object, as the parser makes one per request."""
    return bytes(bytearray(value))


def test_equal_values_share_the_first_object() -> None:
    sharing = Sharing()
    first, second = _fresh(b"websocket"), _fresh(b"websocket")
    assert first is not second
    assert sharing.share(first) is first
    assert sharing.share(second) is first
    assert sharing.share(("127.0.0.1", 8000)) is sharing.share(("127.0.0.1", 8000))


def test_the_table_starts_over_when_full() -> None:
    sharing = Sharing(limit=3)
    first = sharing.share(_fresh(b"value-0"))
    for i in range(1, 10):
        sharing.share(_fresh(b"value-%d" % i))
        assert len(sharing.values) <= 3
    # value-0 was dropped when the table started over: an equal value is now its own canonical
    # copy, while the newest value is still shared.
    again = _fresh(b"value-0")
    assert sharing.share(again) is again
    assert again is not first
    latest = sharing.share(_fresh(b"value-9"))
    assert sharing.share(_fresh(b"value-9")) is latest


def _scope(key: bytes) -> dict[str, object]:
    return {
        "path": "".join(["/", "ws"]),
        "raw_path": _fresh(b"/ws"),
        "headers": [
            (b"host", _fresh(b"example.com")),
            (b"upgrade", _fresh(b"websocket")),
            (b"sec-websocket-key", key),
            (b"cookie", _fresh(b"session=1")),
            (b"user-agent", _fresh(b"x" * 600)),
        ],
    }


def test_share_scope_shares_repeating_values_and_leaves_keys_cookies_and_long_values() -> None:
    sharing = Sharing()
    one, two = _scope(_fresh(b"a" * 24)), _scope(_fresh(b"b" * 24))
    sharing.share_scope(one)
    sharing.share_scope(two)
    assert one["path"] is two["path"]
    assert one["raw_path"] is two["raw_path"]
    h1, h2 = one["headers"], two["headers"]
    assert isinstance(h1, list)
    assert isinstance(h2, list)
    assert h1[0][1] is h2[0][1]
    assert h1[1][1] is h2[1][1]
    assert h1[2][1] != h2[2][1]  # the handshake key is unique: never in the table
    assert h1[3][1] is not h2[3][1]  # credentials are not shared
    assert h1[4][1] is not h2[4][1]  # over 512 bytes: not worth a slot
    assert [n for n, _ in h1] == [
        b"host",
        b"upgrade",
        b"sec-websocket-key",
        b"cookie",
        b"user-agent",
    ]
    assert len(sharing.values) == 4  # path, raw path, host, upgrade
