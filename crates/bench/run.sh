#!/usr/bin/env bash
# One measured run of oauthd-bench against a freshly seeded server, pinned as BENCHMARKS.md says:
# server on CPU ${SERVER_CPU:-0}, driver on CPU ${DRIVER_CPU:-1}.
#
# Usage: crates/bench/run.sh sqlite|postgres|peer LABEL [oauthd-bench options]
#   e.g. crates/bench/run.sh sqlite oauthd-sqlite --concurrency 1,8,64 --duration 10 --warmup 2
# Env:   OUT          results directory (default target/bench-results): LABEL.json, LABEL.txt
#        PG_URL       PostgreSQL base URL (default postgres://postgres@127.0.0.1:5432/test)
#        PEER_DIR     the node-oidc-provider peer (default ../shared/peer-bench)
#        SEED_TOKENS  live grants + token pairs to insert before the run (store-size scaling)
#        KEEP_DB=1    reuse the database from the previous run of the same target (no reseed)
#        WORK         where the SQLite file, logs and secrets go (default target/bench-work)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=${1:?usage: run.sh sqlite|postgres|peer LABEL [bench options]}
LABEL=${2:?usage: run.sh sqlite|postgres|peer LABEL [bench options]}
shift 2
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
OUT=${OUT:-${CARGO_TARGET_DIR:-$ROOT/target}/bench-results}
WORK=${WORK:-${CARGO_TARGET_DIR:-$ROOT/target}/bench-work}
PEER_DIR=${PEER_DIR:-$ROOT/../shared/peer-bench}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
# shellcheck source=crates/bench/seed.sh
. "$ROOT/crates/bench/seed.sh"
mkdir -p "$OUT" "$WORK"
[ -x "$BIN/oauthd" ] && [ -x "$BIN/oauthd-bench" ] ||
  (cd "$ROOT" && cargo build --release --locked -p oauthd -p oauthd-bench)

SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null; true; }
trap cleanup EXIT

BENCH_ARGS=()
case "$TARGET" in
  sqlite|postgres)
    if [ "$TARGET" = sqlite ]; then
      export OAUTHD_DATABASE_URL="sqlite://$WORK/oauthd.db"
      [ "${KEEP_DB:-0}" = 1 ] || rm -f "$WORK"/oauthd.db*
    else
      export OAUTHD_DATABASE_URL="$PG_URL?options[search_path]=oauthd_bench"
      [ "${KEEP_DB:-0}" = 1 ] ||
        psql -q "$PG_URL" -c 'DROP SCHEMA IF EXISTS oauthd_bench CASCADE' -c 'CREATE SCHEMA oauthd_bench'
    fi
    if [ "${KEEP_DB:-0}" != 1 ]; then
      seed_oauthd "$BIN" "$WORK"
    fi
    RS_SECRET=$(rs_secret "$WORK")
    OAUTHD_CLIENT_REQUESTS_PER_SECOND=0 OAUTHD_LOG=warn \
      setsid taskset -c "${SERVER_CPU:-0}" "$BIN/oauthd" serve --listen 127.0.0.1:8080 \
      > "$WORK/oauthd.log" 2>&1 < /dev/null &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
      curl -sf http://127.0.0.1:8080/healthz > /dev/null && break
      sleep 0.1
    done
    BENCH_ARGS=(--scope api --introspect-client-secret "$RS_SECRET")
    ;;
  peer)
    PEER_CPU=${SERVER_CPU:-0} "$PEER_DIR/start_peer.sh"
    SERVER_PID=$(cat "$PEER_DIR/peer.pid")
    cleanup() { "$PEER_DIR/stop_peer.sh" > /dev/null 2>&1 || true; }
    BENCH_ARGS=(--config "$PEER_DIR/targets/oidc-provider.json")
    ;;
  *) echo "unknown target $TARGET (sqlite, postgres or peer)" >&2; exit 2 ;;
esac

taskset -c "${DRIVER_CPU:-1}" "$BIN/oauthd-bench" --label "$LABEL" --server-pid "$SERVER_PID" \
  --json "$OUT/$LABEL.json" "${BENCH_ARGS[@]}" "$@" 2>&1 | tee "$OUT/$LABEL.txt"
