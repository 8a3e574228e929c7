"""Side-by-side benchmarks of krandog-asgi and the servers people would pick instead.

    python bench/run.py --rounds 3 --duration 4                 # every server, every workload
    python bench/run.py --servers uvicorn,krandog --workloads plaintext,ws-echo-256 --rounds 5
    python bench/run.py --label quiet-2026-12-07 --peers /path/to/venv

Rounds are interleaved (round 1: every workload on every server, then round 2, ...) and every
run starts a fresh single-worker server pinned to --server-cpu, with the load generator on
--client-cpu. One progress line per run on stderr; each run appends one JSON record to
bench/results/<label>/results.jsonl (with meta.json beside it), and the table of medians and
per-round ratios is printed at the end (again later: python bench/report.py <folder>).

The peers (bench/requirements.txt) come from --peers (default: bench/.venv, made by
bench/run.sh); krandog-asgi runs with the interpreter that runs this script.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time

import measure
import report

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="workloads: " + ", ".join(measure.WORKLOADS),
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=4.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of load before it")
    parser.add_argument("--servers", help="comma-separated names (default: every non-optional)")
    parser.add_argument("--workloads", help="comma-separated names (default: all)")
    parser.add_argument("--baseline", default="uvicorn", help="the server ratios are taken to")
    parser.add_argument("--label", help="results folder name (default: the date and time)")
    parser.add_argument("--note", default="", help="free text stored in meta.json")
    parser.add_argument("--peers", default=os.environ.get("BENCH_PEERS", f"{HERE}/.venv"))
    parser.add_argument("--servers-file", default=os.path.join(HERE, "servers.txt"))
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter for $PYTHON (krandog-asgi), e.g. a Python 3.12 or 3.13 venv's",
    )
    parser.add_argument("--server-cpu", default="0", help="taskset CPU list, e.g. 0 or 0,1")
    parser.add_argument("--client-cpu", default="1", help="taskset CPU list, e.g. 1 or 2,3")
    parser.add_argument("--wrk-threads", type=int, default=1)
    return parser.parse_args(argv)


def _pick_servers(args: argparse.Namespace, env: dict[str, str]) -> list[measure.ServerSpec]:
    specs = measure.load_servers(args.servers_file)
    if args.servers:
        wanted = args.servers.split(",")
        unknown = set(wanted) - {s.name for s in specs}
        if unknown:
            sys.exit(f"run.py: unknown servers {sorted(unknown)} (see {args.servers_file})")
        specs = [s for s in specs if s.name in wanted]
    else:
        specs = [s for s in specs if not s.optional]
    chosen = []
    for spec in specs:
        if measure.available(spec, env):
            chosen.append(spec)
        else:
            print(f"# skipped {spec.name}: not installed ({spec.probe})", file=sys.stderr)
    return chosen


def _git(*argv: str) -> str:
    done = subprocess.run(["git", "-C", ROOT, *argv], capture_output=True, text=True)
    return done.stdout.strip()


def _meta(args: argparse.Namespace, servers: list[measure.ServerSpec]) -> dict[str, object]:
    freeze = subprocess.run(
        [os.path.join(args.peers, "bin", "python"), "-m", "pip", "freeze"],
        capture_output=True,
        text=True,
    ).stdout.split()
    peers = [
        p
        for p in freeze
        if p.split("==")[0].lower()
        in {"uvicorn", "granian", "socketify", "hypercorn", "websockets", "uvloop", "httptools"}
    ]
    return {
        "command": shlex.join(["python", "bench/run.py", *sys.argv[1:]]),
        "note": args.note,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "python": platform.python_version(),
        "krandog_python": subprocess.run(
            [args.python, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
        ).stdout.strip(),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "server_cpu": args.server_cpu,
        "client_cpu": args.client_cpu,
        "wrk_threads": args.wrk_threads,
        "rounds": args.rounds,
        "duration": args.duration,
        "warmup": args.warmup,
        "servers": {s.name: s.command for s in servers},
        "peers": peers,
    }


def _write_meta(path: str, meta: dict[str, object]) -> None:
    """meta.json: the first invocation's fields; later ones into the same folder are listed."""
    if os.path.exists(path):
        with open(path) as f:
            first = json.load(f)
        first.setdefault("more", []).append(meta)
        meta = first
    with open(path, "w") as f:
        json.dump(meta, f, indent=1)


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    workloads = args.workloads.split(",") if args.workloads else list(measure.WORKLOADS)
    unknown = set(workloads) - set(measure.WORKLOADS)
    if unknown:
        sys.exit(f"run.py: unknown workloads {sorted(unknown)}; known: {list(measure.WORKLOADS)}")
    env = measure.server_env(os.path.abspath(args.peers), args.python)
    servers = _pick_servers(args, env)
    if not servers:
        sys.exit("run.py: no server to run (install the peers: bench/run.sh does)")
    if any(measure.WORKLOADS[w].family == "ws" for w in workloads):
        measure.build_wsbench()
    measure.raise_fd_limit()
    measure.WRK_THREADS = args.wrk_threads
    label = args.label or time.strftime("%Y%m%d-%H%M%S")
    folder = os.path.join(HERE, "results", label)
    os.makedirs(os.path.join(folder, "logs"), exist_ok=True)
    _write_meta(os.path.join(folder, "meta.json"), _meta(args, servers))
    plan = [
        (rnd, w, s) for rnd in range(args.rounds) for w in workloads for s in servers if s.runs(w)
    ]
    print(f"# {len(plan)} runs -> {folder}/results.jsonl", file=sys.stderr, flush=True)
    start, records = time.monotonic(), []
    with open(os.path.join(folder, "results.jsonl"), "a") as out:
        for i, (rnd, workload, spec) in enumerate(plan, 1):
            record = measure.run_once(
                spec,
                workload,
                env,
                duration=args.duration,
                warmup=args.warmup,
                server_cpu=args.server_cpu,
                client_cpu=args.client_cpu,
                log_path=os.path.join(folder, "logs", f"{spec.name}-{workload}.log"),
            )
            record["round"] = rnd
            records.append(record)
            out.write(json.dumps(record) + "\n")
            out.flush()
            _progress(i, len(plan), time.monotonic() - start, record)
    print(f"# {len(plan)} runs in {time.monotonic() - start:.0f} s", file=sys.stderr)
    sys.stdout.write(report.markdown(records, args.baseline))


def _progress(i: int, total: int, elapsed: float, r: dict) -> None:
    value = "FAILED" if r.get("value") is None else f"{r['value']:>12,.1f} {r['unit']}"
    extra = f"  p99 {r['p99_ms']:.2f} ms" if r.get("p99_ms") is not None else ""
    if r.get("server_cpu") is not None:
        extra += f"  srv cpu {r['server_cpu']:.2f}"
    if r.get("error"):
        extra += f"  ! {r['error'][:120]}"
    line = f"[{i:>3}/{total} {elapsed:5.0f}s] r{r['round']} {r['workload']:<11} {r['server']:<14}"
    print(f"{line} {value}{extra}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
