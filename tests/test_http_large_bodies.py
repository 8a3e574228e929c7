"""Large response bodies over real sockets, in chunks of every size around the 16 KiB and 64 KiB
marks: their bytes arrive whole, in order and framed whatever the client's reading pace (the
server's writes are then partial, and the rest waits in the transport), after and before
pipelined requests, over TLS, and when the app overwrites its buffer as soon as ``send``
returns.
"""

from __future__ import annotations

import ssl
import time

import httpx
import pytest

from tests.apps.http_app import random_body
from tests.support.certs import Certificates
from tests.support.http_client import Conn, get
from tests.support.servers import RunningServer

# A fixed receive window (no autotuning), small next to the bodies but not below the loopback
# MSS (a smaller one stalls on the persist timer).
RCVBUF = 128 * 1024
# (chunk sizes, Content-Length or chunked): small and large chunks mixed, one around the
# 16 KiB threshold, one body far larger than any socket buffer.
CASES = [
    ([16383, 16384, 65536, 65537, 300000], False),
    ([100, 20000, 5], False),
    ([1048576], True),
    ([700000, 5, 2300000], True),
]


def _path(sizes: list[int], seed: int, cl: bool, reuse: bool = False) -> str:
    joined = ",".join(map(str, sizes))
    return f"/random?sizes={joined}&seed={seed}&cl={int(cl)}&reuse={int(reuse)}"


def _check(resp_body: bytes, chunk_sizes: list[int], sizes: list[int], seed: int, cl: bool) -> None:
    assert resp_body == random_body(seed, sum(sizes))
    assert chunk_sizes == ([] if cl else [*sizes, 0])  # one chunk on the wire per send


@pytest.mark.parametrize(("sizes", "cl"), CASES)
def test_a_large_body_reaches_a_slow_reader_whole_and_framed(
    http_app: RunningServer, sizes: list[int], cl: bool
) -> None:
    with Conn(http_app.port, timeout=20, rcvbuf=RCVBUF) as conn:
        conn.send(get(_path(sizes, 7, cl)))
        time.sleep(0.2)  # the buffers fill: the server's writes are partial from here on
        resp = conn.read_response()
        assert resp.status == 200
        _check(resp.body, resp.chunk_sizes, sizes, 7, cl)
        assert resp.header("content-length") == (str(sum(sizes)).encode() if cl else None)
        assert conn.request(get("/scope")).status == 200  # the connection is still in step


def test_an_app_that_reuses_its_buffer_after_send_sends_what_it_had(
    http_app: RunningServer,
) -> None:
    sizes = [70000, 70000, 500000]
    for cl in (False, True):
        with Conn(http_app.port, timeout=20, rcvbuf=RCVBUF) as conn:
            conn.send(get(_path(sizes, 3, cl, reuse=True)))
            time.sleep(0.2)
            resp = conn.read_response()
            _check(resp.body, resp.chunk_sizes, sizes, 3, cl)


def test_pipelined_large_bodies_arrive_in_order(http_app: RunningServer) -> None:
    first, second, third = [65536, 65536], [100000], [20000, 1]
    with Conn(http_app.port, timeout=20, rcvbuf=RCVBUF) as conn:
        conn.send(
            get(_path(first, 1, False)) + get(_path(second, 2, True)) + get(_path(third, 3, False))
        )
        for sizes, seed, cl in ((first, 1, False), (second, 2, True), (third, 3, False)):
            resp = conn.read_response()
            _check(resp.body, resp.chunk_sizes, sizes, seed, cl)


def test_large_bodies_over_tls(serve, certs: Certificates) -> None:  # type: ignore[no-untyped-def]
    server = serve(
        "http_app:app", "--ssl-certfile", str(certs.certfile), "--ssl-keyfile", str(certs.keyfile)
    )
    context = ssl.create_default_context(cafile=str(certs.cafile))
    with httpx.Client(base_url=server.url, verify=context, timeout=20) as client:
        for sizes, cl in CASES:
            resp = client.get(_path(sizes, 5, cl))
            assert resp.content == random_body(5, sum(sizes))
            assert ("content-length" in resp.headers) is cl
