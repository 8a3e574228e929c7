"""What the krandog compat layer costs: a krandog echo handler vs a raw ASGI echo app.

Both run on krandog-asgi (one worker, pinned to ``--server-cpu``), driven by the same
WebSocket load from the C generator ``wsload`` (pinned to ``--client-cpu``): N connections,
each sending a message and waiting for its echo before sending the next. Every run starts
fresh servers; the figure is the median over rounds of the per-round ratio
krandog msgs/s / ASGI msgs/s (target >= 0.85).

``--mode interleaved`` (default) runs one server at a time, the variants alternating within
each round (A B, then B A, ...). ``--mode paired`` runs them at the same time on the same CPUs,
so that other tenants of a shared machine disturb both alike.

    python bench/compat/run.py                       # 5 rounds x 5 s, 16 conns, 32 B text
    python bench/compat/run.py --mode paired --rounds 9
    python bench/compat/run.py --rounds 9 --conns 64 --variants asgi,krandog,krandog-async

``wsload`` is taken from ``--wsload`` or ``$WSLOAD``, else built with ``cc -O2`` from
``--wsload-src`` (default ``bench/loadgen/wsbench.c``) into ``bench/compat/build/``.
Only loopback is used; every run is bounded in time; only processes started here are stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BUILD = HERE / "build"
DEFAULT_SRC = ROOT / "bench" / "loadgen" / "wsbench.c"
VARIANTS = {
    "asgi": "apps:asgi_echo",
    "krandog": "apps:krandog_echo",
    "krandog-async": "apps:krandog_async_echo",
}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def find_wsload(explicit: str | None, source: Path) -> Path:
    for candidate in (explicit, os.environ.get("WSLOAD"), str(BUILD / "wsload")):
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    if not source.exists():
        sys.exit(f"wsload not found and its source {source} is missing (use --wsload-src)")
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        sys.exit(
            "wsload must be built but there is no C compiler (apt-get install build-essential)"
        )
    BUILD.mkdir(exist_ok=True)
    target = BUILD / "wsload"
    subprocess.run([compiler, "-O2", "-o", str(target), str(source)], check=True, timeout=120)
    print(f"built {target} from {source}", file=sys.stderr)
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not listen on {port} within {timeout} s")


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (the server is a single process with --workers 1)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: only what we started
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def run_together(
    variants: list[str], args: argparse.Namespace, wsload: Path
) -> list[dict[str, Any]]:
    """Start one fresh server per variant, load them all at the same time, stop them.

    With one variant this is a plain run. With several (``--mode paired``) the servers share
    the server CPU and the generators share the client CPU, so every variant sees the same
    interference from other tenants, and the scheduler gives each server the same CPU share:
    the ratio of their msgs/s is then the ratio of their costs per message.
    """
    servers: list[tuple[str, int, subprocess.Popen[bytes]]] = []
    loads: list[subprocess.Popen[str]] = []
    try:
        for variant in variants:
            port = free_port()
            server_cmd = [
                "taskset", "-c", str(args.server_cpu),
                sys.executable, "-m", "krandog_asgi", VARIANTS[variant],
                "--app-dir", str(HERE), "--host", "127.0.0.1", "--port", str(port),
                "--log-level", "warning", "--no-access-log",
            ]  # fmt: skip
            proc = subprocess.Popen(server_cmd, cwd=ROOT, start_new_session=True)
            servers.append((variant, port, proc))
        for _, port, proc in servers:
            wait_for_port(port, proc)
        for _, port, _ in servers:
            load_cmd = [
                "taskset", "-c", str(args.client_cpu), str(wsload),
                "--host", "127.0.0.1", "--port", str(port), "--path", "/echo",
                "--mode", "echo", "--conns", str(args.conns), "--size", str(args.size),
                "--duration", str(args.duration), "--warmup", str(args.warmup),
            ] + (["--binary"] if args.binary else [])  # fmt: skip
            loads.append(
                subprocess.Popen(
                    load_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
                )
            )
        # Server CPU over (about) wsload's measuring window: it starts after the warm-up.
        time.sleep(args.warmup)
        cpu0 = [cpu_seconds(proc.pid) for _, _, proc in servers]
        wall0 = time.monotonic()
        outputs = [load.communicate(timeout=args.duration + args.warmup + 90) for load in loads]
        cpu1 = [cpu_seconds(proc.pid) for _, _, proc in servers]
        wall1 = time.monotonic()
    finally:
        for load in loads:
            if load.poll() is None:
                load.kill()
                load.wait(5)
        for _, _, proc in servers:
            stop(proc)
    results = []
    for i, (variant, _, _) in enumerate(servers):
        stdout, stderr = outputs[i]
        if loads[i].returncode != 0:
            raise RuntimeError(f"wsload failed ({loads[i].returncode}): {stdout} {stderr}")
        result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
        if result.get("dead") or result.get("open") != args.conns:
            raise RuntimeError(f"connections failed during the run: {result}")
        cpu = cpu1[i] - cpu0[i]
        result["variant"] = variant
        result["mode"] = args.mode
        result["server_cpu"] = round(cpu / (wall1 - wall0), 3)
        # CPU time per echoed message: hardly disturbed by other tenants of the machine.
        result["server_us_per_msg"] = round(cpu / max(result["msgs"], 1) * 1e6, 2)
        results.append(result)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--conns", type=int, default=16)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--binary", action="store_true")
    parser.add_argument("--variants", default="asgi,krandog")
    parser.add_argument(
        "--mode",
        choices=["interleaved", "paired"],
        default="interleaved",
        help="interleaved: one server at a time, variants alternating (A B, B A, ...); "
        "paired: all variants at once on the same CPUs (robust to other tenants)",
    )
    parser.add_argument("--server-cpu", type=int, default=int(os.environ.get("SERVER_CPU", 0)))
    parser.add_argument("--client-cpu", type=int, default=int(os.environ.get("CLIENT_CPU", 1)))
    parser.add_argument("--wsload")
    parser.add_argument("--wsload-src", type=Path, default=DEFAULT_SRC)
    parser.add_argument("--out", type=Path, help="append every run as a JSON line here")
    args = parser.parse_args()
    variants = args.variants.split(",")
    for variant in variants:
        if variant not in VARIANTS:
            parser.error(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    if not 1 <= args.rounds <= 50 or not 0 < args.duration <= 60 or args.conns > 1000:
        parser.error("keep it bounded: 1-50 rounds, duration up to 60 s, up to 1000 conns")
    wsload = find_wsload(args.wsload, args.wsload_src)

    runs: list[dict[str, Any]] = []
    for round_no in range(args.rounds):
        order = variants if round_no % 2 == 0 else variants[::-1]
        if args.mode == "paired":
            results = run_together(order, args, wsload)
        else:
            results = [run_together([variant], args, wsload)[0] for variant in order]
        for result in results:
            result["round"] = round_no
            runs.append(result)
            print(
                f"round {round_no} {result['variant']:14s} {result['msgs_per_s']:10.0f} msg/s  "
                f"p99 {result['p99_us']:6.0f} us  server CPU {result['server_cpu']:.2f} "
                f"({result['server_us_per_msg']:5.1f} us/msg)  "
                f"wsload CPU {result['client_cpu']:.2f}",
                flush=True,
            )
            if args.out:
                with args.out.open("a") as f:
                    f.write(json.dumps(result) + "\n")
    print()
    kind = "binary" if args.binary else "text"
    print(
        f"{args.mode}: {args.rounds} rounds x {args.duration:g} s, {args.conns} conns, "
        f"{args.size} B {kind}, server CPU {args.server_cpu}, wsload CPU {args.client_cpu}"
    )
    base = variants[0]
    per_round: dict[int, dict[str, float]] = {r["round"]: {} for r in runs}
    for r in runs:
        per_round[r["round"]][r["variant"]] = r["msgs_per_s"]
    print(
        f"| variant | median msg/s | min | max | median ratio vs {base} | ratio range "
        f"| server CPU us/msg (median) | CPU ratio vs {base} |"
    )
    print("|---|---:|---:|---:|---:|---|---:|---:|")
    cpu_base = statistics.median(r["server_us_per_msg"] for r in runs if r["variant"] == base)
    for variant in variants:
        rates = [r["msgs_per_s"] for r in runs if r["variant"] == variant]
        ratios = [rounds[variant] / rounds[base] for rounds in per_round.values()]
        cpu = statistics.median(r["server_us_per_msg"] for r in runs if r["variant"] == variant)
        print(
            f"| {variant} | {statistics.median(rates):,.0f} | {min(rates):,.0f} | "
            f"{max(rates):,.0f} | {statistics.median(ratios):.3f} | "
            f"{min(ratios):.3f}-{max(ratios):.3f} | {cpu:.2f} | {cpu_base / cpu:.3f} |"
        )


if __name__ == "__main__":
    main()
