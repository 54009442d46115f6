//! Row ↔ record conversions and error mapping for the SQLite backend.
use sqlx::Row as _;
use sqlx::sqlite::SqliteRow;

use oauthd_core::client::{AccessTokenFormat, Client, ClientKind, GrantType};
use oauthd_core::jose::JwsAlg;
use oauthd_core::pkce::PkceMode;
use oauthd_core::redirect_uri::RedirectUri;
use oauthd_core::scope::Scope;

use crate::{StoreError, StoreResult};

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

pub(crate) fn client_from_row(row: &SqliteRow) -> StoreResult<Client> {
    let get = |c: &str| row.try_get::<String, _>(c).map_err(db_err);
    let kind = get("kind")?;
    let pkce = get("pkce_mode")?;
    let grants = get("grants")?
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(|g| GrantType::parse(g).ok_or_else(|| corrupt(format!("grant {g:?}"))))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Client {
        client_id: get("client_id")?,
        name: get("name")?,
        kind: ClientKind::parse(&kind).ok_or_else(|| corrupt(format!("client kind {kind:?}")))?,
        secret_hash: row.try_get("secret_hash").map_err(db_err)?,
        redirect_uris: get("redirect_uris")?
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(|u| RedirectUri::from_stored(u.to_owned()))
            .collect(),
        grants,
        scopes: Scope::parse(&get("scopes")?).map_err(corrupt)?,
        trusted: row.try_get("trusted").map_err(db_err)?,
        pkce: PkceMode::parse(&pkce).ok_or_else(|| corrupt(format!("pkce mode {pkce:?}")))?,
        access_token_ttl: row.try_get("access_token_ttl").map_err(db_err)?,
        refresh_token_ttl: row.try_get("refresh_token_ttl").map_err(db_err)?,
        access_token_format: AccessTokenFormat::parse(&get("access_token_format")?)
            .ok_or_else(|| corrupt("access token format"))?,
        access_token_alg: JwsAlg::parse(&get("access_token_alg")?)
            .ok_or_else(|| corrupt("access token alg"))?,
        id_token_alg: JwsAlg::parse(&get("id_token_alg")?)
            .ok_or_else(|| corrupt("id token alg"))?,
        audience: split(&get("audience")?),
        created_at: row.try_get("created_at").map_err(db_err)?,
    })
}

/// Space-separated lists (audiences, grants): none of their items may contain a space.
pub(crate) fn split(joined: &str) -> Vec<String> {
    joined
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}
