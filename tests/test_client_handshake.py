"""Everything that can go wrong before a client connection opens: URLs, options, TCP, TLS, and
the opening handshake (RFC 6455 §4.1), each with the exception that says what happened."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from collections.abc import Iterator
from typing import Any

import pytest

from krandog_asgi.client import (
    HandshakeRefused,
    InvalidHandshake,
    InvalidURL,
    OpenTimeout,
    WebSocketError,
    connect,
)
from krandog_asgi.wsclient.protocol import ClientOptions, ClientProtocol, connect_error
from krandog_asgi.wsclient.url import parse_url
from tests.support.certs import Certificates, make_certificates
from tests.support.fakes import run
from tests.support.peers import (
    WebsocketsPeer,
    krandog_server,
    raw_server,
    read_request,
    switching_protocols,
)

# -- URLs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "secure", "host", "port", "resource", "host_header"),
    [
        ("ws://example.com", False, "example.com", 80, "/", "example.com"),
        ("wss://example.com/chat?room=1", True, "example.com", 443, "/chat?room=1", "example.com"),
        ("ws://example.com:3000", False, "example.com", 3000, "/", "example.com:3000"),
        ("wss://EXAMPLE.com:443/", True, "example.com", 443, "/", "example.com"),
        ("ws://[::1]:9000/x", False, "::1", 9000, "/x", "[::1]:9000"),
        ("ws://[::1]/", False, "::1", 80, "/", "[::1]"),
        ("ws://127.0.0.1:8000/a b", False, "127.0.0.1", 8000, "/a%20b", "127.0.0.1:8000"),
        ("ws://h/é?q=ü", False, "h", 80, "/%C3%A9?q=%C3%BC", "h"),
        ("http://h:81/", False, "h", 81, "/", "h:81"),
        ("https://h/", True, "h", 443, "/", "h"),
        ("ws://bücher.example/", False, "xn--bcher-kva.example", 80, "/", "xn--bcher-kva.example"),
        ("  ws://h/  ", False, "h", 80, "/", "h"),
    ],
)
def test_parse_url(
    url: str, secure: bool, host: str, port: int, resource: str, host_header: str
) -> None:
    target = parse_url(url)
    assert (target.secure, target.host, target.port, target.resource) == (
        secure,
        host,
        port,
        resource,
    )
    assert target.host_header == host_header


def test_url_credentials_are_kept_for_basic_auth_but_not_shown() -> None:
    target = parse_url("ws://user:p%40ss@h:81/x")
    assert (target.username, target.password) == ("user", "p@ss")
    assert target.url == "ws://h:81/x"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://h/", "scheme 'ftp' is not ws or wss"),
        ("example.com:80", "is not ws or wss"),
        ("//h/", "no ws:// or wss://"),
        ("ws:///path", "no host"),
        ("ws://", "no host"),
        ("ws://h:99999/", "Port out of range"),
        ("ws://h:0/", "port 0"),
        ("ws://h:x/", "Port could not be cast"),
        ("ws://h/#frag", "fragment"),
        ("ws://[::1/", "Invalid IPv6 URL"),
        ("ws://bad host/", "invalid host"),
        ("ws://h\x00x/", "invalid host"),
        ("ws://h%20x/", "invalid host"),
    ],
)
def test_bad_urls_raise_invalid_url(url: str, problem: str) -> None:
    with pytest.raises(InvalidURL, match="Invalid WebSocket URL") as info:
        connect(url)
    assert problem in str(info.value)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, WebSocketError)


def test_url_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="must be a str"):
        connect(b"ws://h/")  # type: ignore[arg-type]


# -- options ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"subprotocols": ["ok", "bad token"]}, "Invalid subprotocol 'bad token'"),
        ({"subprotocols": ["chat", "chat"]}, "offered twice"),
        ({"extra_headers": {"X-Evil": "a\r\nInjected: 1"}}, "Invalid value for request header"),
        ({"extra_headers": {"Bad Name": "v"}}, "Invalid request header name"),
        ({"extra_headers": {"Sec-WebSocket-Key": "x"}}, "set by the WebSocket handshake"),
        ({"extra_headers": [("Upgrade", "h2c")]}, "set by the WebSocket handshake"),
        ({"origin": "https://a\nb"}, "Invalid value for request header 'Origin'"),
        ({"compression": "gzip"}, "compression must be 'deflate' or None"),
        ({"open_timeout": -1}, "open_timeout must not be negative"),
        ({"close_timeout": None}, "close_timeout must be a number of seconds, not None"),
        ({"max_size": 0}, "max_size must be at least 1"),
        ({"fragment_size": 0}, "fragment_size must be at least 1"),
        ({"ssl": ssl.create_default_context()}, "SSL context was given for the unencrypted URL"),
    ],
)
def test_bad_options_fail_before_any_io(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        connect("ws://127.0.0.1:1/", **options)  # type: ignore[arg-type]


# -- TCP and timeouts -------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_refused_connection_names_the_url() -> None:
    port = _closed_port()

    async def main() -> None:
        with pytest.raises(
            ConnectionRefusedError, match=f"Cannot connect to ws://127.0.0.1:{port}/"
        ):
            await connect(f"ws://127.0.0.1:{port}/")

    run(main())


def test_refused_on_every_address_is_connection_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name with several addresses (dual-stack "localhost") refused on each one: asyncio says
    "Multiple exceptions" without an errno, yet ``except ConnectionRefusedError`` must work."""
    port = _closed_port()
    real_getaddrinfo = socket.getaddrinfo

    def two_addresses(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "twice.test":
            return real_getaddrinfo("127.0.0.1", *args, **kwargs) + real_getaddrinfo(
                "127.0.0.2", *args, **kwargs
            )
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", two_addresses)

    async def main() -> None:
        with pytest.raises(ConnectionRefusedError) as info:
            await connect(f"ws://twice.test:{port}/")
        assert info.value.errno == errno.ECONNREFUSED
        assert f"Cannot connect to ws://twice.test:{port}/" in str(info.value)
        assert "127.0.0.1" in str(info.value)
        assert "127.0.0.2" in str(info.value)

    run(main())  # asyncio's loop: all_errors=True on 3.12+, the message parsed before


def test_connect_error_from_a_multiple_exceptions_message() -> None:
    """What uvloop and Python < 3.12 give: only the text of every address's error."""
    target = parse_url("ws://twice.test:9/")
    refused = OSError(
        "Multiple exceptions: [Errno 111] Connect call failed ('::1', 9, 0, 0), "
        "[Errno 111] Connect call failed ('127.0.0.1', 9)"
    )
    error = connect_error(target, [refused])
    assert isinstance(error, ConnectionRefusedError)
    assert error.errno == errno.ECONNREFUSED
    assert "Cannot connect to ws://twice.test:9/: Multiple exceptions" in str(error)
    mixed = OSError("Multiple exceptions: [Errno 111] refused, [Errno 101] unreachable")
    error = connect_error(target, [mixed])
    assert type(error) is OSError
    assert error.errno is None
    grouped = [ConnectionRefusedError(111, "a"), OSError(101, "b")]
    assert connect_error(target, grouped).errno is None
    gaierror = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    error = connect_error(target, [gaierror])
    assert type(error) is socket.gaierror
    assert error.errno == socket.EAI_NONAME


def test_open_timeout_when_the_server_never_answers() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # read the request, answer nothing

    async def main() -> None:
        async with raw_server(silent) as url:
            with pytest.raises(OpenTimeout, match=r"took longer than open_timeout=0\.3 s") as info:
                await connect(url, open_timeout=0.3)
            assert isinstance(info.value, TimeoutError)

    run(main())


# -- refused and invalid handshakes -----------------------------------------------------------


@pytest.fixture(scope="module")
def krandog() -> Iterator[str]:
    with krandog_server() as server:
        yield server.ws_url


@pytest.fixture(scope="module")
def websockets_url() -> Iterator[str]:
    with WebsocketsPeer() as theirs:
        yield theirs.url


def test_refused_by_our_server(krandog: str) -> None:
    async def main() -> None:
        with pytest.raises(HandshakeRefused, match="HTTP 403") as info:
            await connect(krandog + "/deny")
        assert info.value.status == 403
        assert info.value.body == b"Forbidden"
        assert ("content-length", "9") in info.value.headers

    run(main())


def test_refused_by_websockets_server(websockets_url: str) -> None:
    async def main() -> None:
        with pytest.raises(HandshakeRefused, match="HTTP 401: go away") as info:
            await connect(websockets_url + "/deny")
        assert info.value.status == 401
        assert info.value.body == b"go away\n"

    run(main())


def test_plain_http_endpoint_is_a_refusal(krandog: str) -> None:
    """A server that answers the upgrade with a normal response (not 101)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello")
        writer.close()  # the body ends with the connection

    async def main() -> None:
        async with raw_server(answer) as url:
            with pytest.raises(HandshakeRefused, match="HTTP 200: hello") as info:
                await connect(url)
            assert info.value.body == b"hello"

    run(main())


def _answer_with(response: str):  # type: ignore[no-untyped-def]
    """A raw handler answering the upgrade with ``response`` (``{accept}`` filled in)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        from tests.support.peers import accept_key

        writer.write(response.format(accept=accept_key(request["sec-websocket-key"])).encode())
        await reader.read()

    return handler


_OK_HEAD = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"


@pytest.mark.parametrize(
    ("response", "options", "message"),
    [
        (_OK_HEAD + "Sec-WebSocket-Accept: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", {},
         "Sec-WebSocket-Accept does not match"),
        (_OK_HEAD + "\r\n", {}, "exactly one Sec-WebSocket-Accept"),
        ("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: {accept}\r\n\r\n", {}, "no 'Upgrade: websocket'"),
        ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
         "Sec-WebSocket-Accept: {accept}\r\n\r\n", {}, "no 'Connection: Upgrade'"),
        (_OK_HEAD + "Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: evil\r\n\r\n",
         {"subprotocols": ["chat"]}, "chose subprotocol 'evil', which was not offered"),
        (_OK_HEAD + "Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: chat\r\n\r\n",
         {}, r"which was not offered \(offered: none\)"),
        (_OK_HEAD + "Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: a, b\r\n\r\n",
         {"subprotocols": ["a", "b"]}, "chose several subprotocols"),
        (_OK_HEAD + "Sec-WebSocket-Accept: {accept}\r\n"
         "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
         {"compression": None}, "enabled extension permessage-deflate, which was not offered"),
        (_OK_HEAD + "Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Extensions: x-foo\r\n\r\n",
         {}, "unexpected extension"),
        (_OK_HEAD + "Sec-WebSocket-Accept: {accept}\r\n"
         "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=7\r\n\r\n",
         {}, "invalid server_max_window_bits"),
        (_OK_HEAD + "Sec-WebSocket-Accept: {accept}\r\n"
         "Sec-WebSocket-Extensions: permessage-deflate; bogus\r\n\r\n",
         {}, "unknown parameter bogus"),
        ("SSH-2.0-OpenSSH_9.2\r\n\r\n", {}, "invalid HTTP response"),
        ("HTTP/1.1 101 Switching Protocols\r\n" + "X-Long: " + "a" * 70_000, {},
         "response head is larger than 64 KiB"),
    ],
)  # fmt: skip
def test_invalid_handshake_responses(
    response: str, options: dict[str, object], message: str
) -> None:
    async def main() -> None:
        async with raw_server(_answer_with(response)) as url:
            with pytest.raises(InvalidHandshake, match=message):
                await connect(url, **options)  # type: ignore[arg-type]

    run(main())


