"""Starlette and FastAPI apps served over the network, exercised with httpx."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.http_client import get
from tests.support.servers import RunningServer, module_server

FILE_BYTES = bytes(range(256)) * 4096


@pytest.fixture(scope="module")
def star() -> Iterator[RunningServer]:
    with module_server("http_frameworks:starlette_app") as srv:
        yield srv


@pytest.fixture(scope="module")
def fast() -> Iterator[RunningServer]:
    with module_server("http_frameworks:fastapi_app") as srv:
        yield srv


def poll_json(url: str, predicate, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    data = None
    while time.monotonic() < deadline:
        data = httpx.get(url).json()
        if predicate(data):
            return data
        time.sleep(0.05)
    return data


# -- Starlette ------------------------------------------------------------------------------


def test_starlette_lifespan_state(star: RunningServer) -> None:
    r = httpx.get(star.url + "/")
    assert r.status_code == 200
    assert r.text == "hello from lifespan /"


def test_starlette_json(star: RunningServer) -> None:
    r = httpx.post(star.url + "/json", json={"a": [1, 2, {"b": None}]})
    assert r.json() == {"received": {"a": [1, 2, {"b": None}]}, "method": "POST"}


def test_starlette_path_params(star: RunningServer) -> None:
    assert httpx.get(star.url + "/items/42?q=x").json() == {"item_id": 42, "q": "x"}
    assert httpx.get(star.url + "/items/abc").status_code == 404


def test_starlette_streaming(star: RunningServer) -> None:
    with httpx.stream("GET", star.url + "/stream") as r:
        assert r.headers.get("transfer-encoding") == "chunked"
        parts = list(r.iter_bytes())
    assert b"".join(parts) == b"".join(f"part{i};".encode() for i in range(5))


def test_starlette_file_response(star: RunningServer) -> None:
    r = httpx.get(star.url + "/file")
    assert r.status_code == 200
    assert r.content == FILE_BYTES
    assert r.headers["content-length"] == str(len(FILE_BYTES))
    assert "data.bin" in r.headers["content-disposition"]
    head = httpx.head(star.url + "/file")
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(FILE_BYTES))
    assert head.content == b""


def test_starlette_file_range(star: RunningServer) -> None:
    r = httpx.get(star.url + "/file", headers={"Range": "bytes=10-19"})
    assert r.status_code == 206
    assert r.content == FILE_BYTES[10:20]
    assert r.headers["content-range"] == f"bytes 10-19/{len(FILE_BYTES)}"


def test_starlette_background_task(star: RunningServer) -> None:
    r = httpx.get(star.url + "/background?tag=bg1")
    assert r.text == "queued"
    assert "bg1" in poll_json(star.url + "/background-list", lambda d: "bg1" in d)


def test_starlette_multipart_upload(star: RunningServer) -> None:
    r = httpx.post(
        star.url + "/form",
        data={"name": "report"},
        files={"file": ("r.bin", b"\x00" * 300_000, "application/octet-stream")},
    )
    assert r.json() == {"name": "report", "size": 300_000}


def test_starlette_request_stream(star: RunningServer) -> None:
    def gen() -> Iterator[bytes]:
        for _ in range(20):
            yield b"s" * 50_000

    r = httpx.post(star.url + "/stream-body", content=gen())
    data = r.json()
    assert data["total"] == 1_000_000
    assert data["chunks"] >= 2


def test_starlette_is_disconnected(star: RunningServer) -> None:
    sock = socket.create_connection(("127.0.0.1", star.port))
    sock.sendall(get("/disconnect?tag=sd1"))
    time.sleep(0.3)
    sock.close()
    assert "sd1" in poll_json(star.url + "/disconnects", lambda d: "sd1" in d)


def test_starlette_streaming_stops_on_disconnect(star: RunningServer) -> None:
    sock = socket.create_connection(("127.0.0.1", star.port))
    sock.sendall(get("/endless?tag=se1"))
    sock.recv(4096)
    sock.close()
    assert "se1" in poll_json(star.url + "/disconnects", lambda d: "se1" in d)


def test_starlette_error_is_500(star: RunningServer) -> None:
    r = httpx.get(star.url + "/error")
    assert r.status_code == 500
    assert star.wait_for_log("starlette handler failed")
    assert httpx.get(star.url + "/").status_code == 200


def test_starlette_keep_alive_client(star: RunningServer) -> None:
    with httpx.Client(base_url=star.url) as client:
        for i in range(50):
            assert client.get(f"/items/{i}").json()["item_id"] == i


# -- FastAPI --------------------------------------------------------------------------------


def test_fastapi_lifespan_state(fast: RunningServer) -> None:
    assert httpx.get(fast.url + "/").json() == {"greeting": "hello from lifespan"}


def test_fastapi_json_body_validation(fast: RunningServer) -> None:
    r = httpx.post(fast.url + "/items", json={"name": "pen", "price": 1.5, "tags": ["a"]})
    assert r.status_code == 200
    assert r.json() == {"item": {"name": "pen", "price": 1.5, "tags": ["a"]}, "total": 3.0}
    r = httpx.post(fast.url + "/items", json={"name": "", "price": -1})
    assert r.status_code == 422
    locs = sorted(tuple(e["loc"]) for e in r.json()["detail"])
    assert locs == [("body", "name"), ("body", "price")]
    r = httpx.post(
        fast.url + "/items", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422


def test_fastapi_path_and_query_params(fast: RunningServer) -> None:
    assert httpx.get(fast.url + "/items/7?q=hi").json() == {"item_id": 7, "q": "hi"}
    assert httpx.get(fast.url + "/items/seven").status_code == 422
    r = httpx.get(fast.url + "/items/404")
    assert r.status_code == 404
    assert r.json() == {"detail": "Item not found"}


def test_fastapi_sync_endpoint(fast: RunningServer) -> None:
    assert httpx.get(fast.url + "/sync").json() == {"sync": "ok"}


def test_fastapi_streaming(fast: RunningServer) -> None:
    r = httpx.get(fast.url + "/stream")
    assert r.text == "chunk0\nchunk1\nchunk2\n"


def test_fastapi_file_response(fast: RunningServer) -> None:
    r = httpx.get(fast.url + "/file")
    assert r.content == FILE_BYTES


def test_fastapi_background_task(fast: RunningServer) -> None:
    r = httpx.post(fast.url + "/background/t1")
    assert r.json() == {"queued": "t1"}
    data = poll_json(fast.url + "/background-list", lambda d: "fastapi-t1" in d)
    assert "fastapi-t1" in data


def test_fastapi_openapi_and_docs(fast: RunningServer) -> None:
    r = httpx.get(fast.url + "/openapi.json")
    assert r.status_code == 200
    assert "/items/{item_id}" in r.json()["paths"]
    assert httpx.get(fast.url + "/docs").status_code == 200


def test_fastapi_error_is_500(fast: RunningServer) -> None:
    r = httpx.get(fast.url + "/error")
    assert r.status_code == 500
    assert fast.wait_for_log("fastapi handler failed")


def test_fastapi_concurrent_clients(fast: RunningServer) -> None:
    import concurrent.futures

    def one(i: int) -> int:
        with httpx.Client(base_url=fast.url) as c:
            return int(c.get(f"/items/{i}").json()["item_id"])

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(64)))
    assert results == list(range(64))
