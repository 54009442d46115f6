//! The token endpoint (RFC 6749 §3.2, §4.1.3, §5, §6; RFC 7636 §4.5–4.6; DESIGN §3): request
//! shape, client authentication, code redemption, refresh rotation with reuse detection. Each
//! test checks the answer on the wire and, where it matters, what the store now holds.
use std::collections::BTreeSet;

use reqwest::StatusCode;
use reqwest::header::{ALLOW, WWW_AUTHENTICATE};

use oauthd::clock::Clock;
use oauthd_core::form::encode;
use oauthd_core::secret::Secret;
use oauthd_store::TokenStatus;

use crate::common::*;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A server with the standard public client `app` and the user `alice`.
async fn setup() -> TestServer {
    let server = TestServer::start().await;
    server.app().await;
    server.user("alice").await;
    server
}

async fn access_status(server: &TestServer, token: &str) -> TokenStatus {
    server
        .store()
        .access_token_status(&Secret::from_presented(token).hash(), server.clock.now())
        .await
        .unwrap()
}

async fn refresh_status(server: &TestServer, token: &str) -> TokenStatus {
    server
        .store()
        .refresh_token_status(&Secret::from_presented(token).hash(), server.clock.now())
        .await
        .unwrap()
}

/// The access and refresh token of a successful response.
fn pair(r: &TokenResponse) -> (String, String) {
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    (r.str("access_token"), r.str("refresh_token"))
}

fn pair_of(json: &serde_json::Value) -> (String, String) {
    let get = |f: &str| {
        json[f]
            .as_str()
            .unwrap_or_else(|| panic!("no {f} in {json:?}"))
            .to_owned()
    };
    (get("access_token"), get("refresh_token"))
}

async fn assert_pair_status(server: &TestServer, pair: &(String, String), expected: TokenStatus) {
    assert_eq!(
        access_status(server, &pair.0).await,
        expected,
        "access token {}",
        pair.0
    );
    assert_eq!(
        refresh_status(server, &pair.1).await,
        expected,
        "refresh token {}",
        pair.1
    );
}

fn scope_set(s: &str) -> BTreeSet<&str> {
    s.split(' ').collect()
}

