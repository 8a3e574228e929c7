"""Raw-socket HTTP/1.1 client pieces for the HTTP tests: exact bytes out, strict parsing in.

``Conn`` sends whatever bytes a test gives it and parses responses itself (status line, headers,
Content-Length / chunked / close-delimited bodies), so framing mistakes of the server show up as
parse errors instead of being smoothed over by a lenient client library.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.servers import RunningServer

STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3}) ([^\r\n]*)")
HEADER_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+): ?([^\r\n]*?)[ \t]*")


class FramingError(AssertionError):
    """The server sent bytes that are not a well-formed HTTP/1.1 response."""


@dataclass
class Response:
    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    raw_head: bytes = b""
    chunked: bool = False
    chunk_sizes: list[int] = field(default_factory=list)

    def header(self, name: bytes | str) -> bytes | None:
        key = name.encode() if isinstance(name, str) else name
        key = key.lower()
        for n, v in self.headers:
            if n.lower() == key:
                return v
        return None

    def header_all(self, name: bytes | str) -> list[bytes]:
        key = (name.encode() if isinstance(name, str) else name).lower()
        return [v for n, v in self.headers if n.lower() == key]

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def closes(self) -> bool:
        value = self.header(b"connection")
        return value is not None and b"close" in value.lower()


class Conn:
    """One TCP connection to the server; ``recv`` timeouts are bounded by ``timeout``."""

    def __init__(
        self, port: int, timeout: float = 5.0, host: str = "127.0.0.1", rcvbuf: int = 0
    ) -> None:
        if rcvbuf:  # a small receive window, set before the handshake: a slow reader
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            self.sock = socket.socket(family, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(timeout)
            self.sock.connect((host, port))
        else:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b""
        self.eof = False

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, timeout: float | None = None) -> bool:
        """Read more bytes into the buffer; False on EOF."""
        if self.eof:
            return False
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            chunk = self.sock.recv(262144)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            if not self._fill():
                raise FramingError(f"connection closed before {marker!r}; got {self.buf[:200]!r}")
        data, _, self.buf = self.buf.partition(marker)
        return data

    def _read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise FramingError(f"connection closed after {len(self.buf)} of {n} body bytes")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self, method: str = "GET") -> Response:
        """Parse one response (an interim 1xx is returned as a response of its own)."""
        head = self._read_until(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        match = STATUS_LINE.fullmatch(lines[0])
        if match is None:
            raise FramingError(f"bad status line {lines[0]!r}")
        headers = []
        for line in lines[1:]:
            m = HEADER_LINE.fullmatch(line)
            if m is None:
                raise FramingError(f"bad header line {line!r}")
            headers.append((m.group(1).lower(), m.group(2)))
        resp = Response(int(match.group(1)), match.group(2), headers, raw_head=head)
        if resp.status < 200 or method == "HEAD" or resp.status in (204, 304):
            return resp
        te = resp.header_all(b"transfer-encoding")
        cls = resp.header_all(b"content-length")
        if te and cls:
            raise FramingError("response has both Transfer-Encoding and Content-Length")
        if len(cls) > 1:
            raise FramingError("response has several Content-Length headers")
        if te:
            if [v.lower() for v in te] != [b"chunked"]:
                raise FramingError(f"unexpected transfer-encoding {te!r}")
            resp.chunked = True
            body = []
            while True:
                size_line = self._read_until(b"\r\n")
                if not re.fullmatch(rb"[0-9a-fA-F]+", size_line):
                    raise FramingError(f"bad chunk size line {size_line!r}")
                size = int(size_line, 16)
                resp.chunk_sizes.append(size)
                if size == 0:
                    trailer = self._read_until(b"\r\n")
                    if trailer:
                        raise FramingError(f"unexpected trailer {trailer!r}")
                    break
                body.append(self._read_exact(size))
                if self._read_exact(2) != b"\r\n":
                    raise FramingError("chunk data not followed by CRLF")
            resp.body = b"".join(body)
        elif cls:
            if not cls[0].isdigit():
                raise FramingError(f"bad content-length {cls[0]!r}")
            resp.body = self._read_exact(int(cls[0]))
        else:
            while self._fill():
                pass
            resp.body, self.buf = self.buf, b""
        return resp

    def request(self, data: bytes, method: str = "GET") -> Response:
        self.send(data)
        return self.read_response(method)

    def closed_by_server(self, timeout: float = 2.0) -> bool:
        """True once the server has closed (EOF or reset) within ``timeout``; extra bytes fail."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.buf:
                raise FramingError(f"unexpected bytes after the response: {self.buf[:200]!r}")
            try:
                if not self._fill(max(0.01, deadline - time.monotonic())):
                    return True
            except TimeoutError:
                return False
        return False

    def read_all(self, timeout: float = 2.0) -> bytes:
        """Everything until EOF or until ``timeout`` passes without data."""
        with contextlib.suppress(TimeoutError):
            while self._fill(timeout):
                pass
        data, self.buf = self.buf, b""
        return data


def get(path: str = "/", host: str = "localhost", extra: str = "", version: str = "1.1") -> bytes:
    return f"GET {path} HTTP/{version}\r\nHost: {host}\r\n{extra}\r\n".encode()


def post(path: str, body: bytes, extra: str = "", host: str = "localhost") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


def chunked(path: str, chunks: list[bytes], extra: str = "", trailer: bytes = b"") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n{extra}\r\n"
    out = [head.encode()]
    out.extend(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks)
    out.append(b"0\r\n" + trailer + b"\r\n")
    return b"".join(out)


def count_responses(data: bytes) -> int:
    return len(re.findall(rb"HTTP/1\.1 \d{3} ", data))


def statuses(data: bytes) -> list[int]:
    return [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)]


def events(server: RunningServer, tag: str = "") -> list[dict[str, Any]]:
    with Conn(server.port) as c:
        return c.request(get(f"/events?tag={tag}")).json()  # type: ignore[no-any-return]


def wait_events(
    server: RunningServer, tag: str, kind: str, timeout: float = 5.0
) -> list[dict[str, Any]]:
    """Poll ``/events`` until one of ``kind`` for ``tag`` shows up (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = [e for e in events(server, tag) if e["kind"] == kind]
        if found:
            return found
        time.sleep(0.05)
    return found


def assert_alive(server: RunningServer) -> None:
    """The server still answers a plain request on a new connection."""
    with Conn(server.port) as c:
        resp = c.request(get("/alive"))
    assert resp.status == 200, resp
    assert resp.body == b"GET /alive"


def require(condition: bool, message: str) -> None:
    if not condition:
        pytest.fail(message)
