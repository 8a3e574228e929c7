"""Pub/sub fan-out: N WebSocket clients subscribed to one channel, one publisher.

For each setup (``redis``: ``--workers 2 --broadcast-url redis://`` on a Redis this script
starts; ``memory``: one worker, ``memory://``) it measures

* throughput: the publisher keeps ``--window`` messages in flight (published but not yet seen
  by a probe client) for ``--duration`` seconds; deliveries/s = frames received by all clients
  / time from the first publish to the last delivery;
* latency: ``--rate`` messages/s for ``--duration`` seconds, each carrying its send time
  (``time.perf_counter_ns``, one clock for every process here); ``--sample`` clients decode it
  on arrival: publish-to-deliver p50/p99 over every (message, sampled client).

Clients are raw asyncio sockets parsing only frame headers (the load generator must not be the
bottleneck). Run from the repository root:

    python bench/pubsub/fanout.py --clients 1000 --duration 8 --out bench/results/pubsub/
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RUNNING = re.compile(r"running on http://127\.0\.0\.1:(\d+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Client(asyncio.Protocol):
    """A subscriber: counts text frames; when ``sample``, records each one's latency."""

    def __init__(self, sample: bool) -> None:
        self.buffer = bytearray()
        self.upgraded = asyncio.get_running_loop().create_future()
        self.open = False
        self.count = 0
        self.sample = sample
        self.latencies: list[int] = []
        self.last_seq = -1
        self.progress = asyncio.Event()  # the probe saw a newer message
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.upgraded.set_exception(RuntimeError(bytes(buf[:end]).decode()))
                return
            del buf[: end + 4]
            self.open = True
            self.upgraded.set_result(None)
        self._frames(buf)

    def _frames(self, buf: bytearray) -> None:
        pos = 0
        size = len(buf)
        now = time.perf_counter_ns() if self.sample else 0
        while size - pos >= 2:
            length = buf[pos + 1] & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                head = 4
            if size - pos < head + length:
                break
            if self.sample and buf[pos] & 0x0F == 1:
                text = bytes(buf[pos + head : pos + head + length])
                if text[:1] == b"t":
                    stamp, _, seq = text[1:].partition(b" ")
                    self.latencies.append(now - int(stamp))
                    self.last_seq = int(seq)
                    self.progress.set()
            self.count += 1
            pos += head + length
        del buf[:pos]