/// Redeem `code` for `app` with the right verifier and expect success.
async fn redeem_ok(server: &TestServer, code: &str) -> TokenResponse {
    let r = server.token(&exchange_body("app", code, VERIFIER)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    r
}

fn assert_ok_tokens(r: &TokenResponse) {
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(r.json["token_type"], "Bearer", "{:?}", r.json);
    assert_eq!(r.json["expires_in"], 600, "{:?}", r.json);
    assert!(r.str("access_token").starts_with("oat_"), "{:?}", r.json);
    assert!(r.str("refresh_token").starts_with("ort_"), "{:?}", r.json);
    r.assert_no_store();
}

// ---------------------------------------------------------------------------------------------
// Success and request shape
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn code_exchange_succeeds_with_bearer_tokens_and_no_store() {
    let server = setup().await;
    let code = server
        .code_for(&server.browser(), "app", "&scope=profile")
        .await;
    let r = server.token(&exchange_body("app", &code, VERIFIER)).await;
    assert_ok_tokens(&r);
    assert_eq!(r.json["scope"], "profile", "{:?}", r.json);
    let tokens = pair(&r);
    assert_ne!(tokens.0, tokens.1);
    assert_pair_status(&server, &tokens, TokenStatus::Active).await;
}

#[tokio::test]
async fn scope_is_omitted_when_empty() {
    let server = setup().await;
    let code = server.code_for(&server.browser(), "app", "").await;
    let r = redeem_ok(&server, &code).await;
    assert_ok_tokens(&r);
    assert!(r.json.get("scope").is_none(), "{:?}", r.json);
}

#[tokio::test]
async fn form_content_type_with_charset_is_accepted() {
    let server = setup().await;
    let code = server
        .code_for(&server.browser(), "app", "&scope=profile")
        .await;
    let r = TokenResponse::from(
        server
            .http()
            .post(server.url("/o/oauth2/token"))
            .header(
                "content-type",
                "application/x-www-form-urlencoded; charset=UTF-8",
            )
            .body(exchange_body("app", &code, VERIFIER))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_ok_tokens(&r);
}

#[tokio::test]
async fn get_is_405_with_allow_post_and_issues_nothing() {
    let server = setup().await;
    let code = server
        .code_for(&server.browser(), "app", "&scope=profile")
        .await;
    let query = exchange_body("app", &code, VERIFIER);
    let r = TokenResponse::from(
        server
            .http()
            .get(server.url(&format!("/o/oauth2/token?{query}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{:?}", r.json);
    assert_eq!(r.headers.get(ALLOW).unwrap(), "POST");
    assert!(r.json.get("access_token").is_none(), "{:?}", r.json);
    r.assert_no_store();
    // The code was not consumed.
    assert_ok_tokens(&redeem_ok(&server, &code).await);
}

#[tokio::test]
async fn put_is_405_with_allow_post_and_issues_nothing() {
    let server = setup().await;
    let code = server
        .code_for(&server.browser(), "app", "&scope=profile")
        .await;
    let r = TokenResponse::from(
        server
            .http()
            .put(server.url("/o/oauth2/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(exchange_body("app", &code, VERIFIER))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{:?}", r.json);
    assert_eq!(r.headers.get(ALLOW).unwrap(), "POST");
    assert!(r.json.get("access_token").is_none(), "{:?}", r.json);
    r.assert_no_store();
    assert_ok_tokens(&redeem_ok(&server, &code).await);
}

#[tokio::test]
async fn json_body_is_invalid_request_and_consumes_nothing() {
    let server = setup().await;
    let code = server
        .code_for(&server.browser(), "app", "&scope=profile")
        .await;
    let body = serde_json::json!({
        "grant_type": "authorization_code",
        "client_id": "app",
        "redirect_uri": APP_REDIRECT,
        "code_verifier": VERIFIER,
        "code": code,
    });
    let r = TokenResponse::from(
        server
            .http()
            .post(server.url("/o/oauth2/token"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    assert_ok_tokens(&redeem_ok(&server, &code).await);
}

#[tokio::test]
async fn form_body_labelled_json_is_invalid_request() {
    let server = setup().await;
    let code = server
        .code_for(&server.browser(), "app", "&scope=profile")
        .await;
    // A perfectly good form body: only the declared media type is wrong.
    let r = TokenResponse::from(
        server
            .http()
            .post(server.url("/o/oauth2/token"))
            .header("content-type", "application/json")
            .body(exchange_body("app", &code, VERIFIER))
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    assert_ok_tokens(&redeem_ok(&server, &code).await);
}

#[tokio::test]
async fn repeated_code_parameter_is_invalid_request() {
    let server = setup().await;
    let code = server
        .code_for(&server.browser(), "app", "&scope=profile")
        .await;
    let body = format!("{}&code={code}", exchange_body("app", &code, VERIFIER));
    let r = server.token(&body).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    assert_ok_tokens(&redeem_ok(&server, &code).await);
}

#[tokio::test]
async fn repeated_client_id_parameter_is_invalid_request() {
    let server = setup().await;
    let code = server
        .code_for(&server.browser(), "app", "&scope=profile")
        .await;
    let body = format!("client_id=app&{}", exchange_body("app", &code, VERIFIER));
    let r = server.token(&body).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    assert_ok_tokens(&redeem_ok(&server, &code).await);
}

#[tokio::test]
async fn repeated_redirect_uri_parameter_is_invalid_request() {
    let server = setup().await;
    let code = server
        .code_for(&server.browser(), "app", "&scope=profile")
        .await;
    let body = format!(
        "{}&redirect_uri={}",
        exchange_body("app", &code, VERIFIER),
        encode(APP_REDIRECT)
    );
    let r = server.token(&body).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    assert_ok_tokens(&redeem_ok(&server, &code).await);
}

#[tokio::test]
async fn repeated_scope_parameter_on_refresh_is_invalid_request_and_rotates_nothing() {
    let server = setup().await;
    let code = server
        .code_for(&server.browser(), "app", "&scope=photos:read%20profile")
        .await;
    let tokens = pair(&redeem_ok(&server, &code).await);
    let body = format!(
        "{}&scope=profile&scope=profile",
        refresh_body("app", &tokens.1)
    );
    let r = server.token(&body).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    assert_pair_status(&server, &tokens, TokenStatus::Active).await;
}

#[tokio::test]
async fn missing_grant_type_is_invalid_request() {
    let server = setup().await;
    let code = server
        .code_for(&server.browser(), "app", "&scope=profile")
        .await;
    let body = format!(
        "client_id=app&redirect_uri={}&code_verifier={VERIFIER}&code={code}",
        encode(APP_REDIRECT)
    );
    let r = server.token(&body).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    assert_ok_tokens(&redeem_ok(&server, &code).await);
}

#[tokio::test]
async fn unknown_grant_type_is_unsupported_grant_type() {
    let server = setup().await;
    let r = server
        .token("grant_type=password&client_id=app&username=alice&password=x")
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
}

// ---------------------------------------------------------------------------------------------
// Client authentication
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn unknown_client_is_invalid_client() {
    let server = setup().await;
    let code = server
        .code_for(&server.browser(), "app", "&scope=profile")
        .await;
    let r = server
        .token(&exchange_body("nobody", &code, VERIFIER))
        .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
}

#[tokio::test]
async fn unknown_client_with_basic_is_invalid_client_with_basic_challenge() {
    let server = setup().await;
    let code = server
        .code_for(&server.browser(), "app", "&scope=profile")
        .await;
    let r = server
        .token_with(
            &exchange_body("nobody", &code, VERIFIER),
            Some(("nobody", "secret")),
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
}

#[tokio::test]
async fn public_client_sending_a_secret_is_invalid_client() {
    let server = setup().await;
    let code = server
        .code_for(&server.browser(), "app", "&scope=profile")
        .await;
    let body = format!(
        "{}&client_secret=anything",
        exchange_body("app", &code, VERIFIER)
    );
    let r = server.token(&body).await;
    r.assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    // Authentication failed before the code was looked at: it still works.
    assert_ok_tokens(&redeem_ok(&server, &code).await);
}

/// A server with `app`, alice, and the confidential client `conf`; returns its secret.
async fn setup_confidential() -> (TestServer, String) {
    let server = setup().await;
    let (_, secret) = server.client("conf", |a| a.confidential = true).await;
    let secret = secret.expect("a confidential client has a secret");
    (server, secret.expose().to_owned())
}

#[tokio::test]
async fn confidential_client_authenticates_with_basic() {
    let (server, secret) = setup_confidential().await;
    let code = server
        .code_for(&server.browser(), "conf", "&scope=profile")
        .await;
    let r = server
        .token_with(
            &exchange_body("conf", &code, VERIFIER),
            Some(("conf", &secret)),
        )
        .await;
    assert_ok_tokens(&r);
    assert_pair_status(&server, &pair(&r), TokenStatus::Active).await;
}

#[tokio::test]
async fn confidential_client_authenticates_with_client_secret_post() {
    let (server, secret) = setup_confidential().await;
    let code = server
        .code_for(&server.browser(), "conf", "&scope=profile")
        .await;
    let body = format!(
        "{}&client_secret={}",
        exchange_body("conf", &code, VERIFIER),
        encode(&secret)
    );
    let r = server.token(&body).await;
    assert_ok_tokens(&r);
    assert_pair_status(&server, &pair(&r), TokenStatus::Active).await;
}

#[tokio::test]
async fn confidential_client_without_secret_is_invalid_client() {
    let (server, secret) = setup_confidential().await;
    let code = server
        .code_for(&server.browser(), "conf", "&scope=profile")
        .await;
    let r = server.token(&exchange_body("conf", &code, VERIFIER)).await;
    r.assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    // Nothing was consumed: with its secret the client still redeems the code.
    let r = server
        .token_with(
            &exchange_body("conf", &code, VERIFIER),
            Some(("conf", &secret)),
        )
        .await;
    assert_ok_tokens(&r);
}

#[tokio::test]
async fn confidential_client_with_wrong_basic_secret_is_invalid_client_with_challenge() {
    let (server, secret) = setup_confidential().await;
    let code = server
        .code_for(&server.browser(), "conf", "&scope=profile")
        .await;
    let r = server
        .token_with(
            &exchange_body("conf", &code, VERIFIER),
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
    let r = server
        .token_with(
            &exchange_body("conf", &code, VERIFIER),
            Some(("conf", &secret)),
        )
        .await;
    assert_ok_tokens(&r);
}

#[tokio::test]
async fn confidential_client_with_wrong_post_secret_is_invalid_client() {
    let (server, _secret) = setup_confidential().await;
    let code = server
        .code_for(&server.browser(), "conf", "&scope=profile")
        .await;
    let body = format!(
        "{}&client_secret=not-the-secret",
        exchange_body("conf", &code, VERIFIER)
    );
    let r = server.token(&body).await;
    r.assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
}

#[tokio::test]
async fn basic_and_client_secret_together_is_invalid_request() {
    let (server, secret) = setup_confidential().await;
    let code = server
        .code_for(&server.browser(), "conf", "&scope=profile")
        .await;
    let body = format!(
        "{}&client_secret={}",
        exchange_body("conf", &code, VERIFIER),
        encode(&secret)
    );
    let r = server.token_with(&body, Some(("conf", &secret))).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    // Nothing was consumed.
    let r = server
        .token_with(
            &exchange_body("conf", &code, VERIFIER),
            Some(("conf", &secret)),
        )
        .await;
    assert_ok_tokens(&r);
}

// ---------------------------------------------------------------------------------------------
// Code redemption: bindings
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn code_is_bound_to_its_client() {
    let server = setup().await;
    server.client("other", |_| {}).await;
    let code = server
        .code_for(&server.browser(), "app", "&scope=profile")
        .await;
    let r = server.token(&exchange_body("other", &code, VERIFIER)).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(r.json.get("access_token").is_none());
    // The real client's code is intact.
    assert_ok_tokens(&redeem_ok(&server, &code).await);
}

#[tokio::test]
async fn code_is_bound_to_its_redirect_uri() {
    let server = setup().await;
    let code = server
        .code_for(&server.browser(), "app", "&scope=profile")
        .await;
    let body = format!(
        "grant_type=authorization_code&client_id=app&redirect_uri={}&code_verifier={VERIFIER}&code={code}",
        encode("http://127.0.0.1/callback")
    );
    let r = server.token(&body).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert_ok_tokens(&redeem_ok(&server, &code).await);
}

#[tokio::test]
async fn missing_redirect_uri_is_invalid_grant_when_it_was_sent_at_authorize() {
    let server = setup().await;
    let code = server
        .code_for(&server.browser(), "app", "&scope=profile")
        .await;
    let body =
        format!("grant_type=authorization_code&client_id=app&code_verifier={VERIFIER}&code={code}");
    let r = server.token(&body).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert_ok_tokens(&redeem_ok(&server, &code).await);
}

#[tokio::test]
async fn unknown_code_is_invalid_grant() {
    let server = setup().await;
    let r = server
        .token(&exchange_body("app", "not-a-real-code", VERIFIER))
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
}

// ---------------------------------------------------------------------------------------------
// Code redemption: PKCE verifier
// ---------------------------------------------------------------------------------------------

/// A code for `client_id` (user alice, scope `profile`) whose S256 challenge is `challenge`.
async fn code_with_challenge(server: &TestServer, client_id: &str, challenge: &str) -> String {
    let query = format!(
        "response_type=code&client_id={client_id}&redirect_uri={}&code_challenge={challenge}&code_challenge_method=S256&scope=profile",
        encode(APP_REDIRECT),
    );
    let location = server
        .browser()
        .authorize_and_approve(&query, "alice")
        .await;
    param(&location, "code").unwrap_or_else(|| panic!("no code in {location}"))
}

/// Present `sent` (as it goes in the form body) for a fresh code: `invalid_grant`, and the
/// code is not burnt by the one bad attempt.
async fn bad_verifier_then_right_one(sent: &str) {
    let server = setup().await;
    let code = server
        .code_for(&server.browser(), "app", "&scope=profile")
        .await;
    let r = server.token(&exchange_body("app", &code, sent)).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(r.json.get("access_token").is_none());
    let r = redeem_ok(&server, &code).await;
    assert_ok_tokens(&r);
    assert_pair_status(&server, &pair(&r), TokenStatus::Active).await;
}

/// A malformed verifier is refused even when it hashes to the code's challenge: the shape is
/// checked, not only the digest. `decoded` is what the server sees once `sent` is decoded.
async fn malformed_verifier_refused_even_if_it_matches(sent: &str, decoded: &str) {
    let server = setup().await;
    let code = code_with_challenge(&server, "app", &challenge_of(decoded)).await;
    let r = server.token(&exchange_body("app", &code, sent)).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(r.json.get("access_token").is_none());
}

#[tokio::test]
async fn wrong_verifier_is_invalid_grant_and_does_not_burn_the_code() {
    let wrong = "a".repeat(43);
    assert_ne!(wrong, VERIFIER);
    bad_verifier_then_right_one(&wrong).await;
}

#[tokio::test]
async fn short_verifier_is_invalid_grant() {
    let short = "a".repeat(42);
    bad_verifier_then_right_one(&short).await;
    malformed_verifier_refused_even_if_it_matches(&short, &short).await;
}

#[tokio::test]
async fn long_verifier_is_invalid_grant() {
    let long = "a".repeat(129);
    bad_verifier_then_right_one(&long).await;
    malformed_verifier_refused_even_if_it_matches(&long, &long).await;
}

#[tokio::test]
async fn verifier_with_bang_is_invalid_grant() {
    let bad = format!("{}!", "a".repeat(42));
    assert_eq!(bad.len(), 43);
    bad_verifier_then_right_one(&bad).await;
    malformed_verifier_refused_even_if_it_matches(&bad, &bad).await;
}

#[tokio::test]
async fn verifier_with_space_is_invalid_grant() {
    // "%20" decodes to a space: 43 characters, one outside the unreserved set.
    let sent = format!("{}%20", "a".repeat(42));
    let decoded = format!("{} ", "a".repeat(42));
    assert_eq!(decoded.len(), 43);
    bad_verifier_then_right_one(&sent).await;
    malformed_verifier_refused_even_if_it_matches(&sent, &decoded).await;
}

#[tokio::test]
async fn longest_valid_verifier_is_accepted() {
    let server = setup().await;
    let verifier = format!("{}-._~", "aZ09".repeat(31));
    assert_eq!(verifier.len(), 128);
    let code = code_with_challenge(&server, "app", &challenge_of(&verifier)).await;
    let r = server.token(&exchange_body("app", &code, &verifier)).await;
    assert_ok_tokens(&r);
}

#[tokio::test]
async fn missing_verifier_is_invalid_request() {
    let server = setup().await;
    let code = server
        .code_for(&server.browser(), "app", "&scope=profile")
        .await;
    let body = format!(
        "grant_type=authorization_code&client_id=app&redirect_uri={}&code={code}",
        encode(APP_REDIRECT)
    );
    let r = server.token(&body).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    assert_ok_tokens(&redeem_ok(&server, &code).await);
}

#[tokio::test]
async fn four_wrong_verifiers_do_not_burn_the_code() {
    let server = setup().await;
    let code = server
        .code_for(&server.browser(), "app", "&scope=profile")
        .await;
    for i in 0..4 {
        let wrong = format!("{i}{}", "a".repeat(42));
        let r = server.token(&exchange_body("app", &code, &wrong)).await;
        r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    assert_ok_tokens(&redeem_ok(&server, &code).await);
}

#[tokio::test]
async fn five_wrong_verifiers_burn_the_code() {
    let server = setup().await;
    let code = server
        .code_for(&server.browser(), "app", "&scope=profile")
        .await;
    for i in 0..5 {
        let wrong = format!("{i}{}", "a".repeat(42));
        let r = server.token(&exchange_body("app", &code, &wrong)).await;
        r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let r = server.token(&exchange_body("app", &code, VERIFIER)).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(r.json.get("access_token").is_none());
    let stored = code_row(&server, &code)
        .await
        .expect("the code is still recorded");
    assert!(!stored.redeemed, "a burnt code issued nothing");
    assert!(stored.grant_id.is_none());
    assert!(stored.failed_attempts >= 5, "{}", stored.failed_attempts);
}

// ---------------------------------------------------------------------------------------------
// Sealed codes: what a code carries, and what is stored
// ---------------------------------------------------------------------------------------------

async fn code_row(server: &TestServer, code: &str) -> Option<oauthd_store::StoredCode> {
    server
        .store()
        .code(&Secret::from_presented(code).hash())
        .await
        .unwrap()
}

#[tokio::test]
async fn issuing_a_code_stores_nothing_and_an_altered_code_is_no_code() {
    let server = setup().await;
    let code = server.code_for(&server.browser(), "app", "").await;
    assert!(code.starts_with("oac_"), "{code}");
    assert_eq!(
        code_row(&server, &code).await,
        None,
        "nothing stored at issue"
    );
    // One character changed anywhere, in the clear time or in the sealed part: refused, and
    // nothing is recorded against it.
    for at in [6, code.len() / 2, code.len() - 2] {
        let mut altered = code.clone().into_bytes();
        altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        let r = server
            .token(&exchange_body("app", &altered, VERIFIER))
            .await;
        r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
        assert_eq!(code_row(&server, &altered).await, None);
    }
    // A code of the old, stored kind (a random value) is no code either.
    let r = server
        .token(&exchange_body(
            "app",
            Secret::generate(oauthd_core::secret::SecretKind::AuthorizationCode).expose(),
            VERIFIER,
        ))
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    // The real one still redeems, and is then recorded as redeemed, under its grant.
    let (access, _) = pair(&redeem_ok(&server, &code).await);
    let row = code_row(&server, &code)
        .await
        .expect("recorded at redemption");
    assert!(row.redeemed);
    assert_eq!(row.failed_attempts, 0);
    assert!(row.grant_id.is_some());
    assert_eq!(access_status(&server, &access).await, TokenStatus::Active);
}

#[tokio::test]
async fn a_code_dies_with_its_user_or_client() {
    let server = setup().await;
    let code = server.code_for(&server.browser(), "app", "").await;
    oauthd::admin::user::run_delete(server.store(), "alice")
        .await
        .unwrap();
    let r = server.token(&exchange_body("app", &code, VERIFIER)).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(code_row(&server, &code).await, None);

    server.user("alice").await;
    server.client("other", |_| {}).await;
    let code = server.code_for(&server.browser(), "other", "").await;
    oauthd::admin::client::run_delete(server.store(), "other")
        .await
        .unwrap();
    let r = server.token(&exchange_body("other", &code, VERIFIER)).await;
    r.assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    // A client registered again under the same id is another client: the code died with the
    // first one.
    server.client_created_at("other", START + 1, |_| {}).await;
    let r = server.token(&exchange_body("other", &code, VERIFIER)).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(code_row(&server, &code).await, None);
}

#[tokio::test]
async fn a_code_redeems_at_another_instance_and_after_a_restart() {
    let kek = "0123456789abcdef0123456789abcdef-test";
    for with_kek in [false, true] {
        let server = TestServer::start_with(|c| {
            if with_kek {
                c.key_encryption_key = Some(oauthd::config::Sensitive(kek.into()));
            }
        })
        .await;
        server.app().await;
        server.user("alice").await;
        let code = server.code_for(&server.browser(), "app", "").await;
        let other = server.another_instance().await;
        let r = reqwest::Client::new()
            .post(format!("{}/o/oauth2/token", other.base_url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(exchange_body("app", &code, VERIFIER))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "with a KEK: {with_kek}");
        other.shutdown().await.unwrap();
        let code = server.code_for(&server.browser(), "app", "").await;
        let server = server.restart().await;
        redeem_ok(&server, &code).await;
    }
    // Without a key encryption key the code key is stored (once, whoever starts first); with
    // one it is derived from it and nothing is stored.
    for with_kek in [false, true] {
        let server = TestServer::start_with(|c| {
            if with_kek {
                c.key_encryption_key = Some(oauthd::config::Sensitive(kek.into()));
            }
        })
        .await;
        let stored = server
            .store()
            .server_secret("code_sealing_key", "candidate", START)
            .await
            .unwrap();
        assert_eq!(
            stored == "candidate",
            with_kek,
            "stored before: {}",
            !with_kek
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Code redemption: replay and expiry
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn replayed_code_with_right_verifier_revokes_everything_it_issued() {
    let server = setup().await;
    let code = server
        .code_for(&server.browser(), "app", "&scope=profile")
        .await;
    let first = pair(&redeem_ok(&server, &code).await);
    assert_pair_status(&server, &first, TokenStatus::Active).await;
    let r = server.token(&exchange_body("app", &code, VERIFIER)).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(r.json.get("access_token").is_none());
    assert_pair_status(&server, &first, TokenStatus::Revoked).await;
    // The revoked refresh token no longer refreshes.
    let r = server.token(&refresh_body("app", &first.1)).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
}

#[tokio::test]
async fn replayed_code_with_wrong_verifier_revokes_nothing() {
    let server = setup().await;
    let code = server
        .code_for(&server.browser(), "app", "&scope=profile")
        .await;
    let first = pair(&redeem_ok(&server, &code).await);
    let wrong = "a".repeat(43);
    let r = server.token(&exchange_body("app", &code, &wrong)).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert_pair_status(&server, &first, TokenStatus::Active).await;
    // No verifier at all proves nothing either.
    let body = format!(
        "grant_type=authorization_code&client_id=app&redirect_uri={}&code={code}",
        encode(APP_REDIRECT)
    );
    let r = server.token(&body).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.json);
    assert_pair_status(&server, &first, TokenStatus::Active).await;
}

#[tokio::test]
async fn replayed_code_from_another_client_revokes_nothing() {
    let server = setup().await;
    server.client("other", |_| {}).await;
    let code = server
        .code_for(&server.browser(), "app", "&scope=profile")
        .await;
    let first = pair(&redeem_ok(&server, &code).await);
    let r = server.token(&exchange_body("other", &code, VERIFIER)).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert_pair_status(&server, &first, TokenStatus::Active).await;
}

#[tokio::test]
async fn expired_code_is_invalid_grant() {
    let server = setup().await;
    let code = server
        .code_for(&server.browser(), "app", "&scope=profile")
        .await;
    server.clock.advance(61);
    let r = server.token(&exchange_body("app", &code, VERIFIER)).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(r.json.get("access_token").is_none());
}

#[tokio::test]
async fn code_still_works_just_before_expiry() {
    let server = setup().await;
    let code = server
        .code_for(&server.browser(), "app", "&scope=profile")
        .await;
    server.clock.advance(59);
    let r = redeem_ok(&server, &code).await;
    assert_ok_tokens(&r);
    assert_pair_status(&server, &pair(&r), TokenStatus::Active).await;
}

// ---------------------------------------------------------------------------------------------
// Refresh: rotation and reuse detection
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn refresh_rotates_both_tokens() {
    let server = setup().await;
    let old = pair_of(&server.tokens("app").await);
    let r = server.token(&refresh_body("app", &old.1)).await;
    assert_ok_tokens(&r);
    let new = pair(&r);
    assert_ne!(new.0, old.0);
    assert_ne!(new.1, old.1);
    assert_eq!(refresh_status(&server, &old.1).await, TokenStatus::Revoked);
    assert_pair_status(&server, &new, TokenStatus::Active).await;
}

#[tokio::test]
async fn reuse_outside_grace_revokes_the_family() {
    let server = setup().await;
    let old = pair_of(&server.tokens("app").await);
    let new = pair(&server.token(&refresh_body("app", &old.1)).await);
    server.clock.advance(31);
    let r = server.token(&refresh_body("app", &old.1)).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(r.json.get("access_token").is_none());
    assert_pair_status(&server, &new, TokenStatus::Revoked).await;
    assert_eq!(access_status(&server, &old.0).await, TokenStatus::Revoked);
    let r = server.token(&refresh_body("app", &new.1)).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
}

#[tokio::test]
async fn reuse_within_grace_reissues_once_then_revokes_the_family() {
    let server = setup().await;
    let old = pair_of(&server.tokens("app").await);
    // The response to this rotation is "lost".
    let lost = pair(&server.token(&refresh_body("app", &old.1)).await);
    server.clock.advance(29);
    let r = server.token(&refresh_body("app", &old.1)).await;
    assert_ok_tokens(&r);
    let fresh = pair(&r);
    assert_ne!(fresh.0, lost.0);
    assert_ne!(fresh.1, lost.1);
    assert_ne!(fresh.1, old.1);
    assert_pair_status(&server, &lost, TokenStatus::Revoked).await;
    assert_pair_status(&server, &fresh, TokenStatus::Active).await;
    // The grace is spent: a third presentation is a reuse.
    let r = server.token(&refresh_body("app", &old.1)).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert_pair_status(&server, &fresh, TokenStatus::Revoked).await;
    assert_eq!(access_status(&server, &old.0).await, TokenStatus::Revoked);
    let r = server.token(&refresh_body("app", &fresh.1)).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
}

#[tokio::test]
async fn grace_does_not_apply_once_the_successor_was_used() {
    let server = setup().await;
    let old = pair_of(&server.tokens("app").await);
    let second = pair(&server.token(&refresh_body("app", &old.1)).await);
    let third = pair(&server.token(&refresh_body("app", &second.1)).await);
    // Still well within the grace window.
    let r = server.token(&refresh_body("app", &old.1)).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert_pair_status(&server, &third, TokenStatus::Revoked).await;
    assert_eq!(
        access_status(&server, &second.0).await,
        TokenStatus::Revoked
    );
    let r = server.token(&refresh_body("app", &third.1)).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
}

#[tokio::test]
async fn with_no_grace_period_immediate_reuse_revokes_the_family() {
    let server = TestServer::start_with(|c| c.refresh_grace_period = 0).await;
    server.app().await;
    server.user("alice").await;
    let old = pair_of(&server.tokens("app").await);
    let new = pair(&server.token(&refresh_body("app", &old.1)).await);
    let r = server.token(&refresh_body("app", &old.1)).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert_pair_status(&server, &new, TokenStatus::Revoked).await;
    let r = server.token(&refresh_body("app", &new.1)).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
}

#[tokio::test]
async fn refresh_token_of_another_client_is_invalid_grant_and_revokes_nothing() {
    let server = setup().await;
    server.client("other", |_| {}).await;
    let tokens = pair_of(&server.tokens("app").await);
    let r = server.token(&refresh_body("other", &tokens.1)).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(r.json.get("access_token").is_none());
    assert_pair_status(&server, &tokens, TokenStatus::Active).await;
    // The owner can still refresh.
    assert_ok_tokens(&server.token(&refresh_body("app", &tokens.1)).await);
}

#[tokio::test]
async fn unknown_refresh_token_is_invalid_grant() {
    let server = setup().await;
    let r = server.token(&refresh_body("app", "ort_nonsense")).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
}

// ---------------------------------------------------------------------------------------------
// Refresh: scope and lifetime
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn refresh_may_narrow_scope() {
    let server = setup().await;
    let code = server
        .code_for(&server.browser(), "app", "&scope=photos:read%20profile")
        .await;
    let r = redeem_ok(&server, &code).await;
    assert_eq!(
        scope_set(&r.str("scope")),
        scope_set("photos:read profile"),
        "{:?}",
        r.json
    );
    let tokens = pair(&r);
    let r = server
        .token(&format!("{}&scope=profile", refresh_body("app", &tokens.1)))
        .await;
    assert_ok_tokens(&r);
    assert_eq!(r.json["scope"], "profile", "{:?}", r.json);
    assert_pair_status(&server, &pair(&r), TokenStatus::Active).await;
}

#[tokio::test]
async fn refresh_may_not_widen_scope_and_rotates_nothing() {
    let server = setup().await;
    let code = server
        .code_for(&server.browser(), "app", "&scope=photos:read%20profile")
        .await;
    let tokens = pair(&redeem_ok(&server, &code).await);
    let r = server
        .token(&format!(
            "{}&scope=photos:write",
            refresh_body("app", &tokens.1)
        ))
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_scope");
    assert!(r.json.get("access_token").is_none());
    assert_pair_status(&server, &tokens, TokenStatus::Active).await;
    // The old refresh token was not rotated out: it still refreshes, with the full scope.
    let r = server.token(&refresh_body("app", &tokens.1)).await;
    assert_ok_tokens(&r);
    assert_eq!(
        scope_set(&r.str("scope")),
        scope_set("photos:read profile"),
        "{:?}",
        r.json
    );
}

#[tokio::test]
async fn refresh_token_expires_after_idle_period() {
    let server = setup().await;
    server.client("short", |a| a.refresh_token_ttl = 100).await;
    let tokens = pair_of(&server.tokens("short").await);
    server.clock.advance(101);
    assert_eq!(
        refresh_status(&server, &tokens.1).await,
        TokenStatus::Expired
    );
    let r = server.token(&refresh_body("short", &tokens.1)).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(r.json.get("access_token").is_none());
}

#[tokio::test]
async fn refresh_token_idle_period_restarts_on_rotation() {
    let server = setup().await;
    server.client("short", |a| a.refresh_token_ttl = 100).await;
    let tokens = pair_of(&server.tokens("short").await);
    server.clock.advance(60);
    let new = pair(&server.token(&refresh_body("short", &tokens.1)).await);
    // 120 s after the first token was issued, 60 s after the second.
    server.clock.advance(60);
    assert_ok_tokens(&server.token(&refresh_body("short", &new.1)).await);
}

// ---------------------------------------------------------------------------------------------
// Grants allowed per client
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn client_without_refresh_grant_gets_no_refresh_token() {
    let server = setup().await;
    server
        .client("noref", |a| a.grants = vec!["authorization_code".into()])
        .await;
    let code = server
        .code_for(&server.browser(), "noref", "&scope=profile")
        .await;
    let r = server.token(&exchange_body("noref", &code, VERIFIER)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    r.assert_no_store();
    assert!(r.str("access_token").starts_with("oat_"));
    assert!(r.json.get("refresh_token").is_none(), "{:?}", r.json);
    assert_eq!(
        access_status(&server, &r.str("access_token")).await,
        TokenStatus::Active
    );
}

#[tokio::test]
async fn client_without_code_grant_is_unauthorized_client() {
    let server = setup().await;
    server
        .client("rtonly", |a| a.grants = vec!["refresh_token".into()])
        .await;
    let code = server
        .code_for(&server.browser(), "app", "&scope=profile")
        .await;
    let r = server
        .token(&exchange_body("rtonly", &code, VERIFIER))
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "unauthorized_client");
    assert!(r.json.get("access_token").is_none());
}

// ---------------------------------------------------------------------------------------------
// PKCE modes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn liferay_compat_client_accepts_a_short_verifier() {
    let server = setup().await;
    server
        .client("compat", |a| a.pkce = "liferay-compat".into())
        .await;
    let code = code_with_challenge(&server, "compat", &challenge_of("test")).await;
    let r = server.token(&exchange_body("compat", &code, "test")).await;
    assert_ok_tokens(&r);
    assert_pair_status(&server, &pair(&r), TokenStatus::Active).await;
}

#[tokio::test]
async fn liferay_compat_client_still_checks_the_verifier() {
    let server = setup().await;
    server
        .client("compat", |a| a.pkce = "liferay-compat".into())
        .await;
    let code = code_with_challenge(&server, "compat", &challenge_of("test")).await;
    let r = server.token(&exchange_body("compat", &code, "tesT")).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert_ok_tokens(&server.token(&exchange_body("compat", &code, "test")).await);
}

#[tokio::test]
async fn strict_client_refuses_a_short_verifier() {
    let server = setup().await;
    let code = code_with_challenge(&server, "app", &challenge_of("test")).await;
    let r = server.token(&exchange_body("app", &code, "test")).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(r.json.get("access_token").is_none());
}
