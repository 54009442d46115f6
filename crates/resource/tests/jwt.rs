//! Local JWT validation (RFC 9068) through the axum extractor, against a fake JWKS.
mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use oauthd_core::jose::{JwsAlg, SigningKey};
use oauthd_resource::{JwtConfig, ManualClock, Validator};
use serde_json::json;

struct Setup {
    fake: FakeAs,
    clock: Arc<ManualClock>,
    app: Router,
    key: SigningKey,
}

async fn setup() -> Setup {
    setup_with(|c| c).await
}

async fn setup_with(config: impl FnOnce(JwtConfig) -> JwtConfig) -> Setup {
    let fake = FakeAs::start().await;
    let key = key("es-1", JwsAlg::ES256);
    fake.publish(&key);
    let clock = clock();
    let validator = Validator::jwt(config(JwtConfig::new(ISSUER, AUDIENCE, fake.url("/jwks"))))
        .unwrap()
        .with_clock(clock.clone());
    let app = api(Arc::new(validator));
    Setup {
        fake,
        clock,
        app,
        key,
    }
}

fn sign(key: &SigningKey, claims: &serde_json::Value) -> String {
    key.sign_jwt("at+jwt", claims).unwrap()
}

#[tokio::test]
async fn valid_tokens_of_every_algorithm_are_accepted() {
    let s = setup().await;
    let others = [key("ed-1", JwsAlg::EdDSA), key("rs-1", JwsAlg::RS256)];
    for k in &others {
        s.fake.publish(k);
    }
    for k in std::iter::once(&s.key).chain(&others) {
        let token = sign(k, &claims("photos:read profile"));
        let me = get_with(&s.app, "/me", &token).await;
        assert_eq!(me.status, StatusCode::OK, "{:?} {:?}", k.alg, me.body);
        assert_eq!(
            me.body,
            json!({"sub": "alice", "client_id": "app", "scope": "photos:read profile",
                   "username": null, "exp": NOW + 600})
        );
        let photos = get_with(&s.app, "/photos", &token).await;
        assert_eq!(photos.status, StatusCode::OK);
        assert_eq!(photos.body, json!({"photos": [], "user": "alice"}));
        assert_eq!(photos.challenge, None);
    }
    // Fetched once, lazily, then cached.
    assert_eq!(s.fake.jwks_calls(), 1);
}

#[tokio::test]
async fn no_bearer_credentials_get_a_bare_challenge() {
    let s = setup().await;
    for authorization in [None, Some("Basic YXBwOnNlY3JldA=="), Some("Digest x")] {
        let reply = call(&s.app, "/me", authorization).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        // RFC 6750 §3.1: no error attribute when no credentials were sent.
        assert_eq!(
            reply.challenge.as_deref(),
            Some("Bearer realm=\"photos-api\"")
        );
        assert_eq!(reply.body["error"], "unauthorized");
    }
    assert_eq!(s.fake.jwks_calls(), 0);
}

#[tokio::test]
async fn malformed_headers_and_garbage_tokens_are_invalid() {
    let s = setup().await;
    for header in [
        "Bearer",
        "Bearer ",
        "Bearer a b",
        "Bearer a\"b",
        "Bearer ====",
    ] {
        let reply = call(&s.app, "/me", Some(header)).await;
        assert_invalid(&reply, "the Authorization header is malformed");
    }
    for garbage in ["garbage", "a.b.c", "a.b", "eyJhbGciOiJFUzI1NiJ9.e30.AAAA"] {
        let reply = get_with(&s.app, "/me", garbage).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{garbage}");
        assert!(
            reply
                .challenge
                .unwrap()
                .starts_with("Bearer realm=\"photos-api\", error=\"invalid_token\""),
            "{garbage}"
        );
    }
    assert_invalid(
        &get_with(&s.app, "/me", "garbage").await,
        "the token is not a well-formed JWT",
    );
}

