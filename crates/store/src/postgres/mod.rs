//! The PostgreSQL backend, for several oauthd instances sharing one database.
//!
//! Same contract and same statement shapes as the SQLite backend. Transactions run at
//! READ COMMITTED: every once-only transition is one `UPDATE … WHERE <still in the old
//! state> … RETURNING` in its transaction. Concurrent writers of the same row queue on its
//! row lock, and each re-checks the `WHERE` against the committed winner's version once the
//! lock is theirs, so exactly one of them changes it.
mod migrate;

use std::str::FromStr as _;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use oauthd_core::UnixTime;
use oauthd_core::client::Client;
use oauthd_core::code::MAX_FAILED_ATTEMPTS;
use oauthd_core::refresh::RefreshState;
use oauthd_core::scope::Scope;
use oauthd_core::secret::SecretHash;

use crate::client_cache::{self, ClientCache};
use crate::codec::{self, Columns as _, corrupt, db_err};
use crate::*;

/// Upper bound on one statement, so a stuck query cannot hold a connection (and a request)
/// indefinitely. Set unless the URL sets its own `options[statement_timeout]`.
const STATEMENT_TIMEOUT: &str = "5s";
/// Advisory-lock namespace (first key) of per-algorithm signing key rotations ("keys").
const KEY_ROTATION_LOCK: i32 = 0x6b65_7973;

#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    clients: std::sync::Arc<ClientCache>,
}

impl PostgresStore {
    /// Connect to `url` (`postgres://user[:password]@host[:port]/database[?…]`) and apply
    /// pending migrations. Connection parameters in the URL are kept, including
    /// `options[name]=value` server settings such as `options[search_path]=…`.
    ///
    /// A database that cannot be reached fails within the acquire timeout (3 s).
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let mut options =
            PgConnectOptions::from_str(url).map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        if !options
            .get_options()
            .is_some_and(|o| o.contains("statement_timeout"))
        {
            options = options.options([("statement_timeout", STATEMENT_TIMEOUT)]);
        }
        if options.get_application_name().is_none() {
            options = options.application_name("oauthd");
        }
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(3))
            .idle_timeout(Duration::from_secs(300))
            .max_lifetime(Duration::from_secs(1800))
            .connect_with(options)
            .await
            .map_err(db_err)?;
        migrate::run(&pool).await?;
        Ok(PostgresStore {
            pool,
            clients: std::sync::Arc::default(),
        })
    }
}

const SESSION_BY_HASH: &str =
    "SELECT s.user_id, u.username, s.auth_time FROM sessions s JOIN users u ON u.id = s.user_id
     WHERE s.id_hash = $1 AND s.expires_at > $2";
const CODE_BY_HASH: &str = "SELECT * FROM codes WHERE hash = $1";
const REFRESH_STATE: &str =
    "SELECT r.grant_id, g.client_id, g.user_id, g.auth_time, g.scope, r.expires_at, g.expires_at AS grant_expires_at,
            g.revoked_at IS NOT NULL AS grant_revoked, r.revoked_at IS NOT NULL AS revoked, r.used_at,
            r.grace_used_at IS NOT NULL AS grace_used,
            COALESCE((SELECT s.used_at IS NOT NULL FROM refresh_tokens s WHERE s.hash = r.successor_hash),
                     FALSE) AS successor_used
     FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id WHERE r.hash = $1";
const ACCESS_TOKEN_INFO: &str =
    "SELECT a.grant_id, g.client_id, g.user_id, u.username, a.scope, c.audience, a.issued_at,
            LEAST(a.expires_at, g.expires_at) AS expires_at,
            (a.revoked_at IS NOT NULL OR g.revoked_at IS NOT NULL OR k.retired_at IS NOT NULL) AS revoked
     FROM access_tokens a
     JOIN grants g ON g.id = a.grant_id
     JOIN users u ON u.id = g.user_id
     JOIN clients c ON c.client_id = g.client_id
     LEFT JOIN signing_keys k ON k.kid = a.kid
     WHERE a.hash = $1";
