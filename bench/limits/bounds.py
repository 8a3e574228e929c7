"""How long a hostile client holds a connection of krandog-asgi with the default limits.

Starts ``python -m krandog_asgi bounds:app`` (the app below) on a free port with the default
options (or the flags given after ``--``), then measures, all at once on loopback:

- slow body: a POST whose body comes one byte a second; time until the server answers 408;
- HTTP slow reader: a GET of an endless response, never read; time until the app's ``send``
  fails (the server closed the connection);
- WebSocket slow reader: an endless stream of messages, never read; same measure.

Run: ``python bench/limits/bounds.py`` (about 35 s with the defaults), or e.g.
``python bench/limits/bounds.py -- --timeout-request-body 5 --timeout-write-stall 5``.
``--server uvicorn`` measures uvicorn instead (if installed), ``--cap SECONDS`` (default 300)
is when a measure gives up: ``null`` in the summary means "still held at the cap".
Prints one line per measure and a JSON summary. Needs no other package.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ENDED: dict[str, float] = {}  # in the server process: when each endless send failed


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``/stream`` and the ``/ws`` stream send until ``send`` fails; ``/ended`` reports when."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        try:
            while True:
                await send({"type": "websocket.send", "bytes": b"w" * 65536})
        except OSError:
            ENDED["ws"] = time.monotonic()
        return
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"h" * 65536, "more_body": True})
        except OSError:
            ENDED["http"] = time.monotonic()
        return
    if scope["path"] == "/upload":
        while True:
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
    body = json.dumps(ENDED).encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def start(server: str, flags: list[str]) -> tuple[subprocess.Popen[str], int]:
    cmd = [sys.executable, "-m", server, "bounds:app", "--port", "0", *flags]
    cmd += ["--app-dir", str(Path(__file__).parent), "--timeout-graceful-shutdown", "1"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ)
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        match = re.search(r"running on http://[^:]+:(\d+)", line)
        if match:
            threading.Thread(target=lambda: proc.stdout.read() if proc.stdout else None).start()
            return proc, int(match.group(1))
    raise RuntimeError("the server did not start")


def slow_body(port: int, limit: float) -> float | None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
        start = time.monotonic()
        sock.settimeout(1.0)
        while time.monotonic() - start < limit:
            try:
                sock.sendall(b"x")
                if sock.recv(4096):
                    return time.monotonic() - start
            except TimeoutError:
                continue
            except OSError:
                return time.monotonic() - start
    return None


def reader(sock: socket.socket, request: bytes) -> float:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.sendall(request)
    return time.monotonic()


def ended(port: int) -> dict[str, float]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /ended HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    result: dict[str, float] = json.loads(data.partition(b"\r\n\r\n")[2])
    return result


def main() -> None:
    args = sys.argv[1 : sys.argv.index("--")] if "--" in sys.argv else sys.argv[1:]
    flags = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []
    options = dict(zip(args[::2], args[1::2], strict=False))
    server = {"krandog": "krandog_asgi"}.get(options.get("--server", ""), "krandog_asgi")
    if options.get("--server") == "uvicorn":
        server = "uvicorn"
    limit = float(options.get("--cap", "300"))
    proc, port = start(server, flags)
    try:
        slow: dict[str, float | None] = {}
        body_thread = threading.Thread(target=lambda: slow.update(body=slow_body(port, limit)))
        body_thread.start()
        http_sock = socket.create_connection(("127.0.0.1", port))
        ws_sock = socket.create_connection(("127.0.0.1", port))
        t_http = reader(http_sock, b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        t_ws = reader(
            ws_sock,
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        start_time = time.monotonic()
        seen: dict[str, float] = {}
        while time.monotonic() - start_time < limit and (len(seen) < 2 or body_thread.is_alive()):
            time.sleep(0.5)
            seen = ended(port)
        body_thread.join()
        summary = {
            "server": server,
            "cap_s": limit,
            "flags": flags,
            "slow_body_s": slow.get("body"),
            "http_non_reader_s": seen["http"] - t_http if "http" in seen else None,
            "ws_non_reader_s": seen["ws"] - t_ws if "ws" in seen else None,
        }
        print(f"1-byte/s request body answered after  {summary['slow_body_s']} s")
        print(f"non-reading HTTP client cut after     {summary['http_non_reader_s']} s")
        print(f"non-reading WebSocket client cut after {summary['ws_non_reader_s']} s")
        print(json.dumps(summary))
        http_sock.close()
        ws_sock.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:  # a server stuck on the clients it could not cut
            proc.kill()
            proc.wait(5)


if __name__ == "__main__":
    main()
