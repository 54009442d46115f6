//! `POST /o/oauth2/revoke` (RFC 7009; DESIGN §3 "Revocation and introspection"): what each
//! kind of token takes down with it, that hints only hint, that other clients' tokens are
//! left alone without saying so, request shape and client authentication. Each test checks
//! the answer on the wire and what the store now holds.
use reqwest::StatusCode;
use reqwest::header::{ALLOW, WWW_AUTHENTICATE};

use oauthd_core::form::encode;
use oauthd_store::TokenStatus;

use crate::common::*;

const REVOKE: &str = "/o/oauth2/revoke";

/// A server with the standard public client `app` and the user alice.
async fn setup() -> TestServer {
    let server = TestServer::start().await;
    server.app().await;
    server.user("alice").await;
    server
}

/// A fresh (access, refresh) pair for the public client `client_id`.
async fn pair_for(server: &TestServer, client_id: &str) -> (String, String) {
    let json = server.tokens(client_id).await;
    (
        json["access_token"].as_str().unwrap().to_owned(),
        json["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn revoke(server: &TestServer, body: &str) -> TokenResponse {
    server.post_form(REVOKE, body, None).await
}

/// RFC 7009 §2.2: 200, and like every token endpoint response, never cached.
fn assert_revoked_ok(r: &TokenResponse) {
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    r.assert_no_store();
}

async fn assert_statuses(
    server: &TestServer,
    pair: &(String, String),
    access: TokenStatus,
    refresh: TokenStatus,
) {
    assert_eq!(
        server.access_status(&pair.0).await,
        access,
        "access token {}",
        pair.0
    );
    assert_eq!(
        server.refresh_status(&pair.1).await,
        refresh,
        "refresh token {}",
        pair.1
    );
}

// ---------------------------------------------------------------------------------------------
// What is revoked
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn revoking_an_access_token_revokes_only_that_token() {
    let server = setup().await;
    let pair = pair_for(&server, "app").await;
    let r = revoke(
        &server,
        &format!(
            "token={}&token_type_hint=access_token&client_id=app",
            encode(&pair.0)
        ),
    )
    .await;
    assert_revoked_ok(&r);
    assert_statuses(&server, &pair, TokenStatus::Revoked, TokenStatus::Active).await;
    // The grant lives on: the refresh token still works.
    let r = server.token(&refresh_body("app", &pair.1)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(
        server.access_status(&r.str("access_token")).await,
        TokenStatus::Active
    );
}

#[tokio::test]
async fn revoking_an_access_token_without_a_hint_works() {
    let server = setup().await;
    let pair = pair_for(&server, "app").await;
    let r = revoke(&server, &format!("token={}&client_id=app", encode(&pair.0))).await;
    assert_revoked_ok(&r);
    assert_statuses(&server, &pair, TokenStatus::Revoked, TokenStatus::Active).await;
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_whole_grant() {
    let server = setup().await;
    let pair = pair_for(&server, "app").await;
    let r = revoke(
        &server,
        &format!(
            "token={}&token_type_hint=refresh_token&client_id=app",
            encode(&pair.1)
        ),
    )
    .await;
    assert_revoked_ok(&r);
    assert_statuses(&server, &pair, TokenStatus::Revoked, TokenStatus::Revoked).await;
    let r = server.token(&refresh_body("app", &pair.1)).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
}

#[tokio::test]
async fn revoking_a_rotated_refresh_token_family_takes_the_newest_tokens_too() {
    let server = setup().await;
    let first = pair_for(&server, "app").await;
    let r = server.token(&refresh_body("app", &first.1)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    let second = (r.str("access_token"), r.str("refresh_token"));
    let r = revoke(
        &server,
        &format!("token={}&client_id=app", encode(&second.1)),
    )
    .await;
    assert_revoked_ok(&r);
    assert_statuses(&server, &second, TokenStatus::Revoked, TokenStatus::Revoked).await;
    assert_statuses(&server, &first, TokenStatus::Revoked, TokenStatus::Revoked).await;
}

#[tokio::test]
async fn access_token_hint_on_a_refresh_token_still_revokes_the_grant() {
    let server = setup().await;
    let pair = pair_for(&server, "app").await;
    let r = revoke(
        &server,
        &format!(
            "token={}&token_type_hint=access_token&client_id=app",
            encode(&pair.1)
        ),
    )
    .await;
    assert_revoked_ok(&r);
    assert_statuses(&server, &pair, TokenStatus::Revoked, TokenStatus::Revoked).await;
    let r = server.token(&refresh_body("app", &pair.1)).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
}

#[tokio::test]
async fn refresh_token_hint_on_an_access_token_revokes_only_the_access_token() {
    let server = setup().await;
    let pair = pair_for(&server, "app").await;
    let r = revoke(
        &server,
        &format!(
            "token={}&token_type_hint=refresh_token&client_id=app",
            encode(&pair.0)
        ),
    )
    .await;
    assert_revoked_ok(&r);
    assert_statuses(&server, &pair, TokenStatus::Revoked, TokenStatus::Active).await;
}

#[tokio::test]
async fn unknown_hint_value_is_ignored() {
    // RFC 7009 §2.1: an invalid hint is ignored and does not change the answer.
    let server = setup().await;
    let pair = pair_for(&server, "app").await;
    let r = revoke(
        &server,
        &format!(
            "token={}&token_type_hint=id_token&client_id=app",
            encode(&pair.1)
        ),
    )
    .await;
    assert_revoked_ok(&r);
    assert_statuses(&server, &pair, TokenStatus::Revoked, TokenStatus::Revoked).await;
}

#[tokio::test]
async fn revoking_twice_answers_200_both_times() {
    let server = setup().await;
    let pair = pair_for(&server, "app").await;
    let body = format!("token={}&client_id=app", encode(&pair.0));
    assert_revoked_ok(&revoke(&server, &body).await);
    assert_revoked_ok(&revoke(&server, &body).await);
    assert_statuses(&server, &pair, TokenStatus::Revoked, TokenStatus::Active).await;
}

#[tokio::test]
async fn revoking_an_expired_access_token_answers_200() {
    let server = setup().await;
    let pair = pair_for(&server, "app").await;
    server.clock.advance(601);
    let r = revoke(&server, &format!("token={}&client_id=app", encode(&pair.0))).await;
    assert_revoked_ok(&r);
    assert_eq!(server.access_status(&pair.0).await, TokenStatus::Revoked);
    assert_eq!(server.refresh_status(&pair.1).await, TokenStatus::Active);
}

// ---------------------------------------------------------------------------------------------
// Tokens that are not the caller's, or not tokens at all
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn another_clients_access_token_is_silently_left_alone() {
    let server = setup().await;
    server.client("other", |_| {}).await;
    let pair = pair_for(&server, "app").await;
    let r = revoke(
        &server,
        &format!("token={}&client_id=other", encode(&pair.0)),
    )
    .await;
    assert_revoked_ok(&r);
    assert_statuses(&server, &pair, TokenStatus::Active, TokenStatus::Active).await;
}

#[tokio::test]
async fn another_clients_refresh_token_is_silently_left_alone() {
    let server = setup().await;
    server.client("other", |_| {}).await;
    let pair = pair_for(&server, "app").await;
    let r = revoke(
        &server,
        &format!(
            "token={}&token_type_hint=refresh_token&client_id=other",
            encode(&pair.1)
        ),
    )
    .await;
    assert_revoked_ok(&r);
    assert_statuses(&server, &pair, TokenStatus::Active, TokenStatus::Active).await;
    // The owner can still use it.
    let r = server.token(&refresh_body("app", &pair.1)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
}

#[tokio::test]
async fn unknown_token_answers_200() {
    let server = setup().await;
    let pair = pair_for(&server, "app").await;
    for token in ["oat_not-a-real-token", "ort_not-a-real-token", "garbage"] {
        let r = revoke(&server, &format!("token={token}&client_id=app")).await;
        assert_revoked_ok(&r);
    }
    assert_statuses(&server, &pair, TokenStatus::Active, TokenStatus::Active).await;
}

#[tokio::test]
async fn missing_token_is_invalid_request() {
    let server = setup().await;
    let pair = pair_for(&server, "app").await;
    let r = revoke(&server, "client_id=app&token_type_hint=access_token").await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    assert_statuses(&server, &pair, TokenStatus::Active, TokenStatus::Active).await;
}

// ---------------------------------------------------------------------------------------------
// Request shape
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn get_is_405_with_allow_post_and_revokes_nothing() {
    let server = setup().await;
    let pair = pair_for(&server, "app").await;
    for token in [&pair.0, &pair.1] {
        let r = server
            .http()
            .get(server.url(&format!("{REVOKE}?token={}&client_id=app", encode(token))))
            .send()
            .await
            .unwrap();
        let r = TokenResponse::from(r).await;
        r.assert_error(StatusCode::METHOD_NOT_ALLOWED, "invalid_request");
        assert_eq!(r.headers.get(ALLOW).unwrap(), "POST");
    }
    assert_statuses(&server, &pair, TokenStatus::Active, TokenStatus::Active).await;
}

#[tokio::test]
async fn json_body_is_invalid_request_and_revokes_nothing() {
    let server = setup().await;
    let pair = pair_for(&server, "app").await;
    let r = server
        .http()
        .post(server.url(REVOKE))
        .header("content-type", "application/json")
        .body(serde_json::json!({ "token": pair.1, "client_id": "app" }).to_string())
        .send()
        .await
        .unwrap();
    let r = TokenResponse::from(r).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    assert_statuses(&server, &pair, TokenStatus::Active, TokenStatus::Active).await;
}

#[tokio::test]
async fn form_body_labelled_json_is_invalid_request_and_revokes_nothing() {
    let server = setup().await;
    let pair = pair_for(&server, "app").await;
    let r = server
        .http()
        .post(server.url(REVOKE))
        .header("content-type", "application/json")
        .body(format!("token={}&client_id=app", encode(&pair.1)))
        .send()
        .await
        .unwrap();
    let r = TokenResponse::from(r).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    assert_statuses(&server, &pair, TokenStatus::Active, TokenStatus::Active).await;
}

#[tokio::test]
async fn repeated_parameters_are_invalid_request_and_revoke_nothing() {
    let server = setup().await;
    let pair = pair_for(&server, "app").await;
    let (a, rt) = (encode(&pair.0), encode(&pair.1));
    for body in [
        format!("token={rt}&token={rt}&client_id=app"),
        format!("token={a}&token={rt}&client_id=app"),
        format!("token={rt}&client_id=app&client_id=app"),
        format!(
            "token={rt}&token_type_hint=refresh_token&token_type_hint=refresh_token&client_id=app"
        ),
    ] {
        let r = revoke(&server, &body).await;
        r.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    }
    assert_statuses(&server, &pair, TokenStatus::Active, TokenStatus::Active).await;
}

// ---------------------------------------------------------------------------------------------
// Client authentication
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn unknown_client_is_invalid_client_and_revokes_nothing() {
    let server = setup().await;
    let pair = pair_for(&server, "app").await;
    let r = revoke(
        &server,
        &format!("token={}&client_id=nobody", encode(&pair.1)),
    )
    .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    assert_statuses(&server, &pair, TokenStatus::Active, TokenStatus::Active).await;
}

#[tokio::test]
async fn public_client_sending_a_secret_is_invalid_client_and_revokes_nothing() {
    let server = setup().await;
    let pair = pair_for(&server, "app").await;
    let r = revoke(
        &server,
        &format!("token={}&client_id=app&client_secret=x", encode(&pair.1)),
    )
    .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    assert_statuses(&server, &pair, TokenStatus::Active, TokenStatus::Active).await;
}

/// A server with `app`, alice, and the confidential client `conf` holding a fresh pair.
async fn setup_confidential() -> (TestServer, String, (String, String)) {
    let server = setup().await;
    let (_, secret) = server.client("conf", |a| a.confidential = true).await;
    let secret = secret.unwrap().expose().to_owned();
    let code = server
        .code_for(&server.browser(), "conf", "&scope=profile")
        .await;
    let r = server
        .token_with(
            &exchange_body("conf", &code, VERIFIER),
            Some(("conf", &secret)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    let pair = (r.str("access_token"), r.str("refresh_token"));
    (server, secret, pair)
}

#[tokio::test]
async fn confidential_client_revokes_with_basic() {
    let (server, secret, pair) = setup_confidential().await;
    let r = server
        .post_form(
            REVOKE,
            &format!("token={}", encode(&pair.1)),
            Some(("conf", &secret)),
        )
        .await;
    assert_revoked_ok(&r);
    assert_statuses(&server, &pair, TokenStatus::Revoked, TokenStatus::Revoked).await;
}

#[tokio::test]
async fn confidential_client_revokes_with_client_secret_post() {
    let (server, secret, pair) = setup_confidential().await;
    let r = revoke(
        &server,
        &format!(
            "token={}&client_id=conf&client_secret={}",
            encode(&pair.0),
            encode(&secret)
        ),
    )
    .await;
    assert_revoked_ok(&r);
    assert_statuses(&server, &pair, TokenStatus::Revoked, TokenStatus::Active).await;
}

#[tokio::test]
async fn confidential_client_with_wrong_basic_secret_is_invalid_client_with_challenge() {
    let (server, _secret, pair) = setup_confidential().await;
    let r = server
        .post_form(
            REVOKE,
            &format!("token={}", encode(&pair.1)),
            Some(("conf", "not-the-secret")),
        )
        .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    let challenge = r
        .headers
        .get(WWW_AUTHENTICATE)
        .expect("WWW-Authenticate")
        .to_str()
        .unwrap();
    assert!(challenge.starts_with("Basic"), "{challenge}");
    assert_statuses(&server, &pair, TokenStatus::Active, TokenStatus::Active).await;
}

#[tokio::test]
async fn confidential_client_with_wrong_post_secret_is_invalid_client() {
    let (server, _secret, pair) = setup_confidential().await;
    let r = revoke(
        &server,
        &format!(
            "token={}&client_id=conf&client_secret=not-the-secret",
            encode(&pair.1)
        ),
    )
    .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    // No Basic was tried, so no Basic challenge.
    assert!(r.headers.get(WWW_AUTHENTICATE).is_none(), "{:?}", r.headers);
    assert_statuses(&server, &pair, TokenStatus::Active, TokenStatus::Active).await;
}

#[tokio::test]
async fn confidential_client_without_its_secret_is_invalid_client() {
    let (server, _secret, pair) = setup_confidential().await;
    let r = revoke(
        &server,
        &format!("token={}&client_id=conf", encode(&pair.1)),
    )
    .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    assert_statuses(&server, &pair, TokenStatus::Active, TokenStatus::Active).await;
}

#[tokio::test]
async fn basic_and_client_secret_together_is_invalid_request() {
    let (server, secret, pair) = setup_confidential().await;
    let r = server
        .post_form(
            REVOKE,
            &format!(
                "token={}&client_secret={}",
                encode(&pair.1),
                encode(&secret)
            ),
            Some(("conf", &secret)),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    assert_statuses(&server, &pair, TokenStatus::Active, TokenStatus::Active).await;
}

#[tokio::test]
async fn public_client_cannot_revoke_a_confidential_clients_token() {
    let (server, _secret, pair) = setup_confidential().await;
    let r = revoke(&server, &format!("token={}&client_id=app", encode(&pair.1))).await;
    assert_revoked_ok(&r);
    assert_statuses(&server, &pair, TokenStatus::Active, TokenStatus::Active).await;
}
