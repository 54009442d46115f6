//! `POST /o/oauth2/introspect` (RFC 7662; DESIGN §3 "Revocation and introspection"): only
//! authenticated resource servers may ask; an active token is described by exactly the
//! documented fields; anything else is exactly `{"active": false}`.
use std::collections::BTreeSet;

use reqwest::StatusCode;
use reqwest::header::{ALLOW, WWW_AUTHENTICATE};
use serde_json::json;

use oauthd_core::form::encode;
use oauthd_store::TokenStatus;

use crate::common::*;

const INTROSPECT: &str = "/o/oauth2/introspect";

/// A server with `app`, alice and the resource server `api`; returns `api`'s secret.
async fn setup() -> (TestServer, String) {
    let server = TestServer::start().await;
    server.app().await;
    server.user("alice").await;
    let secret = server.resource_server("api").await;
    (server, secret)
}

/// Tokens for `client_id` with the scope `photos:read profile`.
async fn tokens_for(server: &TestServer, client_id: &str) -> TokenResponse {
    let code = server
        .code_for(&server.browser(), client_id, "&scope=photos:read%20profile")
        .await;
    let r = server
        .token(&exchange_body(client_id, &code, VERIFIER))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    r
}

/// Introspect `token` as the resource server `api`.
async fn introspect(server: &TestServer, secret: &str, token: &str) -> TokenResponse {
    server
        .post_form(
            INTROSPECT,
            &format!("token={}", encode(token)),
            Some(("api", secret)),
        )
        .await
}

/// RFC 7662 §2.2: an inactive token gets exactly this, and is not cached.
fn assert_inactive(r: &TokenResponse, what: &str) {
    assert_eq!(r.status, StatusCode::OK, "{what}: {:?}", r.json);
    assert_eq!(r.json, json!({ "active": false }), "{what}");
    r.assert_no_store();
}

fn keys(v: &serde_json::Value) -> BTreeSet<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v:?}"))
        .keys()
        .map(String::as_str)
        .collect()
}

const ACTIVE_FIELDS: [&str; 10] = [
    "active",
    "scope",
    "client_id",
    "username",
    "sub",
    "aud",
    "iss",
    "exp",
    "iat",
    "token_type",
];

// ---------------------------------------------------------------------------------------------
// Who may introspect
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn no_client_credentials_is_invalid_client() {
    let (server, _secret) = setup().await;
    let t = tokens_for(&server, "app").await;
    let r = server
        .post_form(
            INTROSPECT,
            &format!("token={}", encode(&t.str("access_token"))),
            None,
        )
        .await;
    // RFC 7662 §2.1 requires authentication; RFC 6749 §5.2: none included is invalid_client.
    r.assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    assert!(r.json.get("active").is_none(), "{:?}", r.json);
}

#[tokio::test]
async fn public_app_client_is_invalid_client() {
    let (server, _secret) = setup().await;
    let t = tokens_for(&server, "app").await;
    let r = server
        .post_form(
            INTROSPECT,
            &format!("token={}&client_id=app", encode(&t.str("access_token"))),
            None,
        )
        .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    assert!(r.json.get("active").is_none(), "{:?}", r.json);
}

#[tokio::test]
async fn confidential_app_client_is_invalid_client() {
    let (server, _secret) = setup().await;
    let (_, conf_secret) = server.client("conf", |a| a.confidential = true).await;
    let conf_secret = conf_secret.unwrap().expose().to_owned();
    let t = tokens_for(&server, "app").await;
    let body = format!("token={}", encode(&t.str("access_token")));
    // With Basic: refused, with a Basic challenge.
    let r = server
        .post_form(INTROSPECT, &body, Some(("conf", &conf_secret)))
        .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    assert!(r.json.get("active").is_none(), "{:?}", r.json);
    let challenge = r.headers.get(WWW_AUTHENTICATE).expect("WWW-Authenticate");
    assert!(challenge.to_str().unwrap().starts_with("Basic"));
    // With client_secret_post: refused too.
    let r = server
        .post_form(
            INTROSPECT,
            &format!(
                "{body}&client_id=conf&client_secret={}",
                encode(&conf_secret)
            ),
            None,
        )
        .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
}

