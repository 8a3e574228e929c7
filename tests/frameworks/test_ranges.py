"""Range requests against Starlette's FileResponse: single, suffix and open ranges (206 with
Content-Range), several ranges (multipart/byteranges), unsatisfiable ones (416), If-Range, and
HEAD, with the exact framing checked by the raw-socket client."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.support.http_client import Conn, get
from tests.support.servers import RunningServer, module_server

DATA = b"".join(i.to_bytes(4, "big") for i in range(256 * 1024))
SIZE = len(DATA)


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with module_server("starlette_extras:app") as srv:
        yield srv


def fetch(
    server: RunningServer, range_: str, method: str = "GET", **headers: str
) -> httpx.Response:
    return httpx.request(method, server.url + "/file", headers={"range": range_, **headers})


def test_full_file_advertises_ranges(server: RunningServer) -> None:
    r = httpx.get(server.url + "/file")
    assert r.status_code == 200
    assert r.headers["accept-ranges"] == "bytes"
    assert r.content == DATA


@pytest.mark.parametrize(
    ("range_", "start", "end"),
    [
        ("bytes=0-99", 0, 100),
        ("bytes=1000-1000", 1000, 1001),
        ("bytes=-100", SIZE - 100, SIZE),
        (f"bytes={SIZE - 10}-", SIZE - 10, SIZE),
        (f"bytes=500000-{SIZE * 2}", 500000, SIZE),  # an end past the file is clipped
    ],
)
def test_single_range_is_206(server: RunningServer, range_: str, start: int, end: int) -> None:
    r = fetch(server, range_)
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes {start}-{end - 1}/{SIZE}"
    assert r.headers["content-length"] == str(end - start)
    assert r.content == DATA[start:end]


def test_several_ranges_are_multipart_byteranges(server: RunningServer) -> None:
    r = fetch(server, "bytes=0-3, 100-199, -4")
    assert r.status_code == 206
    match = re.fullmatch(r"multipart/byteranges; boundary=(\S+)", r.headers["content-type"])
    assert match
    boundary = match.group(1).encode()
    assert r.headers["content-length"] == str(len(r.content))
    parts = r.content.split(b"--" + boundary)
    assert parts[0] == b""
    assert parts[-1] == b"--"
    got = []
    for part in parts[1:-1]:
        head, _, body = part.partition(b"\r\n\r\n")
        m = re.search(rb"Content-Range: bytes (\d+)-(\d+)/(\d+)", head)
        assert m
        start, last = int(m.group(1)), int(m.group(2))
        assert int(m.group(3)) == SIZE
        assert body == DATA[start : last + 1] + b"\r\n"
        got.append((start, last))
    assert got == [(0, 3), (100, 199), (SIZE - 4, SIZE - 1)]


@pytest.mark.parametrize("range_", [f"bytes={SIZE}-", f"bytes={SIZE + 5}-{SIZE + 10}"])
def test_unsatisfiable_range_is_416(server: RunningServer, range_: str) -> None:
    r = fetch(server, range_)
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{SIZE}"


def test_malformed_range_is_rejected_by_the_framework(server: RunningServer) -> None:
    assert fetch(server, "items=0-1").status_code == 400  # Starlette's answer for another unit
    assert fetch(server, "bytes=9-2").status_code == 400


def test_if_range_matching_and_stale(server: RunningServer) -> None:
    etag = httpx.head(server.url + "/file").headers["etag"]
    r = fetch(server, "bytes=0-9", **{"if-range": etag})
    assert (r.status_code, r.content) == (206, DATA[:10])
    r = fetch(server, "bytes=0-9", **{"if-range": '"stale"'})
    assert (r.status_code, len(r.content)) == (200, SIZE)


def test_range_responses_framed_exactly_on_keep_alive(server: RunningServer) -> None:
    with Conn(server.port) as conn:
        resp = conn.request(get("/file", extra="Range: bytes=4-11\r\n"))
        assert (resp.status, resp.body) == (206, DATA[4:12])
        head = conn.request(
            get("/file", extra="Range: bytes=4-11\r\n").replace(b"GET", b"HEAD", 1), "HEAD"
        )
        assert head.status == 206
        assert head.header("content-length") == b"8"
        bad = conn.request(get("/file", extra=f"Range: bytes={SIZE}-\r\n"))
        assert bad.status == 416
        multi = conn.request(get("/file", extra="Range: bytes=0-0,8-8\r\n"))
        assert multi.status == 206
        assert len(multi.body) == int(multi.header("content-length") or b"-1")
        last = conn.request(get("/file", extra="Range: bytes=-4\r\n"))  # the connection still works
        assert last.body == DATA[-4:]
        assert conn.buf == b""
