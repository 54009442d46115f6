//! The embedded default backend: one SQLite file in WAL mode with `synchronous=FULL`, so a
//! committed token survives power loss before it is handed to a client. Writes go through
//! one writer thread that commits concurrent requests together ([`engine`]).
mod answer;
mod engine;
mod expiry_rowid;
mod migrate;
mod wal_writes;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension as _, Params, Row, params};

use oauthd_core::UnixTime;
use oauthd_core::client::Client;
use oauthd_core::code::MAX_FAILED_ATTEMPTS;
use oauthd_core::refresh::RefreshState;
use oauthd_core::scope::Scope;
use oauthd_core::secret::SecretHash;

use crate::client_cache::{self, ClientCache};
use crate::codec::{self, SqliteRow, corrupt};
use crate::*;
use engine::{Db, Location, unavailable};
use expiry_rowid::{next_rowid_in_slot, purge_expired, purge_params};

#[derive(Clone)]
pub struct SqliteStore {
    db: std::sync::Arc<Db>,
    clients: std::sync::Arc<ClientCache>,
}

impl SqliteStore {
    /// Open (creating if missing) the database at `url` (`sqlite://path` or `sqlite::memory:`)
    /// and apply pending migrations.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let db = Db::start(Location::parse(url)?, migrate::run).await?;
        Ok(SqliteStore {
            db: std::sync::Arc::new(db),
            clients: std::sync::Arc::default(),
        })
    }
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

fn conflict_or(e: rusqlite::Error, what: impl FnOnce() -> String) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Conflict(what())
    } else {
        unavailable(e)
    }
}

/// Run a statement; the number of rows it changed.
fn exec(conn: &Connection, sql: &str, params: impl Params) -> StoreResult<usize> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute(params))
        .map_err(unavailable)
}

/// The first row of a query, decoded.
fn one<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    decode: impl FnOnce(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(unavailable)?;
    let mut rows = stmt.query(params).map_err(unavailable)?;
    match rows.next().map_err(unavailable)? {
        Some(row) => decode(row).map(Some),
        None => Ok(None),
    }
}

/// Every row of a query, decoded.
fn all<T>(
    conn: &Connection,
    sql: &str,
    decode: impl Fn(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(unavailable)?;
    let mut rows = stmt.query([]).map_err(unavailable)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(unavailable)? {
        out.push(decode(row)?);
    }
    Ok(out)
}

/// One value of the first row, if there is a row.
fn scalar<T: rusqlite::types::FromSql>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
) -> StoreResult<Option<T>> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.query_row(params, |r| r.get(0)).optional())
        .map_err(unavailable)
}

/// A savepoint inside a writer job, for a compare-and-set that first makes changes it may
/// have to undo (as a PostgreSQL transaction rolls back): the job then answers `Lost`
/// instead of failing. The engine's own savepoint per job is outside it.
fn try_changes(conn: &Connection) -> StoreResult<()> {
    exec(conn, "SAVEPOINT cas", []).map(drop)
}

fn keep_changes(conn: &Connection) -> StoreResult<()> {
    exec(conn, "RELEASE cas", []).map(drop)
}

fn undo_changes(conn: &Connection) -> StoreResult<()> {
    exec(conn, "ROLLBACK TO cas", [])?;
    keep_changes(conn)
}

/// A read's statement with the clients change counter as its first column, so that the
/// request's client lookup gets the counter from the same statement, and so the same
/// snapshot, as the read it comes with (`client_and`). Every read `client_and` makes
/// beside the client is written with it; the counter's name is `client_cache::COUNTER`.
macro_rules! with_clients_version {
    ($columns_and_rest:literal) => {
        concat!(
            "SELECT (SELECT value FROM change_counters WHERE name = 'clients') AS clients_version, ",
            $columns_and_rest
        )
    };
}

