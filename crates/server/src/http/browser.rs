//! The browser's identity: a long-lived browser cookie (the CSRF seed, and what a pending
//! authorization is bound to) and the login session cookie. Both hold random secrets; the
//! server stores only their hashes.
use axum::http::HeaderMap;
use axum::http::HeaderValue;
use axum::http::header::{COOKIE, SET_COOKIE};

use oauthd_core::secret::{Secret, SecretKind, constant_time_eq, csrf_token_for};
use oauthd_store::Session;

use crate::state::AppState;

pub const BROWSER_COOKIE: &str = "oauthd_browser";
pub const SESSION_COOKIE: &str = "oauthd_session";

/// A cookie's value from the request, when present exactly once and well-formed.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut found = None;
    for header in headers.get_all(COOKIE) {
        let Ok(text) = header.to_str() else { continue };
        for pair in text.split(';') {
            let Some((k, v)) = pair.trim().split_once('=') else {
                continue;
            };
            if k == name {
                if found.is_some() {
                    // Two cookies of one name: one may have been planted; trust neither.
                    return None;
                }
                found = Some(v.to_owned());
            }
        }
    }
    found.filter(|v| {
        (1..=128).contains(&v.len())
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.policy.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub fn clear_cookie(state: &AppState, name: &str) -> HeaderValue {
    set_cookie(state, name, "deleted", 0)
}

/// The browser cookie's secret; a new one (and its `Set-Cookie`) when the browser has none.
pub struct Browser {
    pub secret: Secret,
    pub set_cookie: Option<HeaderValue>,
}

impl Browser {
    pub fn identify(state: &AppState, headers: &HeaderMap) -> Browser {
        match cookie(headers, BROWSER_COOKIE) {
            Some(value) if value.starts_with(SecretKind::Browser.prefix()) => Browser {
                secret: Secret::from_presented(value),
                set_cookie: None,
            },
            _ => {
                let secret = Secret::generate(SecretKind::Browser);
                let header = set_cookie(state, BROWSER_COOKIE, secret.expose(), 400 * 24 * 3600);
                Browser {
                    secret,
                    set_cookie: Some(header),
                }
            }
        }
    }

    /// Only an existing browser cookie can authorize a form post.
    pub fn existing(headers: &HeaderMap) -> Option<Secret> {
        cookie(headers, BROWSER_COOKIE).map(Secret::from_presented)
    }

    pub fn csrf(&self) -> String {
        csrf_token_for(&self.secret)
    }

    pub fn apply(&self, headers: &mut HeaderMap) {
        if let Some(c) = &self.set_cookie {
            headers.append(SET_COOKIE, c.clone());
        }
    }
}

/// Does the posted CSRF token belong to this browser?
pub fn csrf_ok(headers: &HeaderMap, posted: Option<&str>) -> Option<Secret> {
    let browser = Browser::existing(headers)?;
    let posted = posted?;
    constant_time_eq(&csrf_token_for(&browser), posted).then_some(browser)
}

/// The signed-in user of this browser, if the session cookie names a live session.
pub async fn current_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(Secret, Session)>, oauthd_store::StoreError> {
    let Some(value) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let secret = Secret::from_presented(value);
    Ok(state
        .store
        .session(&secret.hash(), state.now())
        .await?
        .map(|s| (secret, s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_parsing() {
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_static("a=1; oauthd_browser=obr_abc-_9; b=2"),
        );
        assert_eq!(cookie(&h, BROWSER_COOKIE).as_deref(), Some("obr_abc-_9"));
        assert_eq!(cookie(&h, "missing"), None);
        h.append(COOKIE, HeaderValue::from_static("oauthd_browser=obr_other"));
        assert_eq!(cookie(&h, BROWSER_COOKIE), None, "duplicates are refused");
        let mut bad = HeaderMap::new();
        bad.insert(COOKIE, HeaderValue::from_static("oauthd_session=a\"b"));
        assert_eq!(cookie(&bad, SESSION_COOKIE), None);
    }
}
