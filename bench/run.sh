#!/usr/bin/env bash
# One command for the side-by-side benchmarks: makes bench/.venv (the pinned peers of
# bench/requirements.txt, socketify if it builds, and this checkout), then runs bench/run.py
# with it. Every argument goes to run.py:
#
#   bench/run.sh --rounds 3 --duration 4
#   bench/run.sh --servers uvicorn,krandog --workloads plaintext,ws-echo-256 --rounds 5
#
# Needs: Linux, python3.10+, gcc, wrk, taskset, 2+ cores. Env: BENCH_VENV (default bench/.venv).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
VENV="${BENCH_VENV:-$HERE/.venv}"

for tool in wrk taskset gcc; do
  command -v "$tool" >/dev/null || { echo "bench/run.sh: $tool is missing (Debian: apt-get install wrk util-linux gcc)" >&2; exit 2; }
done
if [ ! -x "$VENV/bin/uvicorn" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r "$HERE/requirements.txt"
  "$VENV/bin/pip" install -q socketify==0.0.31 || echo "bench/run.sh: socketify did not build; it is skipped" >&2
fi
"$VENV/bin/pip" install -q -e "$ROOT"
exec "$VENV/bin/python" "$HERE/run.py" --peers "$VENV" "$@"
