# Shared by run.sh and mutants/run-mutant.sh (sourced, not run): installs the JS and Python
# dependencies and registers the interop clients, a user and a resource server in $WORK's
# database. Expects INTEROP, TARGET_DIR, WORK, BIN and the step/die functions; sets DB,
# REDIRECT_URI, JWT_CLIENTS, API_SECRET, USERNAME, PASSWORD, USER_SUB and admin().
step "dependencies: npm ci (interop/js)"
(cd "$INTEROP/js" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)

# The virtualenv is reused between runs while requirements.txt and the interpreter are
# unchanged (a stamp records both), and rebuilt from scratch otherwise.
VENV=${INTEROP_VENV:-${CARGO_TARGET_DIR:+$TARGET_DIR/}oauthd-interop-venv}
[[ $VENV == /* ]] || VENV=${TMPDIR:-/tmp}/$VENV
step "dependencies: Python venv at $VENV"
STAMP="$(python3 -c 'import sys; print(sys.version)') $(sha256sum "$INTEROP/python/requirements.txt" | cut -d' ' -f1)"
if [[ ! -x $VENV/bin/python || "$(cat "$VENV/.interop-stamp" 2>/dev/null)" != "$STAMP" ]]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    -r "$INTEROP/python/requirements.txt"
  printf '%s' "$STAMP" >"$VENV/.interop-stamp"
fi
"$VENV/bin/python" -m pip check --disable-pip-version-check >/dev/null || die "broken venv: $VENV"

step "register clients, a user and a resource server"
DB="sqlite://$WORK/oauthd.db"
REDIRECT_URI=http://127.0.0.1/callback
admin() { "$BIN" --database "$DB" "$@"; }
app() { # app CLIENT_ID NAME [extra client create flags...]
  local id=$1 name=$2
  shift 2
  admin client create --client-id "$id" --name "$name" --redirect-uri "$REDIRECT_URI" \
    --scope openid --scope profile --scope email "$@" >/dev/null
}
app openid-client-app "openid-client interop" --id-token-alg RS256
app oauth4webapi-app "oauth4webapi interop" --id-token-alg ES256
JWT_CLIENTS=()
for alg in ES256 EdDSA RS256; do # RFC 9068 JWT access tokens for the API, one per algorithm
  app "oauth4webapi-jwt-$alg" "oauth4webapi RFC 9068 $alg interop" --id-token-alg RS256 \
    --access-token jwt --access-token-alg "$alg" --audience api
  JWT_CLIENTS+=("$alg=oauth4webapi-jwt-$alg")
done
app authlib-app "Authlib interop" --id-token-alg RS256
app authlib-es256-app "Authlib ES256 interop" --id-token-alg ES256
json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
API_SECRET=$(admin client create --kind resource-server --client-id api --name "Interop API" --json |
  json_field client_secret)
USERNAME=alice
PASSWORD=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
admin user create --username "$USERNAME" --email alice@example.com --name "Alice Liddell" \
  --password-stdin <<<"$PASSWORD" >/dev/null
USER_SUB=$(admin user list --json |
  python3 -c 'import json, sys; print(next(u["id"] for u in json.load(sys.stdin) if u["username"] == sys.argv[1]))' "$USERNAME")
