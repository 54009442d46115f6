#!/usr/bin/env bash
# Instructions the server runs per flow, by thread, under callgrind: repeatable for the same
# build whatever else the machine is doing, so it can rank changes too small for flows/s.
#
# Usage: crates/bench/callgrind.sh BIN_DIR OUT_PREFIX [FLOWS]
#   e.g. crates/bench/callgrind.sh target/release /tmp/cg-before 2000
# Seeds a fresh SQLite database as run.sh does, starts `oauthd serve` under valgrind with
# collection off, runs 50 flows (every first-time cost), switches collection on for FLOWS
# more (default 2000) at concurrency C (default 1), stops the server and prints each
# thread's total from OUT_PREFIX.<pid>-<thread>: 01 is the request thread; which one is the
# writer (write_loop) or hashes the measured run's logins (Argon2, one per virtual user)
# `callgrind_annotate --inclusive=yes FILE | head -30` shows.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:?usage: callgrind.sh BIN_DIR OUT_PREFIX [FLOWS]}
OUT_PREFIX=${2:?usage: callgrind.sh BIN_DIR OUT_PREFIX [FLOWS]}
FLOWS=${3:-2000}
PORT=${PORT:-8081}
# shellcheck source=crates/bench/seed.sh
. "$ROOT/crates/bench/seed.sh"
WORK=$(mktemp -d)
SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
export OAUTHD_DATABASE_URL="sqlite://$WORK/oauthd.db"
seed_oauthd "$BIN" "$WORK"
OAUTHD_CLIENT_REQUESTS_PER_SECOND=0 OAUTHD_LOG=warn setsid taskset -c "${SERVER_CPU:-0}" \
  valgrind --tool=callgrind --separate-threads=yes --instr-atstart=no \
  --callgrind-out-file="$OUT_PREFIX.%p" "$BIN/oauthd" serve --listen "127.0.0.1:$PORT" \
  > "$WORK/oauthd.log" 2>&1 < /dev/null &
SERVER_PID=$!
for _ in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$PORT/healthz" > /dev/null && break
  sleep 0.2
done
bench() {
  taskset -c "${DRIVER_CPU:-1}" "$BIN/oauthd-bench" --base-url "http://127.0.0.1:$PORT" \
    --scope api --introspect-client-secret "$(rs_secret "$WORK")" \
    --concurrency "${C:-1}" --duration 600 --warmup 0 --max-flows "$1"
}
bench 50 > /dev/null
callgrind_control -i on "$SERVER_PID" > /dev/null 2>&1
bench "$FLOWS" | grep -E '^flows'
callgrind_control -i off "$SERVER_PID" > /dev/null 2>&1
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
pid=$SERVER_PID
SERVER_PID=
for f in "$OUT_PREFIX.$pid"-*; do
  total=$(callgrind_annotate "$f" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
  echo "$f: $total instructions, $((total / FLOWS)) per flow"
done
