//! RFC 9068 JWT access tokens and the JWKS that verifies them (RFC 7517): header, claims and
//! signature for every algorithm, the published keys, and that the store stays the source of
//! truth for revocation and tampering.
use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE};
use serde_json::json;

use oauthd::clock::Clock;
use oauthd_core::form::encode;
use oauthd_core::jose::{JwkSet, JwsAlg, JwtError, validate_claims, verify_jwt};
use oauthd_store::TokenStatus;

use crate::common::*;

const TTL: i64 = 900;

/// A server with alice and the public client `jwtapp` issuing JWT access tokens with `alg`.
async fn setup(alg: JwsAlg, audience: &[&str]) -> TestServer {
    let server = TestServer::start().await;
    server.user("alice").await;
    server
        .client("jwtapp", |a| {
            a.access_token = "jwt".into();
            a.access_token_alg = alg.as_str().into();
            a.access_token_ttl = TTL;
            a.audience = audience.iter().map(|s| s.to_string()).collect();
        })
        .await;
    server
}

/// A token response for `jwtapp` with the scope `photos:read profile`.
async fn jwt_tokens(server: &TestServer) -> TokenResponse {
    let code = server
        .code_for(&server.browser(), "jwtapp", "&scope=photos:read%20profile")
        .await;
    let r = server
        .token(&exchange_body("jwtapp", &code, VERIFIER))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    r.assert_no_store();
    r
}

/// The decoded JOSE header of a compact JWS.
fn header_of(token: &str) -> serde_json::Value {
    let h = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap()
}

/// The same token with one character of its payload changed (still valid base64url).
fn tamper_payload(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    let mut payload: Vec<char> = parts[1].chars().collect();
    let i = payload.len() / 2;
    payload[i] = if payload[i] == 'A' { 'B' } else { 'A' };
    let payload: String = payload.into_iter().collect();
    assert_ne!(payload, parts[1]);
    format!("{}.{payload}.{}", parts[0], parts[2])
}

async fn introspect(server: &TestServer, secret: &str, token: &str) -> TokenResponse {
    server
        .post_form(
            "/o/oauth2/introspect",
            &format!("token={}", encode(token)),
            Some(("api", secret)),
        )
        .await
}

/// Everything RFC 9068 §2 says about a JWT access token, checked against the JWKS.
async fn check_access_token(alg: JwsAlg) {
    let server = setup(alg, &[]).await;
    let r = jwt_tokens(&server).await;
    assert_eq!(r.json["token_type"], "Bearer");
    assert_eq!(r.json["expires_in"], TTL);
    let token = r.str("access_token");
    assert_eq!(token.split('.').count(), 3, "not a compact JWS: {token}");

    let header = header_of(&token);
    assert_eq!(header["typ"], "at+jwt", "{header}");
    assert_eq!(header["alg"], alg.as_str(), "{header}");
    let kid = header["kid"].as_str().expect("kid").to_owned();
    let jwks = server.jwks().await;
    let key = jwks
        .keys
        .iter()
        .find(|k| k.kid == kid)
        .unwrap_or_else(|| panic!("kid {kid} not in the JWKS {jwks:?}"));
    assert_eq!(key.alg, alg.as_str());

    let claims = verify_jwt(&token, &jwks.keys, "at+jwt")
        .unwrap_or_else(|e| panic!("{alg:?}: {e} for {token}"));
    let issuer = server.issuer();
    assert_eq!(
        validate_claims(&claims, server.clock.now(), issuer, issuer, 0),
        Ok(())
    );
    // An access token is not an ID token: the other media type is refused.
    assert_eq!(
        verify_jwt(&token, &jwks.keys, "JWT"),
        Err(JwtError::WrongType)
    );

    assert_eq!(claims["iss"], issuer);
    assert_eq!(claims["sub"], server.user_id("alice").await);
    assert_eq!(claims["aud"], issuer, "no registered audience: the issuer");
    assert_eq!(claims["client_id"], "jwtapp");
    assert_eq!(claims["iat"], START);
    assert_eq!(claims["exp"], START + TTL);
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, TTL);
    assert_eq!(claims["auth_time"], START);
    assert!(
        claims["jti"].as_str().is_some_and(|j| !j.is_empty()),
        "{claims}"
    );
    assert_eq!(claims["scope"], r.str("scope"));
    let scope: BTreeSet<&str> = claims["scope"].as_str().unwrap().split(' ').collect();
    assert_eq!(scope, BTreeSet::from(["photos:read", "profile"]));
    for private in ["username", "email", "name"] {
        assert!(claims.get(private).is_none(), "{private} in {claims}");
    }
    // The store knows it like any other access token.
    assert_eq!(server.access_status(&token).await, TokenStatus::Active);
    // And the refresh token stays opaque.
    assert!(r.str("refresh_token").starts_with("ort_"));
}

