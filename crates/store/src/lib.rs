//! oauthd-store: the storage contract of oauthd, its backends, and the conformance suite
//! every backend must pass.
//!
//! One small trait per concern. Every transition that must happen once (redeem a code,
//! rotate a refresh token, consume a pending authorization) is one atomic compare-and-set
//! returning an outcome enum; the rules deciding *whether* to make it live in oauthd-core.
//! Time is always passed in by the caller.
#![forbid(unsafe_code)]

mod client_cache;
mod codec;
pub mod conformance;
mod model;
pub mod postgres;
pub mod sqlite;

pub use model::*;

use async_trait::async_trait;
use oauthd_core::UnixTime;
use oauthd_core::client::Client;
use oauthd_core::refresh::RefreshState;
use oauthd_core::scope::Scope;
use oauthd_core::secret::SecretHash;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or failed; details are in the log, not here.
    #[error("the database is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// [`open`] was given a URL of no backend this build knows.
    #[error(
        "unsupported database URL (scheme {0:?}): expected sqlite:..., postgres://... or postgresql://..."
    )]
    UnsupportedUrl(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Open the store a database URL names and apply pending migrations: SQLite for
/// `sqlite:` URLs (`sqlite://path`, `sqlite::memory:`), PostgreSQL for `postgres://` and
/// `postgresql://` URLs. Anything else is [`StoreError::UnsupportedUrl`], naming only the
/// scheme (the rest of a URL may hold a password).
pub async fn open(url: &str) -> StoreResult<std::sync::Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(
            sqlite::SqliteStore::connect(url).await?,
        ))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(std::sync::Arc::new(
            postgres::PostgresStore::connect(url).await?,
        ))
    } else {
        let scheme = url
            .split_once(':')
            .map(|(s, _)| s)
            .filter(|s| {
                !s.is_empty()
                    && s.len() <= 32
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            })
            .unwrap_or("none");
        Err(StoreError::UnsupportedUrl(scheme.to_owned()))
    }
}

#[async_trait]
pub trait ClientStore: Send + Sync {
    /// `Conflict` when the client id is taken.
    async fn insert_client(&self, client: &Client) -> StoreResult<()>;
    async fn client(&self, client_id: &str) -> StoreResult<Option<Client>>;
    async fn clients(&self) -> StoreResult<Vec<Client>>;
    /// Deletes the client and everything issued to it. `false` when it did not exist.
    async fn delete_client(&self, client_id: &str) -> StoreResult<bool>;
    async fn set_client_secret(&self, client_id: &str, secret_hash: &str) -> StoreResult<bool>;
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// `Conflict` when the username is taken.
    async fn insert_user(&self, user: &User) -> StoreResult<()>;
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>>;
    async fn users(&self) -> StoreResult<Vec<User>>;
    /// Deletes the user with their sessions, consents, grants and tokens.
    async fn delete_user(&self, username: &str) -> StoreResult<bool>;
    /// Sets the password and ends every session of the user.
    async fn set_password(&self, username: &str, password_hash: &str) -> StoreResult<bool>;
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert_session(&self, session: &NewSession) -> StoreResult<()>;
    /// The live session with this id hash, if it has not expired.
    async fn session(&self, id_hash: &SecretHash, now: UnixTime) -> StoreResult<Option<Session>>;
    async fn delete_session(&self, id_hash: &SecretHash) -> StoreResult<()>;
}

#[async_trait]
pub trait PendingAuthorizationStore: Send + Sync {
    async fn insert_pending(&self, pending: &PendingAuthorization) -> StoreResult<()>;
    /// The pending authorization if it is neither consumed nor expired.
    async fn pending(
        &self,
        id_hash: &SecretHash,
        now: UnixTime,
    ) -> StoreResult<Option<PendingAuthorization>>;
    /// Record that the session `session_hash` logged in for this pending authorization.
    async fn attach_login(
        &self,
        id_hash: &SecretHash,
        session_hash: &SecretHash,
    ) -> StoreResult<bool>;
    /// Consume it once: it yields one answer, approval (one code) or denial.
    async fn consume_pending(
        &self,
        id_hash: &SecretHash,
        now: UnixTime,
    ) -> StoreResult<ConsumeOutcome>;
}

