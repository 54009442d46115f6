//! A validated access token and the `Authorization: Bearer` header it came in.
use std::sync::Arc;

use axum::http::{HeaderMap, header};
use oauthd_core::scope::Scope;

use crate::error::{AuthError, Rejection};

/// An access token that passed validation, and what it says. Also the axum extractor (see
/// [`FromRequestParts`](axum::extract::FromRequestParts) below): a handler taking a
/// `BearerToken` runs only for requests carrying a valid token.
///
/// The raw token is not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerToken {
    /// The resource owner, or the client itself for a client's own token (RFC 9068 §2.2).
    pub sub: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// The granted scopes (RFC 6749 §3.3); empty when the token has none.
    pub scope: Scope,
    /// A human-readable name of the resource owner, when the server says (RFC 7662 §2.2).
    pub username: Option<String>,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// The token's identifier, when it has one.
    pub jti: Option<String>,
    /// The audiences the token is meant for.
    pub aud: Vec<String>,
    pub(crate) realm: Arc<str>,
}

impl BearerToken {
    /// Refuse with 403 `insufficient_scope` (RFC 6750 §3.1) unless the token has every
    /// one of `scopes`.
    ///
    /// # Panics
    /// If a required scope is not a valid scope token (RFC 6749 §3.3): a programming error.
    pub fn require(&self, scopes: &[&str]) -> Result<(), Rejection> {
        let required = Scope::from_tokens(scopes)
            .unwrap_or_else(|e| panic!("required scopes must be valid: {e}"));
        self.require_scope(&required)
    }

    /// [`require`](Self::require) with an already-parsed scope set.
    pub fn require_scope(&self, required: &Scope) -> Result<(), Rejection> {
        if required.is_subset_of(&self.scope) {
            Ok(())
        } else {
            Err(Rejection::new(
                self.realm.clone(),
                AuthError::InsufficientScope {
                    required: required.clone(),
                },
            ))
        }
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.contains(scope)
    }

    /// A refusal in this token's realm, for the API's own checks.
    pub fn reject(&self, error: AuthError) -> Rejection {
        Rejection::new(self.realm.clone(), error)
    }

    /// RFC 9068 §2.2: `sub`, `client_id`, `exp` are required; `scope` is a space-separated
    /// string.
    pub(crate) fn from_jwt_claims(
        claims: &serde_json::Value,
        realm: &Arc<str>,
    ) -> Result<Self, AuthError> {
        let string = |name: &str| claims[name].as_str().map(str::to_owned);
        let required = |name: &'static str| {
            string(name).ok_or_else(|| AuthError::invalid(format!("the token has no {name}")))
        };
        let aud = match &claims["aud"] {
            serde_json::Value::String(a) => vec![a.clone()],
            serde_json::Value::Array(list) => list
                .iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        Ok(BearerToken {
            sub: required("sub")?,
            client_id: required("client_id")?,
            scope: parse_scope(claims["scope"].as_str())?,
            username: string("username"),
            exp: claims["exp"]
                .as_i64()
                .ok_or_else(|| AuthError::invalid("the token has no exp"))?,
            jti: string("jti"),
            aud,
            realm: realm.clone(),
        })
    }
}

pub(crate) fn parse_scope(scope: Option<&str>) -> Result<Scope, AuthError> {
    Scope::parse(scope.unwrap_or(""))
        .map_err(|_| AuthError::invalid("the token's scope is malformed"))
}

/// The token of the request's `Authorization: Bearer` header (RFC 6750 §2.1).
///
/// No header, or credentials of another scheme, is [`AuthError::MissingToken`] (RFC 6750
/// §3.1 asks for no error code then). Other ways of sending a token (form body, query,
/// RFC 6750 §2.2-2.3) are not accepted.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let malformed = || AuthError::invalid("the Authorization header is malformed");
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(AuthError::MissingToken);
    };
    if values.next().is_some() {
        return Err(malformed());
    }
    let value = value.to_str().map_err(|_| malformed())?.trim_matches(' ');
    let (scheme, credentials) = value.split_once(' ').unwrap_or((value, ""));
    // The scheme name is case-insensitive (RFC 9110 §11.1).
    if !scheme.eq_ignore_ascii_case("Bearer") {
        return Err(AuthError::MissingToken);
    }
    let token = credentials.trim_start_matches(' ');
    if is_b64token(token) {
        Ok(token)
    } else {
        Err(malformed())
    }
}

/// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" (RFC 6750 §2.1).
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn header_parsing() {
        assert_eq!(
            bearer_token(&headers(&["Bearer abc.DEF-_~+/=="])),
            Ok("abc.DEF-_~+/==")
        );
        assert_eq!(bearer_token(&headers(&["bearer  abc"])), Ok("abc"));
        assert_eq!(bearer_token(&headers(&[])), Err(AuthError::MissingToken));
        assert_eq!(
            bearer_token(&headers(&["Basic dXNlcjpwdw=="])),
            Err(AuthError::MissingToken)
        );
        for bad in [
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer a=b",
            "Bearer ===",
            "Bearer a\"b",
        ] {
            assert!(
                matches!(
                    bearer_token(&headers(&[bad])),
                    Err(AuthError::InvalidToken(_))
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            bearer_token(&headers(&["Bearer a", "Bearer b"])),
            Err(AuthError::InvalidToken(_))
        ));
    }

    #[test]
    fn scopes_are_required_all_together() {
        let token = BearerToken {
            sub: "u".into(),
            client_id: "c".into(),
            scope: Scope::parse("photos:read profile").unwrap(),
            username: None,
            exp: 0,
            jti: None,
            aud: vec![],
            realm: "api".into(),
        };
        assert!(token.require(&[]).is_ok());
        assert!(token.require(&["photos:read", "profile"]).is_ok());
        let refused = token.require(&["photos:read", "photos:write"]).unwrap_err();
        assert_eq!(
            refused.error(),
            &AuthError::InsufficientScope {
                required: Scope::parse("photos:read photos:write").unwrap()
            }
        );
    }
}
