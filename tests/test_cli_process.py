"""The command line and the process model: app loading, binding, workers, reload, TLS, signals."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.support.servers import APPS, ROOT


def spawn_cli(*args: str, **popen: Any) -> subprocess.Popen[str]:
    """``krandog-asgi proc:app ARGS`` in the background, output merged into ``stdout``."""
    return subprocess.Popen(
        [sys.executable, "-m", "krandog_asgi", "proc:app", "--app-dir", str(APPS), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **popen,
    )


def run_cli(*args: str, timeout: float = 20, **popen: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "krandog_asgi", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=dict(os.environ, NO_COLOR="1"),
        **popen,
    )


# -- loading the app ------------------------------------------------------------------------


def test_bad_app_prints_one_clear_line_and_exits_1() -> None:
    """The process side; each kind of load failure and its line: tests/process/test_loader.py."""
    result = run_cli("nosuchmodule:app", "--app-dir", str(APPS), "--port", "0")
    assert result.returncode == 1
    output = (result.stdout + result.stderr).strip()
    assert 'Could not import module "nosuchmodule"' in output
    assert "Traceback" not in output
    assert len(output.splitlines()) == 1, output


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["single", "workers"])
def test_app_import_that_raises_names_file_and_line_and_debug_shows_the_traceback(
    tmp_path: Path, workers: list[str]
) -> None:
    (tmp_path / "exploding.py").write_text("import os\n\nSETTING = int(os.environ['NOPE_X'])\n")
    result = run_cli("exploding:app", "--app-dir", str(tmp_path), "--port", "0", *workers)
    assert result.returncode == 1
    output = (result.stdout + result.stderr).strip()
    assert output.splitlines() == [
        "ERROR:    Error loading ASGI app \"exploding:app\": KeyError: 'NOPE_X' "
        f"({tmp_path / 'exploding.py'}, line 3). Run with --log-level debug to see the traceback."
    ]
    debug = run_cli(
        "exploding:app", "--app-dir", str(tmp_path), "--port", "0", "--log-level", "debug"
    )
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "SETTING = int(os.environ['NOPE_X'])" in debug.stderr
    assert "Run with --log-level debug" not in debug.stderr


def test_bad_app_with_workers_fails_fast_in_parent() -> None:
    result = run_cli("nosuchmodule:app", "--workers", "2", "--port", "0")
    assert result.returncode == 1
    assert 'Could not import module "nosuchmodule"' in result.stderr
    assert "Started server process" not in result.stderr


def test_lifespan_startup_failure_exits_3() -> None:
    result = run_cli(
        "proc:failing_startup", "--app-dir", str(APPS), "--port", "0", "--lifespan", "on"
    )
    assert result.returncode == 3
    assert "no database" in result.stderr
    assert "Application startup failed" in result.stderr


def test_env_file(serve, tmp_path: Path) -> None:
    env_file = tmp_path / "app.env"
    env_file.write_text('# comment\nexport KRANDOG_TEST_VALUE="from env file"\n')
    server = serve("proc:app", "--env-file", str(env_file))
    assert httpx.get(server.url + "/").json()["env"] == "from env file"


# -- binding ----------------------------------------------------------------------------------


def test_ipv6_host(serve) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        pytest.skip("::1 is not configured on this machine")
    server = serve("proc:app", "--host", "::1")
    assert "http://[::1]:" in server.log
    data = httpx.get(f"http://[::1]:{server.port}/").json()
    assert data["server"][0] == "::1"
    assert data["client"][0] == "::1"


def test_unix_domain_socket(serve, tmp_path: Path) -> None:
    path = str(tmp_path / "krandog.sock")
    proc = spawn_cli("--uds", path)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.05)
        transport = httpx.HTTPTransport(uds=path)
        with httpx.Client(transport=transport) as client:
            data = client.get("http://localhost/uds").json()
        assert data["path"] == "/uds"
        assert data["client"] is None
    finally:
        proc.terminate()
        proc.wait(10)
    assert not os.path.exists(path)  # the socket file goes away with the server


def test_uds_exit_leaves_a_newer_servers_socket_alone(tmp_path: Path) -> None:
    """A second server on the same path (a rolling restart) replaces the socket; when the first
    one exits, it must not remove the second one's."""
    path = str(tmp_path / "shared.sock")

    def start() -> subprocess.Popen[str]:
        proc = spawn_cli("--uds", path)
        assert proc.stdout is not None
        for line in proc.stdout:
            if "running on unix socket" in line:
                return proc
        raise AssertionError("server did not start")

    first = start()
    second = start()
    try:
        first.terminate()
        assert first.wait(10) == 0
        transport = httpx.HTTPTransport(uds=path)
        with httpx.Client(transport=transport) as client:
            assert client.get("http://localhost/x").status_code == 200
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--log-config", "/nonexistent/log.json"], "cannot use --log-config"),
        (["--uds", "/nonexistent/dir/x.sock"], "Cannot bind to /nonexistent/dir/x.sock"),
    ],
    ids=["log-config", "uds-dir"],
)
def test_operational_errors_are_one_clear_line(flags: list[str], message: str) -> None:
    """A bad --env-file, --header or TLS file: in memory in test_cli.py and tests/process/."""
    result = run_cli("proc:app", "--app-dir", str(APPS), "--port", "0", *flags)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 1, output
    assert message in output
    assert "Traceback" not in output
    assert "Error loading ASGI app" not in output  # the app is fine
    # (binding happens after lifespan startup, as in uvicorn: its INFO lines come first)
    errors = [line for line in output.splitlines() if not line.startswith("INFO:")]
    assert len(errors) == 1, output


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["single", "workers"])
def test_bind_errors_name_the_address_in_every_mode(workers: list[str], tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        # Open in no process: the child's own descriptors are numbered from 3 up, so a number
        # freed here may be one the child holds (the event loop's wakeup socket, say).
        fd = 4000
        for flags, message in (
            (["--port", str(port)], f"Cannot bind to 127.0.0.1:{port}: Address already in use"),
            (
                ["--host", "nosuchhost.invalid", "--port", "0"],
                "Cannot bind to nosuchhost.invalid:0: unknown host 'nosuchhost.invalid'",
            ),
            (["--fd", str(fd)], f"Cannot bind to --fd {fd}: Bad file descriptor"),
            (
                ["--uds", str(tmp_path / "no" / "s.sock")],
                f"Cannot bind to {tmp_path / 'no' / 's.sock'}: No such file or directory",
            ),
        ):
            result = run_cli("proc:app", "--app-dir", str(APPS), *workers, *flags)
            output = (result.stdout + result.stderr).strip()
            assert result.returncode == 1, output
            errors = [line for line in output.splitlines() if not line.startswith("INFO:")]
            assert errors == [f"ERROR:    {message}"], output
            assert "Started server process" not in output or not workers


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("file", "Socket operation on non-socket"),
        ("connected", "not a listening socket"),
        ("datagram", "not a stream socket"),
    ],
)
def test_fd_refuses_a_descriptor_that_cannot_listen(kind: str, reason: str) -> None:
    if kind == "file":
        fd = os.open(os.devnull, os.O_RDONLY)
        keep: list[Any] = []
    elif kind == "connected":
        keep = list(socket.socketpair())
        fd = keep[0].fileno()
    else:
        keep = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM)]
        keep[0].bind(("127.0.0.1", 0))
        fd = keep[0].fileno()
    try:
        result = run_cli("proc:app", "--app-dir", str(APPS), "--fd", str(fd), pass_fds=[fd])
    finally:
        for sock in keep:
            sock.close()
        if kind == "file":
            os.close(fd)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 1, output
    errors = [line for line in output.splitlines() if not line.startswith("INFO:")]
    assert errors == [f"ERROR:    Cannot bind to --fd {fd}: {reason}"], output


