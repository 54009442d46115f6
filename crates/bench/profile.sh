#!/usr/bin/env bash
# Where a flow's server CPU goes, by thread and syscall, in µs per flow: `perf record -g` of
# the server under the load tool, read by perf_breakdown.py; and the block requests each
# commit makes, from the kernel's block tracepoint. The numbers of BENCHMARKS.md's "Where a
# flow's CPU goes" come from here.
#
# Usage: crates/bench/profile.sh BIN_DIR CONCURRENCY [SECONDS]
#   BIN_DIR: a release build with frame pointers, for whole stacks:
#     RUSTFLAGS="-C force-frame-pointers=yes" CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
#       CARGO_TARGET_DIR=target/fp cargo build --release --locked -p oauthd -p oauthd-bench
#     crates/bench/profile.sh target/fp/release 8
# Env: SEED_TOKENS (default 1000), SERVER_CPU / DRIVER_CPU (0 / 1), PORT (8082), KEEP=DIR
#      to keep perf's data there. Needs perf (Debian's linux-perf) and root, or a
#      perf_event_paranoid that allows tracepoints.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:?usage: profile.sh BIN_DIR CONCURRENCY [SECONDS]}
C=${2:?usage: profile.sh BIN_DIR CONCURRENCY [SECONDS]}
SECS=${3:-8}
PORT=${PORT:-8082}
HZ=2999
WARMUP=4
export SEED_TOKENS=${SEED_TOKENS:-1000}
# shellcheck source=crates/bench/seed.sh
. "$ROOT/crates/bench/seed.sh"
WORK=${KEEP:-$(mktemp -d)}
mkdir -p "$WORK"
SERVER_PID=
DRIVER_PID=
cleanup() {
  [ -n "$DRIVER_PID" ] && kill "$DRIVER_PID" 2>/dev/null
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
  [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
rm -f "$WORK"/oauthd.db*
export OAUTHD_DATABASE_URL="sqlite://$WORK/oauthd.db"
seed_oauthd "$BIN" "$WORK"
OAUTHD_CLIENT_REQUESTS_PER_SECOND=0 OAUTHD_LOG=warn setsid taskset -c "${SERVER_CPU:-0}" \
  "$BIN/oauthd" serve --listen "127.0.0.1:$PORT" > "$WORK/oauthd.log" 2>&1 < /dev/null &
SERVER_PID=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/healthz" > /dev/null && break
  sleep 0.1
done
# The driver runs past the window on both sides; flows are counted by the server itself.
taskset -c "${DRIVER_CPU:-1}" "$BIN/oauthd-bench" --base-url "http://127.0.0.1:$PORT" \
  --scope api --introspect-client-secret "$(rs_secret "$WORK")" --concurrency "$C" \
  --duration $((SECS + 4)) --warmup "$WARMUP" > "$WORK/driver.txt" 2>&1 &
DRIVER_PID=$!
sleep "$WARMUP"

# A flow ends with one introspection: its count over the window is the flows.
introspections() {
  curl -sf "http://127.0.0.1:$PORT/metrics" |
    awk '/^oauthd_http_requests_total\{/ && /introspect/ && /status="200"/ { n += $NF } END { print n + 0 }'
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"; }

flows0=$(introspections)
ticks0=$(cpu_ticks)
perf record -e block:block_rq_issue -a -o "$WORK/block.data" -- sleep "$SECS" > /dev/null 2>&1 &
BLOCK_PID=$!
perf stat -e syscalls:sys_enter_fdatasync --per-thread -p "$SERVER_PID" -o "$WORK/syncs.txt" \
  -- sleep "$SECS" &
STAT_PID=$!
perf record -e cpu-clock -F "$HZ" -g -p "$SERVER_PID" -o "$WORK/cpu.data" -- sleep "$SECS" \
  > /dev/null 2>&1
wait "$BLOCK_PID" "$STAT_PID"
ticks1=$(cpu_ticks)
flows1=$(introspections)
wait "$DRIVER_PID" || true
DRIVER_PID=

flows=$((flows1 - flows0))
cpu=$(awk -v t=$((ticks1 - ticks0)) -v hz="$(getconf CLK_TCK)" 'BEGIN { print t / hz }')
echo "c=$C, $SECS s window: $flows flows ($((flows / SECS))/s), server CPU $(printf %.2f "$cpu") s by /proc"
echo
perf script -i "$WORK/cpu.data" -F comm,tid,ip,sym,dso 2> /dev/null > "$WORK/cpu.txt"
python3 "$ROOT/crates/bench/perf_breakdown.py" "$WORK/cpu.txt" "$flows" "$HZ" "$cpu"

# Commits: the writer thread's fdatasyncs (a checkpoint syncs from its own thread).
commits=$(awk '/oauthd-sqlite-w/ && /fdatasync/ { n += $2 } END { print n + 0 }' "$WORK/syncs.txt")
echo
echo "commits: $commits ($(awk -v c="$commits" -v f="$flows" 'BEGIN { printf "%.3f", c / f }') per flow)"
echo
echo "| block requests issued, by thread and kind (W write, S sync, M metadata, FF flush) | per commit |"
echo "|---|---|"
perf script -i "$WORK/block.data" -F comm,trace 2> /dev/null |
  awk -v commits="$commits" '{ n[$1 " " $3]++ } END { for (k in n) if (n[k] / commits >= 0.005) printf "| %s | %.2f |\n", k, n[k] / commits }' |
  sort -t'|' -k3 -rn
