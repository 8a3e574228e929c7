"""One benchmark run: start a server, put one workload on it, stop it, return one record.

The server runs pinned to one CPU (``taskset``), the load generator to another: wrk for HTTP,
``loadgen/wsbench`` (our C client, built on first use) for WebSocket. Every run starts a fresh
server in its own session and stops that process group only, so nothing else on the machine
is touched. The server's CPU time (its process tree, from /proc) is read around the measured
window: ``server_cpu`` near 1.0 means the server, not the generator, was the limit.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
APPS = os.path.join(HERE, "apps")
LUA = os.path.join(HERE, "lua")
WSBENCH_SRC = os.path.join(HERE, "loadgen", "wsbench.c")
WSBENCH = os.path.join(HERE, "loadgen", "build", "wsbench")


@dataclass(frozen=True)
class Workload:
    name: str
    family: str  # "http" or "ws"
    unit: str
    what: str
    higher_is_better: bool = True


WORKLOADS = {
    w.name: w
    for w in (
        Workload("plaintext", "http", "req/s", "GET / 13 B text, 64 keep-alive conns"),
        Workload("json", "http", "req/s", "GET /json small JSON, 64 conns"),
        Workload("pipelined", "http", "req/s", "GET / 16 requests per write, 64 conns"),
        Workload("post16k", "http", "req/s", "POST /echo 16 KiB body echoed, 64 conns"),
        Workload("stream1m", "http", "MB/s", "GET /stream 1 MiB in 16 x 64 KiB chunks, 16 conns"),
        Workload("ws-echo-256", "ws", "msg/s", "WS echo 32 B text, 256 conns, request-response"),
        Workload("ws-tput", "ws", "MB/s", "WS echo 64 KiB binary, 1 conn, request-response"),
        Workload("ws-bcast", "ws", "deliveries/s", "WS 32 B to 500 conns, one round at a time"),
        Workload("ws-idle", "ws", "KiB/conn", "server RSS per idle WS conn (5,000)", False),
    )
}
IDLE_CONNS = 5000
# wrk threads (run.py --wrk-threads): 1 fits one client core; more when the server has several
# workers on several cores and one wrk thread would be the limit.
WRK_THREADS = 1


@dataclass(frozen=True)
class ServerSpec:
    name: str
    kinds: tuple[str, ...]  # families ("http", "ws"), and "-workload" for one left out
    probe: str
    command: str
    optional: bool

    def runs(self, workload: str) -> bool:
        return WORKLOADS[workload].family in self.kinds and f"-{workload}" not in self.kinds


def load_servers(path: str) -> list[ServerSpec]:
    """Parse servers.txt: ``name | kinds | probe | command``; ``~name`` is opt-in."""
    specs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, kinds, probe, command = (part.strip() for part in line.split("|", 3))
            optional = name.startswith("~")
            specs.append(
                ServerSpec(name.lstrip("~"), tuple(kinds.split(",")), probe, command, optional)
            )
    return specs


def server_env(peers: str, python: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PEERS"] = peers
    env["PYTHON"] = python
    env["PYTHONUNBUFFERED"] = "1"
    return env


def available(spec: ServerSpec, env: dict[str, str]) -> bool:
    probe = subprocess.run(["bash", "-c", spec.probe], env=env, capture_output=True, cwd=APPS)
    return probe.returncode == 0


def build_wsbench() -> str:
    """Compile the WebSocket load generator when it is missing or older than its source."""
    if not os.path.exists(WSBENCH) or os.path.getmtime(WSBENCH) < os.path.getmtime(WSBENCH_SRC):
        os.makedirs(os.path.dirname(WSBENCH), exist_ok=True)
        cc = shutil.which("gcc") or shutil.which("cc") or "cc"
        subprocess.run([cc, "-O2", "-Wall", "-o", WSBENCH, WSBENCH_SRC], check=True)
    return WSBENCH


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


# -- the server process --------------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(ppid, []).append(int(entry))
    return tree


def process_tree(root: int) -> list[int]:
    tree, out, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(tree.get(pid, ()))
    return out


_TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int) -> float:
    total = 0.0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / _TICK
    return total


def tree_rss_kib(root: int) -> int:
    total = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/status") as f:
                match = re.search(r"^VmRSS:\s+(\d+)", f.read(), re.M)
        except OSError:
            continue
        if match:
            total += int(match.group(1))
    return total


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """A server under test, in its own session so that stopping it signals its group only."""

    def __init__(self, command: str, env: dict[str, str], cpu: str, log_path: str) -> None:
        self.port = _free_port()
        env = {**env, "PORT": str(self.port)}
        self.log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        # exec: taskset execs bash, which execs the server, so the PID we hold is the server's.
        self.proc = subprocess.Popen(
            ["taskset", "-c", cpu, "bash", "-c", "exec " + command],
            cwd=APPS,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with status {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    time.sleep(0.3)  # servers with a supervisor finish starting their worker
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not listen within 30 s")

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(5.0)
                deadline = time.monotonic() + 2.0
                while time.monotonic() < deadline:  # children of the group
                    os.killpg(self.proc.pid, 0)
                    time.sleep(0.05)
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        self.log.close()


# -- HTTP with wrk -------------------------------------------------------------------------------


def _wrk_argv(workload: str, port: int, seconds: int) -> list[str]:
    url = f"http://127.0.0.1:{port}"
    conns = 16 if workload == "stream1m" else 64
    argv = ["wrk", f"-t{WRK_THREADS}", f"-c{conns}", f"-d{seconds}s", "--latency"]
    argv += ["--timeout", "5s"]
    target = {
        "plaintext": [url + "/"],
        "json": [url + "/json"],
        "pipelined": ["-s", os.path.join(LUA, "pipeline.lua"), url + "/", "--", "16"],
        "post16k": ["-s", os.path.join(LUA, "post16k.lua"), url + "/echo"],
        "stream1m": [url + "/stream"],
    }
    return argv + target[workload]


def _ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    if not match:
        raise ValueError(text)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[match.group(2)]
    return float(match.group(1)) * scale


def parse_wrk(out: str) -> dict[str, Any]:
    def number(pattern: str) -> float:
        match = re.search(pattern, out, re.M)
        return float(match.group(1)) if match else 0.0

    result: dict[str, Any] = {
        "rate": number(r"Requests/sec:\s*([\d.]+)"),
        "requests": int(number(r"(\d+) requests in")),
        "non2xx": int(number(r"Non-2xx or 3xx responses:\s*(\d+)")),
    }
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["socket_errors"] = sum(int(x) for x in errors.groups()) if errors else 0
    for q in ("50", "99"):
        match = re.search(rf"^\s+{q}(?:\.000)?%\s+(\S+)", out, re.M)
        result[f"p{q}_ms"] = _ms(match.group(1)) if match else None
    return result


def _check_http(port: int) -> None:
    """The app answers as expected, so a server that serves errors fast cannot win."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
        body = response.read()
    if body != b"Hello, world!":
        raise RuntimeError(f"GET / answered {body[:40]!r}")


