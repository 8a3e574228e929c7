"""Unit tests of the opening handshake (RFC 6455 §4, ``websocket.handshake``)."""

from __future__ import annotations

import pytest

from krandog_asgi.websocket.handshake import (
    HandshakeError,
    accept_key,
    check_request,
    parse_subprotocols,
)


def hs_headers(**overrides: bytes | None) -> list[tuple[bytes, bytes]]:
    base = {
        b"host": b"example.com",
        b"upgrade": b"websocket",
        b"connection": b"keep-alive, Upgrade",
        b"sec-websocket-key": b"dGhlIHNhbXBsZSBub25jZQ==",
        b"sec-websocket-version": b"13",
    }
    for key, value in overrides.items():
        name = key.replace("_", "-").encode()
        if value is None:
            base.pop(name, None)
        else:
            base[name] = value
    return list(base.items())


class TestHandshake:
    def test_rfc_accept_key_vector(self) -> None:
        assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

    def test_valid_request(self) -> None:
        hs = check_request("GET", "1.1", hs_headers(sec_websocket_protocol=b"chat, superchat"))
        assert hs.subprotocols == ["chat", "superchat"]

    @pytest.mark.parametrize(
        ("method", "version", "overrides", "status"),
        [
            ("POST", "1.1", {}, 400),
            ("GET", "1.0", {}, 400),
            ("GET", "1.1", {"upgrade": None}, 400),
            ("GET", "1.1", {"connection": b"keep-alive"}, 400),
            ("GET", "1.1", {"sec_websocket_key": None}, 400),
            ("GET", "1.1", {"sec_websocket_key": b"short"}, 400),
            ("GET", "1.1", {"sec_websocket_version": None}, 400),
            ("GET", "1.1", {"sec_websocket_version": b"8"}, 426),
            ("GET", "1.1", {"sec_websocket_protocol": b"\x80\xff"}, 400),
            ("GET", "1.1", {"sec_websocket_protocol": b"a b"}, 400),
        ],
    )
    def test_invalid_requests(
        self, method: str, version: str, overrides: dict[str, bytes | None], status: int
    ) -> None:
        with pytest.raises(HandshakeError) as info:
            check_request(method, version, hs_headers(**overrides))
        assert info.value.status == status
        if status == 426:
            assert info.value.headers == b"sec-websocket-version: 13\r\n"

    @pytest.mark.parametrize(
        "value",
        [
            b"permessage-deflate; =",
            b'permessage-deflate; server_no_context_takeover=""',
            b'permessage-deflate; server_max_window_bits="10',
            b"perm@ssage-deflate",
            b"permessage-deflate; server_max_window_bits=\xff",
            b"\x01;;;",
        ],
    )
    def test_an_extensions_header_that_does_not_parse_offers_nothing(self, value: bytes) -> None:
        """Declined (RFC 7692 §5), not refused: the handshake goes on without extensions."""
        hs = check_request("GET", "1.1", hs_headers(sec_websocket_extensions=value))
        assert hs.extensions == []

    def test_a_parsable_extensions_header_keeps_every_offer(self) -> None:
        value = b"permessage-deflate; unknown=1, permessage-deflate; client_max_window_bits"
        hs = check_request("GET", "1.1", hs_headers(sec_websocket_extensions=value))
        assert hs.extensions == [
            ("permessage-deflate", [("unknown", "1")]),
            ("permessage-deflate", [("client_max_window_bits", None)]),
        ]

    def test_subprotocol_parsing(self) -> None:
        assert parse_subprotocols(["a, b", "c"]) == ["a", "b", "c"]
        with pytest.raises(ValueError):
            parse_subprotocols(["a;b"])