def test_server_closing_during_the_handshake() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 101 Switch")

    async def main() -> None:
        async with raw_server(hang_up) as url:
            with pytest.raises(
                InvalidHandshake, match="closed the connection during the handshake"
            ):
                await connect(url)

    run(main())


def test_101_after_the_open_was_cancelled_is_dropped() -> None:
    """open_timeout or close() while CONNECTING cancels the handshake waiter; a 101 read before
    the transport is aborted must not raise (InvalidStateError) nor attach a connection."""

    class Transport(asyncio.Transport):
        def __init__(self) -> None:
            super().__init__()
            self.aborted = False

        def write(self, data: Any) -> None:
            pass

        def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
            pass

        def get_write_buffer_size(self) -> int:
            return 0

        def is_closing(self) -> bool:
            return self.aborted

        def abort(self) -> None:
            self.aborted = True

    async def main() -> None:
        protocol = ClientProtocol(
            asyncio.get_running_loop(), parse_url("ws://h/"), ClientOptions(ping_interval=None)
        )
        transport = Transport()
        protocol.connection_made(transport)
        protocol.handshake_waiter.cancel()
        request = {"sec-websocket-key": protocol.key}
        protocol.data_received(switching_protocols(request) + b"\x81\x02hi")
        assert transport.aborted
        assert protocol.conn is None
        assert protocol.handshake is None
        protocol.connection_lost(None)
        assert protocol.closed

    run(main())


