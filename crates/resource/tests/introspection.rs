//! Validation by token introspection (RFC 7662) through the axum extractor, against a fake
//! introspection endpoint.
mod common;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::*;
use oauthd_resource::{IntrospectionConfig, ManualClock, Validator};
use serde_json::{Value, json};

const TOKEN: &str = "oat_live-token";

struct Setup {
    fake: FakeAs,
    clock: Arc<ManualClock>,
    app: Router,
}

async fn setup() -> Setup {
    setup_with(|c| c).await
}

async fn setup_with(config: impl FnOnce(IntrospectionConfig) -> IntrospectionConfig) -> Setup {
    let fake = FakeAs::start().await;
    let clock = clock();
    let base = IntrospectionConfig {
        audience: Some(AUDIENCE.into()),
        issuer: Some(ISSUER.into()),
        ..IntrospectionConfig::new(fake.url("/introspect"), "photos api", "s:e/c%")
    };
    let validator = Validator::introspection(config(base))
        .unwrap()
        .with_clock(clock.clone());
    let app = api(Arc::new(validator));
    Setup { fake, clock, app }
}

/// What oauthd answers for a live access token.
fn active(scope: &str) -> Value {
    json!({
        "active": true,
        "scope": scope,
        "client_id": "app",
        "username": "alice@example.com",
        "sub": "alice",
        "aud": AUDIENCE,
        "iss": ISSUER,
        "exp": NOW + 600,
        "iat": NOW,
        "token_type": "Bearer",
    })
}

fn active_with(name: &str, value: Value) -> Value {
    let mut a = active("photos:read");
    if value.is_null() {
        a.as_object_mut().unwrap().remove(name);
    } else {
        a[name] = value;
    }
    a
}

