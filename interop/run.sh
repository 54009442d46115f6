#!/usr/bin/env bash
# Interop suite: the real oauthd binary on 127.0.0.1 against third-party client libraries
# (openid-client 6 and oauth4webapi 3 on Node, Authlib on Python). See interop/README.md.
#
#   bash interop/run.sh
#
# Builds oauthd, registers clients, a user and a resource server in a throwaway SQLite
# database, starts `oauthd serve` on a free loopback port, runs every suite (even after one
# fails), stops the server, and exits non-zero if any test failed or a suite ran no tests.
# The last line is "N passed, N failed" over all suites.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
INTEROP=$ROOT/interop
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

# The server is configured here and nowhere else: drop any OAUTHD_* the caller has set
# (an OAUTHD_ISSUER or OAUTHD_DATABASE_URL from the environment would change what we test).
while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^OAUTHD_' || true)

START=$SECONDS
step() { printf '\n== interop [%ss]: %s\n' "$((SECONDS - START))" "$*"; }
die() { printf 'interop: %s\n' "$*" >&2; exit 1; }

command -v node >/dev/null || die "node is required (Node 20+)"
command -v npm >/dev/null || die "npm is required"
command -v python3 >/dev/null || die "python3 is required (3.11+)"

step "build oauthd"
cargo build -p oauthd --locked
BIN=$TARGET_DIR/debug/oauthd
[[ -x $BIN ]] || die "no binary at $BIN"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/oauthd-interop.XXXXXX")
SERVER_PID=
server_log_tail() {
  if [[ -s $WORK/server.log ]]; then
    printf '\n== interop: last lines of the server log\n' >&2
    tail -n 40 "$WORK/server.log" >&2 || true
  fi
}
cleanup() {
  local status=$?
  if [[ -n ${SUITE_PID:-} ]]; then kill "$SUITE_PID" 2>/dev/null || true; fi
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ $status -ne 0 && -z ${SUMMARISED:-} ]]; then server_log_tail; fi
  if [[ ${INTEROP_KEEP:-0} == 1 ]]; then
    printf 'interop: kept %s\n' "$WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# shellcheck source=interop/setup.sh
source "$INTEROP/setup.sh"

step "start oauthd serve on 127.0.0.1:0"
OAUTHD_LOG=info "$BIN" serve --database "$DB" --listen 127.0.0.1:0 \
  >"$WORK/server.out" 2>"$WORK/server.log" &
SERVER_PID=$!
LINE=
for _ in $(seq 300); do
  LINE=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/server.log" | grep -m1 'oauthd listening on ' || true)
  [[ -n $LINE ]] && break
  kill -0 "$SERVER_PID" 2>/dev/null || die "oauthd exited before listening: $(cat "$WORK/server.log")"
  sleep 0.1
