"""The opening handshake over real sockets, where a mistake would reach the wire.

- An invalid answer from the app (``tests/apps/ws_answers.py``: a subprotocol the client never
  offered, bad or reserved accept headers, a bad denial response) fails closed: the connection
  is closed without an answer, never a 101 and never the 403 the app's later
  ``websocket.close`` would have produced; the reason is logged at error level. Checked with
  raw sockets (every byte the server sent) and with ``websockets`` as an independent client.
- A malformed ``Sec-WebSocket-Extensions`` offer is declined (RFC 7692 §5): the connection opens
  without permessage-deflate, whatever the malformation (docs/security.md).
"""

from __future__ import annotations

import asyncio
import socket
import struct
import zlib
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
import websockets
from websockets.asyncio.client import connect

from tests.apps.ws_answers import INVALID_ANSWERS, INVALID_DENIALS
from tests.support.servers import RunningServer, module_server, wait_until

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


@pytest.fixture(scope="module")
def answers_server() -> Iterator[RunningServer]:
    with module_server("ws_answers:app") as server:
        yield server


@pytest.fixture(scope="module")
def echo_server() -> Iterator[RunningServer]:
    with module_server("ws_apps:app") as server:
        yield server


def upgrade(path: str, *extra: bytes) -> bytes:
    lines = [
        b"GET " + path.encode() + b" HTTP/1.1",
        b"Host: 127.0.0.1",
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Key: " + KEY,
        b"Sec-WebSocket-Version: 13",
        *extra,
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def read_until_closed(sock: socket.socket) -> bytes:
    """Every byte the server sends until it closes (fails the test if it never does)."""
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, data
        data += chunk
    return data.split(b"\r\n\r\n", 1)[0]


# -- an invalid answer from the app ------------------------------------------------------------


@pytest.mark.parametrize("case", list(INVALID_ANSWERS))
def test_invalid_answer_fails_the_handshake_closed_over_a_raw_socket(
    answers_server: RunningServer, case: str
) -> None:
    path = "/" + quote(case)
    with socket.create_connection(("127.0.0.1", answers_server.port), timeout=5) as sock:
        sock.sendall(upgrade(path, b"Sec-WebSocket-Protocol: chat"))
        data = read_until_closed(sock)  # the server closes the connection
    assert data == b""  # no 101, no 403 from the app's close, nothing injected: no byte at all
    report = f"{answers_server.url}/report/{quote(case)}"
    assert wait_until(lambda: httpx.get(report).status_code == 200)
    record = httpx.get(report).json()
    assert record["answer"] in ("RuntimeError", "ValueError", "TypeError")
    assert record["websocket.close"] == "ClientDisconnected"
    assert record["websocket.send"] == "ClientDisconnected"
    assert record["receive"] == {"type": "websocket.disconnect", "code": 1006, "reason": ""}
    assert answers_server.wait_for_log(r"ERROR.*WebSocket handshake abandoned")
    assert httpx.get(answers_server.url + "/report/none").status_code == 404  # still serving


@pytest.mark.parametrize("case", list(INVALID_DENIALS))
def test_invalid_denial_response_is_one_500_over_a_raw_socket(
    answers_server: RunningServer, case: str
) -> None:
    with socket.create_connection(("127.0.0.1", answers_server.port), timeout=5) as sock:
        sock.sendall(upgrade("/" + quote(case)))
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 500 "), data
    assert data.count(b"HTTP/1.1 ") == 1, data  # nothing injected, no 403 from the later close
    report = f"{answers_server.url}/report/{quote(case)}"
    assert wait_until(lambda: httpx.get(report).status_code == 200)
    record = httpx.get(report).json()
    assert record["answer"] in ("ValueError", "TypeError")
    assert record["websocket.close"] == "UnexpectedMessage"


@pytest.mark.parametrize(
    "case",
    ["subprotocol not offered", "CRLF in a header value", "sec-websocket-accept", "upgrade"],
)
def test_invalid_answer_closes_unanswered_for_the_websockets_client(
    answers_server: RunningServer, case: str
) -> None:
    async def main() -> None:
        url = answers_server.ws_url + "/" + quote(case)
        async with connect(url, subprotocols=["chat"], open_timeout=5):  # type: ignore[list-item]
            pass

    with pytest.raises(websockets.InvalidMessage) as info:
        asyncio.run(asyncio.wait_for(main(), 10))
    assert isinstance(info.value.__cause__, EOFError)  # the connection closed before a response


def test_the_abandon_log_line_says_why(answers_server: RunningServer) -> None:
    with socket.create_connection(("127.0.0.1", answers_server.port), timeout=5) as sock:
        sock.sendall(upgrade("/" + quote("subprotocol not offered"), b"Sec-WebSocket-Protocol: a"))
        read_until_closed(sock)
    assert answers_server.wait_for_log(
        r"WebSocket handshake abandoned, connection closed unanswered: invalid "
        r"'websocket.accept': Subprotocol 'other' was not offered by the client "
        r"\(offered: \['a'\]\)"
    )


# -- malformed Sec-WebSocket-Extensions: declined, whatever the malformation --------------------

MALFORMED_EXTENSIONS = {
    "unknown parameter": b"permessage-deflate; unknown=1",
    "unknown parameter without a value": b"permessage-deflate; x-foo",
    "duplicated parameter": b"permessage-deflate; server_no_context_takeover; "
    b"server_no_context_takeover",
    "duplicated window bits": b"permessage-deflate; client_max_window_bits=10; "
    b"client_max_window_bits=11",
    "window bits too large": b"permessage-deflate; server_max_window_bits=16",
    "window bits too small": b"permessage-deflate; server_max_window_bits=7",
    "window bits with a leading zero": b"permessage-deflate; server_max_window_bits=09",
    "window bits not a number": b"permessage-deflate; client_max_window_bits=ten",
    "window bits negative": b"permessage-deflate; client_max_window_bits=-9",
    "server window bits without a value": b"permessage-deflate; server_max_window_bits",
    "quoted window bits out of range": b'permessage-deflate; server_max_window_bits="20"',
    "value where none is allowed": b"permessage-deflate; client_no_context_takeover=1",
    "quoted value where none is allowed": b'permessage-deflate; server_no_context_takeover=""',
    "empty parameter": b"permessage-deflate; ;",
    "missing parameter name": b"permessage-deflate; =15",
    "space inside a parameter value": b"permessage-deflate; server_max_window_bits=1 5",
    "unterminated quote": b'permessage-deflate; server_max_window_bits="10',
    "garbage": b';;= ,"\\ =,; @@ ===',  # (control bytes are the HTTP layer's 400)
    "non-ASCII": b"permessage-deflate; server_max_window_bits=\xff",
    "bad extension name": b"perm@ssage-deflate",
    "empty name before parameters": b"; server_no_context_takeover",
}


@pytest.mark.parametrize(
    "offer", list(MALFORMED_EXTENSIONS.values()), ids=list(MALFORMED_EXTENSIONS)
)
def test_malformed_extension_offer_is_declined_and_the_connection_opens(
    echo_server: RunningServer, offer: bytes
) -> None:
    with socket.create_connection(("127.0.0.1", echo_server.port), timeout=5) as sock:
        sock.sendall(upgrade("/echo", b"Sec-WebSocket-Extensions: " + offer))
        head = read_head(sock)
        assert head.startswith(b"HTTP/1.1 101 "), head
        assert b"sec-websocket-extensions" not in head.lower()
        # The connection works, uncompressed: a masked text frame is echoed unmasked.
        mask = b"\x01\x02\x03\x04"
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(b"hello"))
        sock.sendall(b"\x81\x85" + mask + payload)
        assert sock.recv(7) == b"\x81\x05hello"