#[tokio::test]
async fn an_active_token_is_accepted() {
    let s = setup().await;
    s.fake.answer(TOKEN, active("photos:read profile"));
    let me = get_with(&s.app, "/me", TOKEN).await;
    assert_eq!(me.status, StatusCode::OK, "{:?}", me.body);
    assert_eq!(
        me.body,
        json!({"sub": "alice", "client_id": "app", "scope": "photos:read profile",
               "username": "alice@example.com", "exp": NOW + 600})
    );
    // RFC 6749 §2.3.1: client id and secret are form-urlencoded, then Basic.
    assert_eq!(
        s.fake.state.last_authorization.lock().unwrap().as_deref(),
        Some(format!("Basic {}", STANDARD.encode("photos+api:s%3Ae%2Fc%25")).as_str())
    );
    let form = s.fake.state.last_form.lock().unwrap().clone().unwrap();
    assert_eq!(form["token"], TOKEN);
    assert_eq!(form["token_type_hint"], "access_token");

    let photos = get_with(&s.app, "/photos", TOKEN).await;
    assert_eq!(photos.status, StatusCode::OK);
    assert_eq!(photos.body, json!({"photos": [], "user": "alice"}));

    // An audience list containing ours, and a token type in another case, are fine.
    let other = "oat_other";
    let mut answer = active_with("aud", json!(["x", AUDIENCE]));
    answer["token_type"] = json!("bearer");
    s.fake.answer(other, answer);
    assert_eq!(get_with(&s.app, "/me", other).await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_inactive_token_is_invalid() {
    let s = setup().await;
    s.fake.answer(TOKEN, json!({"active": false}));
    assert_invalid(
        &get_with(&s.app, "/me", TOKEN).await,
        "the token is invalid, expired or revoked",
    );
    // Unknown to the fake: also {"active":false}.
    assert_invalid(
        &get_with(&s.app, "/me", "oat_unknown").await,
        "the token is invalid, expired or revoked",
    );
    assert_eq!(s.fake.introspect_calls(), 2);
}

#[tokio::test]
async fn answers_are_cached_for_the_ttl() {
    let s = setup().await;
    s.fake.answer(TOKEN, active("photos:read"));
    assert_eq!(get_with(&s.app, "/me", TOKEN).await.status, StatusCode::OK);
    assert_eq!(
        get_with(&s.app, "/photos", TOKEN).await.status,
        StatusCode::OK
    );
    assert_eq!(s.fake.introspect_calls(), 1);
    // Revoked at the server: still accepted until the cached answer expires (the price
    // of caching, bounded by the TTL).
    s.fake.answer(TOKEN, json!({"active": false}));
    s.clock.advance(29);
    assert_eq!(get_with(&s.app, "/me", TOKEN).await.status, StatusCode::OK);
    assert_eq!(s.fake.introspect_calls(), 1);
    s.clock.advance(1);
    assert_invalid(
        &get_with(&s.app, "/me", TOKEN).await,
        "the token is invalid, expired or revoked",
    );
    assert_eq!(s.fake.introspect_calls(), 2);
}

#[tokio::test]
async fn the_cache_never_outlives_the_token() {
    let s = setup().await;
    s.fake.answer(TOKEN, active_with("exp", json!(NOW + 10)));
    assert_eq!(get_with(&s.app, "/me", TOKEN).await.status, StatusCode::OK);
    s.clock.advance(9);
    assert_eq!(get_with(&s.app, "/me", TOKEN).await.status, StatusCode::OK);
    assert_eq!(s.fake.introspect_calls(), 1);
    s.fake.answer(TOKEN, json!({"active": false}));
    s.clock.advance(1);
    assert_eq!(
        get_with(&s.app, "/me", TOKEN).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(s.fake.introspect_calls(), 2);
}

#[tokio::test]
async fn refusals_are_cached_only_briefly() {
    let s = setup().await;
    assert_eq!(
        get_with(&s.app, "/me", TOKEN).await.status,
        StatusCode::UNAUTHORIZED
    );
    s.clock.advance(4);
    assert_eq!(
        get_with(&s.app, "/me", TOKEN).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(s.fake.introspect_calls(), 1);
    s.fake.answer(TOKEN, active("photos:read"));
    s.clock.advance(1);
    assert_eq!(get_with(&s.app, "/me", TOKEN).await.status, StatusCode::OK);
    assert_eq!(s.fake.introspect_calls(), 2);
}

#[tokio::test]
async fn a_zero_capacity_cache_asks_every_time() {
    let s = setup_with(|c| IntrospectionConfig {
        cache_capacity: 0,
        ..c
    })
    .await;
    s.fake.answer(TOKEN, active("photos:read"));
    for _ in 0..3 {
        assert_eq!(get_with(&s.app, "/me", TOKEN).await.status, StatusCode::OK);
    }
    assert_eq!(s.fake.introspect_calls(), 3);
}

#[tokio::test]
async fn a_refresh_token_is_not_a_bearer_token() {
    let s = setup().await;
    s.fake.answer(
        "ort_refresh",
        active_with("token_type", json!("refresh_token")),
    );
    assert_invalid(
        &get_with(&s.app, "/me", "ort_refresh").await,
        "the token is not a bearer access token",
    );
    s.fake
        .answer("oat_untyped", active_with("token_type", Value::Null));
    assert_invalid(
        &get_with(&s.app, "/me", "oat_untyped").await,
        "the token is not a bearer access token",
    );
}

#[tokio::test]
async fn audience_issuer_expiry_and_required_members_are_checked() {
    let s = setup().await;
    let cases = [
        (
            "aud",
            json!("other-api"),
            "the token is not meant for this audience",
        ),
        (
            "aud",
            json!(["other-api"]),
            "the token is not meant for this audience",
        ),
        (
            "aud",
            Value::Null,
            "the token is not meant for this audience",
        ),
        (
            "iss",
            json!("http://evil.test"),
            "the token was issued by another issuer",
        ),
        ("exp", json!(NOW - 30), "the token has expired"),
        ("exp", Value::Null, "the token has no expiry"),
        ("nbf", json!(NOW + 31), "the token is not valid yet"),
        ("sub", Value::Null, "the token has no subject"),
        ("client_id", Value::Null, "the token has no client_id"),
        ("scope", json!("a\\b"), "the token's scope is malformed"),
    ];
    for (i, (name, value, description)) in cases.into_iter().enumerate() {
        let token = format!("oat_case-{i}");
        s.fake.answer(&token, active_with(name, value));
        assert_invalid(&get_with(&s.app, "/me", &token).await, description);
    }
    // An answer without iss is fine: RFC 7662 makes it optional.
    s.fake.answer("oat_no-iss", active_with("iss", Value::Null));
    assert_eq!(
        get_with(&s.app, "/me", "oat_no-iss").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn missing_scopes_are_forbidden_with_the_needed_scope() {
    let s = setup().await;
    s.fake.answer(TOKEN, active("profile"));
    let reply = get_with(&s.app, "/photos", TOKEN).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.challenge.as_deref(),
        Some("Bearer realm=\"photos-api\", error=\"insufficient_scope\", scope=\"photos:read\"")
    );
    let reply = get_with(&s.app, "/albums", TOKEN).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(s.fake.introspect_calls(), 1);
}

#[tokio::test]
async fn server_failures_are_503_and_never_cached() {
    let s = setup().await;
    s.fake.answer(TOKEN, active("photos:read"));
    *s.fake.state.introspect_status.lock().unwrap() = Some(StatusCode::INTERNAL_SERVER_ERROR);
    for _ in 0..2 {
        let reply = get_with(&s.app, "/me", TOKEN).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(reply.challenge, None);
        assert_eq!(reply.body["error"], "temporarily_unavailable");
    }
    assert_eq!(s.fake.introspect_calls(), 2);
    // Our own credentials refused: the server's configuration, not the client's fault.
    *s.fake.state.introspect_status.lock().unwrap() = Some(StatusCode::UNAUTHORIZED);
    assert_eq!(
        get_with(&s.app, "/me", TOKEN).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // An answer without the required `active` member.
    *s.fake.state.introspect_status.lock().unwrap() = None;
    s.fake.answer(TOKEN, json!({"scope": "photos:read"}));
    assert_eq!(
        get_with(&s.app, "/me", TOKEN).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // Recovered: answered at once, nothing cached from the failures.
    s.fake.answer(TOKEN, active("photos:read"));
    assert_eq!(get_with(&s.app, "/me", TOKEN).await.status, StatusCode::OK);
    assert_eq!(s.fake.introspect_calls(), 5);
}

#[tokio::test]
async fn an_unreachable_endpoint_is_503() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/introspect", listener.local_addr().unwrap());
    drop(listener);
    let validator = Validator::introspection(IntrospectionConfig::new(dead, "rs", "secret"))
        .unwrap()
        .with_clock(clock());
    let app = api(Arc::new(validator));
    let reply = get_with(&app, "/me", TOKEN).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.challenge, None);
    assert_eq!(reply.body["error"], "temporarily_unavailable");
    // No token at all is still the client's problem.
    let reply = call(&app, "/me", None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.challenge.as_deref(), Some("Bearer realm=\"rs\""));
}

#[test]
fn configuration() {
    let config = IntrospectionConfig::new("http://as.test/introspect", "rs", "hunter2");
    assert!(!format!("{config:?}").contains("hunter2"));
    assert!(Validator::introspection(config).is_ok());
    assert!(Validator::introspection(IntrospectionConfig::new("as.test", "rs", "s")).is_err());
    assert!(
        Validator::introspection(IntrospectionConfig::new("http://as.test/i", "", "s")).is_err()
    );
}
