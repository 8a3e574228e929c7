"""Per-request Python cost of the HTTP path with no sockets: a fake transport, a real event loop.

    python bench/micro/http_hotpath.py [--profile] [--requests N] [--post] [--access-log FILE]

Feeds keep-alive GET requests (``--post``: 16 KiB uploads, echoed back) to ``HTTPProtocol`` on
64 fake connections, lets the ASGI tasks run, and reports microseconds of CPU per request.
Syscalls are excluded, so this isolates the server's own Python work (what the ASGI layer costs
over a raw protocol). ``--access-log FILE`` turns the access log on, set up as the server sets it
up by default, writing to FILE (e.g. /dev/null): what a line costs.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import time
from typing import Any

import uvloop

from krandog_asgi.config import Config
from krandog_asgi.http_protocol import HTTPProtocol
from krandog_asgi.process.logs import configure_logging
from krandog_asgi.process.state import ServerState

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"
PLAIN = b"Hello, world!"
HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"13")]
UPLOAD = b"k" * 16384
POST = (
    b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Length: 16384\r\n\r\n" + UPLOAD
)


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["method"] == "POST":  # as bench/apps/bench_app.py's /echo
        chunks = []
        while True:
            event = await receive()
            chunks.append(event["body"])
            if not event["more_body"]:
                break
        body = b"".join(chunks)
        headers = [(b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": PLAIN})


class FakeTransport:
    def __init__(self) -> None:
        self.written = 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name)

    def write(self, data: bytes) -> None:
        self.written += 1

    def writelines(self, data: Any) -> None:
        self.written += 1

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass


async def run(
    requests: int, conns: int, request: bytes = REQUEST, access_log: bool = False
) -> float:
    config = Config(app=app, access_log=access_log)
    config.load()
    state = ServerState(config, app, asyncio.get_running_loop())
    protos = []
    for _ in range(conns):
        p = HTTPProtocol(state)
        p.connection_made(FakeTransport())  # type: ignore[arg-type]
        protos.append(p)
    rounds = requests // conns
    t0 = time.process_time()
    for _ in range(rounds):
        for p in protos:
            p.data_received(request)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    t1 = time.process_time()
    assert all(p.transport.written >= rounds for p in protos)  # type: ignore[attr-defined]
    return (t1 - t0) / (rounds * conns) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--post", action="store_true", help="16 KiB uploads echoed back")
    ap.add_argument("--access-log", metavar="FILE", help="log every request to FILE")
    args = ap.parse_args()
    request = POST if args.post else REQUEST
    logged = args.access_log is not None
    if logged:
        sys.stdout = open(args.access_log, "w")  # noqa: SIM115 (open until the process ends)
        configure_logging("info", True, use_colors=False)
    loop = uvloop.new_event_loop()
    loop.run_until_complete(run(10_000, 64, request, logged))
    if args.profile:
        pr = cProfile.Profile()
        pr.enable()
        loop.run_until_complete(run(args.requests, 64, request, logged))
        pr.disable()
        pstats.Stats(pr, stream=sys.__stdout__).sort_stats("tottime").print_stats(20)
    else:
        us = min(loop.run_until_complete(run(args.requests, 64, request, logged)) for _ in range(3))
        print(f"{us:.2f} us per request (CPU, no syscalls)", file=sys.__stdout__)


if __name__ == "__main__":
    main()
