//! `GET/POST /o/oauth2/userinfo` (OIDC Core §5.3), with Bearer errors per RFC 6750 §3.
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use oauthd_core::form::Params;
use oauthd_core::secret::Secret;
use oauthd_store::{TokenKind, TokenStatus};

use crate::http::response::{json_no_store, no_store, store_failure_json};
use crate::state::AppState;

/// RFC 6750 §3: the challenge, with an error code once a token was presented.
fn challenge(status: StatusCode, error: Option<(&str, &str)>, extra: &str) -> Response {
    let value = match error {
        None => "Bearer realm=\"oauthd\"".to_owned(),
        Some((code, description)) => {
            format!(
                "Bearer realm=\"oauthd\", error=\"{code}\", error_description=\"{description}\"{extra}"
            )
        }
    };
    let mut r = no_store(status.into_response());
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    r
}

fn invalid_request(description: &str) -> Response {
    challenge(
        StatusCode::BAD_REQUEST,
        Some(("invalid_request", description)),
        "",
    )
}

/// The access token from the header or (POST only) the form body; never both (RFC 6750 §2).
fn bearer(
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<String>, &'static str> {
    let from_header = match headers.get(AUTHORIZATION).map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) => match v.split_once(' ') {
            Some((scheme, token))
                if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
            {
                Some(token.trim().to_owned())
            }
            _ => {
                return Err("The Authorization header must be: Bearer <token>.");
            }
        },
        Some(Err(_)) => return Err("The Authorization header is malformed."),
    };
    let is_form = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    let from_body = if *method == Method::POST && is_form {
        let params = Params::parse(body).map_err(|_| "The request body is malformed.")?;
        params
            .single("access_token")
            .map_err(|_| "The access_token was sent more than once.")?
            .map(str::to_owned)
    } else {
        None
    };
    match (from_header, from_body) {
        (Some(_), Some(_)) => Err("Send the access token in one place only."),
        (h, b) => Ok(h.or(b)),
    }
}

pub async fn handle(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = match bearer(&method, &headers, &body) {
        Ok(Some(t)) => t,
        Ok(None) => return challenge(StatusCode::UNAUTHORIZED, None, ""),
        Err(description) => return invalid_request(description),
    };
    let info = match state
        .store
        .token_info(&Secret::from_presented(token).hash(), state.now())
        .await
    {
        Ok(i) => i,
        Err(e) => return store_failure_json(&e),
    };
    let Some(info) =
        info.filter(|i| i.kind == TokenKind::Access && i.status == TokenStatus::Active)
    else {
        return challenge(
            StatusCode::UNAUTHORIZED,
            Some((
                "invalid_token",
                "The access token is invalid, expired or revoked.",
            )),
            "",
        );
    };
    if !info.scope.contains("openid") {
        return challenge(
            StatusCode::FORBIDDEN,
            Some((
                "insufficient_scope",
                "The access token was not issued for OpenID Connect.",
            )),
            ", scope=\"openid\"",
        );
    }
    let user = match state.store.user_by_id(&info.user_id).await {
        Ok(Some(u)) => u,
        Ok(None) => {
            return challenge(
                StatusCode::UNAUTHORIZED,
                Some(("invalid_token", "The user no longer exists.")),
                "",
            );
        }
        Err(e) => return store_failure_json(&e),
    };
    // OIDC Core §5.4: claims by scope.
    let mut claims = serde_json::json!({ "sub": user.id });
    if info.scope.contains("profile") {
        claims["preferred_username"] = user.username.into();
        if let Some(name) = user.display_name {
            claims["name"] = name.into();
        }
    }
    if info.scope.contains("email")
        && let Some(email) = user.email
    {
        claims["email"] = email.into();
        // Nothing here verifies addresses, so none is claimed verified.
        claims["email_verified"] = false.into();
    }
    json_no_store(claims)
}