const REFRESH_TOKEN_INFO: &str =
    "SELECT r.grant_id, g.client_id, g.user_id, u.username, g.scope, c.audience, r.issued_at,
            LEAST(r.expires_at, g.expires_at) AS expires_at,
            (r.revoked_at IS NOT NULL OR r.used_at IS NOT NULL OR g.revoked_at IS NOT NULL) AS revoked
     FROM refresh_tokens r
     JOIN grants g ON g.id = r.grant_id
     JOIN users u ON u.id = g.user_id
     JOIN clients c ON c.client_id = g.client_id
     WHERE r.hash = $1";

/// `query` with the clients change counter beside it, in one statement (so one snapshot and
/// one round trip): always one row, with `clients_version`, and `alongside_found` set when
/// `query` found its row, whose columns then follow under their own names.
fn with_clients_version(query: &str) -> String {
    format!(
        "SELECT v.value AS clients_version, n.* FROM change_counters v
         LEFT JOIN LATERAL (SELECT TRUE AS alongside_found, q.* FROM ({query}) q) n ON TRUE
         WHERE v.name = '{}'",
        client_cache::COUNTER
    )
}

/// PostgreSQL text cannot hold NUL (binding one is an error, not a miss). Nothing stored
/// contains one, so a lookup by such a value, which a request can send (a client id, a
/// username), finds nothing, as it would on SQLite.
fn storable(value: &str) -> bool {
    !value.contains('\0')
}

#[async_trait]
impl ClientStore for PostgresStore {
    async fn insert_client(&self, c: &Client) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO clients (client_id, name, kind, secret_hash, redirect_uris, grants, scopes, trusted,
                                  pkce_mode, access_token_ttl, refresh_token_ttl, access_token_format,
                                  access_token_alg, id_token_alg, audience, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(&c.client_id)
        .bind(&c.name)
        .bind(c.kind.as_str())
        .bind(&c.secret_hash)
        .bind(codec::join_uris(&c.redirect_uris))
        .bind(codec::join_grants(&c.grants))
        .bind(c.scopes.to_string())
        .bind(c.trusted)
        .bind(c.pkce.as_str())
        .bind(c.access_token_ttl)
        .bind(c.refresh_token_ttl)
        .bind(c.access_token_format.as_str())
        .bind(c.access_token_alg.as_str())
        .bind(c.id_token_alg.as_str())
        .bind(c.audience.join(" "))
        .bind(c.created_at)
        .execute(&self.pool)
        .await
        .map_err(|e| codec::conflict_or(e, || format!("client {:?}", c.client_id)))?;
        Ok(())
    }

    async fn client(&self, client_id: &str) -> StoreResult<Option<Client>> {
        if !storable(client_id) {
            return Ok(None);
        }
        // The counter first: see `ClientCache::put`.
        let version: i64 = sqlx::query_scalar("SELECT value FROM change_counters WHERE name = $1")
            .bind(client_cache::COUNTER)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .ok_or_else(|| corrupt("the clients change counter is missing"))?;
        self.client_at(client_id, version).await
    }

    async fn clients(&self) -> StoreResult<Vec<Client>> {
        // COLLATE "C": byte order, as SQLite sorts, whatever the database's locale.
        let rows = sqlx::query("SELECT * FROM clients ORDER BY client_id COLLATE \"C\"")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(codec::client_from_row).collect()
    }

    async fn delete_client(&self, client_id: &str) -> StoreResult<bool> {
        let r = sqlx::query("DELETE FROM clients WHERE client_id = $1")
            .bind(client_id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(r.rows_affected() == 1)
    }

    async fn set_client_secret(&self, client_id: &str, secret_hash: &str) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE clients SET secret_hash = $1 WHERE client_id = $2 AND kind = 'confidential'",
        )
        .bind(secret_hash)
        .bind(client_id)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(r.rows_affected() == 1)
    }
}

#[async_trait]
impl UserStore for PostgresStore {
    async fn insert_user(&self, u: &User) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO users (id, username, password_hash, email, display_name, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&u.id)
        .bind(&u.username)
        .bind(&u.password_hash)
        .bind(&u.email)
        .bind(&u.display_name)
        .bind(u.created_at)
        .execute(&self.pool)
        .await
        .map_err(|e| codec::conflict_or(e, || format!("user {:?}", u.username)))?;
        Ok(())
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        if !storable(username) {
            return Ok(None);
        }
        let row = sqlx::query("SELECT * FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(codec::user_from_row).transpose()
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        if !storable(id) {
            return Ok(None);
        }
        let row = sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(codec::user_from_row).transpose()
    }