/// The first row of a statement written `with_clients_version!`: the counter, and the row
/// decoded.
fn one_versioned<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    decode: impl FnOnce(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Option<(i64, T)>> {
    one(conn, sql, params, |r| {
        let version = r
            .get::<_, Option<i64>>("clients_version")
            .map_err(unavailable)?
            .ok_or_else(|| corrupt("the clients change counter is missing"))?;
        Ok((version, decode(r)?))
    })
}

/// The clients change counter, read on its own.
fn clients_version(conn: &Connection) -> StoreResult<i64> {
    scalar(
        conn,
        "SELECT value FROM change_counters WHERE name = ?",
        [client_cache::COUNTER],
    )?
    .ok_or_else(|| corrupt("the clients change counter is missing"))
}

/// A client, from the cache while the clients change counter is what it was read at.
fn client(conn: &Connection, cache: &ClientCache, client_id: &str) -> StoreResult<Option<Client>> {
    // The counter first: see `ClientCache::put`.
    let version = clients_version(conn)?;
    client_at(conn, cache, client_id, version)
}

/// A client, from the cache if it was read when the counter was `version`, else from its
/// row, read after the counter was (`ClientCache::put`).
fn client_at(
    conn: &Connection,
    cache: &ClientCache,
    client_id: &str,
    version: i64,
) -> StoreResult<Option<Client>> {
    if let Some(client) = cache.get(client_id, version) {
        return Ok(Some(client));
    }
    let client = one(
        conn,
        "SELECT * FROM clients WHERE client_id = ?",
        [client_id],
        |r| codec::client_from_row(&SqliteRow::new(r)),
    )?;
    if let Some(c) = &client {
        cache.put(version, c);
    }
    Ok(client)
}

/// The counter a read found its row with (none if it found none), and what it found.
fn alongside<T>(
    found: Option<(i64, T)>,
    answer: impl FnOnce(Option<T>) -> ReadAlongside,
) -> (Option<i64>, ReadAlongside) {
    match found {
        Some((version, row)) => (Some(version), answer(Some(row))),
        None => (None, answer(None)),
    }
}

/// The counter comes with the request's next read, in its statement, as on PostgreSQL: on a
/// cache hit a combined read is one statement instead of four (`BEGIN`, the counter, the
/// read, `COMMIT`), in one read transaction as before. When the read finds no row, or there
/// is no read beside the client, the counter is read on its own, after it; on a cache miss
/// the client's row is read after the counter, in a statement of its own. Both orders are
/// the one `ClientCache::put` needs.
#[async_trait]
impl CombinedReads for SqliteStore {
    async fn client_and(
        &self,
        client_id: &str,
        next: NextRead,
    ) -> StoreResult<(Option<Client>, ReadAlongside)> {
        let client_id = client_id.to_owned();
        let cache = self.clients.clone();
        self.db
            .read(move |conn| {
                let (version, read) = match &next {
                    NextRead::Nothing => (None, ReadAlongside::Nothing),
                    NextRead::Code(hash) => alongside(code(conn, hash)?, ReadAlongside::Code),
                    NextRead::RefreshState(hash) => {
                        alongside(refresh_state(conn, hash)?, ReadAlongside::RefreshState)
                    }
                    NextRead::TokenInfo(hash, now) => {
                        alongside(token_info(conn, hash, *now)?, ReadAlongside::TokenInfo)
                    }
                    NextRead::Session(hash, now) => {
                        alongside(session(conn, hash, *now)?, ReadAlongside::Session)
                    }
                };
                let version = match version {
                    Some(version) => version,
                    None => clients_version(conn)?,
                };
                Ok((client_at(conn, &cache, &client_id, version)?, read))
            })
            .await
    }
}

#[async_trait]
impl ClientStore for SqliteStore {
    async fn insert_client(&self, c: &Client) -> StoreResult<()> {
        let c = c.clone();
        self.db
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO clients (client_id, name, kind, secret_hash, redirect_uris, grants, scopes, trusted,
                                          pkce_mode, access_token_ttl, refresh_token_ttl, access_token_format,
                                          access_token_alg, id_token_alg, audience, created_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        c.client_id,
                        c.name,
                        c.kind.as_str(),
                        c.secret_hash,
                        codec::join_uris(&c.redirect_uris),
                        codec::join_grants(&c.grants),
                        c.scopes.to_string(),
                        c.trusted,
                        c.pkce.as_str(),
                        c.access_token_ttl,
                        c.refresh_token_ttl,
                        c.access_token_format.as_str(),
                        c.access_token_alg.as_str(),
                        c.id_token_alg.as_str(),
                        c.audience.join(" "),
                        c.created_at,
                    ])
                })
                .map_err(|e| conflict_or(e, || format!("client {:?}", c.client_id)))?;
                Ok(())
            })
            .await
    }

    async fn client(&self, client_id: &str) -> StoreResult<Option<Client>> {
        let client_id = client_id.to_owned();
        let cache = self.clients.clone();
        self.db
            .read(move |conn| client(conn, &cache, &client_id))
            .await
    }

    async fn clients(&self) -> StoreResult<Vec<Client>> {
        self.db
            .read(|conn| {
                all(conn, "SELECT * FROM clients ORDER BY client_id", |r| {
                    codec::client_from_row(&SqliteRow::new(r))
                })
            })
            .await
    }

    async fn delete_client(&self, client_id: &str) -> StoreResult<bool> {
        let client_id = client_id.to_owned();
        self.db
            .write(move |conn| {
                Ok(exec(
                    conn,
                    "DELETE FROM clients WHERE client_id = ?",
                    [&client_id],
                )? == 1)
            })
            .await
    }

    async fn set_client_secret(&self, client_id: &str, secret_hash: &str) -> StoreResult<bool> {
        let (client_id, secret_hash) = (client_id.to_owned(), secret_hash.to_owned());
        self.db
            .write(move |conn| {
                Ok(exec(
                    conn,
                    "UPDATE clients SET secret_hash = ? WHERE client_id = ? AND kind = 'confidential'",
                    [&secret_hash, &client_id],
                )? == 1)
            })
            .await
    }
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn insert_user(&self, u: &User) -> StoreResult<()> {
        let u = u.clone();
        self.db
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO users (id, username, password_hash, email, display_name, created_at)
                     VALUES (?, ?, ?, ?, ?, ?)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        u.id,
                        u.username,
                        u.password_hash,
                        u.email,
                        u.display_name,
                        u.created_at
                    ])
                })
                .map_err(|e| conflict_or(e, || format!("user {:?}", u.username)))?;
                Ok(())
            })
            .await
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let username = username.to_owned();
        self.db
            .read(move |conn| {
                one(
                    conn,
                    "SELECT * FROM users WHERE username = ?",
                    [username],
                    |r| codec::user_from_row(&SqliteRow::new(r)),
                )
            })
            .await
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        let id = id.to_owned();
        self.db
            .read(move |conn| {
                one(conn, "SELECT * FROM users WHERE id = ?", [id], |r| {
                    codec::user_from_row(&SqliteRow::new(r))
                })
            })
            .await
    }

    async fn users(&self) -> StoreResult<Vec<User>> {
        self.db
            .read(|conn| {
                all(conn, "SELECT * FROM users ORDER BY username", |r| {
                    codec::user_from_row(&SqliteRow::new(r))
                })
            })
            .await
    }

    async fn delete_user(&self, username: &str) -> StoreResult<bool> {
        let username = username.to_owned();
        self.db
            .write(move |conn| {
                Ok(exec(conn, "DELETE FROM users WHERE username = ?", [&username])? == 1)
            })
            .await
    }

    async fn set_password(&self, username: &str, password_hash: &str) -> StoreResult<bool> {
        let (username, password_hash) = (username.to_owned(), password_hash.to_owned());
        self.db
            .write(move |conn| {
                if exec(
                    conn,
                    "UPDATE users SET password_hash = ? WHERE username = ?",
                    [&password_hash, &username],
                )? != 1
                {
                    return Ok(false);
                }
                // A new password ends every browser session of the account.
                exec(
                    conn,
                    "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = ?)",
                    [&username],
                )?;
                Ok(true)
            })
            .await
    }
}

