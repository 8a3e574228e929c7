"""Where the memory of an idle WebSocket goes: Python allocations per connection, by source line.

    python bench/micro/ws_idle_heap.py [--conns N] [--top K] [--traceback]

Serves ``bench/apps/bench_app.py`` in this process (uvloop, real loopback sockets), opens
``--conns`` idle WebSocket connections from a child process (so the clients' memory is not
counted), and compares two ``tracemalloc`` snapshots: before the connections and once they are
all open. Prints the bytes and blocks per connection of the ``--top`` source lines that grew.
The whole-process RSS figure is ``bench/run.py --workloads ws-idle``; this one says what it is
made of. Raise ``ulimit -n`` above ``--conns`` first.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import socket
import sys
import tracemalloc

HERE = os.path.dirname(os.path.abspath(__file__))
UPGRADE = (
    b"GET /idle HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def hold_clients(port: int, conns: int) -> None:
    """The child: open the connections, say so, and keep them until stdin closes."""
    held = []
    for _ in range(conns):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(UPGRADE)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                raise SystemExit("the server closed a connection during the handshake")
            answer += chunk
        held.append(sock)
    print("ready", flush=True)
    sys.stdin.read()


async def open_clients(port: int, conns: int) -> asyncio.subprocess.Process:
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--hold", str(port), str(conns),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdout is not None
    if (await asyncio.wait_for(child.stdout.readline(), 120)).strip() != b"ready":
        raise SystemExit("the client process failed")
    return child


async def close_clients(child: asyncio.subprocess.Process) -> None:
    assert child.stdin is not None
    child.stdin.close()
    await child.wait()
    await asyncio.sleep(0.5)  # the server sees the connections end


async def measure(conns: int, top: int, traceback: bool) -> None:
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "apps"))
    from krandog_asgi.config import Config
    from krandog_asgi.server import Server

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    port = listener.getsockname()[1]
    config = Config(app="bench_app:app", lifespan="off", access_log=False, log_level="warning")
    server = Server(config)
    serving = asyncio.ensure_future(server.serve(sockets=[listener]))
    await asyncio.sleep(0.5)
    warm = await open_clients(port, 10)  # one-time costs (imports, caches) before the snapshot
    await close_clients(warm)
    gc.collect()
    tracemalloc.start(16 if traceback else 1)
    before = tracemalloc.take_snapshot()
    child = await open_clients(port, conns)
    await asyncio.sleep(1.0)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    stats = after.compare_to(before, "traceback" if traceback else "lineno")
    total = sum(s.size_diff for s in stats)
    print(f"{conns} idle connections: {total / conns:.0f} B of Python allocations each")
    for stat in stats[:top]:
        frame = stat.traceback[-1]
        where = f"{os.path.basename(frame.filename)}:{frame.lineno}"
        print(f"{stat.size_diff / conns:8.1f} B {stat.count_diff / conns:5.2f} blocks  {where}")
        if traceback:
            print("\n".join("        " + line for line in stat.traceback.format()))
    await close_clients(child)
    server.request_exit()
    await asyncio.wait_for(serving, 30)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--hold":
        hold_clients(int(sys.argv[2]), int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conns", type=int, default=3000)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--traceback", action="store_true", help="whole stacks, not lines")
    args = parser.parse_args()
    import uvloop

    uvloop.run(measure(args.conns, args.top, args.traceback))


if __name__ == "__main__":
    main()