def test_a_warning_has_its_warning_level_prefix() -> None:
    pytest.importorskip("watchfiles")
    proc = spawn_cli(
        "--port", "0", "--reload", "--workers", "2", env=dict(os.environ, NO_COLOR="1")
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
    assert first == 'WARNING:  "workers" is ignored when "reload" is enabled.\n'


def test_workers_fail_once_in_the_parent_for_bad_options(tmp_path: Path) -> None:
    """With --workers, a TLS file or a bind error fails in the parent with one line, instead of
    every worker failing and being respawned."""
    missing = str(tmp_path / "missing.pem")
    precious = tmp_path / "precious.txt"
    precious.write_text("keep")
    for flags, message in (
        (["--port", "0", "--ssl-certfile", missing], "Could not set up TLS"),
        (["--uds", str(precious)], "exists and is not a socket"),
    ):
        result = run_cli("proc:app", "--app-dir", str(APPS), "--workers", "2", *flags)
        output = (result.stdout + result.stderr).strip()
        assert result.returncode == 1, output
        assert message in output
        assert "Traceback" not in output
        assert "Started server process" not in output


def test_python_run_exits_nonzero_when_the_server_cannot_start() -> None:
    """Like uvicorn.run: a script that calls run() must not report success on failure."""
    code = (
        f"import sys; sys.path.insert(0, {str(APPS)!r}); import krandog_asgi; "
        "krandog_asgi.run('nosuchmodule:app', port=0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=20, cwd=ROOT
    )
    assert result.returncode == 1
    assert 'Could not import module "nosuchmodule"' in result.stderr


def test_header_flag_server_replaces_the_default(serve) -> None:
    server = serve("proc:app", "--header", "Server: custom", "--header", "X-Extra: 1")
    response = httpx.get(server.url + "/")
    assert response.headers.get_list("server") == ["custom"]
    assert response.headers["x-extra"] == "1"


@pytest.mark.parametrize("listening", [True, False], ids=["listening", "bound-only"])
def test_fd(listening: bool) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    if listening:
        sock.listen(16)
    port = sock.getsockname()[1]
    proc = spawn_cli("--fd", str(sock.fileno()), pass_fds=[sock.fileno()])
    sock.close()
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/fd").json()["path"] == "/fd"
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "server on --fd never answered"
                time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(10)


# -- TLS -------------------------------------------------------------------------------------


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[str, str, ssl.SSLContext]:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return str(cert_path), str(key_path), client_ctx


def test_tls_http_and_websocket_schemes(serve, tls_files) -> None:
    cert, key, client_ctx = tls_files
    server = serve("proc:app", "--ssl-certfile", cert, "--ssl-keyfile", key)
    assert server.url.startswith("https://")
    with httpx.Client(verify=client_ctx) as client:
        assert client.get(server.url + "/tls").json()["scheme"] == "https"

    async def ws() -> str:
        async with websockets.connect(server.ws_url + "/", ssl=client_ctx) as conn:
            return json.loads(await conn.recv())["scheme"]

    assert asyncio.run(ws()) == "wss"


def test_tls_client_certificate_required(serve, tls_files, tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    cert, key, client_ctx = tls_files
    client_ca = trustme.CA()
    ca_path = tmp_path / "client-ca.pem"
    client_ca.cert_pem.write_to_path(str(ca_path))
    server = serve(
        "proc:app",
        "--ssl-certfile",
        cert,
        "--ssl-keyfile",
        key,
        "--ssl-ca-certs",
        str(ca_path),
        "--ssl-cert-reqs",
        str(int(ssl.CERT_REQUIRED)),
    )
    with (
        pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)),
        httpx.Client(verify=client_ctx) as client,
    ):
        client.get(server.url + "/")
    client_cert = client_ca.issue_cert("client")
    client_cert.configure_cert(client_ctx)
    with httpx.Client(verify=client_ctx) as client:
        assert client.get(server.url + "/ok").status_code == 200


