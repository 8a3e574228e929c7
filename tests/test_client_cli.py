"""``krandog-asgi connect``: lines in, messages out, exit status from the close code."""

from __future__ import annotations

import json
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from krandog_asgi.wsclient.commands import Close, Help, Ping, Send, Usage, parse_line
from tests.support.certs import Certificates, make_certificates
from tests.support.peers import STEP, krandog_server
from tests.support.recording import RecordingServer

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


def run_cli(*args: str, stdin: str | None = "") -> subprocess.CompletedProcess[str]:
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


# -- piped input, --execute, -c --------------------------------------------------------------


@pytest.fixture(scope="module")
def recorder() -> Iterator[RecordingServer]:
    with RecordingServer() as srv:
        yield srv


def fresh(recorder: RecordingServer, name: str) -> str:
    recorder.path = f"/{name}"
    return recorder.url


def test_piped_lines_wait_for_late_replies_by_default(recorder: RecordingServer) -> None:
    """stdin ends at once; the replies (one 0.5 s late) are still printed, then 1000."""
    url = fresh(recorder, "late")
    result = run_cli(url, stdin="first\npush:0.5:late reply\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "first\nlate reply\n"
    assert recorder.closes.get(timeout=STEP) == (1000, "")


def test_piped_input_closes_after_wait_seconds_without_replies(recorder: RecordingServer) -> None:
    url = fresh(recorder, "silent")
    started = time.monotonic()
    result = run_cli(url, "--wait", "0.5", stdin="push:30:never in time\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert time.monotonic() - started < 20  # not the 30 s of the push
    assert recorder.closes.get(timeout=STEP) == (1000, "")


def test_a_server_that_never_stops_sending_gets_wait_seconds_after_the_replies(
    recorder: RecordingServer,
) -> None:
    url = fresh(recorder, "stream")
    result = run_cli(url, "--wait", "0.5", stdin="stream\n")
    assert result.returncode == 0, result.stderr
    ticks = result.stdout.splitlines()
    assert len(ticks) > 3
    assert set(ticks) == {"tick"}
    assert recorder.closes.get(timeout=STEP) == (1000, "")


def test_wait_zero_closes_as_soon_as_input_ends(recorder: RecordingServer) -> None:
    url = fresh(recorder, "nowait")
    result = run_cli(url, "-w", "0", stdin="push:1:too late\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert recorder.next_message() == "push:1:too late"


def test_execute_sends_each_message_waits_for_replies_and_ignores_stdin(
    recorder: RecordingServer,
) -> None:
    url = fresh(recorder, "execute")
    result = run_cli(url, "-x", "one", "--execute", "push:0.3:two", stdin="not sent\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "one\ntwo\n"
    assert [recorder.next_message(), recorder.next_message()] == ["one", "push:0.3:two"]
    assert recorder.received.empty()


def test_slash_flag_enables_commands_for_piped_input(recorder: RecordingServer) -> None:
    url = fresh(recorder, "slash")
    result = run_cli(url, "--slash", stdin="/binary hex 0102\n/close 4002 scripted\n")
    assert result.returncode == 1, result.stderr
    assert recorder.next_message() == b"\x01\x02"
    assert recorder.closes.get(timeout=STEP) == (4002, "scripted")
    plain = run_cli(fresh(recorder, "noslash"), stdin="/close 4002\n")
    assert plain.stdout == "/close 4002\n"  # without --slash it is just text: echoed back


def test_dash_c_takes_the_url_as_wscat_does(recorder: RecordingServer) -> None:
    url = fresh(recorder, "dash-c")
    result = run_cli("-c", url, "-x", "hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hi\n"
    both = run_cli(url, "-c", url)
    assert both.returncode == 2
    assert "give the URL once" in both.stderr
    neither = run_cli()
    assert neither.returncode == 2
    assert "the URL is missing" in neither.stderr


def test_a_misspelt_option_gets_did_you_mean() -> None:
    result = run_cli("ws://127.0.0.1:9/", "--wiat", "1")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "krandog-asgi connect: error: unrecognized arguments: --wiat 1 (did you mean --wait?)",
        "Run 'krandog-asgi connect --help' for the options.",
    ]


# -- slash commands, parsed ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "action"),
    [
        ("hello", Send("hello")),
        ("", Send("")),
        ("//etc", Send("/etc")),
        ("/ping", Ping(None)),
        ("/ping abc", Ping(b"abc")),
        ("/binary hex 00ff", Send(b"\x00\xff")),
        ("/binary text héllo", Send("héllo".encode())),
        ("/binary raw words", Send(b"raw words")),
        ("/close", Close(1000, "")),
        ("/close 4000", Close(4000, "")),
        ("/close 3001 see you soon", Close(3001, "see you soon")),
        ("/help", Help()),
    ],
)
def test_parse_line(line: str, action: object) -> None:
    assert parse_line(line) == action


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("/binary", "/binary needs data"),
        ("/binary hex zz", "not hex digits"),
        ("/close abc", "the code must be a number"),
        ("/close 1006", "1000 or 3000-4999, not 1006"),
        ("/close 5000", "1000 or 3000-4999, not 5000"),
        ("/close 4000 " + "x" * 124, "longer than 123 bytes"),
        ("/frobnicate", "unknown command /frobnicate"),
    ],
)
def test_parse_line_refuses_what_cannot_be_sent(line: str, message: str) -> None:
    action = parse_line(line)
    assert isinstance(action, Usage)
    assert message in action.message


def test_without_commands_every_line_is_text() -> None:
    assert parse_line("/close 4000", commands=False) == Send("/close 4000")


def test_connect_help_wraps_at_80_columns() -> None:
    import os

    result = subprocess.run(
        [sys.executable, "-m", "krandog_asgi", "connect", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env=dict(os.environ, COLUMNS="80"),
    )
    assert result.returncode == 0
    assert result.stdout.startswith("usage: krandog-asgi connect [-c] URL [options]\n")
    assert all(len(line) <= 80 for line in result.stdout.splitlines())
    for option in ("--execute", "--wait", "--slash", "--history-file"):
        assert option in result.stdout
    # argparse names the metavar once, after the long form, from Python 3.13 on.
    assert re.search(r"^  -c( URL)?, --connect URL\s", result.stdout, re.MULTILINE), result.stdout