/// A live session, with the clients change counter (`with_clients_version!`).
fn session(
    conn: &Connection,
    id_hash: &SecretHash,
    now: UnixTime,
) -> StoreResult<Option<(i64, Session)>> {
    one_versioned(
        conn,
        with_clients_version!(
            "s.user_id, u.username, s.auth_time FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.id_hash = ? AND s.expires_at > ?"
        ),
        params![id_hash.as_str(), now],
        |r| codec::session_from_row(&SqliteRow::new(r)),
    )
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn insert_session(&self, s: &NewSession) -> StoreResult<()> {
        let s = s.clone();
        self.db
            .write(move |conn| {
                exec(
                    conn,
                    "INSERT INTO sessions (id_hash, user_id, auth_time, expires_at) VALUES (?, ?, ?, ?)",
                    params![s.id_hash.as_str(), s.user_id, s.auth_time, s.expires_at],
                )?;
                Ok(())
            })
            .await
    }

    async fn session(&self, id_hash: &SecretHash, now: UnixTime) -> StoreResult<Option<Session>> {
        let id_hash = id_hash.clone();
        self.db
            .read(move |conn| Ok(session(conn, &id_hash, now)?.map(|(_, s)| s)))
            .await
    }

    async fn delete_session(&self, id_hash: &SecretHash) -> StoreResult<()> {
        let id_hash = id_hash.clone();
        self.db
            .write(move |conn| {
                exec(
                    conn,
                    "DELETE FROM sessions WHERE id_hash = ?",
                    [id_hash.as_str()],
                )?;
                Ok(())
            })
            .await
    }
}

