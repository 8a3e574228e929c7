"""Ratio bar charts from committed raw results: one group of bars per workload.

    python bench/plot.py bench/results/<label>      # docs/images/bench-http.png, bench-ws.png
    python bench/plot.py bench/results/<label> --out /tmp/plots --baseline uvicorn

Each bar is the median of the per-round ratios against the baseline (bench/report.py), so the
charts show exactly what the tables say. For ws-idle the ratio is baseline KiB / server KiB:
above 1.0 is better everywhere. Needs matplotlib (bench/requirements.txt).
"""

from __future__ import annotations

import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import report
from measure import WORKLOADS

HERE = os.path.dirname(os.path.abspath(__file__))
ORDER = ["uvicorn", "uvicorn-sansio", "hypercorn", "granian", "socketify", "krandog"]
COLORS = {
    "uvicorn": "#9e9e9e",
    "uvicorn-sansio": "#c7c7c7",
    "hypercorn": "#8c6d31",
    "granian": "#e6a03c",
    "socketify": "#5b8dd6",
    "krandog": "#2e9e5b",
}


def chart(rows: list[dict], family: str, baseline: str, title: str, path: str) -> None:
    workloads = [w for w in WORKLOADS if WORKLOADS[w].family == family]
    workloads = [w for w in workloads if any(r["workload"] == w for r in rows)]
    if not workloads:
        return
    present = {r["server"] for r in rows if r["workload"] in workloads and r["ratio"]}
    servers = [s for s in ORDER if s in present] + sorted(present - set(ORDER))
    width = 0.8 / len(servers)
    fig, ax = plt.subplots(figsize=(1.9 * len(workloads) + 2, 4.2), dpi=110)
    for i, server in enumerate(servers):
        xs, ys = [], []
        for j, workload in enumerate(workloads):
            row = next(
                (r for r in rows if r["workload"] == workload and r["server"] == server), None
            )
            if row and row["ratio"]:
                xs.append(j - 0.4 + width * (i + 0.5))
                ys.append(row["ratio"])
        bars = ax.bar(xs, ys, width, label=server, color=COLORS.get(server, "#777777"))
        for bar, y in zip(bars, ys, strict=True):
            ax.annotate(
                f"{y:.2f}",
                (bar.get_x() + bar.get_width() / 2, y),
                ha="center",
                va="bottom",
                fontsize=7,
                rotation=90 if len(servers) > 4 else 0,
                xytext=(0, 2),
                textcoords="offset points",
            )
    ax.axhline(1.0, color="#444444", linewidth=0.8, linestyle="--")
    ax.set_xticks(range(len(workloads)))
    ax.set_xticklabels([w if w != "ws-idle" else "ws-idle\n(less memory)" for w in workloads])
    ax.set_ylabel(f"x {baseline} (median of per-round ratios)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, ncol=len(servers), loc="upper left", frameon=False)
    ax.set_ylim(0, max(r["ratio"] for r in rows if r["ratio"]) * 1.25)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", help="a bench/results/<label> folder")
    parser.add_argument("--baseline", default="uvicorn")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "docs", "images"))
    args = parser.parse_args()
    rows = report.summary(report.load(args.results), args.baseline)
    meta_path = os.path.join(args.results, "meta.json")
    meta = {}
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
    stamp = f"{meta.get('started', '')[:10]}, commit {meta.get('commit', '?')}, " + (
        f"{meta.get('rounds', '?')} rounds x {meta.get('duration', '?')} s"
    )
    if meta.get("note"):
        stamp += f" — {meta['note']}"
    os.makedirs(args.out, exist_ok=True)
    for family, name in (("http", "HTTP"), ("ws", "WebSocket")):
        title = f"{name}: each server relative to {args.baseline} (higher is better)\n{stamp}"
        chart(rows, family, args.baseline, title, os.path.join(args.out, f"bench-{family}.png"))


if __name__ == "__main__":
    main()