    async fn users(&self) -> StoreResult<Vec<User>> {
        let rows = sqlx::query("SELECT * FROM users ORDER BY username COLLATE \"C\"")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(codec::user_from_row).collect()
    }

    async fn delete_user(&self, username: &str) -> StoreResult<bool> {
        let r = sqlx::query("DELETE FROM users WHERE username = $1")
            .bind(username)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(r.rows_affected() == 1)
    }

    async fn set_password(&self, username: &str, password_hash: &str) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let user_id: Option<String> = sqlx::query_scalar(
            "UPDATE users SET password_hash = $1 WHERE username = $2 RETURNING id",
        )
        .bind(password_hash)
        .bind(username)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(user_id) = user_id else {
            tx.rollback().await.map_err(db_err)?;
            return Ok(false);
        };
        // A new password ends every browser session of the account.
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn insert_session(&self, s: &NewSession) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, auth_time, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(s.id_hash.as_str())
        .bind(&s.user_id)
        .bind(s.auth_time)
        .bind(s.expires_at)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn session(&self, id_hash: &SecretHash, now: UnixTime) -> StoreResult<Option<Session>> {
        let row = sqlx::query(SESSION_BY_HASH)
            .bind(id_hash.as_str())
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(codec::session_from_row).transpose()
    }

    async fn delete_session(&self, id_hash: &SecretHash) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash.as_str())
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}

/// The start of a statement inserting the row of a code the token endpoint has seen, with
/// `failed_attempts`, `redeemed_at` and `grant_id` from `$3` to `$5`, if the code has not
/// expired by `$6` and its client (`$7`) and user (`$8`) still exist. Codes are sealed, not
/// stored, when issued (`oauthd_core::code_sealing`); each statement goes on with its own
/// `ON CONFLICT (hash)` rule for a code seen before. Parameters: [`bind_seen_code`].
macro_rules! insert_seen_code {
    () => {
        "INSERT INTO codes (hash, expires_at, failed_attempts, redeemed_at, grant_id)
         SELECT $1, $2, $3, $4, $5
         WHERE $2 > $6 AND EXISTS (SELECT 1 FROM clients WHERE client_id = $7)
           AND EXISTS (SELECT 1 FROM users WHERE id = $8)"
    };
}

fn bind_seen_code<'q>(
    query: &'q str,
    c: &'q NewCode,
    failed_attempts: i64,
    redeemed: Option<(UnixTime, &'q str)>,
    now: UnixTime,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(query)
        .bind(c.hash.as_str())
        .bind(c.code.expires_at)
        .bind(failed_attempts)
        .bind(redeemed.map(|(at, _)| at))
        .bind(redeemed.map(|(_, grant)| grant))
        .bind(now)
        .bind(&c.code.client_id)
        .bind(&c.code.user_id)
}

#[async_trait]
impl PendingAuthorizationStore for PostgresStore {
    async fn insert_pending(&self, p: &PendingAuthorization) -> StoreResult<()> {
        let r = &p.request;
        sqlx::query(
            "INSERT INTO pending_authorizations (id_hash, browser_hash, client_id, redirect_uri, redirect_uri_sent,
                                                 scope, state, code_challenge, nonce, prompt, max_age,
                                                 login_required, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(p.id_hash.as_str())
        .bind(p.browser_hash.as_str())
        .bind(&r.client_id)
        .bind(&r.redirect_uri)
        .bind(r.redirect_uri_sent)
        .bind(r.scope.to_string())
        .bind(&r.state)
        .bind(r.code_challenge.as_str())
        .bind(&r.nonce)
        .bind(r.prompt.to_stored())
        .bind(r.max_age)
        .bind(p.login_required)
        .bind(p.created_at)
        .bind(p.expires_at)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn pending(
        &self,
        id_hash: &SecretHash,
        now: UnixTime,
    ) -> StoreResult<Option<PendingAuthorization>> {
        let row = sqlx::query(
            "SELECT * FROM pending_authorizations WHERE id_hash = $1 AND consumed_at IS NULL AND expires_at > $2",
        )
        .bind(id_hash.as_str())
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(codec::pending_from_row).transpose()
    }

    async fn attach_login(
        &self,
        id_hash: &SecretHash,
        session_hash: &SecretHash,
    ) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE pending_authorizations SET login_session = $1 WHERE id_hash = $2 AND consumed_at IS NULL",
        )
        .bind(session_hash.as_str())
        .bind(id_hash.as_str())
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(r.rows_affected() == 1)
    }