/// The start of a statement inserting the row of a code the token endpoint has seen, with
/// `failed_attempts`, `redeemed_at` and `grant_id` from `?4` to `?6`. Codes are sealed, not
/// stored, when issued (`oauthd_core::code_sealing`); each statement goes on with its own
/// `ON CONFLICT (hash)` rule for a code seen before. Parameters: [`seen_code_params!`]. Run
/// only for a [`live_code`]. `VALUES`, not `SELECT … WHERE`: an `INSERT … SELECT` reading the
/// table it inserts into (the rowid's slot) goes through a temporary table.
macro_rules! insert_seen_code {
    () => {
        concat!(
            "INSERT INTO codes (rowid, hash, expires_at, failed_attempts, redeemed_at, grant_id)
             VALUES (",
            next_rowid_in_slot!("codes"),
            ", ?2, ?3, ?4, ?5, ?6)"
        )
    };
}

/// Whether a code may still get a row: not expired by `now`, and its client and user still
/// exist. The writer holds the database, so the answer holds until its transaction ends.
fn live_code(conn: &Connection, c: &NewCode, now: UnixTime) -> StoreResult<bool> {
    if c.code.expires_at <= now {
        return Ok(false);
    }
    let live: Option<bool> = scalar(
        conn,
        "SELECT EXISTS (SELECT 1 FROM clients WHERE client_id = ?1)
            AND EXISTS (SELECT 1 FROM users WHERE id = ?2)",
        [c.code.client_id.as_str(), c.code.user_id.as_str()],
    )?;
    Ok(live == Some(true))
}

/// The parameters of [`insert_seen_code!`], then `$extra` from `?7`.
macro_rules! seen_code_params {
    ($c:expr, $failed:expr, $redeemed_at:expr, $grant_id:expr $(, $extra:expr)*) => {
        params![
            expiry_rowid::slot($c.code.expires_at),
            $c.hash.as_str(),
            $c.code.expires_at,
            $failed,
            $redeemed_at,
            $grant_id
            $(, $extra)*
        ]
    };
}

#[async_trait]
impl PendingAuthorizationStore for SqliteStore {
    async fn insert_pending(&self, p: &PendingAuthorization) -> StoreResult<()> {
        let p = p.clone();
        self.db
            .write(move |conn| {
                let r = &p.request;
                exec(
                    conn,
                    "INSERT INTO pending_authorizations (id_hash, browser_hash, client_id, redirect_uri, redirect_uri_sent,
                                                         scope, state, code_challenge, nonce, prompt, max_age,
                                                         login_required, created_at, expires_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    params![
                        p.id_hash.as_str(),
                        p.browser_hash.as_str(),
                        r.client_id,
                        r.redirect_uri,
                        r.redirect_uri_sent,
                        r.scope.to_string(),
                        r.state,
                        r.code_challenge.as_str(),
                        r.nonce,
                        r.prompt.to_stored(),
                        r.max_age,
                        p.login_required,
                        p.created_at,
                        p.expires_at,
                    ],
                )?;
                Ok(())
            })
            .await
    }

    async fn pending(
        &self,
        id_hash: &SecretHash,
        now: UnixTime,
    ) -> StoreResult<Option<PendingAuthorization>> {
        let id_hash = id_hash.clone();
        self.db
            .read(move |conn| {
                one(
                    conn,
                    "SELECT * FROM pending_authorizations WHERE id_hash = ? AND consumed_at IS NULL AND expires_at > ?",
                    params![id_hash.as_str(), now],
                    |r| codec::pending_from_row(&SqliteRow::new(r)),
                )
            })
            .await
    }

    async fn attach_login(
        &self,
        id_hash: &SecretHash,
        session_hash: &SecretHash,
    ) -> StoreResult<bool> {
        let (id_hash, session_hash) = (id_hash.clone(), session_hash.clone());
        self.db
            .write(move |conn| {
                Ok(exec(
                    conn,
                    "UPDATE pending_authorizations SET login_session = ? WHERE id_hash = ? AND consumed_at IS NULL",
                    [session_hash.as_str(), id_hash.as_str()],
                )? == 1)
            })
            .await
    }

    async fn consume_pending(
        &self,
        id_hash: &SecretHash,
        now: UnixTime,
    ) -> StoreResult<ConsumeOutcome> {
        let id_hash = id_hash.clone();
        self.db
            .write(move |conn| {
                let consumed = exec(
                    conn,
                    "UPDATE pending_authorizations SET consumed_at = ?
                     WHERE id_hash = ? AND consumed_at IS NULL AND expires_at > ?",
                    params![now, id_hash.as_str(), now],
                )? == 1;
                if consumed {
                    return Ok(ConsumeOutcome::Consumed);
                }
                let earlier: Option<Option<i64>> = scalar(
                    conn,
                    "SELECT consumed_at FROM pending_authorizations WHERE id_hash = ?",
                    [id_hash.as_str()],
                )?;
                Ok(match earlier {
                    Some(Some(_)) => ConsumeOutcome::AlreadyConsumed,
                    _ => ConsumeOutcome::NotFound,
                })
            })
            .await
    }
}

#[async_trait]
impl ConsentStore for SqliteStore {
    async fn consent(&self, user_id: &str, client_id: &str) -> StoreResult<Option<Scope>> {
        let (user_id, client_id) = (user_id.to_owned(), client_id.to_owned());
        let scope: Option<String> = self
            .db
            .read(move |conn| {
                scalar(
                    conn,
                    "SELECT scope FROM consents WHERE user_id = ? AND client_id = ?",
                    [user_id, client_id],
                )
            })
            .await?;
        scope.map(|s| Scope::parse(&s).map_err(corrupt)).transpose()
    }

    async fn remember_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &Scope,
        now: UnixTime,
    ) -> StoreResult<()> {
        let (user_id, client_id, scope) = (user_id.to_owned(), client_id.to_owned(), scope.clone());
        self.db
            .write(move |conn| {
                // Writes are serialised by the writer, so read-merge-write is atomic here.
                let old: Option<String> = scalar(
                    conn,
                    "SELECT scope FROM consents WHERE user_id = ? AND client_id = ?",
                    [&user_id, &client_id],
                )?;
                let merged = match old {
                    Some(old) => Scope::parse(&old).map_err(corrupt)?.union(&scope),
                    None => scope.clone(),
                };
                exec(
                    conn,
                    "INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES (?, ?, ?, ?)
                     ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
                    params![user_id, client_id, merged.to_string(), now],
                )?;
                Ok(())
            })
            .await
    }
}

