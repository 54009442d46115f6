# Shared by run.sh and callgrind.sh (sourced): what the load tool needs in a fresh oauthd
# database at $OAUTHD_DATABASE_URL.

# A user, a trusted public client (bench-public: no consent page, one-day access tokens) and a
# resource server whose credentials go to WORK/rs.json; then SEED_TOKENS live grants, if set.
seed_oauthd() {
  local bin=$1 work=$2
  "$bin/oauthd" user create --username bench --password bench-password > /dev/null
  "$bin/oauthd" client create --name "Bench App" --client-id bench-public \
    --redirect-uri myapp://oauth2redirect --scope api --trusted --access-token-ttl 86400 > /dev/null
  "$bin/oauthd" client create --kind resource-server --client-id bench-rs --name "Bench API" \
    --json > "$work/rs.json"
  if [ -n "${SEED_TOKENS:-}" ]; then
    "$bin/oauthd-bench" seed --database "$OAUTHD_DATABASE_URL" --client-id bench-public \
      --username bench --grants "$SEED_TOKENS"
  fi
}

# The resource server's secret that seed_oauthd wrote to WORK/rs.json.
rs_secret() {
  sed -n 's/.*"client_secret": *"\([^"]*\)".*/\1/p' "$1/rs.json"
}
