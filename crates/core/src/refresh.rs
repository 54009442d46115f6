//! Refresh token rotation with reuse detection (RFC 9700 §4.14.2, RFC 6749 §6).
use crate::UnixTime;
use crate::error::{ErrorCode, OAuthError};
use crate::scope::Scope;

pub const DEFAULT_GRACE_PERIOD: i64 = 30;
pub const DEFAULT_ABSOLUTE_LIFETIME: i64 = 90 * 24 * 3600;

/// A refresh token as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshState {
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    /// When the user logged in for the grant (carried into tokens minted on refresh).
    pub auth_time: UnixTime,
    pub scope: Scope,
    /// Idle expiry of this token.
    pub expires_at: UnixTime,
    /// Absolute cap of the whole grant.
    pub grant_expires_at: UnixTime,
    pub grant_revoked: bool,
    pub revoked: bool,
    /// When it was rotated out, if it was.
    pub used_at: Option<UnixTime>,
    /// Whether the token that replaced it has itself been used.
    pub successor_used: bool,
    /// Whether the lost-response grace was already spent on it.
    pub grace_used: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshDecision {
    /// Fresh token: rotate it.
    Rotate,
    /// Rotated a moment ago and its successor never used: the response was probably lost.
    /// Revoke the successor and issue a fresh pair (once).
    Grace,
    /// A rotated-out token came back: someone holds a copy. Revoke the whole grant.
    RevokeGrant,
    Reject(OAuthError),
}

fn invalid_grant(d: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidGrant, d)
}

pub fn decide(
    state: &RefreshState,
    client_id: &str,
    now: UnixTime,
    grace_period: i64,
) -> RefreshDecision {
    if state.client_id != client_id {
        // Not a reuse by the holder: another client cannot revoke someone else's grant.
        return RefreshDecision::Reject(invalid_grant(
            "The refresh token was not issued to this client.",
        ));
    }
    if state.grant_revoked || state.revoked {
        return RefreshDecision::Reject(invalid_grant(
            "The refresh token has been revoked; sign in again.",
        ));
    }
    match state.used_at {
        None if now >= state.expires_at || now >= state.grant_expires_at => {
            RefreshDecision::Reject(invalid_grant(
                "The refresh token has expired; sign in again.",
            ))
        }
        None => RefreshDecision::Rotate,
        Some(used) if !state.successor_used && !state.grace_used && now - used < grace_period => {
            RefreshDecision::Grace
        }
        Some(_) => RefreshDecision::RevokeGrant,
    }
}

/// RFC 6749 §6: the new scope must not include any scope not originally granted.
pub fn narrow_scope(granted: &Scope, requested: Option<&str>) -> Result<Scope, OAuthError> {
    let Some(requested) = requested else {
        return Ok(granted.clone());
    };
    let scope = Scope::parse(requested)
        .map_err(|e| OAuthError::new(ErrorCode::InvalidScope, format!("{e}.")))?;
    if scope.is_subset_of(granted) {
        Ok(scope)
    } else {
        Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "The requested scope exceeds what was granted; scope may only narrow.",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> RefreshState {
        RefreshState {
            grant_id: "g".into(),
            client_id: "c".into(),
            user_id: "u".into(),
            auth_time: 0,
            scope: Scope::parse("a b").unwrap(),
            expires_at: 1000,
            grant_expires_at: 5000,
            grant_revoked: false,
            revoked: false,
            used_at: None,
            successor_used: false,
            grace_used: false,
        }
    }

    #[test]
    fn decisions() {
        assert_eq!(decide(&fresh(), "c", 10, 30), RefreshDecision::Rotate);
        assert!(matches!(
            decide(&fresh(), "x", 10, 30),
            RefreshDecision::Reject(_)
        ));
        assert!(matches!(
            decide(&fresh(), "c", 1000, 30),
            RefreshDecision::Reject(_)
        ));
        let capped = RefreshState {
            grant_expires_at: 500,
            ..fresh()
        };
        assert!(matches!(
            decide(&capped, "c", 600, 30),
            RefreshDecision::Reject(_)
        ));
        let used = RefreshState {
            used_at: Some(100),
            ..fresh()
        };
        assert_eq!(decide(&used, "c", 110, 30), RefreshDecision::Grace);
        assert_eq!(decide(&used, "c", 130, 30), RefreshDecision::RevokeGrant);
        assert_eq!(decide(&used, "c", 110, 0), RefreshDecision::RevokeGrant);
        let successor_used = RefreshState {
            successor_used: true,
            ..used.clone()
        };
        assert_eq!(
            decide(&successor_used, "c", 101, 30),
            RefreshDecision::RevokeGrant
        );
        let grace_spent = RefreshState {
            grace_used: true,
            ..used
        };
        assert_eq!(
            decide(&grace_spent, "c", 101, 30),
            RefreshDecision::RevokeGrant
        );
        let revoked = RefreshState {
            grant_revoked: true,
            ..fresh()
        };
        assert!(matches!(
            decide(&revoked, "c", 10, 30),
            RefreshDecision::Reject(_)
        ));
    }

    #[test]
    fn scope_only_narrows() {
        let granted = Scope::parse("a b").unwrap();
        assert_eq!(narrow_scope(&granted, None).unwrap(), granted);
        assert_eq!(narrow_scope(&granted, Some("a")).unwrap().to_string(), "a");
        assert_eq!(
            narrow_scope(&granted, Some("a c")).unwrap_err().code,
            ErrorCode::InvalidScope
        );
    }
}
