//! Row ↔ record conversions and error mapping shared by the SQL backends, so SQLite and
//! PostgreSQL read every record the same way.
use sqlx::Row as _;

use oauthd_core::UnixTime;
use oauthd_core::authorize::{Prompt, ValidAuthorize};
use oauthd_core::client::{AccessTokenFormat, Client, ClientKind, GrantType};
use oauthd_core::jose::JwsAlg;
use oauthd_core::pkce::{ChallengeMethod, CodeChallenge, PkceMode};
use oauthd_core::redirect_uri::RedirectUri;
use oauthd_core::refresh::RefreshState;
use oauthd_core::scope::Scope;
use oauthd_core::secret::SecretHash;

use crate::{
    PendingAuthorization, Session, StoreError, StoreResult, StoredCode, StoredKey, TokenInfo,
    TokenKind, TokenStatus, User,
};

pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(Box::new(e))
}

pub(crate) fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

pub(crate) fn conflict_or(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match e.as_database_error() {
        Some(d) if d.is_unique_violation() => StoreError::Conflict(what()),
        _ => db_err(e),
    }
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

// Redirect URIs cannot contain spaces (rejected at registration), nor can grant names.
pub(crate) fn join_uris(uris: &[RedirectUri]) -> String {
    uris.iter()
        .map(RedirectUri::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn join_grants(grants: &[GrantType]) -> String {
    grants
        .iter()
        .map(|g| g.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Space-separated lists (audiences, grants): none of their items may contain a space.
pub(crate) fn split(joined: &str) -> Vec<String> {
    joined
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Typed column access, the same for every backend's row type.
pub(crate) trait Columns {
    fn text(&self, col: &str) -> StoreResult<String>;
    fn opt_text(&self, col: &str) -> StoreResult<Option<String>>;
    fn int(&self, col: &str) -> StoreResult<i64>;
    fn opt_int(&self, col: &str) -> StoreResult<Option<i64>>;
    fn flag(&self, col: &str) -> StoreResult<bool>;

    fn hash(&self, col: &str) -> StoreResult<SecretHash> {
        Ok(SecretHash::from_stored(self.text(col)?))
    }

    fn scope(&self, col: &str) -> StoreResult<Scope> {
        Scope::parse(&self.text(col)?).map_err(corrupt)
    }
}

/// `Columns` for a backend's row type, given its typed getter and how its errors map.
macro_rules! columns_for {
    ($row:ty, $get:ident, $err:path) => {
        impl Columns for $row {
            fn text(&self, col: &str) -> StoreResult<String> {
                self.$get(col).map_err($err)
            }
            fn opt_text(&self, col: &str) -> StoreResult<Option<String>> {
                self.$get(col).map_err($err)
            }
            fn int(&self, col: &str) -> StoreResult<i64> {
                self.$get(col).map_err($err)
            }
            fn opt_int(&self, col: &str) -> StoreResult<Option<i64>> {
                self.$get(col).map_err($err)
            }
            fn flag(&self, col: &str) -> StoreResult<bool> {
                self.$get(col).map_err($err)
            }
        }
    };
}

columns_for!(sqlx::postgres::PgRow, try_get, db_err);

/// A SQLite row with its column names read once. rusqlite finds a column by name by asking
/// SQLite for each column's name in turn (and checking it is UTF-8), on every lookup: decoding
/// a 14-column row by name made about a hundred such calls (1.5 % of server CPU at c=64).
pub(crate) struct SqliteRow<'a, 'stmt> {
    row: &'a rusqlite::Row<'stmt>,
    names: Vec<&'a str>,
}

impl<'a, 'stmt> SqliteRow<'a, 'stmt> {
    pub(crate) fn new(row: &'a rusqlite::Row<'stmt>) -> Self {
        SqliteRow {
            row,
            names: row.as_ref().column_names(),
        }
    }

    fn get<T: rusqlite::types::FromSql>(&self, col: &str) -> StoreResult<T> {
        // As SQLite matches names: ASCII case-insensitively, the first match winning.
        let index = self
            .names
            .iter()
            .position(|name| name.eq_ignore_ascii_case(col))
            .ok_or_else(|| corrupt(format!("no column {col:?}")))?;
        // A column rusqlite cannot convert is bad data, not an unreachable database.
        self.row.get(index).map_err(corrupt)
    }
}

impl Columns for SqliteRow<'_, '_> {
    fn text(&self, col: &str) -> StoreResult<String> {
        self.get(col)
    }
    fn opt_text(&self, col: &str) -> StoreResult<Option<String>> {
        self.get(col)
    }
    fn int(&self, col: &str) -> StoreResult<i64> {
        self.get(col)
    }
    fn opt_int(&self, col: &str) -> StoreResult<Option<i64>> {
        self.get(col)
    }
    fn flag(&self, col: &str) -> StoreResult<bool> {
        self.get(col)
    }
}

pub(crate) fn client_from_row(row: &impl Columns) -> StoreResult<Client> {
    let kind = row.text("kind")?;
    let pkce = row.text("pkce_mode")?;
    let grants = row
        .text("grants")?
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(|g| GrantType::parse(g).ok_or_else(|| corrupt(format!("grant {g:?}"))))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Client {
        client_id: row.text("client_id")?,
        name: row.text("name")?,
        kind: ClientKind::parse(&kind).ok_or_else(|| corrupt(format!("client kind {kind:?}")))?,
        secret_hash: row.opt_text("secret_hash")?,
        redirect_uris: row
            .text("redirect_uris")?
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(|u| RedirectUri::from_stored(u.to_owned()))
            .collect(),
        grants,
        scopes: row.scope("scopes")?,
        trusted: row.flag("trusted")?,
        pkce: PkceMode::parse(&pkce).ok_or_else(|| corrupt(format!("pkce mode {pkce:?}")))?,
        access_token_ttl: row.int("access_token_ttl")?,
        refresh_token_ttl: row.int("refresh_token_ttl")?,
        access_token_format: AccessTokenFormat::parse(&row.text("access_token_format")?)
            .ok_or_else(|| corrupt("access token format"))?,
        access_token_alg: JwsAlg::parse(&row.text("access_token_alg")?)
            .ok_or_else(|| corrupt("access token alg"))?,
        id_token_alg: JwsAlg::parse(&row.text("id_token_alg")?)
            .ok_or_else(|| corrupt("id token alg"))?,
        audience: split(&row.text("audience")?),
        created_at: row.int("created_at")?,
    })
}

pub(crate) fn user_from_row(row: &impl Columns) -> StoreResult<User> {
    Ok(User {
        id: row.text("id")?,
        username: row.text("username")?,
        password_hash: row.text("password_hash")?,
        email: row.opt_text("email")?,
        display_name: row.opt_text("display_name")?,
        created_at: row.int("created_at")?,
    })
}

pub(crate) fn session_from_row(row: &impl Columns) -> StoreResult<Session> {
    Ok(Session {
        user_id: row.text("user_id")?,
        username: row.text("username")?,
        auth_time: row.int("auth_time")?,
    })
}

pub(crate) fn pending_from_row(row: &impl Columns) -> StoreResult<PendingAuthorization> {
    let challenge = row.text("code_challenge")?;
    let prompt = row.text("prompt")?;
    Ok(PendingAuthorization {
        id_hash: row.hash("id_hash")?,
        browser_hash: row.hash("browser_hash")?,
        request: ValidAuthorize {
            client_id: row.text("client_id")?,
            redirect_uri: row.text("redirect_uri")?,
            redirect_uri_sent: row.flag("redirect_uri_sent")?,
            scope: row.scope("scope")?,
            state: row.opt_text("state")?,
            code_challenge: CodeChallenge::parse(&challenge).map_err(corrupt)?,
            code_challenge_method: ChallengeMethod::S256,
            used_liferay_compat: false,
            nonce: row.opt_text("nonce")?,
            prompt: Prompt::parse(Some(&prompt)).map_err(corrupt)?,
            max_age: row.opt_int("max_age")?,
        },
        login_required: row.flag("login_required")?,
        login_session: row.opt_text("login_session")?.map(SecretHash::from_stored),
        created_at: row.int("created_at")?,
        expires_at: row.int("expires_at")?,
    })
}

pub(crate) fn stored_code_from_row(row: &impl Columns) -> StoreResult<StoredCode> {
    Ok(StoredCode {
        failed_attempts: row.int("failed_attempts")?,
        redeemed: row.opt_int("redeemed_at")?.is_some(),
        grant_id: row.opt_text("grant_id")?,
    })
}

pub(crate) fn refresh_state_from_row(row: &impl Columns) -> StoreResult<RefreshState> {
    Ok(RefreshState {
        grant_id: row.text("grant_id")?,
        client_id: row.text("client_id")?,
        user_id: row.text("user_id")?,
        auth_time: row.int("auth_time")?,
        scope: row.scope("scope")?,
        expires_at: row.int("expires_at")?,
        grant_expires_at: row.int("grant_expires_at")?,
        grant_revoked: row.flag("grant_revoked")?,
        revoked: row.flag("revoked")?,
        used_at: row.opt_int("used_at")?,
        successor_used: row.flag("successor_used")?,
        grace_used: row.flag("grace_used")?,
    })
}

pub(crate) fn status(expires_at: i64, revoked: bool, now: UnixTime) -> TokenStatus {
    if revoked {
        TokenStatus::Revoked
    } else if now >= expires_at {
        TokenStatus::Expired
    } else {
        TokenStatus::Active
    }
}

pub(crate) fn token_info_from_row(
    row: &impl Columns,
    kind: TokenKind,
    now: UnixTime,
) -> StoreResult<TokenInfo> {
    let expires_at = row.int("expires_at")?;
    Ok(TokenInfo {
        kind,
        grant_id: row.text("grant_id")?,
        client_id: row.text("client_id")?,
        user_id: row.text("user_id")?,
        username: row.text("username")?,
        scope: row.scope("scope")?,
        audience: split(&row.text("audience")?),
        issued_at: row.int("issued_at")?,
        expires_at,
        status: status(expires_at, row.flag("revoked")?, now),
    })
}

pub(crate) fn key_from_row(row: &impl Columns) -> StoreResult<StoredKey> {
    Ok(StoredKey {
        kid: row.text("kid")?,
        alg: row.text("alg")?,
        private_key: row.text("private_key")?,
        public_jwk: row.text("public_jwk")?,
        created_at: row.int("created_at")?,
        rotated_at: row.opt_int("rotated_at")?,
        publish_until: row.opt_int("publish_until")?,
        retired_at: row.opt_int("retired_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_columns_are_found_by_name() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut stmt = conn
            .prepare("SELECT 'x' AS first, 7 AS Second, NULL AS third, 1 AS first")
            .unwrap();
        let mut rows = stmt.query([]).unwrap();
        let row = SqliteRow::new(rows.next().unwrap().unwrap());
        assert_eq!(
            row.int("second").unwrap(),
            7,
            "as SQLite matches: any ASCII case"
        );
        assert_eq!(
            row.text("first").unwrap(),
            "x",
            "the first of two with one name"
        );
        assert_eq!(row.opt_int("third").unwrap(), None);
        assert!(
            matches!(row.int("first"), Err(StoreError::Corrupt(_))),
            "not a number"
        );
        assert!(
            matches!(row.text("fourth"), Err(StoreError::Corrupt(_))),
            "no such column"
        );
    }
}