    async fn consume_pending(
        &self,
        id_hash: &SecretHash,
        now: UnixTime,
    ) -> StoreResult<ConsumeOutcome> {
        let r = sqlx::query(
            "UPDATE pending_authorizations SET consumed_at = $1
             WHERE id_hash = $2 AND consumed_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(id_hash.as_str())
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        if r.rows_affected() == 1 {
            return Ok(ConsumeOutcome::Consumed);
        }
        let consumed: Option<Option<i64>> =
            sqlx::query_scalar("SELECT consumed_at FROM pending_authorizations WHERE id_hash = $1")
                .bind(id_hash.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
        Ok(match consumed {
            Some(Some(_)) => ConsumeOutcome::AlreadyConsumed,
            _ => ConsumeOutcome::NotFound,
        })
    }
}

#[async_trait]
impl ConsentStore for PostgresStore {
    async fn consent(&self, user_id: &str, client_id: &str) -> StoreResult<Option<Scope>> {
        let scope: Option<String> =
            sqlx::query_scalar("SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2")
                .bind(user_id)
                .bind(client_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
        scope.map(|s| Scope::parse(&s).map_err(corrupt)).transpose()
    }

    async fn remember_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &Scope,
        now: UnixTime,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        // Make sure the row exists, then lock it: two approvals at once merge one after the
        // other instead of one overwriting the other.
        sqlx::query(
            "INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES ($1, $2, '', $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let old: String = sqlx::query_scalar(
            "SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2 FOR UPDATE",
        )
        .bind(user_id)
        .bind(client_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        let merged = Scope::parse(&old).map_err(corrupt)?.union(scope);
        sqlx::query(
            "UPDATE consents SET scope = $1, granted_at = $2 WHERE user_id = $3 AND client_id = $4",
        )
        .bind(merged.to_string())
        .bind(now)
        .bind(user_id)
        .bind(client_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }
}

async fn insert_pair(
    tx: &mut sqlx::PgConnection,
    grant_id: &str,
    now: UnixTime,
    pair: &NewPair,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO access_tokens (hash, grant_id, scope, issued_at, expires_at, kid)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(pair.access_hash.as_str())
    .bind(grant_id)
    .bind(pair.access_scope.to_string())
    .bind(now)
    .bind(pair.access_expires_at)
    .bind(&pair.access_kid)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    if let Some(refresh) = &pair.refresh {
        sqlx::query(
            "INSERT INTO refresh_tokens (hash, grant_id, access_hash, issued_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(refresh.hash.as_str())
        .bind(grant_id)
        .bind(pair.access_hash.as_str())
        .bind(now)
        .bind(refresh.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    }
    Ok(())
}

#[async_trait]
impl CodeStore for PostgresStore {
    async fn code(&self, hash: &SecretHash) -> StoreResult<Option<StoredCode>> {
        let row = sqlx::query(CODE_BY_HASH)
            .bind(hash.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(codec::stored_code_from_row).transpose()
    }

    async fn record_failed_attempt(&self, code: &NewCode, now: UnixTime) -> StoreResult<i64> {
        let row = bind_seen_code(
            concat!(
                insert_seen_code!(),
                " ON CONFLICT (hash) DO UPDATE SET failed_attempts = codes.failed_attempts + 1
                  WHERE codes.redeemed_at IS NULL
                 RETURNING failed_attempts"
            ),
            code,
            1,
            None,
            now,
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        match row {
            Some(row) => row.int("failed_attempts"),
            None => Ok(MAX_FAILED_ATTEMPTS),
        }
    }

    async fn redeem_code(
        &self,
        code: &NewCode,
        now: UnixTime,
        issue: &IssueTokens,
    ) -> StoreResult<RedeemOutcome> {
        let hash = &code.hash;
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        // The grant row must exist before the code can point at it (the foreign key is checked
        // at once). Inserting it first, before the code's row lock is taken, also keeps the
        // lock order of a concurrent client or user deletion (parent rows, then the code) from
        // deadlocking with this transaction. Its id is fresh, so it cannot collide; a loser
        // rolls it back below and leaves nothing behind. No grant when the client or user is
        // gone since the code was issued: the code dies with them.
        let g = &issue.grant;
        let granted = sqlx::query(
            "INSERT INTO grants (id, client_id, user_id, scope, auth_time, created_at, expires_at)
             SELECT $1, $2, $3, $4, $5, $6, $7
             WHERE EXISTS (SELECT 1 FROM clients WHERE client_id = $2)
               AND EXISTS (SELECT 1 FROM users WHERE id = $3)",
        )
        .bind(&g.id)
        .bind(&g.client_id)
        .bind(&g.user_id)
        .bind(g.scope.to_string())
        .bind(g.auth_time)
        .bind(g.created_at)
        .bind(g.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
        .rows_affected()
            == 1;
        if !granted {
            tx.rollback().await.map_err(db_err)?;
            return Ok(RedeemOutcome::NotFound);
        }
        // The compare-and-set: concurrent redeemers queue on the code's row (or on its key,
        // for a code not seen before), and each re-checks `redeemed_at IS NULL` against the
        // winner's committed row.
        let won = bind_seen_code(
            concat!(
                insert_seen_code!(),
                " ON CONFLICT (hash) DO UPDATE SET redeemed_at = excluded.redeemed_at,
                                                  grant_id = excluded.grant_id
                  WHERE codes.redeemed_at IS NULL AND codes.failed_attempts < $9
                    AND codes.expires_at > $6"
            ),
            code,
            0,
            Some((now, &g.id)),
            now,
        )
        .bind(MAX_FAILED_ATTEMPTS)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
        .rows_affected()
            == 1;
        if won {
            insert_pair(&mut tx, &g.id, now, &issue.pair).await?;
            tx.commit().await.map_err(db_err)?;
            return Ok(RedeemOutcome::Redeemed);
        }
        tx.rollback().await.map_err(db_err)?;
        let row =
            sqlx::query("SELECT redeemed_at, failed_attempts, grant_id FROM codes WHERE hash = $1")
                .bind(hash.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
        let Some(row) = row else {
            return Ok(RedeemOutcome::NotFound);
        };
        if row.opt_int("redeemed_at")?.is_some()
            || row.int("failed_attempts")? >= MAX_FAILED_ATTEMPTS
        {
            Ok(RedeemOutcome::AlreadyUsed {
                grant_id: row.opt_text("grant_id")?,
            })
        } else {
            Ok(RedeemOutcome::NotFound)
        }
    }
}

#[async_trait]
impl TokenStore for PostgresStore {
    async fn refresh_state(&self, hash: &SecretHash) -> StoreResult<Option<RefreshState>> {
        let row = sqlx::query(REFRESH_STATE)
            .bind(hash.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(codec::refresh_state_from_row).transpose()
    }

    async fn rotate_refresh(
        &self,
        hash: &SecretHash,
        now: UnixTime,
        pair: &NewPair,
    ) -> StoreResult<CasOutcome> {
        let successor = pair.refresh.as_ref().map(|r| r.hash.as_str());
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let grant_id: Option<String> = sqlx::query_scalar(
            "UPDATE refresh_tokens SET used_at = $1, successor_hash = $2
             WHERE hash = $3 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $1
               AND EXISTS (SELECT 1 FROM grants g WHERE g.id = refresh_tokens.grant_id AND g.revoked_at IS NULL AND g.expires_at > $1)
             RETURNING grant_id",
        )
        .bind(now)
        .bind(successor)
        .bind(hash.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(grant_id) = grant_id else {
            tx.rollback().await.map_err(db_err)?;
            return Ok(CasOutcome::Lost);
        };
        insert_pair(&mut tx, &grant_id, now, pair).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(CasOutcome::Done)
    }

    async fn grace_reissue(
        &self,
        hash: &SecretHash,
        now: UnixTime,
        pair: &NewPair,
    ) -> StoreResult<CasOutcome> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        // Claim the grace first (once per token); the row lock makes a concurrent reissue of
        // the same token wait, then find the grace spent.
        let claimed: Option<(String, Option<String>)> = sqlx::query_as(
            "UPDATE refresh_tokens SET grace_used_at = $1
             WHERE hash = $2 AND used_at IS NOT NULL AND grace_used_at IS NULL AND revoked_at IS NULL
               AND EXISTS (SELECT 1 FROM grants g WHERE g.id = refresh_tokens.grant_id AND g.revoked_at IS NULL AND g.expires_at > $1)
             RETURNING grant_id, successor_hash",
        )
        .bind(now)
        .bind(hash.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some((grant_id, Some(old_successor))) = claimed else {
            tx.rollback().await.map_err(db_err)?;
            return Ok(CasOutcome::Lost);
        };
        // The successor must still be unused; a rotation of it racing with this waits on (or
        // holds) its row lock, and exactly one of the two wins. Losing undoes the claim too.
        let old_access: Option<String> = sqlx::query_scalar(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE hash = $2 AND used_at IS NULL AND revoked_at IS NULL
             RETURNING access_hash",
        )
        .bind(now)
        .bind(&old_successor)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(old_access) = old_access else {
            tx.rollback().await.map_err(db_err)?;
            return Ok(CasOutcome::Lost);
        };
        sqlx::query(
            "UPDATE access_tokens SET revoked_at = $1 WHERE hash = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(&old_access)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query("UPDATE refresh_tokens SET successor_hash = $1 WHERE hash = $2")
            .bind(pair.refresh.as_ref().map(|r| r.hash.as_str()))
            .bind(hash.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        insert_pair(&mut tx, &grant_id, now, pair).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(CasOutcome::Done)
    }

    async fn revoke_grant(&self, grant_id: &str, now: UnixTime, reason: &str) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE grants SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(reason)
        .bind(grant_id)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(r.rows_affected() == 1)
    }

    async fn access_token_status(
        &self,
        hash: &SecretHash,
        now: UnixTime,
    ) -> StoreResult<TokenStatus> {
        let row: Option<(i64, bool)> = sqlx::query_as(
            "SELECT LEAST(a.expires_at, g.expires_at), a.revoked_at IS NOT NULL OR g.revoked_at IS NOT NULL
             FROM access_tokens a JOIN grants g ON g.id = a.grant_id WHERE a.hash = $1",
        )
        .bind(hash.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(row.map_or(TokenStatus::Unknown, |(exp, revoked)| {
            codec::status(exp, revoked, now)
        }))
    }

    async fn refresh_token_status(
        &self,
        hash: &SecretHash,
        now: UnixTime,
    ) -> StoreResult<TokenStatus> {
        let row: Option<(i64, bool)> = sqlx::query_as(
            "SELECT LEAST(r.expires_at, g.expires_at),
                    r.revoked_at IS NOT NULL OR r.used_at IS NOT NULL OR g.revoked_at IS NOT NULL
             FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id WHERE r.hash = $1",
        )
        .bind(hash.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(row.map_or(TokenStatus::Unknown, |(exp, revoked)| {
            codec::status(exp, revoked, now)
        }))
    }

    async fn token_info(&self, hash: &SecretHash, now: UnixTime) -> StoreResult<Option<TokenInfo>> {
        let access = sqlx::query(ACCESS_TOKEN_INFO)
            .bind(hash.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        if let Some(row) = access {
            return codec::token_info_from_row(&row, TokenKind::Access, now).map(Some);
        }
        self.refresh_token_info(hash, now).await
    }

    async fn revoke_access_token(&self, hash: &SecretHash, now: UnixTime) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE access_tokens SET revoked_at = $1 WHERE hash = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(hash.as_str())
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(r.rows_affected() == 1)
    }
}

async fn insert_key<'e, E>(exec: E, k: &StoredKey) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    sqlx::query(
        "INSERT INTO signing_keys (kid, alg, private_key, public_jwk, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&k.kid)
    .bind(&k.alg)
    .bind(&k.private_key)
    .bind(&k.public_jwk)
    .bind(k.created_at)
    .execute(exec)
    .await
    .map(|_| ())
}

#[async_trait]
impl KeyStore for PostgresStore {
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        let rows =
            sqlx::query("SELECT * FROM signing_keys ORDER BY created_at DESC, kid COLLATE \"C\"")
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
        rows.iter().map(codec::key_from_row).collect()
    }

    async fn insert_active_key(&self, key: &StoredKey) -> StoreResult<bool> {
        // One statement on its own: a unique violation (another instance's active key of the
        // same algorithm) aborts nothing else.
        match insert_key(&self.pool, key).await {
            Ok(()) => Ok(true),
            Err(e) if codec::is_unique_violation(&e) => Ok(false),
            Err(e) => Err(db_err(e)),
        }
    }

    async fn rotate_key(
        &self,
        key: &StoredKey,
        now: UnixTime,
        publish_until: UnixTime,
    ) -> StoreResult<Option<String>> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        // Rotations of one algorithm take turns. The row lock alone would not do: a rotation
        // that waited on it re-checks only the row it found, misses the key the winner
        // inserted, and its own insert then breaks `signing_keys_one_active`. After this lock,
        // the next statement's snapshot sees the winner's new key and rotates it out.
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(KEY_ROTATION_LOCK)
            .bind(&key.alg)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let previous: Option<String> = sqlx::query_scalar(
            "UPDATE signing_keys SET rotated_at = $1, publish_until = $2
             WHERE alg = $3 AND rotated_at IS NULL AND retired_at IS NULL RETURNING kid",
        )
        .bind(now)
        .bind(publish_until)
        .bind(&key.alg)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        insert_key(&mut *tx, key).await.map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(previous)
    }

    async fn retire_key(&self, kid: &str, now: UnixTime) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE signing_keys SET retired_at = $1 WHERE kid = $2 AND retired_at IS NULL",
        )
        .bind(now)
        .bind(kid)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(r.rows_affected() == 1)
    }

    async fn replace_private_key(&self, kid: &str, private_key: &str) -> StoreResult<bool> {
        let r = sqlx::query("UPDATE signing_keys SET private_key = $1 WHERE kid = $2")
            .bind(private_key)
            .bind(kid)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(r.rows_affected() == 1)
    }

    async fn server_secret(
        &self,
        name: &str,
        candidate: &str,
        now: UnixTime,
    ) -> StoreResult<String> {
        // Concurrent first starts: the losers' inserts do nothing and they read the winner's.
        sqlx::query(
            "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(candidate)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        let value: Option<String> =
            sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
        value.ok_or_else(|| StoreError::Corrupt(format!("server secret {name:?} vanished")))
    }
}

impl PostgresStore {
    /// A refresh token's introspection record (after no access token matched).
    async fn refresh_token_info(
        &self,
        hash: &SecretHash,
        now: UnixTime,
    ) -> StoreResult<Option<TokenInfo>> {
        let refresh = sqlx::query(REFRESH_TOKEN_INFO)
            .bind(hash.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        refresh
            .map(|row| codec::token_info_from_row(&row, TokenKind::Refresh, now))
            .transpose()
    }

    /// The client at `version` of the change counter, from the cache when it holds that
    /// version, else read (one more round trip) and remembered.
    async fn client_at(&self, client_id: &str, version: i64) -> StoreResult<Option<Client>> {
        if !storable(client_id) {
            return Ok(None);
        }
        if let Some(client) = self.clients.get(client_id, version) {
            return Ok(Some(client));
        }
        let row = sqlx::query("SELECT * FROM clients WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        let client = row.as_ref().map(codec::client_from_row).transpose()?;
        if let Some(c) = &client {
            self.clients.put(version, c);
        }
        Ok(client)
    }
}

/// The change counter travels with the request's next read, in one statement: on a cache hit
/// that is one round trip instead of two.
#[async_trait]
impl CombinedReads for PostgresStore {
    async fn client_and(
        &self,
        client_id: &str,
        next: NextRead,
    ) -> StoreResult<(Option<Client>, ReadAlongside)> {
        use std::sync::LazyLock;
        static CODE: LazyLock<String> = LazyLock::new(|| with_clients_version(CODE_BY_HASH));
        static REFRESH: LazyLock<String> = LazyLock::new(|| with_clients_version(REFRESH_STATE));
        static ACCESS_INFO: LazyLock<String> =
            LazyLock::new(|| with_clients_version(ACCESS_TOKEN_INFO));
        static SESSION: LazyLock<String> = LazyLock::new(|| with_clients_version(SESSION_BY_HASH));
        let (sql, hash, now): (&str, &SecretHash, Option<UnixTime>) = match &next {
            NextRead::Nothing => {
                return Ok((self.client(client_id).await?, ReadAlongside::Nothing));
            }
            NextRead::Code(hash) => (&CODE, hash, None),
            NextRead::RefreshState(hash) => (&REFRESH, hash, None),
            NextRead::TokenInfo(hash, _) => (&ACCESS_INFO, hash, None),
            NextRead::Session(hash, now) => (&SESSION, hash, Some(*now)),
        };
        let mut query = sqlx::query(sql).bind(hash.as_str());
        if let Some(now) = now {
            query = query.bind(now);
        }
        let row = query
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .ok_or_else(|| corrupt("the clients change counter is missing"))?;
        let version = row.int("clients_version")?;
        let found = sqlx::Row::try_get::<Option<bool>, _>(&row, "alongside_found")
            .map_err(db_err)?
            .unwrap_or(false);
        let alongside = match next {
            NextRead::Nothing => ReadAlongside::Nothing,
            NextRead::Code(_) => ReadAlongside::Code(
                found
                    .then(|| codec::stored_code_from_row(&row))
                    .transpose()?,
            ),
            NextRead::RefreshState(_) => ReadAlongside::RefreshState(
                found
                    .then(|| codec::refresh_state_from_row(&row))
                    .transpose()?,
            ),
            NextRead::TokenInfo(_, now) if found => ReadAlongside::TokenInfo(Some(
                codec::token_info_from_row(&row, TokenKind::Access, now)?,
            )),
            // Not an access token: a refresh token, asked for on its own.
            NextRead::TokenInfo(hash, now) => {
                ReadAlongside::TokenInfo(self.refresh_token_info(&hash, now).await?)
            }
            NextRead::Session(_, _) => {
                ReadAlongside::Session(found.then(|| codec::session_from_row(&row)).transpose()?)
            }
        };
        Ok((self.client_at(client_id, version).await?, alongside))
    }
}

#[async_trait]
impl OpsStore for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn schema_version(&self) -> StoreResult<(i64, i64)> {
        let applied: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        Ok((applied.unwrap_or(0), migrate::known()))
    }

    fn pool_state(&self) -> (u32, u32) {
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        (self.pool.size(), idle)
    }

    async fn purge(&self, what: Purge, now: UnixTime, batch: i64) -> StoreResult<u64> {
        // Each statement deletes one bounded batch, chosen by primary key. SKIP LOCKED: rows
        // another instance is purging (or a request is updating) are left to it, so instances
        // purging at once neither wait on each other nor delete the same rows twice.
        let (sql, cutoff) = match what {
            Purge::Sessions => (
                "DELETE FROM sessions WHERE id_hash IN
                 (SELECT id_hash FROM sessions WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
                now,
            ),
            Purge::PendingAuthorizations => (
                "DELETE FROM pending_authorizations WHERE id_hash IN
                 (SELECT id_hash FROM pending_authorizations WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
                now,
            ),
            Purge::Codes => (
                "DELETE FROM codes WHERE hash IN
                 (SELECT hash FROM codes WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
                now - CODE_RETENTION,
            ),
            Purge::AccessTokens => (
                "DELETE FROM access_tokens WHERE hash IN
                 (SELECT hash FROM access_tokens WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
                now,
            ),
            Purge::RefreshTokens => (
                "DELETE FROM refresh_tokens WHERE hash IN
                 (SELECT hash FROM refresh_tokens WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
                now,
            ),
            Purge::Grants => {
                let r = sqlx::query(
                    "DELETE FROM grants WHERE id IN
                     (SELECT id FROM grants WHERE expires_at <= $1 OR revoked_at <= $2
                      LIMIT $3 FOR UPDATE SKIP LOCKED)",
                )
                .bind(now)
                .bind(now - REVOKED_GRANT_RETENTION)
                .bind(batch)
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
                return Ok(r.rows_affected());
            }
        };
        let r = sqlx::query(sql)
            .bind(cutoff)
            .bind(batch)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(r.rows_affected())
    }
}
