//! Why a request was refused, and the RFC 6750 §3 response that says so.
use std::sync::Arc;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oauthd_core::scope::Scope;

/// What went wrong with the presented bearer token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No bearer credentials at all (absent, or another scheme): 401 with no error
    /// attribute (RFC 6750 §3.1).
    #[error("a bearer token is required")]
    MissingToken,
    /// Malformed, invalid, expired, revoked, unknown or meant for another API: 401
    /// `invalid_token`. The text is shown to the client, so it never holds internals.
    #[error("{0}")]
    InvalidToken(String),
    /// A valid token without the scopes the resource needs: 403 `insufficient_scope`.
    #[error("the token lacks the scope {required:?}")]
    InsufficientScope { required: Scope },
    /// The authorization server (JWKS or introspection endpoint) could not be used. Not
    /// the client's fault: 503, never cached. The text is for logs, not for the client.
    #[error("the authorization server is unavailable: {0}")]
    Unavailable(String),
}

impl AuthError {
    pub(crate) fn invalid(description: impl Into<String>) -> Self {
        AuthError::InvalidToken(description.into())
    }
}

/// A refused request: the error and the protection space (`realm`) it concerns. Its
/// [`IntoResponse`] writes the status, the `WWW-Authenticate` challenge and a small JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    realm: Arc<str>,
    error: AuthError,
}

impl Rejection {
    pub fn new(realm: impl Into<Arc<str>>, error: AuthError) -> Self {
        Rejection {
            realm: realm.into(),
            error,
        }
    }

    pub fn error(&self) -> &AuthError {
        &self.error
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    pub fn status(&self) -> StatusCode {
        match self.error {
            AuthError::MissingToken | AuthError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            AuthError::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            AuthError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750 §3); none for a 503.
    pub fn www_authenticate(&self) -> Option<String> {
        let realm = quotable(&self.realm);
        match &self.error {
            AuthError::MissingToken => Some(format!("Bearer realm=\"{realm}\"")),
            AuthError::InvalidToken(description) => Some(format!(
                "Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{}\"",
                quotable(description)
            )),
            AuthError::InsufficientScope { required } => Some(format!(
                "Bearer realm=\"{realm}\", error=\"insufficient_scope\", scope=\"{}\"",
                quotable(&required.to_string())
            )),
            AuthError::Unavailable(_) => None,
        }
    }

    fn body(&self) -> (&'static str, String) {
        match &self.error {
            AuthError::MissingToken => ("unauthorized", self.error.to_string()),
            AuthError::InvalidToken(d) => ("invalid_token", d.clone()),
            AuthError::InsufficientScope { required } => (
                "insufficient_scope",
                format!("this request needs the scope \"{required}\""),
            ),
            AuthError::Unavailable(_) => (
                "temporarily_unavailable",
                "the authorization server could not be reached; try again later".to_owned(),
            ),
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for Rejection {}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        if let AuthError::Unavailable(detail) = &self.error {
            tracing::warn!(%detail, "bearer token could not be checked");
        }
        let (error, description) = self.body();
        let body = serde_json::json!({ "error": error, "error_description": description });
        let mut response = (self.status(), Json(body)).into_response();
        if let Some(challenge) = self.www_authenticate()
            && let Ok(value) = HeaderValue::from_str(&challenge)
        {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// Keep only the characters RFC 6750 §3 allows inside the challenge's quoted values
/// (%x20-21 / %x23-5B / %x5D-7E): no quote, no backslash, no control or non-ASCII.
fn quotable(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            ' ' | '!' | '#'..='[' | ']'..='~' => c,
            _ => '?',
        })
        .collect()
}

/// A configuration value was unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("{field} is not an absolute http(s) URL: {value:?}")]
    BadUrl { field: &'static str, value: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_follow_rfc_6750() {
        let missing = Rejection::new("api", AuthError::MissingToken);
        assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(missing.www_authenticate().unwrap(), "Bearer realm=\"api\"");
        let invalid = Rejection::new("a\"pi", AuthError::invalid("bad \\ \"token\"\n"));
        assert_eq!(
            invalid.www_authenticate().unwrap(),
            "Bearer realm=\"a?pi\", error=\"invalid_token\", error_description=\"bad ? ?token??\""
        );
        let scope = Rejection::new(
            "api",
            AuthError::InsufficientScope {
                required: Scope::parse("b a").unwrap(),
            },
        );
        assert_eq!(scope.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            scope.www_authenticate().unwrap(),
            "Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"a b\""
        );
        let down = Rejection::new("api", AuthError::Unavailable("refused".into()));
        assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(down.www_authenticate(), None);
    }
}
