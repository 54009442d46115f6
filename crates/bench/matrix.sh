#!/usr/bin/env bash
# The side-by-side matrix of BENCHMARKS.md, in one session: the peer, oauthd on SQLite and on
# PostgreSQL at concurrency 1, 8 and 64, then oauthd on SQLite with 1 000 and with 1 000 000 live
# grants (each with an access and a refresh token). Prints one markdown table at the end.
#
# Usage: crates/bench/matrix.sh            (about 12 minutes, plus seeding 1M grants once)
# Env:   DURATION / WARMUP   seconds per run (default 15 / 5)
#        RESEED_1M=1         seed the 1M database again (kept in target/bench-1m otherwise)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUN=$ROOT/crates/bench/run.sh
T=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${OUT:-$T/bench-results}
export OUT
D=(--duration "${DURATION:-15}" --warmup "${WARMUP:-5}")
(cd "$ROOT" && cargo build --release --locked -p oauthd -p oauthd-bench)

"$RUN" peer peer "${D[@]}" --concurrency 1,8,64
SEED_TOKENS=1000 "$RUN" sqlite oauthd-sqlite "${D[@]}" --concurrency 1,8,64
SEED_TOKENS=1000 "$RUN" postgres oauthd-postgres "${D[@]}" --concurrency 1,8,64

if [ "${RESEED_1M:-0}" = 1 ] || [ ! -f "$T/bench-1m/oauthd.db" ]; then
  rm -rf "$T/bench-1m"
  # Seeding happens before the measured run; the short run only checks the server starts.
  WORK=$T/bench-1m SEED_TOKENS=1000000 "$RUN" sqlite seed-1m --duration 2 --warmup 1 --concurrency 1
fi
WORK=$T/bench-1m KEEP_DB=1 "$RUN" sqlite oauthd-sqlite-1m "${D[@]}" --concurrency 8,64

python3 "$ROOT/crates/bench/table.py" "$OUT/peer.json" "$OUT/oauthd-sqlite.json" \
  "$OUT/oauthd-postgres.json" "$OUT/oauthd-sqlite-1m.json" | tee "$OUT/matrix.md"