#[tokio::test]
async fn tampered_tokens_are_refused() {
    let s = setup().await;
    let token = sign(&s.key, &claims("photos:read"));
    let parts: Vec<&str> = token.split('.').collect();
    // Claims changed after signing.
    let mut forged_claims = claims("photos:read photos:write");
    forged_claims["sub"] = json!("admin");
    let forged = URL_SAFE_NO_PAD.encode(forged_claims.to_string());
    let reply = get_with(
        &s.app,
        "/me",
        &format!("{}.{forged}.{}", parts[0], parts[2]),
    )
    .await;
    assert_invalid(&reply, "the token's signature is invalid");
    // The signature altered.
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[10] ^= 1;
    let altered = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(sig));
    assert_invalid(
        &get_with(&s.app, "/me", &altered).await,
        "the token's signature is invalid",
    );
    // Signed by another key claiming the same kid.
    let impostor = key("es-1", JwsAlg::ES256);
    assert_invalid(
        &get_with(&s.app, "/me", &sign(&impostor, &claims("photos:read"))).await,
        "the token's signature is invalid",
    );
    // The untouched token still works.
    assert_eq!(get_with(&s.app, "/me", &token).await.status, StatusCode::OK);
}

#[tokio::test]
async fn alg_none_and_algorithm_confusion_are_refused() {
    let s = setup().await;
    let payload = URL_SAFE_NO_PAD.encode(claims("photos:read").to_string());
    let none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt","kid":"es-1"}"#);
    // Unsigned (RFC 7519 §6.1), with an empty or a made-up signature.
    for sig in ["", "AAAA"] {
        assert_invalid(
            &get_with(&s.app, "/me", &format!("{none}.{payload}.{sig}")).await,
            "the token's algorithm is not accepted",
        );
    }
    // The header names another algorithm than the key's (RFC 8725 §2.1).
    let token = sign(&s.key, &claims("photos:read"));
    let sig = token.rsplit('.').next().unwrap();
    let rs = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"at+jwt","kid":"es-1"}"#);
    assert_invalid(
        &get_with(&s.app, "/me", &format!("{rs}.{payload}.{sig}")).await,
        "the token's algorithm is not accepted",
    );
}

#[tokio::test]
async fn wrong_typ_is_refused() {
    let s = setup().await;
    // An ID token (typ JWT) is not an access token (RFC 9068 §4).
    for typ in ["JWT", "jwt", ""] {
        let token = s.key.sign_jwt(typ, &claims("photos:read")).unwrap();
        assert_invalid(
            &get_with(&s.app, "/me", &token).await,
            "the token has the wrong type",
        );
    }
    let token = s
        .key
        .sign_jwt("application/at+jwt", &claims("photos:read"))
        .unwrap();
    assert_eq!(get_with(&s.app, "/me", &token).await.status, StatusCode::OK);
}

#[tokio::test]
async fn expiry_honours_the_leeway_and_not_before() {
    let s = setup().await;
    let token = sign(&s.key, &claims("photos:read"));
    // exp = NOW + 600, leeway 30 s.
    s.clock.set(NOW + 629);
    assert_eq!(get_with(&s.app, "/me", &token).await.status, StatusCode::OK);
    s.clock.set(NOW + 630);
    assert_invalid(
        &get_with(&s.app, "/me", &token).await,
        "the token has expired",
    );
    s.clock.set(NOW);
    let mut future = claims("photos:read");
    future["nbf"] = json!(NOW + 31);
    assert_invalid(
        &get_with(&s.app, "/me", &sign(&s.key, &future)).await,
        "the token is not valid yet",
    );
}

#[tokio::test]
async fn a_smaller_leeway_is_honoured() {
    let s = setup_with(|c| JwtConfig {
        leeway: Duration::from_secs(0),
        ..c
    })
    .await;
    let token = sign(&s.key, &claims("photos:read"));
    s.clock.set(NOW + 599);
    assert_eq!(get_with(&s.app, "/me", &token).await.status, StatusCode::OK);
    s.clock.set(NOW + 600);
    assert_invalid(
        &get_with(&s.app, "/me", &token).await,
        "the token has expired",
    );
}