def _client(argv: list[str], cpu: str, timeout: float) -> str:
    """Run the load generator pinned to ``cpu``; its stdout."""
    proc = subprocess.Popen(
        ["taskset", "-c", cpu, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuntimeError(f"{os.path.basename(argv[0])} timed out") from None
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {err.decode()[-300:]} {out.decode()[-300:]}")
    return out.decode()


def measure_http(srv: Server, workload: str, duration: float, warmup: float, cpu: str) -> dict:
    _check_http(srv.port)
    if warmup > 0:
        _client(_wrk_argv(workload, srv.port, max(1, round(warmup))), cpu, warmup + 30)
    seconds = max(1, round(duration))
    cpu0, t0 = tree_cpu_seconds(srv.proc.pid), time.monotonic()
    client0 = _children_cpu()
    out = _client(_wrk_argv(workload, srv.port, seconds), cpu, seconds + 30)
    wall = time.monotonic() - t0
    server_cpu = (tree_cpu_seconds(srv.proc.pid) - cpu0) / wall
    client_cpu = (_children_cpu() - client0) / wall
    wrk = parse_wrk(out)
    value = wrk["rate"]
    if workload == "stream1m":
        value = wrk["rate"] * 1048576 / 1e6
    errors = wrk["non2xx"] + wrk["socket_errors"] + (wrk["requests"] == 0)
    return {
        "value": round(value, 2),
        "p50_ms": wrk["p50_ms"],
        "p99_ms": wrk["p99_ms"],
        "errors": errors,
        "operations": wrk["requests"],
        "server_cpu": round(server_cpu, 3),
        "client_cpu": round(client_cpu, 3),
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- WebSocket with wsbench ----------------------------------------------------------------------


def _ws_argv(workload: str, port: int, duration: float, warmup: float) -> list[str]:
    common = [WSBENCH, "--port", str(port), "--duration", str(duration), "--warmup", str(warmup)]
    bcast = ["--path", "/broadcast", "--mode", "bcast", "--conns", "500", "--size", "32"]
    target = {
        "ws-echo-256": ["--path", "/echo", "--conns", "256", "--size", "32"],
        "ws-tput": ["--path", "/echo", "--conns", "1", "--size", "65536", "--binary"],
        "ws-bcast": bcast,
    }
    return common + target[workload]


def measure_ws(srv: Server, workload: str, duration: float, warmup: float, cpu: str) -> dict:
    if workload == "ws-idle":
        return measure_idle(srv, cpu)
    cpu0, t0 = tree_cpu_seconds(srv.proc.pid), time.monotonic()
    out = _client(_ws_argv(workload, srv.port, duration, warmup), cpu, duration + warmup + 60)
    wall = time.monotonic() - t0
    server_cpu = (tree_cpu_seconds(srv.proc.pid) - cpu0) / wall  # warm-up included: same load
    result = json.loads(out.strip().splitlines()[-1])
    if "error" in result:
        raise RuntimeError(result["error"])
    if workload == "ws-tput":
        value, operations = result["mb_per_s"], result["msgs"]
    elif workload == "ws-bcast":
        value, operations = result["deliveries_per_s"], result["deliveries"]
    else:
        value, operations = result["msgs_per_s"], result["msgs"]
    return {
        "value": value,
        "p50_ms": result["p50_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
        "errors": result["conns"] - result["open"] + result["dead"] + (operations == 0),
        "operations": operations,
        "server_cpu": round(server_cpu, 3),
        "client_cpu": result["client_cpu"],
    }


def measure_idle(srv: Server, cpu: str, conns: int = IDLE_CONNS, hold: float = 2.5) -> dict:
    """RSS growth of the server's process tree per open idle connection."""
    port = str(srv.port)
    warm = [WSBENCH, "--port", port, "--path", "/idle", "--mode", "idle", "--conns", "10"]
    _client([*warm, "--hold", "0.2"], cpu, 30)  # lazily imported WebSocket code is loaded
    time.sleep(0.3)
    before = tree_rss_kib(srv.proc.pid)
    argv = [WSBENCH, "--port", port, "--path", "/idle", "--mode", "idle", "--conns", str(conns)]
    proc = subprocess.Popen(
        ["taskset", "-c", cpu, *argv, "--hold", str(hold)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    ready = proc.stdout.readline()
    if not ready.startswith("READY"):
        proc.kill()
        proc.communicate()
        raise RuntimeError(f"idle client: {ready.strip()}")
    opened = int(ready.split()[1])
    time.sleep(0.8)  # the server finishes the last handshakes and settles
    after = tree_rss_kib(srv.proc.pid)
    proc.communicate(timeout=hold + 30)
    return {
        "value": round((after - before) / opened, 2) if opened else None,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "operations": opened,
        "errors": conns - opened,
    }


def run_once(
    spec: ServerSpec,
    workload: str,
    env: dict[str, str],
    *,
    duration: float,
    warmup: float,
    server_cpu: str,
    client_cpu: str,
    log_path: str,
) -> dict[str, Any]:
    """One fresh server, one workload: the record (``value`` None and ``error`` on failure)."""
    w = WORKLOADS[workload]
    record: dict[str, Any] = {"server": spec.name, "workload": workload, "unit": w.unit}
    record["time"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    record["load1"] = round(os.getloadavg()[0], 2)
    srv = Server(spec.command, env, server_cpu, log_path)
    try:
        srv.wait_ready()
        measure = measure_http if w.family == "http" else measure_ws
        record.update(measure(srv, workload, duration, warmup, client_cpu))
        if srv.proc.poll() is not None:
            record["errors"] = record.get("errors", 0) + 1
            record["error"] = "the server died during the run"
    except Exception as exc:  # one failed run must not end the comparison
        record["value"] = None
        record["error"] = str(exc)[-300:]
    finally:
        srv.stop()
    return record
