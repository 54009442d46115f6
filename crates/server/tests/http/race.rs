//! Concurrent redemptions over HTTP: the store's compare-and-set lets exactly one win.
use std::sync::Arc;

use reqwest::StatusCode;

use oauthd::clock::Clock as _;
use oauthd_core::secret::Secret;
use oauthd_store::TokenStatus;

use crate::common::*;

async fn race(server: &Arc<TestServer>, body: String) -> Vec<TokenResponse> {
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (server, body) = (server.clone(), body.clone());
        tasks.push(tokio::spawn(async move { server.token(&body).await }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn winners(responses: &[TokenResponse]) -> Vec<&TokenResponse> {
    for r in responses.iter().filter(|r| r.status != StatusCode::OK) {
        r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    responses
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_code_redemptions_have_one_winner() {
    let server = Arc::new(TestServer::start().await);
    server.app().await;
    server.user("alice").await;
    let code = server.code_for(&server.browser(), "app", "").await;
    let responses = race(&server, exchange_body("app", &code, VERIFIER)).await;
    let won = winners(&responses);
    assert_eq!(won.len(), 1, "exactly one redemption succeeds");
    // The losers presented the right verifier: a replay, so the winner's tokens are revoked
    // (RFC 6749 §4.1.2).
    let now = server.clock.now();
    let access = Secret::from_presented(won[0].str("access_token"));
    assert_eq!(
        server
            .store()
            .access_token_status(&access.hash(), now)
            .await
            .unwrap(),
        TokenStatus::Revoked
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_refreshes_have_one_winner_without_grace() {
    let server = Arc::new(TestServer::start_with(|c| c.refresh_grace_period = 0).await);
    server.app().await;
    server.user("alice").await;
    let tokens = server.tokens("app").await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let responses = race(&server, refresh_body("app", refresh)).await;
    let won = winners(&responses);
    assert_eq!(won.len(), 1, "exactly one rotation succeeds");
    // Every loser presented a rotated-out token: reuse, so the whole grant is revoked.
    let now = server.clock.now();
    let new_refresh = Secret::from_presented(won[0].str("refresh_token"));
    assert_eq!(
        server
            .store()
            .refresh_token_status(&new_refresh.hash(), now)
            .await
            .unwrap(),
        TokenStatus::Revoked
    );
    let first_access = Secret::from_presented(tokens["access_token"].as_str().unwrap());
    assert_eq!(
        server
            .store()
            .access_token_status(&first_access.hash(), now)
            .await
            .unwrap(),
        TokenStatus::Revoked
    );
}

/// With the default grace period, the lost-response recovery may answer one concurrent
/// duplicate too (it cannot tell a retry from a race), but never more, and the remaining
/// reuses revoke the grant: no token of the race stays usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_with_grace_leave_no_live_token() {
    let server = Arc::new(TestServer::start().await);
    server.app().await;
    server.user("alice").await;
    let tokens = server.tokens("app").await;
    let responses = race(
        &server,
        refresh_body("app", tokens["refresh_token"].as_str().unwrap()),
    )
    .await;
    let won = winners(&responses);
    assert!((1..=2).contains(&won.len()), "{} successes", won.len());
    let now = server.clock.now();
    for r in won {
        for (field, refresh) in [("access_token", false), ("refresh_token", true)] {
            let hash = Secret::from_presented(r.str(field)).hash();
            let status = if refresh {
                server
                    .store()
                    .refresh_token_status(&hash, now)
                    .await
                    .unwrap()
            } else {
                server
                    .store()
                    .access_token_status(&hash, now)
                    .await
                    .unwrap()
            };
            assert_eq!(status, TokenStatus::Revoked, "{field}");
        }
    }
}
