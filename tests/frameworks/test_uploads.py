"""Multipart uploads of several MB through Starlette's form parser, checked by SHA-256, with
httpx and with a raw socket that sends the body in uneven pieces."""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterator

import httpx
import pytest

from tests.support.http_client import Conn
from tests.support.servers import RunningServer, module_server


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with module_server("starlette_extras:app") as srv:
        yield srv


def digest(name: str, data: bytes) -> dict[str, object]:
    return {"filename": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_multipart_several_files_of_megabytes(server: RunningServer) -> None:
    first = os.urandom(6 * 1024 * 1024)
    second = os.urandom(3 * 1024 * 1024 + 17)
    empty = b""
    r = httpx.post(
        server.url + "/upload",
        data={"title": "ünïcode title", "n": "3"},
        files=[
            ("file", ("first.bin", first, "application/octet-stream")),
            ("file", ("second.bin", second, "application/octet-stream")),
            ("file", ("empty.txt", empty, "text/plain")),
        ],
        timeout=60,
    )
    assert r.status_code == 200
    assert r.json() == {
        "fields": {"title": "ünïcode title", "n": "3"},
        "files": [
            digest("first.bin", first),
            digest("second.bin", second),
            digest("empty.txt", empty),
        ],
    }


def test_multipart_chunked_upload(server: RunningServer) -> None:
    payload = os.urandom(4 * 1024 * 1024)
    boundary = "krandog-boundary-4f2a"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="c.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + payload
        + f"\r\n--{boundary}--\r\n".encode()
    )

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(body), 300_001):
            yield body[start : start + 300_001]

    r = httpx.post(
        server.url + "/upload",
        content=pieces(),  # no length known: httpx sends Transfer-Encoding: chunked
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        timeout=60,
    )
    assert r.json()["files"] == [digest("c.bin", payload)]


def test_multipart_upload_in_uneven_raw_writes(server: RunningServer) -> None:
    """The body arrives in odd-sized writes (boundaries split across reads): same digest."""
    payload = os.urandom(2 * 1024 * 1024 + 3)
    boundary = "b0undary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="f"; filename="raw.bin"\r\n\r\n'
        ).encode()
        + payload
        + f"\r\n--{boundary}--\r\n".encode()
    )
    head = (
        f"POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(body)}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n"
    ).encode()
    rng = random.Random(12)
    with Conn(server.port, timeout=30) as conn:
        conn.send(head)
        pos = 0
        while pos < len(body):
            step = rng.randint(1, 200_000)
            conn.send(body[pos : pos + step])
            pos += step
        resp = conn.read_response()
    assert resp.status == 200
    assert resp.json()["files"] == [digest("raw.bin", payload)]


def test_raw_body_stream_of_megabytes(server: RunningServer) -> None:
    data = os.urandom(8 * 1024 * 1024)
    r = httpx.post(server.url + "/upload-raw", content=data, timeout=60)
    assert r.json() == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_upload_over_body_limit_is_413_and_server_goes_on() -> None:
    with module_server("starlette_extras:app", "--limit-request-body", "1m") as limited:
        big = os.urandom(3 * 1024 * 1024)
        r = httpx.post(
            limited.url + "/upload",
            files={"file": ("big.bin", big, "application/octet-stream")},
            timeout=30,
        )
        assert r.status_code == 413
        small = os.urandom(100_000)
        r = httpx.post(limited.url + "/upload", files={"file": ("s.bin", small)}, timeout=30)
        assert r.json()["files"] == [digest("s.bin", small)]


def test_multipart_upload_after_expect_100_continue(server: RunningServer) -> None:
    """As curl sends large uploads: the head first, the body only after ``100 Continue``."""
    payload = os.urandom(1024 * 1024 + 5)
    boundary = "curl-like"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="f"; filename="e.bin"\r\n\r\n'
        ).encode()
        + payload
        + f"\r\n--{boundary}--\r\n".encode()
    )
    with Conn(server.port, timeout=10) as conn:
        conn.send(
            (
                f"POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(body)}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                "Expect: 100-continue\r\n\r\n"
            ).encode()
        )
        interim = conn.read_response()
        assert interim.status == 100
        conn.send(body)
        resp = conn.read_response()
    assert resp.status == 200
    assert resp.json()["files"] == [digest("e.bin", payload)]