#[tokio::test]
async fn audience_issuer_and_required_claims_are_checked() {
    let s = setup().await;
    let with = |name: &str, value: serde_json::Value| {
        let mut c = claims("photos:read");
        c[name] = value;
        sign(&s.key, &c)
    };
    assert_invalid(
        &get_with(&s.app, "/me", &with("aud", json!("other-api"))).await,
        "the token is not meant for this audience",
    );
    assert_invalid(
        &get_with(&s.app, "/me", &with("aud", json!(["other-api"]))).await,
        "the token is not meant for this audience",
    );
    assert_eq!(
        get_with(&s.app, "/me", &with("aud", json!(["other-api", AUDIENCE])))
            .await
            .status,
        StatusCode::OK
    );
    assert_invalid(
        &get_with(&s.app, "/me", &with("iss", json!("http://evil.test"))).await,
        "the token was issued by another issuer",
    );
    assert_invalid(
        &get_with(&s.app, "/me", &with("client_id", json!(null))).await,
        "the token has no client_id",
    );
    assert_invalid(
        &get_with(&s.app, "/me", &with("sub", json!(42))).await,
        "the token has no sub",
    );
    assert_invalid(
        &get_with(&s.app, "/me", &with("scope", json!("caf\u{e9}"))).await,
        "the token's scope is malformed",
    );
    let mut no_scope = claims("");
    no_scope.as_object_mut().unwrap().remove("scope");
    let reply = get_with(&s.app, "/me", &sign(&s.key, &no_scope)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["scope"], "");
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_jwks_at_most_once_per_window() {
    let s = setup().await;
    let token = sign(&s.key, &claims("photos:read"));
    assert_eq!(get_with(&s.app, "/me", &token).await.status, StatusCode::OK);
    assert_eq!(s.fake.jwks_calls(), 1);

    // Key rotation: the server starts signing with a new key and publishes it.
    s.clock.advance(10);
    let rotated = key("es-2", JwsAlg::ES256);
    s.fake.publish(&rotated);
    let new_token = sign(&rotated, &claims("photos:read"));
    assert_eq!(
        get_with(&s.app, "/me", &new_token).await.status,
        StatusCode::OK
    );
    assert_eq!(s.fake.jwks_calls(), 2, "exactly one refetch");
    assert_eq!(
        get_with(&s.app, "/me", &new_token).await.status,
        StatusCode::OK
    );
    assert_eq!(get_with(&s.app, "/me", &token).await.status, StatusCode::OK);
    assert_eq!(s.fake.jwks_calls(), 2, "known keys need no fetch");

    // Made-up kids within the window do not reach the server.
    for kid in ["garbage-1", "garbage-2", "garbage-3"] {
        let unknown = sign(&key(kid, JwsAlg::ES256), &claims("photos:read"));
        assert_invalid(
            &get_with(&s.app, "/me", &unknown).await,
            "the token was not signed by a known key",
        );
    }
    assert_eq!(s.fake.jwks_calls(), 2, "rate-limited");
    s.clock.advance(9);
    let unknown = sign(&key("garbage-4", JwsAlg::ES256), &claims("photos:read"));
    assert_invalid(
        &get_with(&s.app, "/me", &unknown).await,
        "the token was not signed by a known key",
    );
    assert_eq!(s.fake.jwks_calls(), 2, "still within the 10 s window");
    s.clock.advance(1);
    assert_invalid(
        &get_with(&s.app, "/me", &unknown).await,
        "the token was not signed by a known key",
    );
    assert_eq!(s.fake.jwks_calls(), 3, "the window has passed");

    // A key published just after a refetch is picked up once the window has passed.
    let late = key("es-3", JwsAlg::EdDSA);
    s.fake.publish(&late);
    let late_token = sign(&late, &claims("photos:read"));
    assert_eq!(
        get_with(&s.app, "/me", &late_token).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(s.fake.jwks_calls(), 3);
    s.clock.advance(10);
    assert_eq!(
        get_with(&s.app, "/me", &late_token).await.status,
        StatusCode::OK
    );
    assert_eq!(s.fake.jwks_calls(), 4);
}

#[tokio::test]
async fn a_withdrawn_key_stops_being_trusted_once_the_keys_are_old() {
    let s = setup_with(|c| JwtConfig {
        max_key_age: Duration::from_secs(300),
        ..c
    })
    .await;
    let mut long_lived = claims("photos:read");
    long_lived["exp"] = json!(NOW + 3600);
    let token = sign(&s.key, &long_lived);
    assert_eq!(get_with(&s.app, "/me", &token).await.status, StatusCode::OK);
    s.fake.state.jwks.lock().unwrap().clear();
    s.clock.advance(299);
    assert_eq!(get_with(&s.app, "/me", &token).await.status, StatusCode::OK);
    assert_eq!(s.fake.jwks_calls(), 1);
    s.clock.advance(1);
    assert_invalid(
        &get_with(&s.app, "/me", &token).await,
        "the token was not signed by a known key",
    );
    assert_eq!(s.fake.jwks_calls(), 2);
}

#[tokio::test]
async fn stale_keys_stay_in_use_when_the_refresh_fails() {
    let s = setup_with(|c| JwtConfig {
        max_key_age: Duration::from_secs(300),
        ..c
    })
    .await;
    let mut long_lived = claims("photos:read");
    long_lived["exp"] = json!(NOW + 3600);
    let token = sign(&s.key, &long_lived);
    assert_eq!(get_with(&s.app, "/me", &token).await.status, StatusCode::OK);
    *s.fake.state.jwks_status.lock().unwrap() = Some(StatusCode::INTERNAL_SERVER_ERROR);
    s.clock.advance(300);
    assert_eq!(get_with(&s.app, "/me", &token).await.status, StatusCode::OK);
    assert_eq!(s.fake.jwks_calls(), 2);
}

#[tokio::test]
async fn missing_scopes_are_forbidden_with_the_needed_scope() {
    let s = setup().await;
    let token = sign(&s.key, &claims("profile"));
    assert_eq!(get_with(&s.app, "/me", &token).await.status, StatusCode::OK);
    let reply = get_with(&s.app, "/photos", &token).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.challenge.as_deref(),
        Some("Bearer realm=\"photos-api\", error=\"insufficient_scope\", scope=\"photos:read\"")
    );
    assert_eq!(reply.body["error"], "insufficient_scope");

    // The same through the RequireScope layer.
    let reply = get_with(&s.app, "/albums", &token).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.challenge.as_deref(),
        Some("Bearer realm=\"photos-api\", error=\"insufficient_scope\", scope=\"albums:read\"")
    );
    let reply = call(&s.app, "/albums", None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.challenge.as_deref(),
        Some("Bearer realm=\"photos-api\"")
    );
    assert_invalid(
        &get_with(&s.app, "/albums", "garbage").await,
        "the token is not a well-formed JWT",
    );
    let albums = sign(&s.key, &claims("albums:read"));
    let reply = get_with(&s.app, "/albums", &albums).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, json!({"user": "alice"}));
}

