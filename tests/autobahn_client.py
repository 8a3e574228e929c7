"""Echo client on krandog's asyncio client for the Autobahn fuzzingserver (wstest client protocol).

    AUTOBAHN_VENV=/work/autobahn-venv ../shared/autobahn/run-client-suite.sh --fast \
        --agent krandog-client -- python tests/autobahn_client.py

getCaseCount, then runCase for every case (echo each message until the server closes), then
updateReports. Protocol errors are the point of many cases: they are printed, not raised.
"""

from __future__ import annotations

import asyncio
import os
import sys
import urllib.parse

from krandog_asgi.client import WebSocketError, connect

SERVER = os.environ.get("AUTOBAHN_SERVER", "ws://127.0.0.1:9001")
AGENT = os.environ.get("AUTOBAHN_AGENT", "krandog-client")
# Cases 9.1.6/9.2.6 send 16 MiB messages: the client's default max_size is exactly that.
OPTIONS = {"ping_interval": None, "open_timeout": 30.0}


async def get_case_count() -> int:
    async with connect(f"{SERVER}/getCaseCount", **OPTIONS) as ws:  # type: ignore[arg-type]
        return int(await ws.recv())


async def run_case(case: int) -> None:
    url = f"{SERVER}/runCase?case={case}&agent={urllib.parse.quote(AGENT)}"
    try:
        async with connect(url, **OPTIONS) as ws:  # type: ignore[arg-type]
            async for message in ws:
                await ws.send(message)
    except (WebSocketError, OSError) as exc:
        print(f"case {case}: {type(exc).__name__}: {exc}", file=sys.stderr)


async def update_reports() -> None:
    url = f"{SERVER}/updateReports?agent={urllib.parse.quote(AGENT)}"
    async with connect(url, open_timeout=None, close_timeout=600) as ws:
        async for _ in ws:
            pass


async def main() -> None:
    count = await get_case_count()
    for case in range(1, count + 1):
        await run_case(case)
    await update_reports()
    print(f"ran {count} cases as agent {AGENT}")


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        asyncio.run(main())
    else:
        uvloop.run(main())
