//! Minting tokens: opaque or RFC 9068 JWT access tokens, rotating refresh tokens, and
//! OpenID Connect ID tokens (OIDC Core §2).
use axum::response::Response;

use oauthd_core::client::{AccessTokenFormat, Client, GrantType};
use oauthd_core::jose::at_hash;
use oauthd_core::scope::Scope;
use oauthd_core::secret::{Secret, SecretKind, random_id};
use oauthd_store::{NewPair, NewRefresh};

use crate::http::response::json_no_store;
use crate::keys::{ID_TOKEN_LIFETIME, KeyError};
use crate::state::AppState;

/// Who the tokens are about.
pub struct Subject<'a> {
    pub user_id: &'a str,
    pub auth_time: i64,
    /// Present only when an ID token is to be issued.
    pub id_token: Option<IdTokenRequest<'a>>,
}

pub struct IdTokenRequest<'a> {
    pub nonce: Option<&'a str>,
}

pub struct Minted {
    access_token: Secret,
    refresh_token: Option<Secret>,
    id_token: Option<String>,
    pub pair: NewPair,
    expires_in: i64,
    scope: Scope,
}

/// The `aud` of a client's access tokens: its registered APIs, or the issuer itself.
pub fn audience(registered: &[String], issuer: &str) -> Vec<String> {
    if registered.is_empty() {
        vec![issuer.to_owned()]
    } else {
        registered.to_vec()
    }
}

/// One audience as a string, several as an array (RFC 7519 §4.1.3).
pub fn audience_claim(aud: &[String]) -> serde_json::Value {
    match aud {
        [one] => one.clone().into(),
        many => many.to_vec().into(),
    }
}

pub async fn mint(
    state: &AppState,
    client: &Client,
    subject: &Subject<'_>,
    scope: &Scope,
    now: i64,
    refresh_cap: i64,
) -> Result<Minted, KeyError> {
    let issuer = &state.policy.issuer;
    let expires_at = now + client.access_token_ttl;
    let (access_token, access_kid) = match client.access_token_format {
        AccessTokenFormat::Opaque => (state.new_secret(SecretKind::AccessToken), None),
        AccessTokenFormat::Jwt => {
            let key = state.keys.signing_key(client.access_token_alg).await?;
            let mut claims = serde_json::json!({
                "iss": issuer,
                "sub": subject.user_id,
                "aud": audience_claim(&audience(&client.audience, issuer)),
                "exp": expires_at,
                "iat": now,
                "jti": random_id(),
                "client_id": client.client_id,
                "auth_time": subject.auth_time,
            });
            if !scope.is_empty() {
                claims["scope"] = scope.to_string().into();
            }
            // RFC 9068 §2.1: the media type makes it unmistakable for an ID token.
            (
                Secret::from_presented(key.sign_jwt("at+jwt", &claims)?),
                Some(key.kid.clone()),
            )
        }
    };
    let id_token = match &subject.id_token {
        Some(request) => {
            let key = state.keys.signing_key(client.id_token_alg).await?;
            let mut claims = serde_json::json!({
                "iss": issuer,
                "sub": subject.user_id,
                "aud": client.client_id,
                "azp": client.client_id,
                "exp": now + ID_TOKEN_LIFETIME,
                "iat": now,
                "auth_time": subject.auth_time,
                "at_hash": at_hash(access_token.expose(), client.id_token_alg),
            });
            if let Some(nonce) = request.nonce {
                claims["nonce"] = nonce.into();
            }
            Some(key.sign_jwt("JWT", &claims)?)
        }
        None => None,
    };
    let refresh_token = client
        .allows(GrantType::RefreshToken)
        .then(|| state.new_secret(SecretKind::RefreshToken));
    let pair = NewPair {
        access_hash: access_token.hash(),
        access_scope: scope.clone(),
        access_expires_at: expires_at,
        access_kid,
        refresh: refresh_token.as_ref().map(|r| NewRefresh {
            hash: r.hash(),
            expires_at: (now + client.refresh_token_ttl).min(refresh_cap),
        }),
    };
    Ok(Minted {
        access_token,
        refresh_token,
        id_token,
        pair,
        expires_in: client.access_token_ttl,
        scope: scope.clone(),
    })
}

impl Minted {
    /// RFC 6749 §5.1 (and OIDC Core §3.1.3.3 for `id_token`).
    pub fn response(&self) -> Response {
        let body = TokenResponse {
            access_token: self.access_token.expose(),
            token_type: "Bearer",
            expires_in: self.expires_in,
            refresh_token: self.refresh_token.as_ref().map(Secret::expose),
            id_token: self.id_token.as_deref(),
            scope: (!self.scope.is_empty()).then(|| self.scope.to_string()),
        };
        json_no_store(body)
    }
}

/// The token endpoint's answer (RFC 6749 §5.1), borrowed from what was minted.
#[derive(serde::Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}
