//! Records passed to and from the store.
use oauthd_core::UnixTime;
use oauthd_core::authorize::ValidAuthorize;
use oauthd_core::code::IssuedCode;
use oauthd_core::scope::Scope;
use oauthd_core::secret::SecretHash;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Stable subject identifier; never reused.
    pub id: String,
    pub username: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub created_at: UnixTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub id_hash: SecretHash,
    pub user_id: String,
    pub auth_time: UnixTime,
    pub expires_at: UnixTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user_id: String,
    pub username: String,
    pub auth_time: UnixTime,
}

/// A validated authorize request waiting for the user to log in and decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAuthorization {
    pub id_hash: SecretHash,
    /// The browser it was started in; another browser cannot finish it.
    pub browser_hash: SecretHash,
    pub request: ValidAuthorize,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumeOutcome {
    Consumed,
    AlreadyConsumed,
    /// Unknown or expired.
    NotFound,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCode {
    pub hash: SecretHash,
    pub code: IssuedCode,
    pub created_at: UnixTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCode {
    pub code: IssuedCode,
    pub failed_attempts: i64,
    pub redeemed: bool,
    /// The grant it produced, once redeemed.
    pub grant_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGrant {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: Scope,
    pub auth_time: UnixTime,
    pub created_at: UnixTime,
    /// Absolute cap: no refresh token of this grant outlives it.
    pub expires_at: UnixTime,
}

/// An access token and, when the client may refresh, its refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPair {
    pub access_hash: SecretHash,
    /// May be narrower than the grant's scope (RFC 6749 §6).
    pub access_scope: Scope,
    pub access_expires_at: UnixTime,
    pub refresh: Option<NewRefresh>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefresh {
    pub hash: SecretHash,
    pub expires_at: UnixTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueTokens {
    pub grant: NewGrant,
    pub pair: NewPair,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedeemOutcome {
    Redeemed,
    /// Redeemed before (or burnt by failed attempts); the grant it produced, if any.
    AlreadyUsed {
        grant_id: Option<String>,
    },
    /// Unknown or expired.
    NotFound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasOutcome {
    Done,
    Lost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStatus {
    Active,
    /// Revoked directly, through its grant, or (refresh tokens) rotated out.
    Revoked,
    Expired,
    Unknown,
}
