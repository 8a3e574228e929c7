#!/usr/bin/env bash
# Side-by-side benchmarks of krandog-asgi against uvicorn (and granian) with the shared harness.
#
#   bench/run.sh                                   # all servers in servers.txt, all workloads
#   bench/run.sh --servers uvicorn,krandog --workloads plaintext,stream1m --rounds 5
#
# The harness (../shared/bench: wrk for HTTP, a C WebSocket load generator, server and load
# pinned to different cores, interleaved rounds, paired ratios) is copied to bench/.harness
# (git-ignored), its venv gets the pinned peers plus this checkout, and compare.py runs with
# bench/servers.txt. Results: bench/results/*.jsonl; the table is printed at the end.
# Env: SHARED_BENCH (default ../shared/bench), BENCH_VENV (default bench/.venv).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
SHARED="${SHARED_BENCH:-$ROOT/../shared/bench}"
HARNESS="$HERE/.harness"
export BENCH_VENV="${BENCH_VENV:-$HERE/.venv}"

if [ ! -f "$SHARED/compare.py" ]; then
  echo "bench/run.sh: the shared harness was not found at $SHARED (set SHARED_BENCH)" >&2
  exit 2
fi
if [ ! -f "$HARNESS/compare.py" ] || [ "$SHARED/bench.py" -nt "$HARNESS/bench.py" ]; then
  rm -rf "$HARNESS"
  cp -r "$SHARED" "$HARNESS"
  rm -rf "$HARNESS/.venv" "$HARNESS/results" "$HARNESS/build"
fi
if [ ! -x "$HARNESS/build/wsload" ] || [ ! -x "$BENCH_VENV/bin/uvicorn" ]; then
  (cd "$HARNESS" && ./setup.sh)
fi
"$BENCH_VENV/bin/pip" install -q -e "$ROOT"
mkdir -p "$HERE/results"
out="$HERE/results/run-$(date +%Y%m%d-%H%M%S).jsonl"
cd "$HARNESS"
python3 compare.py --servers-file "$HERE/servers.txt" --out "$out" "$@"
echo "results: $out"
