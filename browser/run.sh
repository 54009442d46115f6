#!/usr/bin/env bash
# Browser tests: the real oauthd binary on a throwaway SQLite database, driven by headless
# Chromium (Debian's package) through playwright-core, with Node's test runner.
# Usage: bash browser/run.sh [node --test options, e.g. --test-name-pattern=logout]
# (from anywhere; needs Node 20+, cargo, and root for apt-get)
# Screenshots go to ${CARGO_TARGET_DIR:-<repo>/target}/screenshots/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"
started=$SECONDS

target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac
screenshots="$target/screenshots"
chromium=/usr/bin/chromium

say() { printf '== %s\n' "$*"; }

# 1. The browser, from Debian (a browser download by npm is not possible here).
if [ ! -x "$chromium" ]; then
  say "installing Chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
"$chromium" --version 2>/dev/null | head -n 1 || true

# 2. The test's one dependency, exactly as locked.
say "npm ci"
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)

# 3. The server.
say "cargo build -p oauthd --locked"
cargo build -p oauthd --locked
oauthd="$target/debug/oauthd"
[ -x "$oauthd" ] || { echo "no server binary at $oauthd" >&2; exit 1; }

# 4. A throwaway database with two apps, one with a hostile name, and a user.
work="$(mktemp -d "${TMPDIR:-/tmp}/oauthd-browser.XXXXXX")"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

db="sqlite://$work/oauthd.db"
client_a=browser-app-one
name_a="Photo Printer"
client_b=browser-app-two
name_b="Note Keeper"
client_hostile=browser-app-hostile
name_hostile='<script>alert(1)</script> & "App"'
username=alice
password="correct horse battery staple $RANDOM$RANDOM"

say "registering apps and a user"
register() { # client id, name
  "$oauthd" --database "$db" client create --client-id "$1" --name "$2" \
    --redirect-uri http://127.0.0.1/callback --scope profile >/dev/null
}
register "$client_a" "$name_a"
register "$client_b" "$name_b"
register "$client_hostile" "$name_hostile"
printf '%s\n' "$password" | "$oauthd" --database "$db" user create --username "$username" --password-stdin >/dev/null

# 5. The server on a free port; its address is read from its log line.
say "starting oauthd"
log="$work/server.log"
OAUTHD_LOG="${OAUTHD_LOG:-info}" NO_COLOR=1 "$oauthd" --database "$db" serve --listen 127.0.0.1:0 2>"$log" &
server_pid=$!
base="" issuer=""
for _ in $(seq 300); do
  line="$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -m1 'oauthd listening on ' || true)"
  if [ -n "$line" ]; then
    base="$(sed -E 's/.*listening on (http:\/\/[^ ]+) with issuer .*/\1/' <<<"$line")"
    issuer="$(sed -E 's/.*with issuer ([^ ]+).*/\1/' <<<"$line")"
    break
  fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "oauthd exited before listening:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$base" ]; then
  echo "oauthd did not say where it listens within 30 s:" >&2
  cat "$log" >&2
  exit 1
fi
say "oauthd at $base, issuer $issuer"

# 6. The tests, one file at a time (each launches its own Chromium).
mkdir -p "$screenshots"
rm -rf "$screenshots/failures"
tap="$work/results.tap"
say "node --test"
set +e
(
  cd "$here"
  OAUTHD_URL="$base" OAUTHD_ISSUER="$issuer" \
    OAUTHD_CLIENT_A="$client_a" OAUTHD_CLIENT_A_NAME="$name_a" \
    OAUTHD_CLIENT_B="$client_b" OAUTHD_CLIENT_B_NAME="$name_b" \
    OAUTHD_CLIENT_HOSTILE="$client_hostile" OAUTHD_CLIENT_HOSTILE_NAME="$name_hostile" \
    OAUTHD_USERNAME="$username" OAUTHD_PASSWORD="$password" \
    OAUTHD_SCREENSHOT_DIR="$screenshots" CHROMIUM="$chromium" \
    node --test --test-concurrency=1 \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$tap" \
    "$@" tests/*.test.mjs
)
status=$?
set -e

passed="$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tap" | tail -n 1)"
failed="$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tap" | tail -n 1)"
passed="${passed:-0}"
failed="${failed:-0}"
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1 # the runner failed without counting a failed test (it crashed or was killed)
fi
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ]; then
  echo "-- server log (last 40 lines):"
  tail -n 40 "$log"
fi
echo "screenshots: $screenshots"
echo "browser suite took $((SECONDS - started)) s"
echo "$passed passed, $failed failed"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ]; then
  exit 1
fi
