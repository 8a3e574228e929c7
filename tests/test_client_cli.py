"""``krandog-asgi connect``: lines in, messages out, exit status from the close code."""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.certs import Certificates, make_certificates
from tests.support.peers import STEP, krandog_server

ROOT = Path(__file__).resolve().parents[1]


class Client:
    """``krandog-asgi connect`` in a subprocess, read line by line with timeouts."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "krandog_asgi", "connect", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def read(self) -> str | None:
        return self.lines.get(timeout=STEP)

    def finish(self) -> tuple[int, str]:
        """Close stdin (end of input) and wait for the exit; returns (status, stderr)."""
        assert self.proc.stdin is not None
        if not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            status = self.proc.wait(STEP)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        assert self.proc.stderr is not None
        return status, self.proc.stderr.read()


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "krandog_asgi", "connect", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with krandog_server() as server:
        yield server.ws_url


def test_lines_are_sent_and_messages_printed(url: str) -> None:
    client = Client(url + "/echo")
    client.send("hello")
    assert client.read() == "hello"
    client.send("wörld ✓")
    assert client.read() == "wörld ✓"
    client.send("")
    assert client.read() == ""
    status, stderr = client.finish()
    assert status == 0
    assert f"connected to {url}/echo" in stderr
    assert "closed: 1000 (normal closure)" in stderr


@pytest.mark.parametrize(
    ("size", "flags", "shown"),
    [
        (4, [], "<binary, 4 bytes: 00000000>"),
        (100, [], "<binary, 100 bytes: " + "00" * 64 + "...>"),
        (100, ["--binary", "length"], "<binary, 100 bytes>"),
    ],
)
def test_binary_messages_as_hex_or_length(
    url: str, size: int, flags: list[str], shown: str
) -> None:
    client = Client(f"{url}/big/{size}", *flags)
    assert client.read() == shown
    assert client.finish()[0] == 0


def test_subprotocol_and_headers(url: str) -> None:
    client = Client(url + "/headers", "-s", "chat", "--subprotocol", "v2", "-H", "X-Token: a:b")
    line = client.read()
    assert line is not None
    headers = json.loads(line)
    assert headers["x-token"] == "a:b"
    assert headers["sec-websocket-protocol"] == "chat, v2"
    status, stderr = client.finish()
    assert status == 0
    assert "(subprotocol chat; permessage-deflate" in stderr


def test_no_compression_flag(url: str) -> None:
    client = Client(url + "/echo", "--no-compression")
    client.send("x")
    assert client.read() == "x"
    status, stderr = client.finish()
    assert status == 0
    assert "permessage-deflate" not in stderr


def test_exit_status_tells_how_the_connection_closed(url: str) -> None:
    result = run_cli(url + "/close/4000")
    assert result.returncode == 1
    assert "closed: 4000 (application-defined code) 'bye'" in result.stderr
    result = run_cli(url + "/close/1001")
    assert result.returncode == 0
    assert "closed: 1001 (going away) 'bye'" in result.stderr


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("http//nope", "Invalid WebSocket URL"),
        ("ws://127.0.0.1:9/", "Cannot connect to ws://127.0.0.1:9/"),
        ("{url}/deny", "Server refused the WebSocket handshake: HTTP 403"),
    ],
)
def test_connection_failures_exit_3(url: str, target: str, message: str) -> None:
    result = run_cli(target.format(url=url))
    assert result.returncode == 3
    assert message in result.stderr


def test_missing_ca_file_exits_3(tmp_path: Path) -> None:
    result = run_cli("wss://127.0.0.1:9/", "--ca-file", str(tmp_path / "missing.pem"))
    assert result.returncode == 3
    assert result.stderr.startswith("error: [Errno 2]")


def test_usage_errors_exit_2() -> None:
    result = run_cli("ws://127.0.0.1:9/", "--header", "no colon")
    assert result.returncode == 2
    assert "expected 'Name: value'" in result.stderr


def test_ctrl_c_closes_normally(url: str) -> None:
    client = Client(url + "/echo")
    client.send("ready?")
    assert client.read() == "ready?"
    client.proc.send_signal(signal.SIGINT)
    status, stderr = client.finish()
    assert status == 0
    assert "closed: 1000 (normal closure)" in stderr


def test_ctrl_c_while_connecting_exits_130_without_a_traceback() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:  # accepts, never answers
        listener.settimeout(STEP)
        port = listener.getsockname()[1]
        client = Client(f"ws://127.0.0.1:{port}/")
        try:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(STEP)
                assert conn.recv(4096).startswith(b"GET / HTTP/1.1")  # the handshake is pending
                client.proc.send_signal(signal.SIGINT)
                status, stderr = client.finish()
                assert conn.recv(4096) == b""  # the client dropped the connection
        finally:
            if client.proc.poll() is None:
                client.proc.kill()
    assert status == 130, stderr
    assert stderr == "interrupted while connecting\n"


def test_wait_keeps_printing_after_end_of_input(url: str) -> None:
    result = run_cli(url + "/echo", "--wait", "1", stdin="one\ntwo\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "one\ntwo\n"


@pytest.fixture(scope="module")
def tls_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Certificates]]:
    certs = make_certificates(tmp_path_factory.mktemp("certs"), "localhost", "127.0.0.1")
    with krandog_server(certs) as server:
        yield server.ws_url, certs


def test_self_signed_tls_needs_insecure_or_a_ca_file(tls_url: tuple[str, Certificates]) -> None:
    url, certs = tls_url
    refused = run_cli(url + "/close/1000")
    assert refused.returncode == 3
    assert "certificate verify failed" in refused.stderr
    insecure = run_cli(url + "/close/1000", "--insecure")
    assert insecure.returncode == 0, insecure.stderr
    trusted = run_cli(url + "/close/1000", "--ca-file", str(certs.cafile))
    assert trusted.returncode == 0, trusted.stderr
