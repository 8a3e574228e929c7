"""The benchmark harness in bench/ (issue 12): the numbers it reports must mean what they say.

Unit tests of its parsing and arithmetic (servers.txt, wrk's output, per-round ratios and
medians), and one short real run of the C WebSocket load generator against our server.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import measure  # noqa: E402
import report  # noqa: E402

WRK_OUTPUT = """Running 4s test @ http://127.0.0.1:8000/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   845.12us  210.33us   9.87ms   90.12%
  Latency Distribution
     50%  812.00us
     75%    0.91ms
     90%    1.02ms
     99%    1.73ms
  291234 requests in 4.00s, 38.04MB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 1, write 0, timeout 2
Requests/sec:  72808.50
Transfer/sec:      9.51MB
"""


def test_wrk_output_is_parsed_into_rate_latency_and_errors() -> None:
    parsed = measure.parse_wrk(WRK_OUTPUT)
    assert parsed["rate"] == 72808.5
    assert parsed["requests"] == 291234
    assert parsed["p50_ms"] == pytest.approx(0.812)
    assert parsed["p99_ms"] == pytest.approx(1.73)
    assert parsed["non2xx"] == 3
    assert parsed["socket_errors"] == 3


def test_servers_file_lists_names_families_probes_and_optional_servers(tmp_path: Path) -> None:
    path = tmp_path / "servers.txt"
    path.write_text(
        "# comment\n\n"
        "a | http,ws | true | run-a --port $PORT\n"
        "~b | ws,-ws-idle | test -x x | run-b | with a pipe\n"
    )
    a, b = measure.load_servers(str(path))
    assert (a.name, a.kinds, a.probe, a.command, a.optional) == (
        "a",
        ("http", "ws"),
        "true",
        "run-a --port $PORT",
        False,
    )
    assert b.name == "b"
    assert b.optional
    assert b.command == "run-b | with a pipe"
    assert b.runs("ws-echo-256")
    assert not b.runs("ws-idle")
    assert not b.runs("plaintext")


def test_the_committed_servers_file_has_every_peer_the_issue_names() -> None:
    names = {s.name for s in measure.load_servers(str(BENCH / "servers.txt"))}
    assert {"uvicorn", "uvicorn-sansio", "granian", "socketify", "krandog"} <= names
    assert {"raw-httptools", "raw-picows"} <= names  # the limits every ratio is read against


def test_the_raw_http_limit_answers_every_bench_route_as_the_asgi_app_does(tmp_path: Path) -> None:
    """bench/apps/raw_limit.py --kind http: the same bodies, framing and keep-alive."""
    import httpx

    env = measure.server_env(sys.prefix, sys.executable)
    command = f"{sys.executable} raw_limit.py --kind http --port $PORT"
    srv = measure.Server(command, env, "0", str(tmp_path / "server.log"))
    try:
        srv.wait_ready()
        with httpx.Client(base_url=f"http://127.0.0.1:{srv.port}") as client:
            hello = client.get("/")
            data = client.get("/json")
            echo = client.post("/echo", content=b"x" * 16384)
            stream = client.get("/stream")
            missing = client.get("/nope")
    finally:
        srv.stop()
    assert (hello.status_code, hello.content) == (200, b"Hello, world!")
    assert data.json() == {"message": "Hello, world!"}
    assert echo.content == b"x" * 16384
    assert stream.headers["transfer-encoding"] == "chunked"
    assert stream.content == b"s" * (16 * 65536)
    assert missing.status_code == 404


def record(server: str, workload: str, rnd: int, value: float | None, **extra: Any) -> dict:
    return {"server": server, "workload": workload, "round": rnd, "value": value, **extra}


def test_ratio_is_the_median_of_per_round_ratios() -> None:
    records = [
        record("uvicorn", "plaintext", 0, 100.0),
        record("krandog", "plaintext", 0, 200.0),
        record("uvicorn", "plaintext", 1, 50.0),  # a slow round: both were slow
        record("krandog", "plaintext", 1, 90.0),
        record("uvicorn", "plaintext", 2, 100.0),
        record("krandog", "plaintext", 2, 210.0),
    ]
    rows = {r["server"]: r for r in report.summary(records, "uvicorn")}
    assert rows["krandog"]["ratio"] == pytest.approx(2.0)  # median of 2.0, 1.8, 2.1
    assert rows["krandog"]["value"] == 200.0
    assert rows["uvicorn"]["ratio"] == pytest.approx(1.0)


def test_memory_ratio_is_inverted_so_that_above_one_is_better() -> None:
    records = [
        record("uvicorn", "ws-idle", 0, 27.0),
        record("krandog", "ws-idle", 0, 6.0),
    ]
    rows = {r["server"]: r for r in report.summary(records, "uvicorn")}
    assert rows["krandog"]["ratio"] == pytest.approx(4.5)


def test_failed_runs_are_counted_and_left_out_of_the_medians() -> None:
    records = [
        record("uvicorn", "json", 0, 100.0, server_cpu=1.0),
        record("socketify", "json", 0, None, error="server exited with status 139"),
        record("socketify", "json", 1, 150.0, server_cpu=0.9, errors=0),
        record("uvicorn", "json", 1, 100.0, server_cpu=1.0),
    ]
    rows = {r["server"]: r for r in report.summary(records, "uvicorn")}
    assert rows["socketify"]["failed"] == 1
    assert rows["socketify"]["value"] == 150.0
    assert rows["socketify"]["ratio"] == pytest.approx(1.5)
    assert rows["uvicorn"]["us_per_op"] == pytest.approx(10_000.0)  # 1.0 CPU / 100 per s
    table = report.markdown(records, "uvicorn")
    assert "| socketify | 150 | 1.50x |" in table
    assert "server exited with status 139" in table


@pytest.mark.skipif(
    shutil.which("gcc") is None and shutil.which("cc") is None, reason="no C compiler"
)
def test_the_websocket_load_generator_measures_our_echo_server(tmp_path: Path) -> None:
    """Built from bench/loadgen/wsbench.c, 1 s of echo against a real krandog-asgi."""
    wsbench = measure.build_wsbench()
    env = measure.server_env(sys.prefix, sys.executable)
    spec = measure.ServerSpec(
        "krandog",
        ("ws",),
        "true",
        f"{sys.executable} -m krandog_asgi bench_app:app --host 127.0.0.1 --port $PORT "
        "--log-level warning --no-access-log",
        False,
    )
    srv = measure.Server(spec.command, env, "0", str(tmp_path / "server.log"))
    try:
        srv.wait_ready()
        argv = [wsbench, "--port", str(srv.port), "--conns", "4", "--size", "100"]
        argv += ["--duration", "0.5", "--warmup", "0.2"]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        idle = [wsbench, "--port", str(srv.port), "--mode", "idle", "--conns", "20"]
        held = subprocess.run([*idle, "--hold", "0.1"], capture_output=True, text=True, timeout=30)
    finally:
        srv.stop()
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["open"] == 4
    assert result["dead"] == 0
    assert result["msgs"] > 100
    assert result["mb_per_s"] == pytest.approx(result["msgs_per_s"] * 100 / 1e6, rel=0.01)
    assert 0 < result["p50_us"] <= result["p99_us"]
    assert held.stdout.startswith("READY 20\n")