#[tokio::test]
async fn wrong_resource_server_secret_is_invalid_client() {
    let (server, _secret) = setup().await;
    let t = tokens_for(&server, "app").await;
    let body = format!("token={}", encode(&t.str("access_token")));
    let r = server
        .post_form(INTROSPECT, &body, Some(("api", "not-the-secret")))
        .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    let challenge = r.headers.get(WWW_AUTHENTICATE).expect("WWW-Authenticate");
    assert!(challenge.to_str().unwrap().starts_with("Basic"));
    let r = server
        .post_form(
            INTROSPECT,
            &format!("{body}&client_id=api&client_secret=not-the-secret"),
            None,
        )
        .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    assert!(r.headers.get(WWW_AUTHENTICATE).is_none());
    // A resource server that sends no secret at all.
    let r = server
        .post_form(INTROSPECT, &format!("{body}&client_id=api"), None)
        .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
}

#[tokio::test]
async fn unknown_client_is_invalid_client() {
    let (server, _secret) = setup().await;
    let t = tokens_for(&server, "app").await;
    let r = server
        .post_form(
            INTROSPECT,
            &format!("token={}", encode(&t.str("access_token"))),
            Some(("nobody", "secret")),
        )
        .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
}

#[tokio::test]
async fn resource_server_may_use_client_secret_post() {
    let (server, secret) = setup().await;
    let t = tokens_for(&server, "app").await;
    let r = server
        .post_form(
            INTROSPECT,
            &format!(
                "token={}&client_id=api&client_secret={}",
                encode(&t.str("access_token")),
                encode(&secret)
            ),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(r.json["active"], true, "{:?}", r.json);
    r.assert_no_store();
}

// ---------------------------------------------------------------------------------------------
// Active tokens
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn active_access_token_is_described_by_exactly_the_documented_fields() {
    let (server, secret) = setup().await;
    let t = tokens_for(&server, "app").await;
    let access = t.str("access_token");
    let r = introspect(&server, &secret, &access).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    r.assert_no_store();
    assert_eq!(keys(&r.json), BTreeSet::from(ACTIVE_FIELDS), "{:?}", r.json);
    let alice = server.user_id("alice").await;
    assert_ne!(
        alice, "alice",
        "the subject is the user id, not the username"
    );
    assert_eq!(
        r.json,
        json!({
            "active": true,
            "scope": t.str("scope"),
            "client_id": "app",
            "username": "alice",
            "sub": alice,
            "aud": server.issuer(),
            "iss": server.issuer(),
            "exp": START + 600,
            "iat": START,
            "token_type": "Bearer",
        })
    );
    let scope: BTreeSet<&str> = r.json["scope"].as_str().unwrap().split(' ').collect();
    assert_eq!(scope, BTreeSet::from(["photos:read", "profile"]));
    // Introspection changes nothing.
    assert_eq!(server.access_status(&access).await, TokenStatus::Active);
}

#[tokio::test]
async fn audience_is_the_registered_api() {
    let (server, secret) = setup().await;
    server
        .client("photos", |a| a.audience = vec!["photos-api".into()])
        .await;
    let t = tokens_for(&server, "photos").await;
    let r = introspect(&server, &secret, &t.str("access_token")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(r.json["active"], true);
    assert_eq!(r.json["aud"], "photos-api");
    assert_eq!(r.json["client_id"], "photos");
    assert_eq!(r.json["iss"], server.issuer());
}

#[tokio::test]
async fn several_audiences_are_an_array() {
    let (server, secret) = setup().await;
    server
        .client("photos", |a| {
            a.audience = vec!["photos-api".into(), "albums-api".into()]
        })
        .await;
    let t = tokens_for(&server, "photos").await;
    let r = introspect(&server, &secret, &t.str("access_token")).await;
    assert_eq!(r.json["active"], true, "{:?}", r.json);
    let aud: BTreeSet<&str> = r.json["aud"]
        .as_array()
        .unwrap_or_else(|| panic!("aud is not an array: {:?}", r.json))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(aud, BTreeSet::from(["photos-api", "albums-api"]));
}

#[tokio::test]
async fn active_refresh_token_is_a_refresh_token() {
    let (server, secret) = setup().await;
    let t = tokens_for(&server, "app").await;
    let refresh = t.str("refresh_token");
    let r = introspect(&server, &secret, &refresh).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    r.assert_no_store();
    assert_eq!(keys(&r.json), BTreeSet::from(ACTIVE_FIELDS), "{:?}", r.json);
    assert_eq!(r.json["active"], true);
    assert_eq!(r.json["token_type"], "refresh_token");
    assert_eq!(r.json["client_id"], "app");
    assert_eq!(r.json["username"], "alice");
    assert_eq!(r.json["sub"], server.user_id("alice").await);
    assert_eq!(r.json["scope"], t.str("scope"));
    assert_eq!(r.json["iss"], server.issuer());
    assert_eq!(r.json["iat"], START);
    // The client's refresh_token_ttl (3600 s) is the idle limit.
    assert_eq!(r.json["exp"], START + 3600);
    assert_eq!(server.refresh_status(&refresh).await, TokenStatus::Active);
}

#[tokio::test]
async fn access_token_still_active_just_before_expiry() {
    let (server, secret) = setup().await;
    let t = tokens_for(&server, "app").await;
    server.clock.advance(599);
    let r = introspect(&server, &secret, &t.str("access_token")).await;
    assert_eq!(r.json["active"], true, "{:?}", r.json);
}

// ---------------------------------------------------------------------------------------------
// Inactive tokens: exactly {"active": false}
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn revoked_access_token_is_inactive() {
    let (server, secret) = setup().await;
    let t = tokens_for(&server, "app").await;
    let access = t.str("access_token");
    let r = server
        .post_form(
            "/o/oauth2/revoke",
            &format!("token={}&client_id=app", encode(&access)),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_inactive(&introspect(&server, &secret, &access).await, "revoked");
    // The refresh token was not revoked with it.
    let r = introspect(&server, &secret, &t.str("refresh_token")).await;
    assert_eq!(r.json["active"], true, "{:?}", r.json);
}

#[tokio::test]
async fn tokens_of_a_revoked_grant_are_inactive() {
    let (server, secret) = setup().await;
    let t = tokens_for(&server, "app").await;
    let (access, refresh) = (t.str("access_token"), t.str("refresh_token"));
    let r = server
        .post_form(
            "/o/oauth2/revoke",
            &format!("token={}&client_id=app", encode(&refresh)),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_inactive(&introspect(&server, &secret, &refresh).await, "refresh");
    assert_inactive(&introspect(&server, &secret, &access).await, "access");
}

#[tokio::test]
async fn expired_access_token_is_inactive() {
    let (server, secret) = setup().await;
    let t = tokens_for(&server, "app").await;
    let access = t.str("access_token");
    server.clock.advance(600);
    assert_inactive(&introspect(&server, &secret, &access).await, "at exp");
    server.clock.advance(1000);
    assert_inactive(&introspect(&server, &secret, &access).await, "past exp");
    assert_eq!(server.access_status(&access).await, TokenStatus::Expired);
}

#[tokio::test]
async fn expired_refresh_token_is_inactive() {
    let (server, secret) = setup().await;
    let t = tokens_for(&server, "app").await;
    let refresh = t.str("refresh_token");
    server.clock.advance(3601);
    assert_inactive(&introspect(&server, &secret, &refresh).await, "expired");
}

#[tokio::test]
async fn unknown_and_garbage_tokens_are_inactive() {
    let (server, secret) = setup().await;
    tokens_for(&server, "app").await;
    for token in [
        "oat_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "ort_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "garbage",
        "a.b.c",
        "%00\u{1F600} ",
    ] {
        assert_inactive(&introspect(&server, &secret, token).await, token);
    }
}

#[tokio::test]
async fn id_token_is_not_an_introspectable_token() {
    let (server, secret) = setup().await;
    server
        .client("rp", |a| a.scopes = vec!["openid".into()])
        .await;
    let code = server
        .code_for(&server.browser(), "rp", "&scope=openid")
        .await;
    let r = server.token(&exchange_body("rp", &code, VERIFIER)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_inactive(
        &introspect(&server, &secret, &r.str("id_token")).await,
        "id_token",
    );
    let i = introspect(&server, &secret, &r.str("access_token")).await;
    assert_eq!(i.json["active"], true, "{:?}", i.json);
    assert_eq!(i.json["scope"], "openid");
}

#[tokio::test]
async fn rotated_out_refresh_token_is_inactive() {
    let (server, secret) = setup().await;
    let t = tokens_for(&server, "app").await;
    let old = t.str("refresh_token");
    let r = server.token(&refresh_body("app", &old)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_inactive(&introspect(&server, &secret, &old).await, "rotated out");
    // Its successor is active, and introspecting the old one did not revoke the family.
    let r2 = introspect(&server, &secret, &r.str("refresh_token")).await;
    assert_eq!(r2.json["active"], true, "{:?}", r2.json);
    assert_eq!(
        server.refresh_status(&r.str("refresh_token")).await,
        TokenStatus::Active
    );
}

#[tokio::test]
async fn another_clients_token_is_described_to_any_resource_server() {
    // Introspection is for APIs, which check every client's tokens.
    let (server, secret) = setup().await;
    server.resource_server("api2").await;
    let t = tokens_for(&server, "app").await;
    let r = introspect(&server, &secret, &t.str("access_token")).await;
    assert_eq!(r.json["active"], true, "{:?}", r.json);
}

// ---------------------------------------------------------------------------------------------
// Request shape
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn get_is_405_with_allow_post() {
    let (server, secret) = setup().await;
    let t = tokens_for(&server, "app").await;
    let r = server
        .http()
        .get(server.url(&format!(
            "{INTROSPECT}?token={}",
            encode(&t.str("access_token"))
        )))
        .basic_auth("api", Some(&secret))
        .send()
        .await
        .unwrap();
    let r = TokenResponse::from(r).await;
    r.assert_error(StatusCode::METHOD_NOT_ALLOWED, "invalid_request");
    assert_eq!(r.headers.get(ALLOW).unwrap(), "POST");
    assert!(r.json.get("active").is_none());
}

#[tokio::test]
async fn json_body_is_invalid_request() {
    let (server, secret) = setup().await;
    let t = tokens_for(&server, "app").await;
    let r = server
        .http()
        .post(server.url(INTROSPECT))
        .basic_auth("api", Some(&secret))
        .header("content-type", "application/json")
        .body(json!({ "token": t.str("access_token") }).to_string())
        .send()
        .await
        .unwrap();
    let r = TokenResponse::from(r).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    assert!(r.json.get("active").is_none());
}

#[tokio::test]
async fn missing_token_is_invalid_request() {
    let (server, secret) = setup().await;
    let r = server
        .post_form(
            INTROSPECT,
            "token_type_hint=access_token",
            Some(("api", &secret)),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test]
async fn repeated_token_is_invalid_request() {
    let (server, secret) = setup().await;
    let t = tokens_for(&server, "app").await;
    let a = encode(&t.str("access_token"));
    let r = server
        .post_form(
            INTROSPECT,
            &format!("token={a}&token={a}"),
            Some(("api", &secret)),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test]
async fn hint_does_not_change_the_answer() {
    let (server, secret) = setup().await;
    let t = tokens_for(&server, "app").await;
    let r = server
        .post_form(
            INTROSPECT,
            &format!(
                "token={}&token_type_hint=access_token",
                encode(&t.str("refresh_token"))
            ),
            Some(("api", &secret)),
        )
        .await;
    assert_eq!(r.json["active"], true, "{:?}", r.json);
    assert_eq!(r.json["token_type"], "refresh_token");
}