fn insert_pair(
    conn: &Connection,
    grant_id: &str,
    now: UnixTime,
    pair: &NewPair,
) -> StoreResult<()> {
    exec(
        conn,
        concat!(
            "INSERT INTO access_tokens (rowid, hash, grant_id, scope, issued_at, expires_at, kid) VALUES (",
            next_rowid_in_slot!("access_tokens"),
            ", ?2, ?3, ?4, ?5, ?6, ?7)"
        ),
        params![
            expiry_rowid::slot(pair.access_expires_at),
            pair.access_hash.as_str(),
            grant_id,
            pair.access_scope.to_string(),
            now,
            pair.access_expires_at,
            pair.access_kid,
        ],
    )?;
    if let Some(refresh) = &pair.refresh {
        exec(
            conn,
            concat!(
                "INSERT INTO refresh_tokens (rowid, hash, grant_id, access_hash, issued_at, expires_at) VALUES (",
                next_rowid_in_slot!("refresh_tokens"),
                ", ?2, ?3, ?4, ?5, ?6)"
            ),
            params![
                expiry_rowid::slot(refresh.expires_at),
                refresh.hash.as_str(),
                grant_id,
                pair.access_hash.as_str(),
                now,
                refresh.expires_at,
            ],
        )?;
    }
    Ok(())
}

/// A code's row, with the clients change counter (`with_clients_version!`).
fn code(conn: &Connection, hash: &SecretHash) -> StoreResult<Option<(i64, StoredCode)>> {
    one_versioned(
        conn,
        with_clients_version!("* FROM codes WHERE hash = ?"),
        [hash.as_str()],
        |r| codec::stored_code_from_row(&SqliteRow::new(r)),
    )
}

#[async_trait]
impl CodeStore for SqliteStore {
    async fn code(&self, hash: &SecretHash) -> StoreResult<Option<StoredCode>> {
        let hash = hash.clone();
        self.db
            .read(move |conn| Ok(code(conn, &hash)?.map(|(_, c)| c)))
            .await
    }

    async fn record_failed_attempt(&self, code: &NewCode, now: UnixTime) -> StoreResult<i64> {
        let code = code.clone();
        self.db
            .write(move |conn| {
                if !live_code(conn, &code, now)? {
                    return Ok(MAX_FAILED_ATTEMPTS);
                }
                let n: Option<i64> = scalar(
                    conn,
                    concat!(
                        insert_seen_code!(),
                        " ON CONFLICT (hash) DO UPDATE SET failed_attempts = failed_attempts + 1
                          WHERE redeemed_at IS NULL
                         RETURNING failed_attempts"
                    ),
                    seen_code_params!(code, 1, None::<i64>, None::<&str>),
                )?;
                Ok(n.unwrap_or(MAX_FAILED_ATTEMPTS))
            })
            .await
    }