#[tokio::test]
async fn es256_access_token_is_a_verifiable_at_jwt() {
    check_access_token(JwsAlg::ES256).await;
}

#[tokio::test]
async fn eddsa_access_token_is_a_verifiable_at_jwt() {
    check_access_token(JwsAlg::EdDSA).await;
}

#[tokio::test]
async fn rs256_access_token_is_a_verifiable_at_jwt() {
    check_access_token(JwsAlg::RS256).await;
}

#[tokio::test]
async fn audience_claim_is_the_registered_api() {
    let server = setup(JwsAlg::ES256, &["photos-api"]).await;
    let token = jwt_tokens(&server).await.str("access_token");
    let jwks = server.jwks().await;
    let claims = verify_jwt(&token, &jwks.keys, "at+jwt").unwrap();
    assert_eq!(claims["aud"], "photos-api");
    let now = server.clock.now();
    assert_eq!(
        validate_claims(&claims, now, server.issuer(), "photos-api", 0),
        Ok(())
    );
    assert_eq!(
        validate_claims(&claims, now, server.issuer(), server.issuer(), 0),
        Err(JwtError::WrongAudience)
    );
}

#[tokio::test]
async fn every_token_has_its_own_jti() {
    let server = setup(JwsAlg::EdDSA, &[]).await;
    let r = jwt_tokens(&server).await;
    let jwks = server.jwks().await;
    let first = verify_jwt(&r.str("access_token"), &jwks.keys, "at+jwt").unwrap();
    server.clock.advance(10);
    let r2 = server
        .token(&refresh_body("jwtapp", &r.str("refresh_token")))
        .await;
    assert_eq!(r2.status, StatusCode::OK, "{:?}", r2.json);
    let second = verify_jwt(&r2.str("access_token"), &jwks.keys, "at+jwt").unwrap();
    assert_ne!(first["jti"], second["jti"]);
    assert_eq!(second["iat"], START + 10);
    assert_eq!(second["exp"], START + 10 + TTL);
    assert_eq!(second["scope"], first["scope"]);
    assert_eq!(second["sub"], first["sub"]);
}

#[tokio::test]
async fn refreshed_jwt_keeps_the_original_auth_time() {
    // RFC 9068 §2.2.1 / OIDC Core §2: auth_time is when the user authenticated, which a
    // refresh does not change; it must never become 0 (1970).
    let server = setup(JwsAlg::ES256, &[]).await;
    let r = jwt_tokens(&server).await;
    server.clock.advance(100);
    let r2 = server
        .token(&refresh_body("jwtapp", &r.str("refresh_token")))
        .await;
    assert_eq!(r2.status, StatusCode::OK, "{:?}", r2.json);
    let jwks = server.jwks().await;
    let claims = verify_jwt(&r2.str("access_token"), &jwks.keys, "at+jwt").unwrap();
    assert_eq!(claims["iat"], START + 100);
    assert_eq!(claims["auth_time"], START, "{claims}");
}

#[tokio::test]
async fn token_without_scope_has_no_scope_claim() {
    let server = setup(JwsAlg::ES256, &[]).await;
    let code = server.code_for(&server.browser(), "jwtapp", "").await;
    let r = server
        .token(&exchange_body("jwtapp", &code, VERIFIER))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    let jwks = server.jwks().await;
    let claims = verify_jwt(&r.str("access_token"), &jwks.keys, "at+jwt").unwrap();
    assert!(claims.get("scope").is_none(), "{claims}");
    assert_eq!(claims["client_id"], "jwtapp");
}

// ---------------------------------------------------------------------------------------------
// The JWKS
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn jwks_publishes_one_public_key_per_algorithm() {
    let server = TestServer::start().await;
    let r = server
        .http()
        .get(server.url("/o/oauth2/jwks"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cache = r
        .headers()
        .get(CACHE_CONTROL)
        .expect("Cache-Control")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cache.contains("max-age="), "{cache}");
    assert!(!cache.contains("no-store"), "{cache}");
    let content_type = r.headers().get(CONTENT_TYPE).unwrap().to_str().unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let raw: serde_json::Value = r.json().await.unwrap();
    let keys = raw["keys"].as_array().expect("keys array");
    assert_eq!(keys.len(), 3, "{raw}");
    for key in keys {
        // No private part of any key type (RFC 7518 §6.2.2, §6.3.2, RFC 8037 §2).
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert!(key.get(private).is_none(), "{private} published in {key}");
        }
        assert_eq!(key["use"], "sig", "{key}");
        assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()), "{key}");
    }
    let set: JwkSet = serde_json::from_value(raw.clone()).unwrap();
    for alg in JwsAlg::ALL {
        let of_alg: Vec<_> = set.keys.iter().filter(|k| k.alg == alg.as_str()).collect();
        assert_eq!(of_alg.len(), 1, "{alg:?}: {raw}");
        let expected_kty = match alg {
            JwsAlg::ES256 => "EC",
            JwsAlg::EdDSA => "OKP",
            JwsAlg::RS256 => "RSA",
        };
        assert_eq!(of_alg[0].kty, expected_kty);
    }
    let kids: BTreeSet<&str> = set.keys.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids.len(), 3, "kids are unique: {raw}");
    // The same keys on every fetch.
    assert_eq!(server.jwks().await, set);
}

