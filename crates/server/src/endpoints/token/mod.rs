//! `POST /o/oauth2/token` (RFC 6749 §3.2, §4.1.3, §6): request checks and client
//! authentication here, one module per grant.
mod authorization_code;
mod refresh_token;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{ALLOW, AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use oauthd_core::client::{Client, ClientKind};
use oauthd_core::error::{ErrorCode, OAuthError};
use oauthd_core::form::Params;
use oauthd_core::scope::Scope;
use oauthd_core::secret::{Secret, SecretKind};
use oauthd_core::token_request::{self, AuthMethod, TokenGrant};
use oauthd_store::{NewPair, NewRefresh};

use crate::http::response::{no_store, oauth_error, store_failure_json};
use crate::state::AppState;

fn invalid_request(description: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRequest, description)
}

pub async fn handle(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        // RFC 6749 §3.2: the client MUST use POST.
        let mut r = oauth_error(
            &invalid_request("The token endpoint only accepts POST."),
            false,
        );
        *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    let basic_tried = headers.contains_key(AUTHORIZATION);
    match process(&state, &headers, &body).await {
        Ok(response) => response,
        Err(Failure::OAuth(e)) => oauth_error(&e, basic_tried),
        Err(Failure::Store(e)) => store_failure_json(&e),
    }
}

pub(crate) enum Failure {
    OAuth(OAuthError),
    Store(oauthd_store::StoreError),
}

impl From<OAuthError> for Failure {
    fn from(e: OAuthError) -> Self {
        Failure::OAuth(e)
    }
}

impl From<oauthd_store::StoreError> for Failure {
    fn from(e: oauthd_store::StoreError) -> Self {
        Failure::Store(e)
    }
}

async fn process(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Response, Failure> {
    let form = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        return Err(
            invalid_request("The request body must be application/x-www-form-urlencoded.").into(),
        );
    }
    let params = Params::parse(body)
        .map_err(|e| invalid_request(&format!("The request body is malformed: {e}.")))?;
    token_request::reject_repeated(&params)?;
    let basic = match headers.get(AUTHORIZATION) {
        Some(v) => Some(token_request::parse_basic(v.to_str().unwrap_or(""))?),
        None => None,
    };
    let credentials = token_request::client_credentials(&params, basic)?;
    let grant = token_request::parse_grant(&params)?;
    let client = authenticate(state, credentials).await?;
    match grant {
        TokenGrant::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            authorization_code::exchange(
                state,
                &client,
                &code,
                redirect_uri.as_deref(),
                code_verifier.as_deref(),
            )
            .await
        }
        TokenGrant::RefreshToken {
            refresh_token,
            scope,
        } => refresh_token::refresh(state, &client, &refresh_token, scope.as_deref()).await,
    }
}

/// RFC 6749 §2.3: public clients identify themselves; confidential clients prove it.
async fn authenticate(
    state: &AppState,
    credentials: token_request::ClientCredentials,
) -> Result<Client, Failure> {
    let invalid_client = |d: &str| Failure::OAuth(OAuthError::new(ErrorCode::InvalidClient, d));
    let client = state.store.client(&credentials.client_id).await?;
    match (client, credentials.method, credentials.secret) {
        (None, _, _) => Err(invalid_client("The client is not registered.")),
        (Some(c), AuthMethod::None, _) if c.kind == ClientKind::Public => Ok(c),
        (Some(c), _, Some(_)) if c.kind == ClientKind::Public => Err(invalid_client(
            "This client is public and has no secret; send only client_id.",
        )),
        (Some(_), AuthMethod::None, _) | (Some(_), _, None) => Err(invalid_client(
            "This client is confidential; authenticate with its client secret.",
        )),
        (Some(c), _, Some(secret)) => {
            if state.passwords.verify(secret, c.secret_hash.clone()).await {
                Ok(c)
            } else {
                Err(invalid_client("The client secret is wrong."))
            }
        }
    }
}

/// A fresh access token and, if the client may refresh, a refresh token.
pub(crate) struct Minted {
    access: Secret,
    refresh: Option<Secret>,
    pub pair: NewPair,
    expires_in: i64,
}

pub(crate) fn mint(client: &Client, scope: &Scope, now: i64, refresh_cap: i64) -> Minted {
    let access = Secret::generate(SecretKind::AccessToken);
    let refresh = client
        .allows(oauthd_core::client::GrantType::RefreshToken)
        .then(|| Secret::generate(SecretKind::RefreshToken));
    let pair = NewPair {
        access_hash: access.hash(),
        access_scope: scope.clone(),
        access_expires_at: now + client.access_token_ttl,
        refresh: refresh.as_ref().map(|r| NewRefresh {
            hash: r.hash(),
            expires_at: (now + client.refresh_token_ttl).min(refresh_cap),
        }),
    };
    Minted {
        access,
        refresh,
        pair,
        expires_in: client.access_token_ttl,
    }
}

/// RFC 6749 §5.1.
pub(crate) fn success(minted: &Minted, scope: &Scope) -> Response {
    let mut body = serde_json::json!({
        "access_token": minted.access.expose(),
        "token_type": "Bearer",
        "expires_in": minted.expires_in,
    });
    if let Some(r) = &minted.refresh {
        body["refresh_token"] = r.expose().into();
    }
    if !scope.is_empty() {
        body["scope"] = scope.to_string().into();
    }
    no_store((StatusCode::OK, Json(body)).into_response())
}