    async fn redeem_code(
        &self,
        code: &NewCode,
        now: UnixTime,
        issue: &IssueTokens,
    ) -> StoreResult<RedeemOutcome> {
        let (code, issue) = (code.clone(), issue.clone());
        let hash = code.hash.clone();
        self.db
            .write(move |conn| {
                // PostgreSQL's shape: the grant first (the code's foreign key to it is checked
                // at once), then the compare-and-set (RFC 6749 §4.1.2: a code is used once)
                // that records the code as redeemed and points it at the grant in one
                // statement. A loser deletes the grant it just inserted (nothing points at it
                // yet) and leaves nothing behind. Not a savepoint: inside one, SQLite first
                // copies every page the winner touches into a sub-journal (2.6 % of the
                // server's CPU at c=64). Nothing when the code has expired or its client or
                // user is gone since it was issued: the code dies with them.
                if !live_code(conn, &code, now)? {
                    return not_redeemed(conn, &hash);
                }
                let g = &issue.grant;
                exec(
                    conn,
                    concat!(
                        "INSERT INTO grants (rowid, id, client_id, user_id, scope, auth_time, created_at, expires_at)
                         VALUES (",
                        next_rowid_in_slot!("grants"),
                        ", ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                    ),
                    params![
                        expiry_rowid::slot(g.expires_at),
                        g.id,
                        g.client_id,
                        g.user_id,
                        g.scope.to_string(),
                        g.auth_time,
                        g.created_at,
                        g.expires_at,
                    ],
                )?;
                let won = exec(
                    conn,
                    concat!(
                        insert_seen_code!(),
                        " ON CONFLICT (hash) DO UPDATE SET redeemed_at = excluded.redeemed_at,
                                                          grant_id = excluded.grant_id
                          WHERE redeemed_at IS NULL AND failed_attempts < ?7"
                    ),
                    seen_code_params!(code, 0, Some(now), Some(&g.id), MAX_FAILED_ATTEMPTS),
                )? == 1;
                if won {
                    insert_pair(conn, &g.id, now, &issue.pair)?;
                    return Ok(RedeemOutcome::Redeemed);
                }
                exec(conn, "DELETE FROM grants WHERE id = ?", [&g.id])?;
                not_redeemed(conn, &hash)
            })
            .await
    }
}

/// Why a code was not redeemed: used up (redeemed, or burnt by failed verifiers), or not there.
fn not_redeemed(conn: &Connection, hash: &SecretHash) -> StoreResult<RedeemOutcome> {
    let row = one(
        conn,
        "SELECT redeemed_at, failed_attempts, grant_id FROM codes WHERE hash = ?",
        [hash.as_str()],
        |r| {
            Ok((
                r.get::<_, Option<i64>>(0).map_err(corrupt)?,
                r.get::<_, i64>(1).map_err(corrupt)?,
                r.get::<_, Option<String>>(2).map_err(corrupt)?,
            ))
        },
    )?;
    Ok(match row {
        Some((redeemed_at, attempts, grant_id))
            if redeemed_at.is_some() || attempts >= MAX_FAILED_ATTEMPTS =>
        {
            RedeemOutcome::AlreadyUsed { grant_id }
        }
        _ => RedeemOutcome::NotFound,
    })
}

/// A refresh token's state, with the clients change counter (`with_clients_version!`).
fn refresh_state(conn: &Connection, hash: &SecretHash) -> StoreResult<Option<(i64, RefreshState)>> {
    one_versioned(
        conn,
        with_clients_version!(
            "r.grant_id, g.client_id, g.user_id, g.auth_time, g.scope, r.expires_at, g.expires_at AS grant_expires_at,
                g.revoked_at IS NOT NULL AS grant_revoked, r.revoked_at IS NOT NULL AS revoked, r.used_at,
                r.grace_used_at IS NOT NULL AS grace_used,
                COALESCE((SELECT s.used_at IS NOT NULL FROM refresh_tokens s WHERE s.hash = r.successor_hash), 0)
                    AS successor_used
         FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id WHERE r.hash = ?"
        ),
        [hash.as_str()],
        |r| codec::refresh_state_from_row(&SqliteRow::new(r)),
    )
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn refresh_state(&self, hash: &SecretHash) -> StoreResult<Option<RefreshState>> {
        let hash = hash.clone();
        self.db
            .read(move |conn| Ok(refresh_state(conn, &hash)?.map(|(_, r)| r)))
            .await
    }

    async fn rotate_refresh(
        &self,
        hash: &SecretHash,
        now: UnixTime,
        pair: &NewPair,
    ) -> StoreResult<CasOutcome> {
        let (hash, pair) = (hash.clone(), pair.clone());
        self.db
            .write(move |conn| {
                let successor = pair.refresh.as_ref().map(|r| r.hash.as_str());
                let grant_id: Option<String> = scalar(
                    conn,
                    "UPDATE refresh_tokens SET used_at = ?, successor_hash = ?
                     WHERE hash = ? AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?
                       AND EXISTS (SELECT 1 FROM grants g WHERE g.id = refresh_tokens.grant_id AND g.revoked_at IS NULL AND g.expires_at > ?)
                     RETURNING grant_id",
                    params![now, successor, hash.as_str(), now, now],
                )?;
                let Some(grant_id) = grant_id else {
                    return Ok(CasOutcome::Lost);
                };
                insert_pair(conn, &grant_id, now, &pair)?;
                Ok(CasOutcome::Done)
            })
            .await
    }

    async fn grace_reissue(
        &self,
        hash: &SecretHash,
        now: UnixTime,
        pair: &NewPair,
    ) -> StoreResult<CasOutcome> {
        let (hash, pair) = (hash.clone(), pair.clone());
        self.db
            .write(move |conn| {
                // PostgreSQL's shape: claim the grace (once per token) with one
                // compare-and-set, then revoke the successor only if it is still unused (else
                // the client did get it); losing either undoes both.
                try_changes(conn)?;
                let claimed = one(
                    conn,
                    "UPDATE refresh_tokens SET grace_used_at = ?
                     WHERE hash = ? AND used_at IS NOT NULL AND grace_used_at IS NULL AND revoked_at IS NULL
                       AND EXISTS (SELECT 1 FROM grants g WHERE g.id = refresh_tokens.grant_id AND g.revoked_at IS NULL AND g.expires_at > ?)
                     RETURNING grant_id, successor_hash",
                    params![now, hash.as_str(), now],
                    |r| {
                        Ok((
                            r.get::<_, String>(0).map_err(corrupt)?,
                            r.get::<_, Option<String>>(1).map_err(corrupt)?,
                        ))
                    },
                )?;
                let Some((grant_id, Some(old_successor))) = claimed else {
                    undo_changes(conn)?;
                    return Ok(CasOutcome::Lost);
                };
                let old_access: Option<String> = scalar(
                    conn,
                    "UPDATE refresh_tokens SET revoked_at = ? WHERE hash = ? AND used_at IS NULL AND revoked_at IS NULL
                     RETURNING access_hash",
                    params![now, old_successor],
                )?;
                let Some(old_access) = old_access else {
                    undo_changes(conn)?;
                    return Ok(CasOutcome::Lost);
                };
                exec(
                    conn,
                    "UPDATE access_tokens SET revoked_at = ? WHERE hash = ? AND revoked_at IS NULL",
                    params![now, old_access],
                )?;
                exec(
                    conn,
                    "UPDATE refresh_tokens SET successor_hash = ? WHERE hash = ?",
                    params![pair.refresh.as_ref().map(|r| r.hash.as_str()), hash.as_str()],
                )?;
                insert_pair(conn, &grant_id, now, &pair)?;
                keep_changes(conn)?;
                Ok(CasOutcome::Done)
            })
            .await
    }

    async fn revoke_grant(&self, grant_id: &str, now: UnixTime, reason: &str) -> StoreResult<bool> {
        let (grant_id, reason) = (grant_id.to_owned(), reason.to_owned());
        self.db
            .write(move |conn| {
                Ok(exec(
                    conn,
                    "UPDATE grants SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL",
                    params![now, reason, grant_id],
                )? == 1)
            })
            .await
    }

    async fn access_token_status(
        &self,
        hash: &SecretHash,
        now: UnixTime,
    ) -> StoreResult<TokenStatus> {
        let hash = hash.clone();
        self.db
            .read(move |conn| {
                status(
                    conn,
                    "SELECT MIN(a.expires_at, g.expires_at), a.revoked_at IS NOT NULL OR g.revoked_at IS NOT NULL
                     FROM access_tokens a JOIN grants g ON g.id = a.grant_id WHERE a.hash = ?",
                    &hash,
                    now,
                )
            })
            .await
    }

    async fn refresh_token_status(
        &self,
        hash: &SecretHash,
        now: UnixTime,
    ) -> StoreResult<TokenStatus> {
        let hash = hash.clone();
        self.db
            .read(move |conn| {
                status(
                    conn,
                    "SELECT MIN(r.expires_at, g.expires_at),
                            r.revoked_at IS NOT NULL OR r.used_at IS NOT NULL OR g.revoked_at IS NOT NULL
                     FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id WHERE r.hash = ?",
                    &hash,
                    now,
                )
            })
            .await
    }

    async fn token_info(&self, hash: &SecretHash, now: UnixTime) -> StoreResult<Option<TokenInfo>> {
        let hash = hash.clone();
        self.db
            .read(move |conn| Ok(token_info(conn, &hash, now)?.map(|(_, i)| i)))
            .await
    }

    async fn revoke_access_token(&self, hash: &SecretHash, now: UnixTime) -> StoreResult<bool> {
        let hash = hash.clone();
        self.db
            .write(move |conn| {
                Ok(exec(
                    conn,
                    "UPDATE access_tokens SET revoked_at = ? WHERE hash = ? AND revoked_at IS NULL",
                    params![now, hash.as_str()],
                )? == 1)
            })
            .await
    }
}

fn status(
    conn: &Connection,
    sql: &str,
    hash: &SecretHash,
    now: UnixTime,
) -> StoreResult<TokenStatus> {
    let row = one(conn, sql, [hash.as_str()], |r| {
        Ok((
            r.get::<_, i64>(0).map_err(corrupt)?,
            r.get::<_, bool>(1).map_err(corrupt)?,
        ))
    })?;
    Ok(row.map_or(TokenStatus::Unknown, |(exp, revoked)| {
        codec::status(exp, revoked, now)
    }))
}

/// What introspection tells of an access or refresh token, with the clients change counter
/// (`with_clients_version!`).
fn token_info(
    conn: &Connection,
    hash: &SecretHash,
    now: UnixTime,
) -> StoreResult<Option<(i64, TokenInfo)>> {
    let access = one_versioned(
        conn,
        with_clients_version!(
            "a.grant_id, g.client_id, g.user_id, u.username, a.scope, c.audience, a.issued_at,
                MIN(a.expires_at, g.expires_at) AS expires_at,
                a.revoked_at IS NOT NULL OR g.revoked_at IS NOT NULL OR k.retired_at IS NOT NULL AS revoked
         FROM access_tokens a
         JOIN grants g ON g.id = a.grant_id
         JOIN users u ON u.id = g.user_id
         JOIN clients c ON c.client_id = g.client_id
         LEFT JOIN signing_keys k ON k.kid = a.kid
         WHERE a.hash = ?"
        ),
        [hash.as_str()],
        |r| codec::token_info_from_row(&SqliteRow::new(r), TokenKind::Access, now),
    )?;
    if access.is_some() {
        return Ok(access);
    }
    one_versioned(
        conn,
        with_clients_version!(
            "r.grant_id, g.client_id, g.user_id, u.username, g.scope, c.audience, r.issued_at,
                MIN(r.expires_at, g.expires_at) AS expires_at,
                r.revoked_at IS NOT NULL OR r.used_at IS NOT NULL OR g.revoked_at IS NOT NULL AS revoked
         FROM refresh_tokens r
         JOIN grants g ON g.id = r.grant_id
         JOIN users u ON u.id = g.user_id
         JOIN clients c ON c.client_id = g.client_id
         WHERE r.hash = ?"
        ),
        [hash.as_str()],
        |r| codec::token_info_from_row(&SqliteRow::new(r), TokenKind::Refresh, now),
    )
}

fn insert_key(conn: &Connection, k: &StoredKey) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "INSERT INTO signing_keys (kid, alg, private_key, public_jwk, created_at) VALUES (?, ?, ?, ?, ?)",
    )?
    .execute(params![k.kid, k.alg, k.private_key, k.public_jwk, k.created_at])
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        self.db
            .read(|conn| {
                all(
                    conn,
                    "SELECT * FROM signing_keys ORDER BY created_at DESC, kid",
                    |r| codec::key_from_row(&SqliteRow::new(r)),
                )
            })
            .await
    }

    async fn insert_active_key(&self, key: &StoredKey) -> StoreResult<bool> {
        let key = key.clone();
        self.db
            .write(move |conn| match insert_key(conn, &key) {
                Ok(_) => Ok(true),
                // Another instance made the active key of this algorithm first.
                Err(e) if is_unique_violation(&e) => Ok(false),
                Err(e) => Err(unavailable(e)),
            })
            .await
    }

    async fn rotate_key(
        &self,
        key: &StoredKey,
        now: UnixTime,
        publish_until: UnixTime,
    ) -> StoreResult<Option<String>> {
        let key = key.clone();
        self.db
            .write(move |conn| {
                let previous: Option<String> = scalar(
                    conn,
                    "UPDATE signing_keys SET rotated_at = ?, publish_until = ?
                     WHERE alg = ? AND rotated_at IS NULL AND retired_at IS NULL RETURNING kid",
                    params![now, publish_until, key.alg],
                )?;
                insert_key(conn, &key).map_err(unavailable)?;
                Ok(previous)
            })
            .await
    }

    async fn replace_private_key(&self, kid: &str, private_key: &str) -> StoreResult<bool> {
        let (kid, private_key) = (kid.to_owned(), private_key.to_owned());
        self.db
            .write(move |conn| {
                Ok(exec(
                    conn,
                    "UPDATE signing_keys SET private_key = ? WHERE kid = ?",
                    [&private_key, &kid],
                )? == 1)
            })
            .await
    }

    async fn server_secret(
        &self,
        name: &str,
        candidate: &str,
        now: UnixTime,
    ) -> StoreResult<String> {
        let (name, candidate) = (name.to_owned(), candidate.to_owned());
        self.db
            .write(move |conn| {
                exec(
                    conn,
                    "INSERT INTO server_secrets (name, value, created_at) VALUES (?, ?, ?)
                     ON CONFLICT (name) DO NOTHING",
                    params![name, candidate, now],
                )?;
                scalar(
                    conn,
                    "SELECT value FROM server_secrets WHERE name = ?",
                    [&name],
                )?
                .ok_or_else(|| StoreError::Corrupt(format!("server secret {name:?} vanished")))
            })
            .await
    }

    async fn retire_key(&self, kid: &str, now: UnixTime) -> StoreResult<bool> {
        let kid = kid.to_owned();
        self.db
            .write(move |conn| {
                Ok(exec(
                    conn,
                    "UPDATE signing_keys SET retired_at = ? WHERE kid = ? AND retired_at IS NULL",
                    params![now, kid],
                )? == 1)
            })
            .await
    }
}

