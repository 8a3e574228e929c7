"""What differs between the supported Pythons (3.10 to 3.13) and must not change behaviour:
the event loop the server runs on, and the optional C accelerators (WebSocket masking and
parsing, the HTTP scope) and their fallbacks.
"""

from __future__ import annotations

import asyncio
import json
import json.decoder
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import httpx
import pytest
import uvloop

from krandog_asgi.server import _in_stdlib, _where_raised, run_coroutine
from krandog_asgi.websocket import frames


def test_run_coroutine_uses_uvloop_without_changing_the_global_policy() -> None:
    """On 3.10 installing uvloop's policy would make every later ``asyncio.run`` of the
    embedding process (a test suite, a second server) a uvloop loop too."""
    policy = asyncio.get_event_loop_policy()
    seen: list[asyncio.AbstractEventLoop] = []

    async def record() -> None:
        seen.append(asyncio.get_running_loop())

    run_coroutine(record())
    assert isinstance(seen[0], uvloop.Loop)
    assert asyncio.get_event_loop_policy() is policy
    asyncio.run(record())
    assert not isinstance(seen[1], uvloop.Loop)


def _c_compiler() -> str | None:
    words = shlex.split(sysconfig.get_config_var("CC") or "")
    return shutil.which(words[0]) if words else None


def test_the_c_mask_accelerator_is_built_and_used() -> None:
    """``setup.py`` marks the extension optional, so a build failure on a new Python would
    otherwise only show as a slower server."""
    if _c_compiler() is None:
        pytest.skip("no C compiler on this machine: the accelerator is not built by design")
    from krandog_asgi.http import _speedups as http_speedups, request_head, response
    from krandog_asgi.websocket import _speedups

    assert frames.apply_mask is _speedups.apply_mask
    assert frames.scan_messages is _speedups.scan_messages
    assert request_head.fast_scope is http_speedups.fast_scope
    assert request_head.plain_request is http_speedups.plain_request
    assert response.cached_head is http_speedups.cached_head


_FALLBACK_CHECK = """
import sys
sys.modules["krandog_asgi.websocket._speedups"] = None  # as if it had not been built
from krandog_asgi.websocket import frames
assert frames.apply_mask is frames.apply_mask_py, frames.apply_mask
assert frames.scan_messages is None, frames.scan_messages
from krandog_asgi.websocket.connection import Connection, Side
conn = Connection(Side.SERVER, lambda _: None)
frame = b"\\x81\\x82" + b"\\x01\\x02\\x03\\x04" + bytes([ord("h") ^ 1, ord("i") ^ 2])
assert conn.receive_data(frame * 2 + frame[:3]) == ["hi", "hi"]
assert conn.receive_data(frame[3:]) == ["hi"]
data, mask = bytes(range(256)) * 9, b"\\x01\\x80\\x7f\\xff"
expected = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
assert frames.apply_mask(data, mask) == expected
part = data[3:10]
assert frames.apply_mask(memoryview(data)[3:10], mask) == bytes(
    b ^ mask[i % 4] for i, b in enumerate(part)
)
print("python-mask")
"""

_HTTP_FALLBACK_CHECK = """
import asyncio, sys
sys.modules["krandog_asgi.http._speedups"] = None  # as if it had not been built
from krandog_asgi.http import request_head, response
assert request_head.fast_scope is None, request_head.fast_scope
assert request_head.plain_request is None, request_head.plain_request
assert response.cached_head is None, response.cached_head
from krandog_asgi.config import Config
from krandog_asgi import http_protocol
from krandog_asgi.http_protocol import HTTPProtocol
from krandog_asgi.process.state import ServerState
from tests.support.fakes import FakeTransport
assert http_protocol.plain_request is None, http_protocol.plain_request

seen = []

async def app(scope, receive, send):
    seen.append((scope["method"], scope["path"], scope["query_string"], scope["headers"]))
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})

async def main():
    config = Config(app=app, lifespan="off", access_log=False, date_header=False)
    config.load()
    loop = asyncio.get_running_loop()
    protocol = HTTPProtocol(ServerState(config, app, loop))
    transport = FakeTransport(loop)
    transport.set_protocol(protocol)
    protocol.connection_made(transport)
    protocol.data_received(b"GET /a?b HTTP/1.1\\r\\nHost: h\\r\\n\\r\\n" * 2)
    for _ in range(20):
        await asyncio.sleep(0)
    return transport.data

data = asyncio.run(main())
assert seen == [("GET", "/a", b"b", [(b"host", b"h")])] * 2, seen
assert data.count(b"HTTP/1.1 200 OK") == 2, data
print("python-scope")
"""


def _run_check(code: str) -> str:
    """``code`` in a fresh interpreter from the checkout's root; what it printed."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_without_the_accelerator_the_python_mask_is_used() -> None:
    assert _run_check(_FALLBACK_CHECK) == "python-mask"


def test_without_the_accelerator_the_head_rules_build_every_scope() -> None:
    assert _run_check(_HTTP_FALLBACK_CHECK) == "python-scope"


def test_a_failing_app_import_is_located_in_the_app_not_in_the_standard_library(
    tmp_path: Path,
) -> None:
    """json.decoder is a plain file on every version (os is frozen only from 3.11 on): the
    message names the app's line either way."""
    app = tmp_path / "broken_settings.py"
    app.write_text('import json\n\nSETTINGS = json.loads("{")\n')
    with pytest.raises(ValueError) as info:
        exec(compile(app.read_text(), str(app), "exec"), {})
    assert _where_raised(info.value) == f"{app}, line 3"


def test_installed_packages_and_the_app_are_not_taken_for_the_standard_library() -> None:
    """A pyenv or system Python keeps site-packages inside its stdlib directory."""
    assert _in_stdlib(json.decoder.__file__)
    assert not _in_stdlib(httpx.__file__)
    assert not _in_stdlib(__file__)
    assert not _in_stdlib(os.path.join(sysconfig.get_paths()["stdlib"], "site-packages", "x.py"))