#[async_trait]
pub trait ConsentStore: Send + Sync {
    /// The scopes this user has approved for this client, if any.
    async fn consent(&self, user_id: &str, client_id: &str) -> StoreResult<Option<Scope>>;
    /// Remember an approval; merged with earlier approvals.
    async fn remember_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &Scope,
        now: UnixTime,
    ) -> StoreResult<()>;
}

/// What happens to authorization codes at the token endpoint. Issuing a code writes nothing:
/// the code carries its record, sealed (`oauthd_core::code_sealing`). A code gets a row, keyed
/// by its hash, the first time it is redeemed or fails a verifier check, and keeps it until
/// housekeeping purges it, past the code's expiry (so a replay is still recognised).
#[async_trait]
pub trait CodeStore: Send + Sync {
    /// The row of a code seen before, if any.
    async fn code(&self, hash: &SecretHash) -> StoreResult<Option<StoredCode>>;
    /// Count a failed verifier; returns the new count. A code with
    /// `MAX_FAILED_ATTEMPTS` failures can no longer be redeemed. A redeemed or expired code,
    /// or one whose client or user is gone, counts as burnt (`MAX_FAILED_ATTEMPTS`).
    async fn record_failed_attempt(&self, code: &NewCode, now: UnixTime) -> StoreResult<i64>;
    /// Record the code redeemed and issue the grant's first tokens, atomically, once per code
    /// (RFC 6749 §4.1.2). `NotFound` when it has expired or its client or user is gone.
    async fn redeem_code(
        &self,
        code: &NewCode,
        now: UnixTime,
        issue: &IssueTokens,
    ) -> StoreResult<RedeemOutcome>;
}

#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn refresh_state(&self, hash: &SecretHash) -> StoreResult<Option<RefreshState>>;
    /// Rotate a fresh refresh token into a new pair, atomically; `Lost` when it was no longer
    /// fresh by the time the write happened.
    async fn rotate_refresh(
        &self,
        hash: &SecretHash,
        now: UnixTime,
        pair: &NewPair,
    ) -> StoreResult<CasOutcome>;
    /// Lost-response recovery: revoke the unused successor of a rotated token and issue a
    /// fresh pair, at most once per token. `Lost` when the successor was used meanwhile.
    async fn grace_reissue(
        &self,
        hash: &SecretHash,
        now: UnixTime,
        pair: &NewPair,
    ) -> StoreResult<CasOutcome>;
    /// Revoke a grant and so every token descended from it. `false` if already revoked.
    async fn revoke_grant(&self, grant_id: &str, now: UnixTime, reason: &str) -> StoreResult<bool>;
    async fn access_token_status(
        &self,
        hash: &SecretHash,
        now: UnixTime,
    ) -> StoreResult<TokenStatus>;
    async fn refresh_token_status(
        &self,
        hash: &SecretHash,
        now: UnixTime,
    ) -> StoreResult<TokenStatus>;
    /// An access or refresh token, whatever its state (for introspection and revocation).
    async fn token_info(&self, hash: &SecretHash, now: UnixTime) -> StoreResult<Option<TokenInfo>>;
    /// Revoke one access token. `false` if unknown or already revoked.
    async fn revoke_access_token(&self, hash: &SecretHash, now: UnixTime) -> StoreResult<bool>;
}

#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Every key, newest first.
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>>;
    /// Insert the first active key of its algorithm; `false` when another instance got there
    /// first (there is one active key per algorithm).
    async fn insert_active_key(&self, key: &StoredKey) -> StoreResult<bool>;
    /// Make `key` the active key of its algorithm, atomically; the previous one stays
    /// published until `publish_until`. Returns the previous key's id.
    async fn rotate_key(
        &self,
        key: &StoredKey,
        now: UnixTime,
        publish_until: UnixTime,
    ) -> StoreResult<Option<String>>;
    /// Stop publishing and trusting a key. `false` if unknown or already retired.
    async fn retire_key(&self, kid: &str, now: UnixTime) -> StoreResult<bool>;
    /// Replace a key's stored private part with another encoding of the same key (sealing
    /// keys that were stored before a key encryption key was configured).
    async fn replace_private_key(&self, kid: &str, private_key: &str) -> StoreResult<bool>;
    /// The server secret `name`: the one stored, or else `candidate`, stored now. Every
    /// instance gets the value stored first.
    async fn server_secret(
        &self,
        name: &str,
        candidate: &str,
        now: UnixTime,
    ) -> StoreResult<String>;
}