#[async_trait]
impl OpsStore for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.db
            .read(|conn| scalar::<i64>(conn, "SELECT 1", []).map(|_| ()))
            .await
    }

    async fn schema_version(&self) -> StoreResult<(i64, i64)> {
        let applied: Option<Option<i64>> = self
            .db
            .read(|conn| scalar(conn, "SELECT MAX(version) FROM schema_migrations", []))
            .await?;
        let known = migrate::MIGRATIONS
            .iter()
            .map(|(v, _)| *v)
            .max()
            .unwrap_or(0);
        Ok((applied.flatten().unwrap_or(0), known))
    }

    fn pool_state(&self) -> (u32, u32) {
        self.db.pool_state()
    }

    async fn purge(&self, what: Purge, now: UnixTime, batch: i64) -> StoreResult<u64> {
        // Each statement deletes one bounded batch. Expired codes, tokens and grants are a range
        // of rowids (expiry_rowid), after any strays below the first slot, which are checked by
        // expires_at; sessions and pending authorizations, fewer and short-lived, keep an index
        // on expires_at.
        self.db
            .write(move |conn| {
                let n = match what {
                    Purge::Sessions => exec(
                        conn,
                        "DELETE FROM sessions WHERE id_hash IN (SELECT id_hash FROM sessions WHERE expires_at <= ? LIMIT ?)",
                        [now, batch],
                    )?,
                    Purge::PendingAuthorizations => exec(
                        conn,
                        "DELETE FROM pending_authorizations WHERE id_hash IN
                         (SELECT id_hash FROM pending_authorizations WHERE expires_at <= ? LIMIT ?)",
                        [now, batch],
                    )?,
                    Purge::Codes => exec(
                        conn,
                        purge_expired!("codes"),
                        purge_params(now - CODE_RETENTION, batch),
                    )?,
                    Purge::AccessTokens => exec(
                        conn,
                        purge_expired!("access_tokens"),
                        purge_params(now, batch),
                    )?,
                    Purge::RefreshTokens => exec(
                        conn,
                        purge_expired!("refresh_tokens"),
                        purge_params(now, batch),
                    )?,
                    Purge::Grants => {
                        let [below, first, expired_by, batch] = purge_params(now, batch);
                        exec(
                            conn,
                            purge_expired!("grants", " OR revoked_at <= ?5"),
                            [below, first, expired_by, batch, now - REVOKED_GRANT_RETENTION],
                        )?
                    }
                };
                Ok(n as u64)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The counter the reads carry is the one every change to `clients` bumps.
    #[test]
    fn reads_carry_the_clients_counter() {
        let read = with_clients_version!("1");
        let counter = format!("WHERE name = '{}')", client_cache::COUNTER);
        assert!(read.contains(&counter), "{read}");
    }
}
