//! `grant_type=refresh_token` (RFC 6749 §6) with rotation and reuse detection
//! (RFC 9700 §4.14.2).
use axum::response::Response;

use oauthd_core::client::{Client, GrantType};
use oauthd_core::error::{ErrorCode, OAuthError};
use oauthd_core::refresh::{self, RefreshDecision, RefreshState};
use oauthd_core::secret::SecretHash;
use oauthd_store::CasOutcome;

use crate::http::client_request::Failure;
use crate::issue::{Subject, mint};
use crate::ops::names;
use crate::state::AppState;

fn invalid_grant(d: &str) -> Failure {
    Failure::OAuth(OAuthError::new(ErrorCode::InvalidGrant, d))
}

pub(super) async fn refresh(
    state: &AppState,
    client: &Client,
    hash: &SecretHash,
    first_read: Option<RefreshState>,
    requested_scope: Option<&str>,
) -> Result<Response, Failure> {
    if !client.allows(GrantType::RefreshToken) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "This client may not use refresh tokens.",
        )
        .into());
    }
    let now = state.now();
    // Three rounds at most. A compare-and-set lost to a concurrent request is decided again
    // on the state that request left (its write is committed before we hear we lost): a lost
    // rotation becomes the once-only grace or a reuse, a lost grace becomes a reuse, which
    // revokes the grant (RFC 9700 §4.14.2). With two rounds, concurrent duplicates that all
    // lost the grace left the grace's tokens live.
    let mut read = Some(first_read);
    for _ in 0..3 {
        // The first round decides on the state read with the client; later rounds re-read.
        let current = match read.take() {
            Some(first) => first,
            None => state.store.refresh_state(hash).await?,
        };
        let Some(current) = current else {
            return Err(invalid_grant("The refresh token is invalid."));
        };
        let decision = refresh::decide(
            &current,
            &client.client_id,
            now,
            state.policy.refresh_grace_period,
        );
        let scope = refresh::narrow_scope(&current.scope, requested_scope)?;
        // No new ID token on refresh (OIDC Core §12.2 makes it optional).
        let subject = Subject {
            user_id: &current.user_id,
            auth_time: current.auth_time,
            id_token: None,
        };
        let minted = mint(
            state,
            client,
            &subject,
            &scope,
            now,
            current.grant_expires_at,
        )
        .await?;
        let outcome = match decision {
            RefreshDecision::Reject(e) => return Err(e.into()),
            RefreshDecision::Rotate => state.store.rotate_refresh(hash, now, &minted.pair).await?,
            RefreshDecision::Grace => {
                let outcome = state.store.grace_reissue(hash, now, &minted.pair).await?;
                if outcome == CasOutcome::Done {
                    tracing::info!(client_id = %client.client_id, grant_id = %current.grant_id, "refresh token reused within the grace period; successor replaced");
                }
                outcome
            }
            RefreshDecision::RevokeGrant => {
                metrics::counter!(names::REFRESH_REUSES).increment(1);
                let revoked = state
                    .store
                    .revoke_grant(&current.grant_id, now, "refresh_token_reuse")
                    .await?;
                tracing::warn!(event = "refresh_token_reuse", client_id = %client.client_id, grant_id = %current.grant_id, revoked,
                    "a rotated-out refresh token was presented again; its whole grant is revoked");
                return Err(invalid_grant(
                    "The refresh token was already used; every token of this authorization is now revoked.",
                ));
            }
        };
        if outcome == CasOutcome::Done {
            metrics::counter!(names::TOKENS_ISSUED, "grant" => "refresh_token").increment(1);
            return Ok(minted.response());
        }
    }
    Err(invalid_grant("The refresh token is no longer valid."))
}
