"""Our asyncio client against the ``websockets`` client, same server, same run.

    python bench/client/bench_client.py [--rounds 5] [--duration 3] [--warmup 1]

Starts one krandog-asgi echo server pinned to CPU 0 (``taskset``), then runs each client in a
fresh process pinned to CPU 1, interleaving the clients round by round (A B A B ...), and prints
medians and ratios. Workloads:

* ``small``: round trips per second, 32-byte text messages, ``--connections`` (16) connections
  each doing send -> wait for the echo -> send;
* ``64k``: throughput in MB/s of echoed bytes, 64 KiB binary messages, ``--tput-connections``
  (1) connections each doing send -> wait for the echo -> send.

Both clients use their default settings (permessage-deflate offered, so negotiated by the
server) unless ``--compression none``; both run on uvloop unless ``--loop asyncio``. ``--floor``
adds ``Floor``, which does no client work at all: the ceiling any client could reach. Every run
is bounded in time (``--duration``) and count (``MAX_MESSAGES``), every process by a timeout.
Results and how to read them: bench/client/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ECHO_APP_DIR = ROOT / "examples"
MAX_MESSAGES = 5_000_000
SMALL = "x" * 32
BIG = os.urandom(64 * 1024)
CLIENTS = ("krandog", "websockets", "floor")


# -- the measured side (runs in the pinned child process) --------------------------------------


class Floor(asyncio.Protocol):
    """Not a client: the cost of the bytes alone. Sends one prebuilt masked frame per message
    and waits for as many bytes as the echo has, parsing nothing. What a client cannot beat."""

    def __init__(self, message: str | bytes) -> None:
        payload = message.encode() if isinstance(message, str) else message
        opcode = 1 if isinstance(message, str) else 2
        self.frame = _frame(opcode, payload, b"\x01\x02\x03\x04")
        self.echo_size = len(_frame(opcode, payload, None))
        self.received = 0
        self.handshaking = True  # until the end of the 101 response head
        self.waiter: asyncio.Future[None] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.handshaking:
            self.handshaking = not data.endswith(b"\r\n\r\n")
            ready = not self.handshaking
        else:
            self.received += len(data)
            ready = self.received >= self.echo_size
        if ready and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def wait(self) -> None:
        self.waiter = asyncio.get_running_loop().create_future()
        await self.waiter

    async def send(self, message: object) -> None:
        assert self.transport is not None
        self.transport.write(self.frame)

    async def recv(self) -> None:
        if self.received < self.echo_size:
            await self.wait()
        self.received -= self.echo_size

    async def close(self) -> None:
        assert self.transport is not None
        self.transport.close()


def _frame(opcode: int, payload: bytes, mask: bytes | None) -> bytes:
    from krandog_asgi.websocket.frames import build_frame

    return build_frame(opcode, payload, mask=mask)


async def _open_floor(url: str, message: str | bytes) -> Floor:
    from krandog_asgi.websocket.handshake import generate_key

    loop = asyncio.get_running_loop()
    floor = Floor(message)
    host, port = url.split("//")[1].rstrip("/").split(":")
    await loop.create_connection(lambda: floor, host, int(port))
    assert floor.transport is not None
    floor.transport.write(
        b"GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
        % (host.encode(), generate_key().encode())
    )
    await floor.wait()  # the 101 response (no extension offered, so none negotiated)
    return floor


async def _open(impl: str, url: str, compression: str | None, message: str | bytes) -> Any:
    if impl == "floor":
        return await _open_floor(url, message)
    if impl == "krandog":
        from krandog_asgi.client import connect

        return await connect(url, compression=compression, ping_interval=None)
    from websockets.asyncio.client import connect as ws_connect

    return await ws_connect(url, compression=compression, ping_interval=None, max_size=2**24)


async def _loop(ws: Any, message: str | bytes, stop_at: float, limit: int) -> int:
    count = 0
    clock = time.perf_counter
    while count < limit:
        await ws.send(message)
        await ws.recv()
        count += 1
        if not count & 63 and clock() >= stop_at:
            break
    return count


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    compression = None if args.compression == "none" else "deflate"
    small = args.workload == "small"
    message: str | bytes = SMALL if small else BIG
    connections = args.connections if small else args.tput_connections
    sockets = [await _open(args.impl, args.url, compression, message) for _ in range(connections)]
    limit = MAX_MESSAGES // connections
    # warm-up, then the measured interval
    warm_until = time.perf_counter() + args.warmup
    warm = await asyncio.gather(*(_loop(ws, message, warm_until, limit) for ws in sockets))
    cpu0, t0 = time.process_time(), time.perf_counter()
    counts = await asyncio.gather(
        *(_loop(ws, message, t0 + args.duration, limit) for ws in sockets)
    )
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    for ws in sockets:
        await ws.close()
    total = sum(counts)
    result: dict[str, Any] = {
        "impl": args.impl,
        "workload": args.workload,
        "messages": total,
        "messages_with_warmup": total + sum(warm),
        "seconds": round(elapsed, 3),
        "client_cpu_us_per_msg": round(cpu / total * 1e6, 2),
    }
    if small:
        result["value"] = total / elapsed  # round trips per second
    else:
        result["value"] = total * len(BIG) / elapsed / 1e6  # MB/s echoed
    return result


def child_main(args: argparse.Namespace) -> None:
    if args.loop == "uvloop":
        import uvloop

        result = uvloop.run(measure(args))
    else:
        result = asyncio.run(measure(args))
    print(json.dumps(result))


# -- the driver --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pin(cpu: str) -> list[str]:
    return ["taskset", "-c", cpu] if shutil.which("taskset") else []


def start_server(port: int, cpu: str) -> subprocess.Popen[bytes]:
    cmd = [
        *_pin(cpu),
        str(Path(sys.executable).with_name("krandog-asgi")),
        "asgi_echo_app:app",
        "--port", str(port),
        "--log-level", "warning",
        "--ws-max-size", str(2**24),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ECHO_APP_DIR, start_new_session=True)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.1)
    stop_server(proc)
    raise RuntimeError("the echo server did not start")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (Linux), to report the server's cost per message."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_child(
    args: argparse.Namespace, impl: str, workload: str, url: str, server_pid: int
) -> dict[str, Any]:
    cmd = [
        *_pin(args.client_cpu), sys.executable, __file__, "--child",
        "--impl", impl, "--workload", workload, "--url", url,
        "--duration", str(args.duration), "--warmup", str(args.warmup),
        "--connections", str(args.connections), "--tput-connections", str(args.tput_connections),
        "--compression", args.compression,
        "--loop", args.loop,
    ]  # fmt: skip
    timeout = args.duration + args.warmup + 60
    server_cpu = _cpu_seconds(server_pid)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    server_cpu = _cpu_seconds(server_pid) - server_cpu
    result["server_cpu_us_per_msg"] = round(server_cpu / result["messages_with_warmup"] * 1e6, 2)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--duration", type=float, default=3.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--connections", type=int, default=16, help="connections for 'small'")
    p.add_argument("--tput-connections", type=int, default=1, help="connections for '64k'")
    p.add_argument("--workloads", default="small,64k")
    p.add_argument("--compression", choices=["deflate", "none"], default="deflate")
    p.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    p.add_argument("--server-cpu", default="0")
    p.add_argument("--client-cpu", default="1")
    p.add_argument("--json", default=None, help="also append every run to this JSONL file")
    p.add_argument("--floor", action="store_true", help="also run the do-nothing floor (see Floor)")
    # child mode
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--impl", choices=CLIENTS, help=argparse.SUPPRESS)
    p.add_argument("--workload", choices=["small", "64k"], help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child_main(args)
        return
    if not 1 <= args.rounds <= 50 or not 0 < args.duration <= 60:
        p.error("--rounds must be 1-50 and --duration 0-60 s")
    clients = ["krandog", "websockets"] + (["floor"] if args.floor else [])
    if args.floor and args.compression != "none":
        p.error("--floor sends uncompressed frames: use it with --compression none")
    port = _free_port()
    url = f"ws://127.0.0.1:{port}/"
    server = start_server(port, args.server_cpu)
    results: dict[tuple[str, str], list[float]] = {}
    try:
        for workload in args.workloads.split(","):
            for rnd in range(args.rounds):
                for impl in clients:
                    r = run_child(args, impl, workload, url, server.pid)
                    results.setdefault((workload, impl), []).append(r["value"])
                    print(
                        f"round {rnd + 1} {workload:5} {impl:10} {r['value']:10.1f}  CPU per "
                        f"message: client {r['client_cpu_us_per_msg']} us, "
                        f"server {r['server_cpu_us_per_msg']} us",
                        flush=True,
                    )
                    if args.json:
                        with open(args.json, "a") as fh:
                            fh.write(json.dumps({**vars(args), **r, "round": rnd + 1}) + "\n")
    finally:
        stop_server(server)
    print()
    print(
        f"compression={args.compression} loop={args.loop} connections: small "
        f"{args.connections}, 64k {args.tput_connections}"
    )
    print("| workload | krandog (median) | websockets (median) | ratio of medians | paired |")
    print("| --- | --- | --- | --- | --- |")
    for workload in args.workloads.split(","):
        ours_all, theirs_all = results[(workload, "krandog")], results[(workload, "websockets")]
        ours, theirs = statistics.median(ours_all), statistics.median(theirs_all)
        # rounds ran back to back, so the per-round ratio cancels slow drifts of the machine
        paired = statistics.median(a / b for a, b in zip(ours_all, theirs_all, strict=True))
        unit = "round trips/s" if workload == "small" else "MB/s"
        print(
            f"| {workload} ({unit}) | {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f}x "
            f"| {paired:.2f}x |"
        )
        if args.floor:
            floor = statistics.median(results[(workload, "floor")])
            print(
                f"|   floor (no client work) | {floor:.1f} | | floor/websockets "
                f"{floor / theirs:.2f}x | krandog/floor {ours / floor:.2f} |"
            )


if __name__ == "__main__":
    main()
