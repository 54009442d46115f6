//! Requests from authenticated clients to the token, revocation and introspection
//! endpoints: POST only, a form body only, no repeated parameter (RFC 6749 §3.2, RFC 7009
//! §2.1, RFC 7662 §2.1), and client authentication (RFC 6749 §2.3).
use axum::http::header::{ALLOW, AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;

use oauthd_core::client::{Client, ClientKind};
use oauthd_core::error::{ErrorCode, OAuthError};
use oauthd_core::form::Params;
use oauthd_core::secret::{Secret, SecretHash};
use oauthd_core::token_request::{self, AuthMethod, ClientCredentials};
use oauthd_store::{NextRead, ReadAlongside, TokenInfo};

use crate::http::response::{oauth_error, store_failure_json};
use crate::state::AppState;
use crate::throttle::{CLIENT_AUTH_LIMITS, client_key};

/// Why a client request failed; becomes the RFC 6749 §5.2 JSON error.
pub enum Failure {
    OAuth(OAuthError),
    Store(oauthd_store::StoreError),
    /// 429 with `Retry-After` (seconds).
    TooManyRequests(i64),
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

impl From<crate::keys::KeyError> for Failure {
    fn from(e: crate::keys::KeyError) -> Self {
        match e {
            crate::keys::KeyError::Store(e) => Failure::Store(e),
            other => {
                tracing::error!(error = %other, "cannot sign tokens");
                Failure::OAuth(OAuthError::new(
                    ErrorCode::ServerError,
                    "The server cannot sign tokens right now.",
                ))
            }
        }
    }
}

impl Failure {
    pub fn into_response(self, headers: &HeaderMap) -> Response {
        match self {
            Failure::OAuth(e) => oauth_error(&e, headers.contains_key(AUTHORIZATION)),
            Failure::Store(e) => store_failure_json(&e),
            Failure::TooManyRequests(wait) => {
                let e = OAuthError::new(
                    ErrorCode::TemporarilyUnavailable,
                    format!("Too many requests from this client; retry after {wait} seconds."),
                );
                let mut r = oauth_error(&e, false);
                *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                r.headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(wait));
                r
            }
        }
    }
}

fn invalid_request(description: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRequest, description)
}

/// 405 with `Allow: POST` for any other method.
pub fn post_only(method: &Method, endpoint: &str) -> Option<Response> {
    if method == Method::POST {
        return None;
    }
    let mut r = oauth_error(
        &invalid_request(&format!("The {endpoint} endpoint only accepts POST.")),
        false,
    );
    *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    r.headers_mut()
        .insert(ALLOW, HeaderValue::from_static("POST"));
    Some(r)
}

/// The form parameters of a POST body.
pub fn form(headers: &HeaderMap, body: &[u8]) -> Result<Params, Failure> {
    let is_form = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(
            invalid_request("The request body must be application/x-www-form-urlencoded.").into(),
        );
    }
    let params = Params::parse(body)
        .map_err(|e| invalid_request(&format!("The request body is malformed: {e}.")))?;
    token_request::reject_repeated(&params)?;
    Ok(params)
}

/// Who claims to be calling: Basic credentials or the body, never both.
pub fn credentials(headers: &HeaderMap, params: &Params) -> Result<ClientCredentials, Failure> {
    let basic = match headers.get(AUTHORIZATION) {
        Some(v) => Some(token_request::parse_basic(v.to_str().unwrap_or(""))?),
        None => None,
    };
    Ok(token_request::client_credentials(params, basic)?)
}

/// For endpoints where the caller must authenticate (RFC 7009 §2.1, RFC 7662 §2.1): a
/// request that names no client at all is `invalid_client` (RFC 6749 §5.2), not a malformed
/// request.
pub fn required_credentials(
    headers: &HeaderMap,
    params: &Params,
) -> Result<ClientCredentials, Failure> {
    if !headers.contains_key(AUTHORIZATION) && params.single("client_id").ok().flatten().is_none() {
        return Err(OAuthError::new(
            ErrorCode::InvalidClient,
            "Client authentication is required.",
        )
        .into());
    }
    credentials(headers, params)
}

/// RFC 6749 §2.3: public clients identify themselves; the others prove it with their secret.
/// `next` is the request's next read, made with the client lookup (`CombinedReads`); what
/// it found is used only once the client is authenticated.
pub async fn authenticate(
    state: &AppState,
    credentials: ClientCredentials,
    next: NextRead,
) -> Result<(Client, ReadAlongside), Failure> {
    let invalid_client = |d: &str| Failure::OAuth(OAuthError::new(ErrorCode::InvalidClient, d));
    let now = state.now();
    let key = client_key(&credentials.client_id);
    state
        .client_rate
        .check(&key, now)
        .map_err(Failure::TooManyRequests)?;
    // After repeated wrong secrets the client is locked out for a while, right or wrong.
    state
        .throttle
        .check(&[&key], now)
        .map_err(Failure::TooManyRequests)?;
    let (client, alongside) = state.store.client_and(&credentials.client_id, next).await?;
    let client = match (client, credentials.method, credentials.secret) {
        (None, _, _) => Err(invalid_client("The client is not registered.")),
        (Some(c), AuthMethod::None, _) if c.kind == ClientKind::Public => Ok(c),
        (Some(c), _, Some(_)) if c.kind == ClientKind::Public => Err(invalid_client(
            "This client is public and has no secret; send only client_id.",
        )),
        (Some(_), AuthMethod::None, _) | (Some(_), _, None) => Err(invalid_client(
            "This client has a secret; authenticate with it.",
        )),
        (Some(c), _, Some(secret)) => {
            if state
                .passwords
                .verify_client_secret(secret, c.secret_hash.clone())
                .await
            {
                Ok(c)
            } else {
                state
                    .throttle
                    .record_failure(&[(&key, CLIENT_AUTH_LIMITS)], now);
                tracing::warn!(event = "client_auth_failed", client_id = %c.client_id, "wrong client secret");
                Err(invalid_client("The client secret is wrong."))
            }
        }
    }?;
    Ok((client, alongside))
}

/// A request about one token (RFC 7009 §2.1, RFC 7662 §2.1): the authenticated caller, the
/// presented token's hash and what the store knows of it (read with the caller's record).
pub async fn token_request(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Client, SecretHash, Option<TokenInfo>), Failure> {
    let params = form(headers, body)?;
    let credentials = required_credentials(headers, &params)?;
    let token = params
        .single("token")
        .ok()
        .flatten()
        .ok_or_else(|| {
            OAuthError::new(
                ErrorCode::InvalidRequest,
                "The parameter token is required.",
            )
        })?
        .to_owned();
    let hash = Secret::from_presented(token).hash();
    let (client, alongside) = authenticate(
        state,
        credentials,
        NextRead::TokenInfo(hash.clone(), state.now()),
    )
    .await?;
    let info = match alongside {
        ReadAlongside::TokenInfo(info) => info,
        _ => state.store.token_info(&hash, state.now()).await?,
    };
    Ok((client, hash, info))
}