# -- workers ---------------------------------------------------------------------------------


def _pids(url: str, n: int) -> set[int]:
    pids = set()
    for _ in range(n):
        with httpx.Client() as client:  # a new connection each time: any worker may accept it
            pids.add(client.get(url).json()["pid"])
    return pids


def test_workers_share_the_socket_and_are_restarted(serve) -> None:
    server = serve("proc:app", "--workers", "2")
    assert server.wait_for_log(r"(?s)(Application startup complete.*){2}", timeout=15)
    assert server.log.count("running on") == 1  # the parent's, not one per worker
    started = [
        int(p) for p in __import__("re").findall(r"Started server process \[(\d+)\]", server.log)
    ]
    assert len(started) == 2
    pids = _pids(server.url + "/", 40)
    assert pids <= set(started)
    victim = started[0]
    os.kill(victim, signal.SIGKILL)
    assert server.wait_for_log(rf"Worker \[{victim}\] died", timeout=10)
    assert server.wait_for_log(r"(?s)(Application startup complete.*){3}", timeout=15)
    new = [
        int(p) for p in __import__("re").findall(r"Started server process \[(\d+)\]", server.log)
    ]
    assert len(new) == 3
    deadline = time.monotonic() + 10
    seen: set[int] = set()
    while time.monotonic() < deadline and not (seen - {started[1]}):
        seen |= _pids(server.url + "/", 10)
    assert victim not in seen
    assert new[2] in seen
    assert server.stop() == 0
    for pid in new[1:]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def _started(server: Any) -> list[int]:
    return [int(p) for p in re.findall(r"Started server process \[(\d+)\]", server.log)]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_stopped_worker_fails_its_health_check_and_is_replaced(serve) -> None:
    server = serve("proc:app", "--workers", "2", "--timeout-worker-healthcheck", "1")
    assert server.wait_for_log(r"(?s)(Application startup complete.*){2}", timeout=15)
    victim, _other = _started(server)
    os.kill(victim, signal.SIGSTOP)
    try:
        assert server.wait_for_log(
            rf"Worker \[{victim}\] did not answer a health check within 1s", timeout=10
        ), server.log
        assert server.wait_for_log(r"(?s)(Application startup complete.*){3}", timeout=15)
        assert _gone(victim)
        replacement = _started(server)[2]
        seen: set[int] = set()
        deadline = time.monotonic() + 10
        while replacement not in seen and time.monotonic() < deadline:
            seen |= _pids(server.url + "/", 10)
        assert replacement in seen
        assert victim not in seen
    finally:
        if not _gone(victim):
            os.kill(victim, signal.SIGKILL)
    assert server.stop() == 0
    assert "did not answer" not in server.log.replace(f"Worker [{victim}] did not answer", "")


