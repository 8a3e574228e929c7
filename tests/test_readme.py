"""The README's first screen must stay true: its two echo snippets run as written."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest
import websockets

from tests.support.servers import ROOT, start_server

SNIPPETS = re.findall(
    r"```python\n(# (\w+)\.py: krandog-asgi \2:(\w+)\n.*?)```",
    (ROOT / "README.md").read_text(),
    re.S,
)


def test_readme_has_both_snippets() -> None:
    assert [name for _, name, _ in SNIPPETS[:2]] == ["echo", "echo_asgi"]


@pytest.mark.parametrize(("code", "module", "attr"), SNIPPETS[:2], ids=["krandog", "asgi"])
def test_readme_echo_snippet(code: str, module: str, attr: str, tmp_path: Path) -> None:
    (tmp_path / f"{module}.py").write_text(code)
    server = start_server(f"{module}:{attr}", "--app-dir", str(tmp_path))
    try:
        response = httpx.get(server.url + "/")
        assert response.status_code == 200
        assert response.text == "HTTP Server with WebSocket support"

        async def main() -> None:
            async with websockets.connect(server.ws_url + "/") as ws:
                for word in ("hello", "world"):
                    await ws.send(word)
                    assert await ws.recv() == "Echo: " + word

        asyncio.run(main())
    finally:
        server.stop()