done
[[ -n $LINE ]] || die "oauthd did not start listening within 30 s"
# "... oauthd listening on http://127.0.0.1:PORT with issuer http://localhost:PORT"
BASE=$(sed -E 's/.*listening on ([^ ]+) with issuer .*/\1/' <<<"$LINE")
ISSUER=$(sed -E 's/.*with issuer ([^ ]+).*/\1/' <<<"$LINE")
[[ $BASE =~ ^http://127\.0\.0\.1:[0-9]+$ ]] || die "unexpected listen address in: $LINE"
[[ $ISSUER =~ ^http://(localhost|127\.0\.0\.1):[0-9]+$ ]] || die "not a loopback issuer in: $LINE"
echo "oauthd at $BASE, issuer $ISSUER (pid $SERVER_PID)"

export INTEROP_ISSUER=$ISSUER INTEROP_REDIRECT_URI=$REDIRECT_URI
export INTEROP_USERNAME=$USERNAME INTEROP_PASSWORD=$PASSWORD INTEROP_USER_SUB=$USER_SUB
export INTEROP_USER_EMAIL=alice@example.com INTEROP_USER_NAME="Alice Liddell"
export INTEROP_API_CLIENT_ID=api INTEROP_API_SECRET=$API_SECRET
export INTEROP_CLIENT_OPENID_CLIENT=openid-client-app
export INTEROP_CLIENT_OAUTH4WEBAPI=oauth4webapi-app
export INTEROP_CLIENTS_OAUTH4WEBAPI_JWT="${JWT_CLIENTS[*]}"
export INTEROP_CLIENT_AUTHLIB=authlib-app INTEROP_CLIENT_AUTHLIB_ES256=authlib-es256-app

# A suite runs in the background and the script waits for it, so that Ctrl-C or SIGTERM
# interrupts the wait at once and the trap stops the suite and the server.
SUITE_PID=
in_background() { # in_background DIR COMMAND...
  local dir=$1 code=0
  shift
  (cd "$dir" && exec "$@") &
  SUITE_PID=$!
  wait "$SUITE_PID" || code=$?
  SUITE_PID=
  return "$code"
}

TOTAL_PASSED=0
TOTAL_FAILED=0
SUMMARY=()
record() { # record SUITE PASSED FAILED EXIT_CODE SECONDS
  local suite=$1 passed=$2 failed=$3 code=$4 secs=$5
  # A suite that exits non-zero, or runs nothing, has failed even if no test said so.
  if [[ $code -ne 0 && $failed -eq 0 ]]; then failed=1; fi
  if [[ $((passed + failed)) -eq 0 ]]; then
    echo "interop: $suite ran no tests" >&2
    failed=1
  fi
  TOTAL_PASSED=$((TOTAL_PASSED + passed))
  TOTAL_FAILED=$((TOTAL_FAILED + failed))
  SUMMARY+=("$(printf '%-14s %3d passed, %d failed  (exit %d, %ds)' "$suite" "$passed" "$failed" "$code" "$secs")")
}

node_suite() { # node_suite NAME FILE
  local name=$1 file=$2 tap=$WORK/$1.tap code=0 t0=$SECONDS
  step "$name ($file)"
  in_background "$INTEROP/js" node --test --test-timeout=60000 \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$tap" "$file" || code=$?
  local pass fail cancelled skipped todo
  [[ -f $tap ]] || : >"$tap"
  pass=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tap" | tail -n1)
  fail=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tap" | tail -n1)
  cancelled=$(sed -n 's/^# cancelled \([0-9]*\)$/\1/p' "$tap" | tail -n1)
  skipped=$(sed -n 's/^# skipped \([0-9]*\)$/\1/p' "$tap" | tail -n1)
  todo=$(sed -n 's/^# todo \([0-9]*\)$/\1/p' "$tap" | tail -n1)
  # A file that defines no test is reported as one passing test named after the file.
  local empty
  empty=$(grep -cE '^ok [0-9]+ - .*\.test\.mjs$' "$tap" || true)
  if [[ $empty -gt 0 ]]; then echo "interop: $file defines no tests" >&2; fi
  # Skipped, todo and cancelled tests count as failures: nothing here may be left out.
  record "$name" $((${pass:-0} - empty)) \
    $((${fail:-0} + ${cancelled:-0} + ${skipped:-0} + ${todo:-0} + empty)) "$code" $((SECONDS - t0))
}

python_suite() { # python_suite NAME FILE
  local name=$1 file=$2 xml=$WORK/$1.xml code=0 t0=$SECONDS
  step "$name ($file)"
  in_background "$INTEROP/python" "$VENV/bin/python" -m pytest -p no:cacheprovider -v -rfEs \
    --junitxml="$xml" "$file" || code=$?
  if [[ $code -eq 5 ]]; then echo "interop: pytest collected no tests (exit 5)" >&2; fi
  local counts
  counts=$("$VENV/bin/python" - "$xml" <<'EOF' || echo "0 0"
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
n = lambda k: sum(int(s.get(k, 0)) for s in suites)
bad = n("failures") + n("errors") + n("skipped")  # a skipped interop test is a gap
print(n("tests") - bad, bad)
EOF
  )
  record "$name" "${counts% *}" "${counts#* }" "$code" $((SECONDS - t0))
}

node_suite openid-client openid-client.test.mjs
node_suite oauth4webapi oauth4webapi.test.mjs
python_suite authlib test_authlib.py

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "interop: oauthd exited while the suites ran" >&2
  TOTAL_FAILED=$((TOTAL_FAILED + 1))
fi
kill "$SERVER_PID" 2>/dev/null || true
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=

if [[ $TOTAL_FAILED -ne 0 ]]; then server_log_tail; fi
SUMMARISED=1
step "summary ($((SECONDS - START)) s in all)"
printf '%s\n' "${SUMMARY[@]}"
echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed"
[[ $TOTAL_FAILED -eq 0 ]]