def test_a_worker_whose_event_loop_is_blocked_is_replaced(serve) -> None:
    server = serve("proc:app", "--workers", "2", "--timeout-worker-healthcheck", "1")
    assert server.wait_for_log(r"(?s)(Application startup complete.*){2}", timeout=15)
    started = _started(server)
    with pytest.raises(httpx.HTTPError):  # the worker is killed while it blocks
        httpx.get(server.url + "/block/30", timeout=15)
    found = re.search(r"Worker \[(\d+)\] did not answer a health check", server.log)
    assert found, server.log
    victim = int(found.group(1))
    assert victim in started
    assert server.wait_for_log(r"(?s)(Application startup complete.*){3}", timeout=15)
    assert _gone(victim)
    assert victim not in _pids(server.url + "/", 10)
    assert server.stop() == 0


def test_healthy_workers_are_left_alone_and_zero_disables_the_check(serve) -> None:
    server = serve("proc:app", "--workers", "2", "--timeout-worker-healthcheck", "0")
    assert server.wait_for_log(r"(?s)(Application startup complete.*){2}", timeout=15)
    # a loop blocked for 2 s is not a failure when the check is off
    assert httpx.get(server.url + "/block/2", timeout=10).status_code == 200
    checked = serve("proc:app", "--workers", "2", "--timeout-worker-healthcheck", "0.5")
    assert checked.wait_for_log(r"(?s)(Application startup complete.*){2}", timeout=15)
    time.sleep(2)  # four ping rounds, each answered
    assert len(_started(checked)) == 2
    for srv in (server, checked):
        assert srv.stop() == 0
        assert "health check" not in srv.log


# -- reload ----------------------------------------------------------------------------------


