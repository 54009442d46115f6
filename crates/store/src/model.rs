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
    pub email: Option<String>,
    pub display_name: Option<String>,
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
    /// `prompt=login` or an exceeded `max_age`: the user must log in for this request.
    pub login_required: bool,
    /// The session whose login was made for this request.
    pub login_session: Option<SecretHash>,
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

/// A code presented at the token endpoint, opened: its hash (the row's key) and its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCode {
    pub hash: SecretHash,
    pub code: IssuedCode,
}

/// What the token endpoint has recorded against a code (the code carries the rest, sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCode {
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
    /// The key that signed a JWT access token; `None` for opaque tokens.
    pub access_kid: Option<String>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

/// What introspection and revocation need to know about a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub kind: TokenKind,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub username: String,
    pub scope: Scope,
    /// The client's registered audience (empty: the issuer's default).
    pub audience: Vec<String>,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
    /// `Revoked` also when rotated out (refresh) or signed by a retired key (JWT).
    pub status: TokenStatus,
}

/// A signing key as stored; `private_key` is sealed when a key encryption key is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub kid: String,
    pub alg: String,
    pub private_key: String,
    pub public_jwk: String,
    pub created_at: UnixTime,
    pub rotated_at: Option<UnixTime>,
    pub publish_until: Option<UnixTime>,
    pub retired_at: Option<UnixTime>,
}

impl StoredKey {
    /// The key new tokens are signed with.
    pub fn is_active(&self) -> bool {
        self.rotated_at.is_none() && self.retired_at.is_none()
    }

    /// Published in the JWKS and trusted for verification.
    pub fn is_published(&self, now: UnixTime) -> bool {
        self.retired_at.is_none()
            && (self.rotated_at.is_none() || self.publish_until.is_some_and(|u| now < u))
    }
}