#[async_trait]
pub trait OpsStore: Send + Sync {
    /// A cheap round trip: is the database reachable?
    async fn ping(&self) -> StoreResult<()>;
    /// (applied, known to this binary): readiness requires them equal.
    async fn schema_version(&self) -> StoreResult<(i64, i64)>;
    /// Connections (open, idle) in the pool, for metrics.
    fn pool_state(&self) -> (u32, u32);
    /// Delete up to `batch` expired rows of one kind; returns how many went. Safe to run on
    /// every instance at once. Call repeatedly (and for every [`Purge`]) to catch up.
    async fn purge(&self, what: Purge, now: UnixTime, batch: i64) -> StoreResult<u64>;
}

/// The six kinds of rows housekeeping removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purge {
    Sessions,
    PendingAuthorizations,
    /// Kept a while past expiry so a late replay is still recognised.
    Codes,
    AccessTokens,
    /// Kept until their own expiry so reuse of a rotated-out token is still detected.
    RefreshTokens,
    /// Expired grants, and revoked grants a day after revocation, with what remains of them.
    Grants,
}

impl Purge {
    pub const ALL: [Purge; 6] = [
        Purge::Sessions,
        Purge::PendingAuthorizations,
        Purge::Codes,
        Purge::AccessTokens,
        Purge::RefreshTokens,
        Purge::Grants,
    ];
}

/// How long past expiry a code is kept, so a replay is answered as a replay.
pub const CODE_RETENTION: i64 = 3600;
/// How long a revoked grant is kept, so its tokens answer "revoked" rather than "unknown".
pub const REVOKED_GRANT_RETENTION: i64 = 86_400;

/// The read a request makes right after looking up its client: the code it exchanges, the
/// refresh token it presents, the token it asks about, the browser's session.
#[derive(Debug, Clone)]
pub enum NextRead {
    Nothing,
    Code(SecretHash),
    RefreshState(SecretHash),
    TokenInfo(SecretHash, UnixTime),
    Session(SecretHash, UnixTime),
}

/// What a [`NextRead`] found, in the same variant.
#[derive(Debug, Clone)]
pub enum ReadAlongside {
    Nothing,
    Code(Option<StoredCode>),
    RefreshState(Option<RefreshState>),
    TokenInfo(Option<TokenInfo>),
    Session(Option<Session>),
}

#[async_trait]
pub trait CombinedReads: ClientStore + SessionStore + CodeStore + TokenStore {
    /// A client and the request's next read. Where the backend can (SQLite, PostgreSQL), the
    /// clients change counter comes in the next read's statement, so a cached client costs
    /// no read of its own; by default they are two reads.
    async fn client_and(
        &self,
        client_id: &str,
        next: NextRead,
    ) -> StoreResult<(Option<Client>, ReadAlongside)> {
        let client = self.client(client_id).await?;
        let alongside = match next {
            NextRead::Nothing => ReadAlongside::Nothing,
            NextRead::Code(hash) => ReadAlongside::Code(self.code(&hash).await?),
            NextRead::RefreshState(hash) => {
                ReadAlongside::RefreshState(self.refresh_state(&hash).await?)
            }
            NextRead::TokenInfo(hash, now) => {
                ReadAlongside::TokenInfo(self.token_info(&hash, now).await?)
            }
            NextRead::Session(hash, now) => ReadAlongside::Session(self.session(&hash, now).await?),
        };
        Ok((client, alongside))
    }
}

/// The whole contract, as one object the server holds.
pub trait Store:
    ClientStore
    + UserStore
    + SessionStore
    + PendingAuthorizationStore
    + ConsentStore
    + CodeStore
    + TokenStore
    + KeyStore
    + OpsStore
    + CombinedReads
{
}

impl<T> Store for T where
    T: ClientStore
        + UserStore
        + SessionStore
        + PendingAuthorizationStore
        + ConsentStore
        + CodeStore
        + TokenStore
        + KeyStore
        + OpsStore
        + CombinedReads
{
}
