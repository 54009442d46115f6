#!/usr/bin/env bash
# Fuzz every target for a while on stable Rust (libFuzzer via cargo-fuzz, no sanitizer).
#
#   FUZZ_SECONDS   time per target (default 60)
#   FUZZ_JOBS      targets fuzzed at once (default 2)
#   FUZZ_TARGETS   space-separated subset of targets (default: all of them)
#   CARGO_TARGET_DIR  the fuzz build goes to $CARGO_TARGET_DIR/fuzz (default ../target/fuzz)
#
# The seed corpus in corpus/<target>/ is only read; inputs libFuzzer finds go to a scratch
# corpus under the target dir (kept between runs, never committed). Exits non-zero if any
# target crashed, timed out or ran out of memory, naming the input that did it.
set -euo pipefail

FUZZ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$FUZZ_DIR")"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-60}"
JOBS="${FUZZ_JOBS:-2}"
BUILD_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/fuzz"
WORK="$BUILD_DIR/work"
ALL_TARGETS=(authorize_request token_form redirect_uri basic_credentials cookie_parser pkce)
read -r -a TARGETS <<<"${FUZZ_TARGETS:-${ALL_TARGETS[*]}}"

# `cargo fuzz` is the cargo-fuzz plugin; sanitizers would need nightly, so none is used.
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz not found; installing it from crates.io"
  cargo install cargo-fuzz --locked
fi

cd "$FUZZ_DIR"
echo "== building ${#ALL_TARGETS[@]} fuzz targets into $BUILD_DIR"
build_start=$(date +%s)
cargo fuzz build --sanitizer none --target-dir "$BUILD_DIR"
echo "build took $(($(date +%s) - build_start)) s"

rm -rf "$WORK/logs" "$WORK/results"
mkdir -p "$WORK/logs" "$WORK/results"

# One target: fuzz it, then write "pass ..." or "fail ..." to its result file. Never fails
# itself, so the job pool below can wait on it under `set -e`.
fuzz_one() {
  local target="$1" log="$WORK/logs/$1.log" result="$WORK/results/$1" rc=0
  local extra=()
  # Long URIs only exercise the url crate's IDNA code (slowly), not the matching rules.
  if [[ $target == redirect_uri ]]; then extra+=(-max_len=1024); fi
  mkdir -p "$WORK/corpus/$target" "$FUZZ_DIR/artifacts/$target"
  # The scratch corpus comes first, so new inputs are written there and not into the seeds.
  timeout --kill-after=30 $((SECONDS_PER_TARGET + 300)) \
    cargo fuzz run "$target" --sanitizer none --target-dir "$BUILD_DIR" \
    "$WORK/corpus/$target" "$FUZZ_DIR/corpus/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$FUZZ_DIR/artifacts/$target/" "${extra[@]}" \
    >"$log" 2>&1 || rc=$?
  local runs secs rate
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  local stats="${runs:-?} runs in ${secs:-?} s, ${rate:-?} exec/s"
  if [[ $rc -eq 0 ]]; then
    echo "pass $target: $stats" >"$result"
  else
    local input
    input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    echo "fail $target: exit $rc, $stats; input: ${input:-none written, see $log}" >"$result"
  fi
  return 0
}

echo "== fuzzing ${#TARGETS[@]} targets for ${SECONDS_PER_TARGET} s each, $JOBS at a time"
fuzz_start=$(date +%s)
for target in "${TARGETS[@]}"; do
  while (($(jobs -rp | wc -l) >= JOBS)); do wait -n || true; done
  echo "-- $target"
  fuzz_one "$target" &
done
wait
echo "fuzzing took $(($(date +%s) - fuzz_start)) s"

passed=0
failed=0
for target in "${TARGETS[@]}"; do
  line=$(cat "$WORK/results/$target" 2>/dev/null || echo "fail $target: no result")
  echo "$line"
  if [[ $line == pass* ]]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    log="$WORK/logs/$target.log"
    echo "---- $log (the panic, then the last lines)"
    grep -m 1 -A 6 'panicked at' "$log" 2>/dev/null || true
    echo "...."
    tail -n 25 "$log" 2>/dev/null || true
    input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" 2>/dev/null | tail -n 1)
    if [[ -n $input && -f $input ]]; then
      echo "---- crashing input $input ($(wc -c <"$input") bytes), as base64:"
      base64 -w 0 "$input"
      echo
      echo "reproduce: (cd fuzz && cargo fuzz run $target --sanitizer none $input)"
      echo "minimize:  (cd fuzz && cargo fuzz tmin $target --sanitizer none $input)"
    fi
    echo "----"
  fi
done
echo "fuzz: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