def test_reload_restarts_on_change(serve, tmp_path: Path) -> None:
    pytest.importorskip("watchfiles")
    module = tmp_path / "reloadme.py"
    module.write_text(
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n        return\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': b'one'})\n"
    )
    server = serve(
        "reloadme:app",
        "--reload",
        "--reload-dir",
        str(tmp_path),
        "--app-dir",
        str(tmp_path),
        "--lifespan",
        "off",
    )
    assert httpx.get(server.url + "/").text == "one"
    time.sleep(0.6)  # let the watcher settle before the edit
    module.write_text(module.read_text().replace("b'one'", "b'two'"))
    assert server.wait_for_log("Reloading", timeout=15)
    deadline = time.monotonic() + 15
    text = ""
    while time.monotonic() < deadline and text != "two":
        try:
            text = httpx.get(server.url + "/").text
        except httpx.TransportError:
            time.sleep(0.1)
    assert text == "two"
    # the reloader announces the address once; each child says it started
    assert server.log.count("running on") == 1
    assert len(_started(server)) == 2


# -- signals and graceful shutdown -----------------------------------------------------------


def test_sigterm_finishes_in_flight_request_and_closes_idle_connections(serve) -> None:
    server = serve("proc:app", "--timeout-graceful-shutdown", "10")
    idle = socket.create_connection(("127.0.0.1", server.port))
    idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"200 OK" in idle.recv(65536)
    result: dict[str, object] = {}

    def slow() -> None:
        result["response"] = httpx.get(server.url + "/sleep/1.0", timeout=10)

    thread = threading.Thread(target=slow)
    thread.start()
    assert server.wait_for_log("", timeout=0.1)
    time.sleep(0.3)  # the slow request is in flight
    server.proc.send_signal(signal.SIGTERM)
    idle.settimeout(5)
    assert idle.recv(1) == b""  # the idle keep-alive connection is closed at once
    thread.join(10)
    response = result["response"]
    assert isinstance(response, httpx.Response)
    assert response.status_code == 200
    assert server.proc.wait(10) == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1)


def test_graceful_shutdown_timeout_cuts_stuck_requests(serve) -> None:
    server = serve("proc:ignores_shutdown", "--timeout-graceful-shutdown", "1")
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.3)
    started = time.monotonic()
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(10) == 0
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 5, elapsed
    sock.settimeout(2)
    assert sock.recv(1) == b""
    assert "Graceful shutdown timed out" in server.log
    # The cancelled request is logged without a status, and nothing crashes on the way.
    assert re.search(r'"GET / HTTP/1\.1" - 0 ', server.log), server.log
    assert "Traceback" not in server.log
    assert "never retrieved" not in server.log


def test_hung_lifespan_shutdown_is_bounded_by_the_graceful_timeout(serve) -> None:
    server = serve("proc:hangs_at_shutdown", "--timeout-graceful-shutdown", "1")
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(10) == 1  # the app did not shut down: not a clean exit
    assert time.monotonic() - started < 5
    assert "Application shutdown did not complete within 1.0s" in server.log


def test_graceful_timeout_zero_from_python_means_no_bound() -> None:
    """``timeout_graceful_shutdown=0`` is "wait forever" (as ``--timeout-graceful-shutdown 0``),
    not "give up at once": the app's one-second shutdown handler completes."""
    code = (
        f"import sys; sys.path.insert(0, {str(APPS)!r}); import krandog_asgi; "
        "krandog_asgi.run('proc:slow_shutdown', port=0, timeout_graceful_shutdown=0)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "running on" in line:
                break
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    assert "Application shutdown complete" in output


def test_second_ctrl_c_ends_a_hung_lifespan_shutdown(serve) -> None:
    server = serve("proc:hangs_at_shutdown", "--timeout-graceful-shutdown", "60")
    server.proc.send_signal(signal.SIGINT)
    assert server.wait_for_log("Waiting for application shutdown", timeout=5)
    time.sleep(0.3)
    started = time.monotonic()
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(10) == 1
    assert time.monotonic() - started < 3


def test_shutdown_closes_websockets_with_1012(serve) -> None:
    server = serve("proc:app")

    async def main() -> int | None:
        async with websockets.connect(server.ws_url + "/") as ws:
            await ws.recv()
            server.proc.send_signal(signal.SIGTERM)
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            return ws.close_code

    assert asyncio.run(main()) == 1012
    assert server.proc.wait(10) == 0