#[tokio::test]
async fn an_unreachable_jwks_is_503_and_not_hammered() {
    let s = setup().await;
    *s.fake.state.jwks_status.lock().unwrap() = Some(StatusCode::INTERNAL_SERVER_ERROR);
    let token = sign(&s.key, &claims("photos:read"));
    for _ in 0..3 {
        let reply = get_with(&s.app, "/me", &token).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(reply.challenge, None);
        assert_eq!(reply.body["error"], "temporarily_unavailable");
    }
    assert_eq!(s.fake.jwks_calls(), 1);
    *s.fake.state.jwks_status.lock().unwrap() = None;
    s.clock.advance(10);
    assert_eq!(get_with(&s.app, "/me", &token).await.status, StatusCode::OK);
    assert_eq!(s.fake.jwks_calls(), 2);

    // Nothing listening at all.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/jwks", listener.local_addr().unwrap());
    drop(listener);
    let validator = Validator::jwt(JwtConfig::new(ISSUER, AUDIENCE, dead))
        .unwrap()
        .with_clock(clock());
    let app = api(Arc::new(validator));
    let reply = get_with(&app, "/me", &token).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.challenge, None);
}

#[tokio::test]
async fn the_realm_can_be_set() {
    let s = setup().await;
    let validator = Validator::jwt(JwtConfig::new(ISSUER, AUDIENCE, s.fake.url("/jwks")))
        .unwrap()
        .with_clock(s.clock.clone())
        .with_realm("photos");
    let app = api(Arc::new(validator));
    let reply = call(&app, "/me", None).await;
    assert_eq!(reply.challenge.as_deref(), Some("Bearer realm=\"photos\""));
}

#[test]
fn bad_configuration_is_refused() {
    assert!(Validator::jwt(JwtConfig::new(ISSUER, AUDIENCE, "not a url")).is_err());
    assert!(Validator::jwt(JwtConfig::new(ISSUER, AUDIENCE, "ftp://as.test/jwks")).is_err());
    assert!(Validator::jwt(JwtConfig::new(ISSUER, "", "http://as.test/jwks")).is_err());
    assert!(Validator::jwt(JwtConfig::new("", AUDIENCE, "http://as.test/jwks")).is_err());
}
