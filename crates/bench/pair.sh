#!/usr/bin/env bash
# Paired A/B of two oauthd builds on SQLite: both servers pinned to CPU 0 and both drivers to
# CPU 1, at the same time, so the machine's drift (±15 % between sequential runs here) hits both
# alike. Absolute numbers are worse than run.sh's (two servers share a core); compare the two.
#
# Usage: crates/bench/pair.sh LABEL CONCURRENCY SECONDS TARGET_DIR_A TARGET_DIR_B
#   each TARGET_DIR holds release/oauthd and release/oauthd-bench (a CARGO_TARGET_DIR)
# Env:   OUT   results directory (default target/bench-results): LABEL-<dir name>.json
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LABEL=${1:?usage}; CONC=${2:?usage}; SECS=${3:?usage}; shift 3
[ $# = 2 ] || { echo "usage: pair.sh LABEL CONCURRENCY SECONDS DIR_A DIR_B" >&2; exit 2; }
OUT=${OUT:-$ROOT/target/bench-results}
mkdir -p "$OUT"
SERVERS=()
cleanup() { for p in "${SERVERS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
i=0
for d in "$@"; do
  i=$((i + 1)); W=$ROOT/target/bench-pair$i; rm -rf "$W"; mkdir -p "$W"
  export OAUTHD_DATABASE_URL="sqlite://$W/oauthd.db"
  B=$d/release
  "$B/oauthd" user create --username bench --password bench-password > /dev/null
  "$B/oauthd" client create --name "Bench App" --client-id bench-public \
    --redirect-uri myapp://oauth2redirect --scope api --trusted --access-token-ttl 86400 > /dev/null 2>&1
  "$B/oauthd" client create --kind resource-server --client-id bench-rs --name "Bench API" \
    --json > "$W/rs.json"
  "$B/oauthd-bench" seed --database "$OAUTHD_DATABASE_URL" --client-id bench-public \
    --username bench --grants 1000 > /dev/null
  OAUTHD_CLIENT_REQUESTS_PER_SECOND=0 OAUTHD_LOG=warn setsid taskset -c 0 "$B/oauthd" serve \
    --listen 127.0.0.1:$((8090 + i)) > "$W/oauthd.log" 2>&1 < /dev/null &
  SERVERS+=($!)
done
sleep 1
DRIVERS=(); i=0
for d in "$@"; do
  i=$((i + 1)); W=$ROOT/target/bench-pair$i
  RS=$(sed -n 's/.*"client_secret": *"\([^"]*\)".*/\1/p' "$W/rs.json")
  taskset -c 1 "$d/release/oauthd-bench" --base-url "http://127.0.0.1:$((8090 + i))" \
    --label "$LABEL-$(basename "$d")" --server-pid "${SERVERS[$((i - 1))]}" \
    --json "$OUT/$LABEL-$(basename "$d").json" --scope api --introspect-client-secret "$RS" \
    --concurrency "$CONC" --duration "$SECS" --warmup 4 > "$W/bench.txt" 2>&1 &
  DRIVERS+=($!)
done
wait "${DRIVERS[@]}"
for d in "$@"; do
  python3 "$ROOT/crates/bench/table.py" "$OUT/$LABEL-$(basename "$d").json" | tail -n +3
done