def test_request_is_a_valid_upgrade() -> None:
    seen: dict[str, str] = {}

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        seen.update(request)
        writer.write(switching_protocols(request))
        await reader.read()

    async def main() -> None:
        async with raw_server(record) as url:
            ws = await connect(
                url.replace("127.0.0.1", "user:pw@127.0.0.1") + "/p?q=1", close_timeout=0.2
            )
            await ws.close()  # the raw server never answers: the close times out quietly

    run(main())
    assert seen[":target"] == "/p?q=1"
    assert seen["upgrade"] == "websocket"
    assert seen["connection"] == "Upgrade"
    assert seen["sec-websocket-version"] == "13"
    assert len(seen["sec-websocket-key"]) == 24
    assert seen["sec-websocket-extensions"] == "permessage-deflate; client_max_window_bits"
    assert seen["authorization"] == "Basic dXNlcjpwdw=="
    assert seen["host"].startswith("127.0.0.1:")


# -- TLS --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"), "localhost", "127.0.0.1")


def test_wss_verifies_certificates_by_default(certs: Certificates) -> None:
    async def main() -> None:
        with (
            WebsocketsPeer(certs.server_context()) as theirs,
            pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"),
        ):
            await connect(theirs.url + "/echo")

    run(main())


def test_wss_sends_sni_and_checks_the_hostname(certs: Certificates) -> None:
    async def main(peer: WebsocketsPeer) -> None:
        url = peer.url.replace("127.0.0.1", "localhost")
        async with connect(url, ssl=certs.client_context()) as ws:
            await ws.send("over tls")
            assert await ws.recv() == "over tls"
        # an IP literal is verified against the certificate's IP address, without SNI
        async with connect(peer.url, ssl=certs.client_context()) as ws:
            await ws.send("ip")
            assert await ws.recv() == "ip"
        with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
            await connect(peer.url, ssl=certs.client_context(), server_hostname="example.com")

    with WebsocketsPeer(certs.server_context()) as peer:
        run(main(peer))
    assert peer.sni_names[:2] == ["localhost", None]
    assert peer.sni_names[2] == "example.com"


def test_wss_to_our_server_with_a_custom_context(certs: Certificates) -> None:
    async def main(url: str) -> None:
        async with connect(url + "/echo", ssl=certs.client_context()) as ws:
            await ws.send(b"tls bytes")
            assert await ws.recv() == b"tls bytes"

    with krandog_server(certs) as server:
        assert server.ws_url.startswith("wss://")
        run(main(server.ws_url))