#[tokio::test]
async fn jwks_is_get_only() {
    let server = TestServer::start().await;
    let r = server
        .http()
        .post(server.url("/o/oauth2/jwks"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
}

// ---------------------------------------------------------------------------------------------
// Introspection and revocation of JWT access tokens
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn jwt_access_token_introspects_active_then_inactive_after_revocation() {
    let server = setup(JwsAlg::RS256, &["photos-api"]).await;
    let secret = server.resource_server("api").await;
    let r = jwt_tokens(&server).await;
    let token = r.str("access_token");
    let i = introspect(&server, &secret, &token).await;
    assert_eq!(i.status, StatusCode::OK, "{:?}", i.json);
    i.assert_no_store();
    assert_eq!(
        i.json,
        json!({
            "active": true,
            "scope": r.str("scope"),
            "client_id": "jwtapp",
            "username": "alice",
            "sub": server.user_id("alice").await,
            "aud": "photos-api",
            "iss": server.issuer(),
            "exp": START + TTL,
            "iat": START,
            "token_type": "Bearer",
        })
    );

    let rv = server
        .post_form(
            "/o/oauth2/revoke",
            &format!("token={}&client_id=jwtapp", encode(&token)),
            None,
        )
        .await;
    assert_eq!(rv.status, StatusCode::OK, "{:?}", rv.json);
    rv.assert_no_store();
    assert_eq!(server.access_status(&token).await, TokenStatus::Revoked);
    let i = introspect(&server, &secret, &token).await;
    assert_eq!(i.status, StatusCode::OK);
    assert_eq!(i.json, json!({ "active": false }));
    // The signature is still fine: only the server knows it was revoked.
    let jwks = server.jwks().await;
    assert!(verify_jwt(&token, &jwks.keys, "at+jwt").is_ok());
    // The refresh token was not revoked with it.
    assert_eq!(
        server.refresh_status(&r.str("refresh_token")).await,
        TokenStatus::Active
    );
}

#[tokio::test]
async fn expired_jwt_access_token_introspects_inactive() {
    let server = setup(JwsAlg::ES256, &[]).await;
    let secret = server.resource_server("api").await;
    let token = jwt_tokens(&server).await.str("access_token");
    server.clock.advance(TTL);
    let i = introspect(&server, &secret, &token).await;
    assert_eq!(i.json, json!({ "active": false }));
    let claims = verify_jwt(&token, &server.jwks().await.keys, "at+jwt").unwrap();
    assert_eq!(
        validate_claims(
            &claims,
            server.clock.now(),
            server.issuer(),
            server.issuer(),
            0
        ),
        Err(JwtError::Expired)
    );
}

#[tokio::test]
async fn tampered_jwt_fails_verification_and_introspects_inactive() {
    let server = setup(JwsAlg::ES256, &[]).await;
    let secret = server.resource_server("api").await;
    let token = jwt_tokens(&server).await.str("access_token");
    let jwks = server.jwks().await;
    let tampered = tamper_payload(&token);
    assert_eq!(
        verify_jwt(&tampered, &jwks.keys, "at+jwt"),
        Err(JwtError::BadSignature)
    );
    let i = introspect(&server, &secret, &tampered).await;
    assert_eq!(i.status, StatusCode::OK);
    assert_eq!(i.json, json!({ "active": false }));
    i.assert_no_store();
    // The genuine token is untouched.
    assert!(verify_jwt(&token, &jwks.keys, "at+jwt").is_ok());
    let i = introspect(&server, &secret, &token).await;
    assert_eq!(i.json["active"], true, "{:?}", i.json);
    assert_eq!(server.access_status(&token).await, TokenStatus::Active);
}

#[tokio::test]
async fn jwt_with_alg_none_fails_verification_and_introspects_inactive() {
    let server = setup(JwsAlg::EdDSA, &[]).await;
    let secret = server.resource_server("api").await;
    let token = jwt_tokens(&server).await.str("access_token");
    let mut header = header_of(&token);
    header["alg"] = "none".into();
    let payload = token.split('.').nth(1).unwrap();
    let forged = format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(header.to_string()));
    let jwks = server.jwks().await;
    assert_eq!(
        verify_jwt(&forged, &jwks.keys, "at+jwt"),
        Err(JwtError::UnsupportedAlgorithm)
    );
    let i = introspect(&server, &secret, &forged).await;
    assert_eq!(i.json, json!({ "active": false }));
}
