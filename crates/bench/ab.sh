#!/usr/bin/env bash
# Solo A/B of several builds: run.sh for each build in turn, ROUNDS times, alternating, so the
# machine's drift falls on all of them alike. Unlike pair.sh the builds never share a core, so
# it can judge changes to how threads wake and yield.
#
# Usage: crates/bench/ab.sh ROUNDS CONCURRENCY DIR...
#   e.g. crates/bench/ab.sh 2 8,64 /tmp/builds/before /tmp/builds/after
# Each DIR holds release/oauthd and release/oauthd-bench (copy them out of target/release
# after each build); its basename labels the runs. Prints one line per build, round and
# concurrency: flows and flows/s, server CPU ms per flow. Full outputs go to each DIR's
# bench-results (run.sh's OUT under CARGO_TARGET_DIR=DIR).
# Env: run.sh's (SEED_TOKENS, SERVER_CPU, DRIVER_CPU, ...); DURATION / WARMUP (10 / 4).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${1:?usage: ab.sh ROUNDS CONCURRENCY DIR...}
CONCURRENCY=${2:?usage: ab.sh ROUNDS CONCURRENCY DIR...}
shift 2
[ $# -ge 1 ] || { echo "usage: ab.sh ROUNDS CONCURRENCY DIR..." >&2; exit 2; }
for dir in "$@"; do
  [ -x "$dir/release/oauthd" ] && [ -x "$dir/release/oauthd-bench" ] ||
    { echo "$dir/release must hold oauthd and oauthd-bench" >&2; exit 2; }
done
for round in $(seq 1 "$ROUNDS"); do
  for dir in "$@"; do
    label=$(basename "$dir")-ab$round
    CARGO_TARGET_DIR=$dir "$ROOT/crates/bench/run.sh" sqlite "$label" \
      --concurrency "$CONCURRENCY" --duration "${DURATION:-10}" --warmup "${WARMUP:-4}" \
      > "$dir/$label.log" 2>&1
    awk -v v="$(basename "$dir")" -v r="$round" '
      /concurrency/ { c = $5 }
      /^flows/ { f = $2 " " $3 }
      /server CPU/ { print v, "round " r, "c=" c, f, $(NF-2), "ms/flow" }' "$dir/$label.log"
  done
done
