//! `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.5–4.6).
use axum::response::Response;

use oauthd_core::client::{Client, GrantType};
use oauthd_core::error::{ErrorCode, OAuthError};
use oauthd_core::secret::{Secret, SecretHash, time_ordered_id};
use oauthd_core::{code, code_sealing};
use oauthd_store::{IssueTokens, NewCode, NewGrant, RedeemOutcome, StoredCode};

use crate::http::client_request::Failure;
use crate::issue::{IdTokenRequest, Subject, mint};
use crate::ops::names;
use crate::state::AppState;

fn invalid_grant() -> Failure {
    Failure::OAuth(OAuthError::new(
        ErrorCode::InvalidGrant,
        "The code is invalid, expired or already used.",
    ))
}

pub(super) async fn exchange(
    state: &AppState,
    client: &Client,
    presented: &Secret,
    hash: SecretHash,
    stored: Option<StoredCode>,
    redirect_uri: Option<&str>,
    code_verifier: Option<&str>,
) -> Result<Response, Failure> {
    if !client.allows(GrantType::AuthorizationCode) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "This client may not use the authorization code grant.",
        )
        .into());
    }
    let now = state.now();
    // The code carries what the authorization decided; anything we did not seal is no code.
    let Some(sealed) = code_sealing::open(&state.code_key, presented.expose()) else {
        return Err(invalid_grant());
    };
    if sealed.code.client_id == client.client_id && sealed.client_created_at != client.created_at {
        // Issued to an earlier client of the same id, deleted since: it died with that client.
        return Err(invalid_grant());
    }
    let new = NewCode {
        hash,
        code: sealed.code,
    };
    if let Some(stored) = &stored
        && (stored.redeemed || stored.failed_attempts >= code::MAX_FAILED_ATTEMPTS)
    {
        return Err(replayed(
            state,
            &new.code,
            stored.grant_id.as_deref(),
            &client.client_id,
            code_verifier,
        )
        .await);
    }
    // Every check runs before the code is consumed: a wrong guess must not burn the real
    // client's code, but a few wrong guesses do (RFC 7636 §4.6, DESIGN §3).
    if let Err(e) = code::check(
        &new.code,
        &client.client_id,
        redirect_uri,
        code_verifier,
        now,
    ) {
        if e.counts_as_failed_attempt() {
            let attempts = state.store.record_failed_attempt(&new, now).await?;
            tracing::warn!(client_id = %client.client_id, attempts, "PKCE verification failed for an authorization code");
        }
        return Err(e.to_oauth().into());
    }
    if code_verifier.is_some_and(code::verifier_needed_compat) {
        metrics::counter!(names::LIFERAY_COMPAT, "step" => "token").increment(1);
        tracing::warn!(client_id = %client.client_id, "liferay-compat: code_verifier length outside 43..128 accepted");
    }
    let c = &new.code;
    let grant = NewGrant {
        id: time_ordered_id(state.now_millis()),
        client_id: client.client_id.clone(),
        user_id: c.user_id.clone(),
        scope: c.scope.clone(),
        auth_time: c.auth_time,
        created_at: now,
        expires_at: now + state.policy.refresh_absolute_lifetime,
    };
    let subject = Subject {
        user_id: &c.user_id,
        auth_time: c.auth_time,
        id_token: c.scope.contains("openid").then_some(IdTokenRequest {
            nonce: c.nonce.as_deref(),
        }),
    };
    let minted = mint(state, client, &subject, &c.scope, now, grant.expires_at).await?;
    let issue = IssueTokens {
        grant,
        pair: minted.pair.clone(),
    };
    match state.store.redeem_code(&new, now, &issue).await? {
        RedeemOutcome::Redeemed => {
            metrics::counter!(names::TOKENS_ISSUED, "grant" => "authorization_code").increment(1);
            Ok(minted.response())
        }
        // Lost a race to a concurrent redemption with a valid verifier: that is a replay.
        RedeemOutcome::AlreadyUsed { grant_id } => Err(replayed(
            state,
            &new.code,
            grant_id.as_deref(),
            &client.client_id,
            code_verifier,
        )
        .await),
        RedeemOutcome::NotFound => Err(invalid_grant()),
    }
}

/// RFC 6749 §4.1.2: a used code presented again revokes what it issued, when the presenter
/// proves it holds the code (right client and verifier); a stranger's guess revokes nothing.
async fn replayed(
    state: &AppState,
    issued: &code::IssuedCode,
    grant_id: Option<&str>,
    client_id: &str,
    code_verifier: Option<&str>,
) -> Failure {
    if let Some(grant_id) = grant_id
        && code::proves_possession(issued, client_id, code_verifier)
    {
        match state
            .store
            .revoke_grant(grant_id, state.now(), "code_replay")
            .await
        {
            Ok(revoked) => {
                metrics::counter!(names::CODE_REPLAYS).increment(1);
                tracing::warn!(
                    event = "code_replay",
                    client_id,
                    grant_id,
                    revoked,
                    "authorization code replayed; its grant is revoked"
                )
            }
            Err(e) => return Failure::Store(e),
        }
    }
    invalid_grant()
}
