-- oauthd schema, version 1, for PostgreSQL: the SQLite schema with BIGINT times and counts
-- (Unix seconds), BOOLEAN flags and TEXT for the rest. Every secret column holds a SHA-256
-- hash (tokens, codes, sessions, pending authorizations) or an Argon2id PHC string
-- (passwords, client secrets).
CREATE TABLE clients (
    client_id          TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    kind               TEXT NOT NULL CHECK (kind IN ('public', 'confidential', 'resource-server')),
    secret_hash        TEXT,
    redirect_uris      TEXT NOT NULL,
    grants             TEXT NOT NULL,
    scopes             TEXT NOT NULL,
    trusted            BOOLEAN NOT NULL,
    pkce_mode          TEXT NOT NULL CHECK (pkce_mode IN ('strict', 'liferay-compat')),
    access_token_ttl   BIGINT NOT NULL,
    refresh_token_ttl  BIGINT NOT NULL,
    access_token_format TEXT NOT NULL CHECK (access_token_format IN ('opaque', 'jwt')),
    access_token_alg   TEXT NOT NULL,
    id_token_alg       TEXT NOT NULL,
    audience           TEXT NOT NULL,
    created_at         BIGINT NOT NULL
);

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    username       TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    email          TEXT,
    display_name   TEXT,
    created_at     BIGINT NOT NULL
);

CREATE TABLE sessions (
    id_hash     TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE pending_authorizations (
    id_hash            TEXT PRIMARY KEY,
    browser_hash       TEXT NOT NULL,
    client_id          TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    redirect_uri       TEXT NOT NULL,
    redirect_uri_sent  BOOLEAN NOT NULL,
    scope              TEXT NOT NULL,
    state              TEXT,
    code_challenge     TEXT NOT NULL,
    nonce              TEXT,
    prompt             TEXT NOT NULL,
    max_age            BIGINT,
    -- prompt=login or max_age: only a login made for this request will do.
    login_required     BOOLEAN NOT NULL,
    login_session      TEXT,
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    consumed_at        BIGINT
);

CREATE TABLE consents (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id   TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    scope       TEXT NOT NULL,
    granted_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
-- The primary key serves lookups by user; deleting a client needs its own index.
CREATE INDEX consents_client ON consents (client_id);

-- A grant is one authorization and every token descended from it (the "family").
CREATE TABLE grants (
    id              TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope           TEXT NOT NULL,
    auth_time       BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    revoked_at      BIGINT,
    revoked_reason  TEXT
);
CREATE INDEX grants_client ON grants (client_id);
CREATE INDEX grants_user ON grants (user_id);

CREATE TABLE codes (
    hash               TEXT PRIMARY KEY,
    client_id          TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    user_id            TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri       TEXT NOT NULL,
    redirect_uri_sent  BOOLEAN NOT NULL,
    scope              TEXT NOT NULL,
    code_challenge     TEXT NOT NULL,
    pkce_mode          TEXT NOT NULL,
    auth_time          BIGINT NOT NULL,
    nonce              TEXT,
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    failed_attempts    BIGINT NOT NULL DEFAULT 0,
    redeemed_at        BIGINT,
    grant_id           TEXT REFERENCES grants (id) ON DELETE CASCADE
);
-- PostgreSQL does not index referencing columns by itself: these keep the cascading deletes
-- of clients, users and grants from scanning whole tables.
CREATE INDEX codes_client ON codes (client_id);
CREATE INDEX codes_user ON codes (user_id);
CREATE INDEX codes_grant ON codes (grant_id);
CREATE INDEX pending_client ON pending_authorizations (client_id);

CREATE TABLE access_tokens (
    hash        TEXT PRIMARY KEY,
    grant_id    TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    scope       TEXT NOT NULL,
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    -- The signing key of a JWT access token; NULL for opaque tokens.
    kid         TEXT
);
CREATE INDEX access_tokens_grant ON access_tokens (grant_id);

CREATE TABLE refresh_tokens (
    hash            TEXT PRIMARY KEY,
    grant_id        TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    access_hash     TEXT NOT NULL,
    issued_at       BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT,
    successor_hash  TEXT,
    grace_used_at   BIGINT,
    revoked_at      BIGINT
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);

-- Signing keys, shared by every instance. A rotated-out key stays published until
-- publish_until; a retired key is neither published nor trusted.
CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY,
    alg            TEXT NOT NULL,
    private_key    TEXT NOT NULL,
    public_jwk     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    rotated_at     BIGINT,
    publish_until  BIGINT,
    retired_at     BIGINT
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (alg) WHERE rotated_at IS NULL AND retired_at IS NULL;

-- Housekeeping deletes expired rows in small batches; these keep each batch cheap.
CREATE INDEX sessions_expiry ON sessions (expires_at);
CREATE INDEX pending_expiry ON pending_authorizations (expires_at);
CREATE INDEX codes_expiry ON codes (expires_at);
CREATE INDEX access_tokens_expiry ON access_tokens (expires_at);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);
CREATE INDEX grants_expiry ON grants (expires_at);
-- Revoked grants go a day after revocation.
CREATE INDEX grants_revoked ON grants (revoked_at) WHERE revoked_at IS NOT NULL;