def handshake(path: str = "/") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def masked_text(text: str) -> bytes:
    data = text.encode()
    assert len(data) < 126
    mask = os.urandom(4)
    return (
        bytes([0x81, 0x80 | len(data)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    )


async def open_client(port: int, sample: bool) -> Client:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: Client(sample), "127.0.0.1", port)
    assert client.transport is not None
    client.transport.write(handshake())
    await asyncio.wait_for(client.upgraded, 10)
    client.transport.write(masked_text("sub"))
    return client


async def wait_for(check: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.01)
    return bool(check())


async def run_setup(port: int, args: argparse.Namespace) -> dict[str, Any]:
    every = max(1, args.clients // args.sample)
    clients = [await open_client(port, sample=i % every == 0) for i in range(args.clients)]
    assert await wait_for(lambda: all(c.count >= 1 for c in clients), 20), "subscribe acks"
    publisher = await open_client(port, sample=False)  # subscribed too: it is the probe
    publisher.sample = True
    await wait_for(lambda: publisher.count >= 1, 5)
    for c in [*clients, publisher]:
        c.count = 0
        c.latencies.clear()
    assert publisher.transport is not None
    result = {"throughput": await throughput(clients, publisher, args)}
    for c in [*clients, publisher]:
        c.count = 0
        c.latencies.clear()
    result["latency"] = await latency(clients, publisher, args)
    for c in [*clients, publisher]:
        assert c.transport is not None
        c.transport.close()
    return result


async def throughput(
    clients: list[Client], publisher: Client, args: argparse.Namespace
) -> dict[str, Any]:
    assert publisher.transport is not None
    seq = 0
    start = time.perf_counter()
    end = start + args.duration
    while time.perf_counter() < end:
        while seq - (publisher.last_seq + 1) < args.window:
            publisher.transport.write(masked_text(f"t{time.perf_counter_ns()} {seq}"))
            seq += 1
        publisher.progress.clear()
        try:
            await asyncio.wait_for(publisher.progress.wait(), 5)
        except asyncio.TimeoutError:
            break  # nothing arrives any more: report what did
    expected = seq
    await wait_for(lambda: all(c.count >= expected for c in clients), 30)
    elapsed = time.perf_counter() - start
    received = sum(min(c.count, expected) for c in clients)
    return {
        "published": expected,
        "deliveries": received,
        "expected_deliveries": expected * len(clients),
        "seconds": round(elapsed, 3),
        "deliveries_per_s": round(received / elapsed),
        "messages_per_s": round(expected / elapsed, 1),
    }


async def latency(
    clients: list[Client], publisher: Client, args: argparse.Namespace
) -> dict[str, Any]:
    assert publisher.transport is not None
    total = int(args.rate * args.duration)
    interval = 1 / args.rate
    start = time.perf_counter()
    for seq in range(total):
        delay = start + seq * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        publisher.transport.write(masked_text(f"t{time.perf_counter_ns()} {seq}"))
    await wait_for(lambda: all(c.count >= total for c in clients), 30)
    samples = sorted(x for c in clients if c.sample for x in c.latencies)
    quantiles = statistics.quantiles(samples, n=100) if len(samples) > 100 else [0] * 99
    return {
        "messages": total,
        "rate_per_s": args.rate,
        "deliveries_per_s": round(total * len(clients) / args.duration),
        "samples": len(samples),
        "lost": total * len(clients) - sum(min(c.count, total) for c in clients),
        "p50_ms": round(quantiles[49] / 1e6, 3),
        "p99_ms": round(quantiles[98] / 1e6, 3),
        "max_ms": round(samples[-1] / 1e6, 3) if samples else None,
    }


def start_server(extra: list[str]) -> tuple[subprocess.Popen[str], int]:
    cmd = [sys.executable, "-m", "krandog_asgi", "bench.pubsub.app:handler", "--port", "0"]
    cmd += ["--no-access-log", "--ws-per-message-deflate", "false", *extra]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 20
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        match = RUNNING.search(line)
        if match:
            port = int(match.group(1))
            if "--workers" in extra:  # every worker up, each connected to Redis
                while sum("Connected to Redis" in x for x in lines) < 2:
                    lines.append(proc.stdout.readline())
            return proc, port
    proc.kill()
    raise RuntimeError("server did not start:\n" + "".join(lines))


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def start_redis() -> tuple[subprocess.Popen[bytes], str, str]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="bench-redis-")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return proc, f"redis://127.0.0.1:{port}/0", workdir
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def run_loop(coro: Any) -> Any:
    """On uvloop when it is there (it is a dependency of the server), as the server runs."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)  # asyncio.Runner is 3.11+; uvloop.run covers 3.10 too


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--window", type=int, default=4, help="messages in flight (throughput)")
    parser.add_argument("--rate", type=float, default=20.0, help="messages/s (latency)")
    parser.add_argument("--sample", type=int, default=50, help="clients that time messages")
    parser.add_argument("--setups", default="redis,memory")
    parser.add_argument("--out", default="bench/results/pubsub/")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    redis_proc, redis_url, workdir = start_redis()
    results: dict[str, Any] = {}
    try:
        for setup in args.setups.split(","):
            extra = ["--workers", "2", "--broadcast-url", redis_url] if setup == "redis" else []
            server, port = start_server(extra)
            try:
                results[setup] = run_loop(run_setup(port, args))
                results[setup]["server"] = extra or ["--workers", "1", "(memory://)"]
            finally:
                stop(server)
            print(setup, json.dumps(results[setup], indent=1), flush=True)
    finally:
        redis_proc.kill()
        redis_proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
    record = {
        "bench": "pubsub-fanout",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "args": vars(args),
        "results": results,
    }
    out = Path(args.out)
    if out.suffix != ".json":
        out.mkdir(parents=True, exist_ok=True)
        out = out / f"fanout-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print("wrote", out)


if __name__ == "__main__":
    main()