def test_a_malformed_offer_next_to_a_valid_one_is_declined_as_a_whole(
    echo_server: RunningServer,
) -> None:
    """A header we cannot parse says nothing reliable about the offers in it: all are declined,
    rather than guessing which part the client meant."""
    with socket.create_connection(("127.0.0.1", echo_server.port), timeout=5) as sock:
        sock.sendall(
            upgrade("/echo", b"Sec-WebSocket-Extensions: permessage-deflate, perm@ssage; =")
        )
        head = read_head(sock)
    assert head.startswith(b"HTTP/1.1 101 ")
    assert b"sec-websocket-extensions" not in head.lower()


def test_a_well_formed_offer_after_an_unacceptable_one_is_accepted(
    echo_server: RunningServer,
) -> None:
    """RFC 7692 §5: offers are alternatives; one we must decline does not spoil the next."""
    with socket.create_connection(("127.0.0.1", echo_server.port), timeout=5) as sock:
        sock.sendall(
            upgrade(
                "/echo",
                b"Sec-WebSocket-Extensions: permessage-deflate; unknown=1, permessage-deflate",
            )
        )
        head = read_head(sock)
    assert head.startswith(b"HTTP/1.1 101 ")
    assert b"sec-websocket-extensions: permessage-deflate" in head.lower()


# -- a deflate bomb over a real socket ------------------------------------------------------------


@pytest.fixture(scope="module")
def small_ws_server() -> Iterator[RunningServer]:
    with module_server("ws_apps:app", "--ws-max-size", "1MiB") as server:
        yield server


def test_deflate_bomb_from_a_client_is_closed_1009_and_the_server_goes_on(
    small_ws_server: RunningServer,
) -> None:
    """64 MiB of zeros deflate to ~64 KiB: the message is cut at --ws-max-size (1 MiB here)
    while inflating, never inflated whole (the CVE-2018-1000518 class)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = b"".join(comp.compress(bytes(1 << 20)) for _ in range(64))
    bomb += comp.flush(zlib.Z_SYNC_FLUSH)[:-4]
    assert len(bomb) < 70_000
    mask = b"\x01\x02\x03\x04"
    frame = b"\xc2\xff" + struct.pack("!Q", len(bomb)) + mask + _mask(bomb, mask)
    port = small_ws_server.port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(upgrade("/echo", b"Sec-WebSocket-Extensions: permessage-deflate"))
        head = read_head(sock)
        assert b"sec-websocket-extensions: permessage-deflate" in head.lower()
        sock.sendall(frame[:4096])  # inflates past 1 MiB already: nothing more is needed
        opcode, payload = sock.recv(2), b""
        while len(payload) < opcode[1]:
            payload += sock.recv(opcode[1] - len(payload))
    assert opcode[0] == 0x88
    assert struct.unpack("!H", payload[:2])[0] == 1009
    assert "MemoryError" not in small_ws_server.log
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(upgrade("/echo"))
        assert read_head(sock).startswith(b"HTTP/1.1 101 ")


def _mask(data: bytes, mask: bytes) -> bytes:
    n = len(data)
    repeated = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(repeated, "little")).to_bytes(
        n, "little"
    )
