//! Authorization code redemption rules (RFC 6749 §4.1.3, RFC 7636 §4.6).
use crate::UnixTime;
use crate::error::{ErrorCode, OAuthError};
use crate::pkce::{self, CodeChallenge, PkceError, PkceMode};
use crate::scope::Scope;

/// Failed verifier attempts that burn a code: a guesser gets a few tries, never many.
pub const MAX_FAILED_ATTEMPTS: i64 = 5;
pub const DEFAULT_CODE_LIFETIME: i64 = 60;
/// RFC 6749 §4.1.2: "A maximum authorization code lifetime of 10 minutes is RECOMMENDED."
pub const MAX_CODE_LIFETIME: i64 = 600;

/// What was recorded when the code was issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCode {
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub redirect_uri_sent: bool,
    pub scope: Scope,
    pub code_challenge: CodeChallenge,
    pub pkce_mode: PkceMode,
    pub auth_time: UnixTime,
    pub expires_at: UnixTime,
    /// OIDC Core §3.1.2.1: echoed in the ID token.
    pub nonce: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedemptionError {
    WrongClient,
    RedirectUriMismatch,
    Expired,
    MissingVerifier,
    Pkce(PkceError),
}

impl RedemptionError {
    /// Only failed verifier checks count towards burning the code.
    pub fn counts_as_failed_attempt(&self) -> bool {
        matches!(self, RedemptionError::Pkce(_))
    }

    pub fn to_oauth(&self) -> OAuthError {
        let (code, description) = match self {
            RedemptionError::WrongClient => (
                ErrorCode::InvalidGrant,
                "The code was not issued to this client.",
            ),
            RedemptionError::RedirectUriMismatch => (
                ErrorCode::InvalidGrant,
                "The redirect_uri does not match the one in the authorization request.",
            ),
            RedemptionError::Expired => (
                ErrorCode::InvalidGrant,
                "The code has expired; start a new authorization.",
            ),
            RedemptionError::MissingVerifier => (
                ErrorCode::InvalidRequest,
                "The parameter code_verifier is required (PKCE).",
            ),
            RedemptionError::Pkce(PkceError::Mismatch) => (
                ErrorCode::InvalidGrant,
                "PKCE verification failed: the code_verifier does not match the code_challenge.",
            ),
            RedemptionError::Pkce(_) => (
                ErrorCode::InvalidGrant,
                "PKCE verification failed: code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~.",
            ),
        };
        OAuthError::new(code, description)
    }
}

/// Whether this client, with this redirect_uri and verifier, may redeem the code now.
/// Called before the code is consumed, so a wrong guess does not burn the real client's code.
pub fn check(
    code: &IssuedCode,
    client_id: &str,
    redirect_uri: Option<&str>,
    code_verifier: Option<&str>,
    now: UnixTime,
) -> Result<(), RedemptionError> {
    if code.client_id != client_id {
        return Err(RedemptionError::WrongClient);
    }
    // RFC 6749 §4.1.3: required and identical if it was in the authorization request; if
    // sent anyway, it must still be the one the code was issued for.
    match redirect_uri {
        Some(uri) if uri != code.redirect_uri => return Err(RedemptionError::RedirectUriMismatch),
        None if code.redirect_uri_sent => return Err(RedemptionError::RedirectUriMismatch),
        _ => {}
    }
    if now >= code.expires_at {
        return Err(RedemptionError::Expired);
    }
    let verifier = code_verifier.ok_or(RedemptionError::MissingVerifier)?;
    pkce::verify(verifier, &code.code_challenge, code.pkce_mode).map_err(RedemptionError::Pkce)
}

/// Whether a request presenting an already-used code proves it holds the code legitimately
/// (right client and verifier): then everything issued from the code is revoked (RFC 6749
/// §4.1.2), while a stranger's guess revokes nothing.
pub fn proves_possession(code: &IssuedCode, client_id: &str, code_verifier: Option<&str>) -> bool {
    code.client_id == client_id
        && code_verifier
            .is_some_and(|v| pkce::verify(v, &code.code_challenge, code.pkce_mode).is_ok())
}

/// A verifier that only passed because of liferay-compat leniency (length not checked).
pub fn verifier_needed_compat(code_verifier: &str) -> bool {
    pkce::validate_verifier(code_verifier, PkceMode::Strict).is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(mode: PkceMode) -> IssuedCode {
        IssuedCode {
            client_id: "c".into(),
            user_id: "u".into(),
            redirect_uri: "myapp://cb".into(),
            redirect_uri_sent: true,
            scope: Scope::default(),
            code_challenge: CodeChallenge::parse(&pkce::s256_challenge("test")).unwrap(),
            pkce_mode: mode,
            auth_time: 0,
            expires_at: 100,
            nonce: None,
        }
    }

    #[test]
    fn binding_rules() {
        let c = code(PkceMode::LiferayCompat);
        assert_eq!(check(&c, "c", Some("myapp://cb"), Some("test"), 10), Ok(()));
        assert_eq!(
            check(&c, "d", Some("myapp://cb"), Some("test"), 10),
            Err(RedemptionError::WrongClient)
        );
        assert_eq!(
            check(&c, "c", None, Some("test"), 10),
            Err(RedemptionError::RedirectUriMismatch)
        );
        assert_eq!(
            check(&c, "c", Some("myapp://cb/"), Some("test"), 10),
            Err(RedemptionError::RedirectUriMismatch)
        );
        assert_eq!(
            check(&c, "c", Some("myapp://cb"), Some("test"), 100),
            Err(RedemptionError::Expired)
        );
        assert_eq!(
            check(&c, "c", Some("myapp://cb"), None, 10),
            Err(RedemptionError::MissingVerifier)
        );
        assert_eq!(
            check(&c, "c", Some("myapp://cb"), Some("tesT"), 10),
            Err(RedemptionError::Pkce(PkceError::Mismatch))
        );
        let strict = code(PkceMode::Strict);
        assert_eq!(
            check(&strict, "c", Some("myapp://cb"), Some("test"), 10),
            Err(RedemptionError::Pkce(PkceError::MalformedVerifier))
        );
        assert!(proves_possession(&c, "c", Some("test")));
        assert!(!proves_possession(&c, "c", Some("tesT")));
        assert!(!proves_possession(&c, "d", Some("test")));
        assert!(!proves_possession(&c, "c", None));
        let mut unsent = code(PkceMode::LiferayCompat);
        unsent.redirect_uri_sent = false;
        assert_eq!(check(&unsent, "c", None, Some("test"), 10), Ok(()));
    }

    #[test]
    fn only_pkce_failures_count_as_attempts() {
        assert!(RedemptionError::Pkce(PkceError::Mismatch).counts_as_failed_attempt());
        assert!(!RedemptionError::WrongClient.counts_as_failed_attempt());
        assert_eq!(
            RedemptionError::MissingVerifier.to_oauth().code,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            RedemptionError::Expired.to_oauth().code,
            ErrorCode::InvalidGrant
        );
    }
}
