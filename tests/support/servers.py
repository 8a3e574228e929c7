"""Real servers in subprocesses, on free loopback ports, for the socket tests.

``start_server("module:attr", *flags)`` runs ``python -m krandog_asgi`` with ``--app-dir
tests/apps`` and ``--port 0``, waits for the "running on" line and returns a ``RunningServer``;
``module_server`` is the same as a context manager that also checks, at the end, that the
server exited cleanly and logged no fault of its own. ``wait_until`` polls for what a server
does in its own time.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
APPS = TESTS / "apps"
ROOT = TESTS.parent
RUNNING = re.compile(r"running on (https?)://(\[[^\]]+\]|[^:]+):(\d+)")


@dataclass
class RunningServer:
    proc: subprocess.Popen[str]
    scheme: str
    host: str
    port: int
    lines: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return ("wss" if self.scheme == "https" else "ws") + f"://{self.host}:{self.port}"

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def wait_for_log(self, pattern: str, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.log):
                return True
            time.sleep(0.02)
        return False

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def _pump(proc: subprocess.Popen[str], lines: list[str]) -> None:
    assert proc.stdout is not None
    lines.extend(proc.stdout)  # appends line by line as the server writes


def start_server(
    app: str,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 15.0,
    cwd: Path | None = None,
) -> RunningServer:
    cmd = [sys.executable, "-m", "krandog_asgi", app, "--app-dir", str(APPS)]
    if "--port" not in args and "--uds" not in args and "--fd" not in args:
        cmd += ["--port", "0"]
    cmd += list(args)
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", NO_COLOR="1")
    if env:
        full_env.update(env)
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=full_env,
        cwd=str(cwd or ROOT),
        start_new_session=True,
    )
    lines: list[str] = []
    threading.Thread(target=_pump, args=(proc, lines), daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in lines:
            match = RUNNING.search(line)
            if match:
                host = match.group(2).strip("[]")
                host = f"[{host}]" if ":" in host else host
                return RunningServer(proc, match.group(1), host, int(match.group(3)), lines)
        if proc.poll() is not None:
            time.sleep(0.1)
            raise RuntimeError(f"server exited with {proc.returncode}:\n{''.join(lines)}")
        time.sleep(0.02)
    proc.kill()
    raise RuntimeError("server did not start:\n" + "".join(lines))


def wait_until(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``check`` (every 20 ms, at most ``timeout`` seconds) for something a server does in
    its own time; the result of a last check once the time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def raw_request(port: int, data: bytes, *, timeout: float = 2.0, host: str = "127.0.0.1") -> bytes:
    """Send raw bytes, read until the server closes or ``timeout`` passes without data."""
    with socket.create_connection((host.strip("[]"), port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


# Log lines that mean the server itself misbehaved (not the app): never expected in any test.
SERVER_FAULTS = re.compile(
    r"Task exception was never retrieved|Exception in callback|Error in connection timer"
    r"|socket\.send\(\) raised exception|Fatal error|Unhandled error|RecursionError"
    r"|Exception in 'lifespan'|Task was destroyed|ResourceWarning"
)


def assert_clean_log(server: RunningServer) -> None:
    """No asyncio or protocol errors in the server output (app exceptions are fine)."""
    faults = [line for line in server.lines if SERVER_FAULTS.search(line)]
    assert not faults, "".join(faults)


@contextlib.contextmanager
def module_server(app: str, *flags: str) -> Iterator[RunningServer]:
    server = start_server(app, *flags)
    try:
        yield server
    finally:
        code = server.stop()
        assert code == 0, f"server exited with {code}:\n{server.log[-3000:]}"
        assert_clean_log(server)
