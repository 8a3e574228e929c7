"""Tables from raw results: medians per server and the median of per-round ratios.

    python bench/report.py bench/results/<label>             # Markdown table
    python bench/report.py bench/results/<label> --baseline uvicorn-sansio

A ratio is taken inside one round (server value / baseline value, both measured minutes
apart on the same machine) and the median is over rounds, so drifts of a shared machine
cancel. For ws-idle (KiB per connection) lower is better and the ratio is baseline / server,
so that above 1.0 always means better than the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from typing import Any

from measure import WORKLOADS


def load(path: str) -> list[dict[str, Any]]:
    """Records of a results folder (results.jsonl) or of one JSONL file."""
    if os.path.isdir(path):
        path = os.path.join(path, "results.jsonl")
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def ratios(records: list[dict[str, Any]], workload: str, baseline: str) -> dict[str, list[float]]:
    """Per server, the per-round ratios against ``baseline`` (better > 1)."""
    higher = WORKLOADS[workload].higher_is_better
    runs = [r for r in records if r["workload"] == workload and r.get("value")]
    base = {r["round"]: r["value"] for r in runs if r["server"] == baseline}
    out: dict[str, list[float]] = {}
    for r in runs:
        b = base.get(r["round"])
        if b:
            out.setdefault(r["server"], []).append(r["value"] / b if higher else b / r["value"])
    return out


def summary(records: list[dict[str, Any]], baseline: str) -> list[dict[str, Any]]:
    """One row per (workload, server): medians, ratio, spread, server CPU per operation."""
    servers = list(dict.fromkeys(r["server"] for r in records))
    rows = []
    for workload in WORKLOADS:
        runs = [r for r in records if r["workload"] == workload]
        if not runs:
            continue
        per_server = ratios(records, workload, baseline)
        for server in servers:
            mine = [r for r in runs if r["server"] == server]
            if not mine:
                continue
            values = [r["value"] for r in mine if r.get("value") is not None]
            per_op = [
                r["server_cpu"] * 1e6 / r["value"]
                for r in mine
                if r.get("value") and r.get("server_cpu") is not None
            ]
            med = median(values)
            rows.append(
                {
                    "workload": workload,
                    "server": server,
                    "value": med,
                    "spread": (max(values) - min(values)) / med if med else None,
                    "ratio": median(per_server.get(server, [])),
                    # wrk times a pipelined batch, not a request: no latency for it
                    "p99_ms": None
                    if workload in ("pipelined", "ws-idle")
                    else median([r.get("p99_ms") for r in mine]),
                    "server_cpu": median([r.get("server_cpu") for r in mine]),
                    "us_per_op": median(per_op) if workload != "ws-idle" else None,
                    "runs": len(mine),
                    "failed": sum(1 for r in mine if r.get("value") is None or r.get("errors")),
                    "errors": [r["error"] for r in mine if r.get("error")],
                }
            )
    return rows


def _fmt(v: float | None, digits: int | None = None) -> str:
    if v is None:
        return "-"
    if digits is None:
        digits = 0 if abs(v) >= 100 else 1 if abs(v) >= 10 else 2
    return f"{v:,.{digits}f}"


def markdown(records: list[dict[str, Any]], baseline: str = "uvicorn") -> str:
    lines = []
    rows = summary(records, baseline)
    for workload, w in WORKLOADS.items():
        mine = [row for row in rows if row["workload"] == workload]
        if not mine:
            continue
        better = "higher" if w.higher_is_better else "lower"
        lines.append(f"\n### {workload}: {w.what} ({w.unit}, {better} is better)\n")
        per = "MB" if w.unit == "MB/s" else "op"
        lines.append(
            f"| server | median {w.unit} | ratio vs {baseline} | spread | p99 ms "
            f"| srv CPU | srv µs/{per} | runs | failed |"
        )
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for row in mine:
            ratio = f"{row['ratio']:.2f}x" if row["ratio"] is not None else "-"
            spread = f"{row['spread'] * 100:.0f}%" if row["spread"] is not None else "-"
            lines.append(
                f"| {row['server']} | {_fmt(row['value'])} | {ratio} | {spread} "
                f"| {_fmt(row['p99_ms'], 2)} | {_fmt(row['server_cpu'], 2)} "
                f"| {_fmt(row['us_per_op'], 1)} | {row['runs']} | {row['failed']} |"
            )
        lines.extend(f"\n- {row['server']}: {e}" for row in mine for e in row["errors"][:2])
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", help="a bench/results/<label> folder or a JSONL file")
    parser.add_argument("--baseline", default="uvicorn")
    args = parser.parse_args()
    sys.stdout.write(markdown(load(args.results), args.baseline))


if __name__ == "__main__":
    main()
