//! OpenID Connect: discovery (OIDC Discovery §3), ID tokens (OIDC Core §2, §3.1.3.6),
//! userinfo (OIDC Core §5.3 with RFC 6750 §3 errors) and the authorization request's
//! `prompt` and `max_age` (OIDC Core §3.1.2.1).
use std::collections::BTreeSet;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use serde_json::json;

use oauthd::clock::Clock;
use oauthd_core::form::encode;
use oauthd_core::jose::{JwsAlg, at_hash, validate_claims, verify_jwt};
use oauthd_store::TokenStatus;

use crate::common::*;

const USERINFO: &str = "/o/oauth2/userinfo";
const OIDC_SCOPE: &str = "&scope=openid%20profile%20email";

/// alice, the public client `rp` and the trusted public client `trusted`, both allowed
/// `openid profile email`.
async fn setup() -> TestServer {
    let server = TestServer::start().await;
    server.user("alice").await;
    for (id, trusted) in [("rp", false), ("trusted", true)] {
        server
            .client(id, |a| {
                a.scopes = vec!["openid".into(), "profile".into(), "email".into()];
                a.trusted = trusted;
            })
            .await;
    }
    server
}

/// A valid authorization request for `client_id`, plus `extra` (starting with `&`).
fn query(client_id: &str, extra: &str) -> String {
    format!(
        "response_type=code&client_id={client_id}&redirect_uri={}&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}",
        encode(APP_REDIRECT)
    )
}

/// Redeem a code for `client_id`.
async fn redeem(server: &TestServer, client_id: &str, code: &str) -> TokenResponse {
    let r = server
        .token(&exchange_body(client_id, code, VERIFIER))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    r
}

/// A full flow in a fresh browser for `client_id` with `extra` parameters.
async fn flow(server: &TestServer, client_id: &str, extra: &str) -> TokenResponse {
    let code = sign_in(&server.browser(), client_id, extra).await;
    redeem(server, client_id, &code).await
}

/// Sign in as alice for `client_id` in `browser` and return the code. Unlike
/// `TestServer::code_for`, a trusted client's consent step answers with the code directly.
async fn sign_in(browser: &Browser, client_id: &str, extra: &str) -> String {
    let r = browser.authorize(&query(client_id, extra)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let mut loc = location(&r);
    if loc.starts_with("/login") {
        let r = browser.login(&loc, "alice", PASSWORD).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        loc = location(&r);
    }
    if loc.starts_with("/consent") {
        let r = browser.get(&loc).await;
        loc = if r.status() == StatusCode::OK {
            let r = browser.decide(&loc, "approve").await;
            assert_eq!(r.status(), StatusCode::SEE_OTHER);
            location(&r)
        } else {
            assert_eq!(r.status(), StatusCode::SEE_OTHER);
            location(&r)
        };
    }
    code_of(&loc)
}

/// The code of a redirect back to the app; panics on anything else.
fn code_of(location: &str) -> String {
    assert!(
        location.starts_with(APP_REDIRECT),
        "not a redirect to the app: {location}"
    );
    assert_eq!(param(location, "error"), None, "{location}");
    param(location, "code").unwrap_or_else(|| panic!("no code in {location}"))
}

/// An error redirect to the app: error code, `state` echoed, `iss` present.
fn assert_redirect_error(r: &reqwest::Response, error: &str, state: &str, issuer: &str) {
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = location(r);
    assert!(loc.starts_with(APP_REDIRECT), "{loc}");
    assert_eq!(param(&loc, "error").as_deref(), Some(error), "{loc}");
    assert!(param(&loc, "error_description").is_some(), "{loc}");
    assert_eq!(param(&loc, "state").as_deref(), Some(state), "{loc}");
    assert_eq!(param(&loc, "iss").as_deref(), Some(issuer), "{loc}");
    assert_eq!(param(&loc, "code"), None, "{loc}");
}

/// The claims of a verified ID token (typ `JWT`) signed with `alg`.
async fn id_token_claims(server: &TestServer, id_token: &str, alg: JwsAlg) -> serde_json::Value {
    let jwks = server.jwks().await;
    let h = id_token.split('.').next().unwrap();
    let header: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, h).unwrap(),
    )
    .unwrap();
    assert_eq!(header["typ"], "JWT", "{header}");
    assert_eq!(header["alg"], alg.as_str(), "{header}");
    let kid = header["kid"].as_str().unwrap();
    assert!(jwks.keys.iter().any(|k| k.kid == kid), "{kid} not in JWKS");
    verify_jwt(id_token, &jwks.keys, "JWT").unwrap_or_else(|e| panic!("{e}: {id_token}"))
}

// ---------------------------------------------------------------------------------------------
// Discovery
// ---------------------------------------------------------------------------------------------

async fn get_json(server: &TestServer, path: &str) -> serde_json::Value {
    let r = server.http().get(server.url(path)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.json().await.unwrap()
}

#[tokio::test]
async fn openid_configuration_is_the_authorization_server_metadata() {
    let server = setup().await;
    let oidc = get_json(&server, "/.well-known/openid-configuration").await;
    let oauth = get_json(&server, "/.well-known/oauth-authorization-server").await;
    assert_eq!(oidc, oauth);
    let issuer = server.issuer();
    assert_eq!(oidc["issuer"], issuer);
    assert_eq!(
        oidc["userinfo_endpoint"],
        format!("{issuer}/o/oauth2/userinfo")
    );
    assert_eq!(oidc["jwks_uri"], format!("{issuer}/o/oauth2/jwks"));
    let list = |field: &str| -> BTreeSet<String> {
        oidc[field]
            .as_array()
            .unwrap_or_else(|| panic!("{field} is not an array: {oidc}"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    assert!(list("id_token_signing_alg_values_supported").contains("RS256"));
    assert!(list("subject_types_supported").contains("public"));
    let scopes = list("scopes_supported");
    assert!(scopes.contains("openid"), "{scopes:?}");
    assert!(list("response_types_supported").contains("code"));
}

#[tokio::test]
async fn every_advertised_endpoint_answers() {
    let server = setup().await;
    let doc = get_json(&server, "/.well-known/openid-configuration").await;
    let issuer = server.issuer();
    let mut seen = 0;
    for (field, value) in doc.as_object().unwrap() {
        if !(field.ends_with("_endpoint") || field == "jwks_uri") {
            continue;
        }
        let url = value.as_str().unwrap();
        let path = url
            .strip_prefix(issuer)
            .unwrap_or_else(|| panic!("{field} {url} is not under the issuer {issuer}"));
        assert!(path.starts_with('/'), "{field}: {url}");
        for method in [reqwest::Method::GET, reqwest::Method::POST] {
            let r = server
                .http()
                .request(method.clone(), server.url(path))
                .header("content-type", "application/x-www-form-urlencoded")
                .send()
                .await
                .unwrap();
            // Answered by its handler (or refused as a method): anything but "no such path".
            assert_ne!(r.status(), StatusCode::NOT_FOUND, "{method} {field} {path}");
        }
        seen += 1;
    }
    // authorization, token, revocation, introspection, userinfo, jwks.
    assert_eq!(seen, 6, "{doc}");
    // And the unknown really is 404, so the check above means something.
    let r = server
        .http()
        .get(server.url("/o/oauth2/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn every_advertised_prompt_value_is_accepted() {
    let server = setup().await;
    let doc = get_json(&server, "/.well-known/openid-configuration").await;
    for prompt in doc["prompt_values_supported"].as_array().unwrap() {
        let prompt = prompt.as_str().unwrap();
        let r = server
            .browser()
            .authorize(&query("rp", &format!("&scope=openid&prompt={prompt}")))
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "prompt={prompt}");
        let loc = location(&r);
        // No session here: prompt=none must say login_required; the others ask to log in.
        if prompt == "none" {
            assert_eq!(param(&loc, "error").as_deref(), Some("login_required"));
        } else {
            assert!(loc.starts_with("/login?pending="), "prompt={prompt}: {loc}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ID tokens
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn code_flow_with_openid_returns_a_verifiable_id_token() {
    let server = setup().await;
    let browser = server.browser();
    let code = server
        .code_for(&browser, "rp", &format!("{OIDC_SCOPE}&nonce=n-123"))
        .await;
    server.clock.advance(30);
    let r = redeem(&server, "rp", &code).await;
    r.assert_no_store();
    let access = r.str("access_token");
    let claims = id_token_claims(&server, &r.str("id_token"), JwsAlg::RS256).await;
    let issuer = server.issuer();
    assert_eq!(claims["iss"], issuer);
    let alice = server.user_id("alice").await;
    assert_eq!(claims["sub"], alice);
    assert_ne!(claims["sub"], "alice");
    assert_eq!(claims["aud"], "rp");
    assert_eq!(claims["azp"], "rp");
    assert_eq!(claims["nonce"], "n-123");
    // Logged in at START, token issued 30 s later.
    assert_eq!(claims["auth_time"], START);
    assert_eq!(claims["iat"], START + 30);
    let exp = claims["exp"].as_i64().unwrap();
    assert!(exp > START + 30, "{claims}");
    assert_eq!(claims["at_hash"], at_hash(&access, JwsAlg::RS256));
    assert_eq!(
        validate_claims(&claims, server.clock.now(), issuer, "rp", 0),
        Ok(())
    );
    // The ID token is not an access token.
    let jwks = server.jwks().await;
    assert!(verify_jwt(&r.str("id_token"), &jwks.keys, "at+jwt").is_err());
    let scope: BTreeSet<&str> = r.json["scope"].as_str().unwrap().split(' ').collect();
    assert_eq!(scope, BTreeSet::from(["openid", "profile", "email"]));
    // OIDC Core §5.3.2: userinfo speaks of the same subject.
    let u = userinfo_bearer(&server, &access).await;
    assert_eq!(u.status, StatusCode::OK, "{:?}", u.json);
    assert_eq!(u.json["sub"], claims["sub"]);
}

#[tokio::test]
async fn id_token_without_nonce_has_no_nonce_claim() {
    let server = setup().await;
    let r = flow(&server, "rp", "&scope=openid").await;
    let claims = id_token_claims(&server, &r.str("id_token"), JwsAlg::RS256).await;
    assert!(claims.get("nonce").is_none(), "{claims}");
    assert_eq!(
        claims["at_hash"],
        at_hash(&r.str("access_token"), JwsAlg::RS256)
    );
}

#[tokio::test]
async fn client_registered_for_es256_gets_es256_id_tokens() {
    let server = setup().await;
    server
        .client("es", |a| {
            a.scopes = vec!["openid".into()];
            a.id_token_alg = "ES256".into();
        })
        .await;
    let r = flow(&server, "es", "&scope=openid&nonce=n-es").await;
    let claims = id_token_claims(&server, &r.str("id_token"), JwsAlg::ES256).await;
    assert_eq!(claims["aud"], "es");
    assert_eq!(claims["azp"], "es");
    assert_eq!(claims["nonce"], "n-es");
    assert_eq!(
        claims["at_hash"],
        at_hash(&r.str("access_token"), JwsAlg::ES256)
    );
}

#[tokio::test]
async fn id_token_at_hash_covers_a_jwt_access_token() {
    let server = setup().await;
    server
        .client("jwtrp", |a| {
            a.scopes = vec!["openid".into()];
            a.access_token = "jwt".into();
            a.access_token_alg = "EdDSA".into();
        })
        .await;
    let r = flow(&server, "jwtrp", "&scope=openid").await;
    let claims = id_token_claims(&server, &r.str("id_token"), JwsAlg::RS256).await;
    assert_eq!(
        claims["at_hash"],
        at_hash(&r.str("access_token"), JwsAlg::RS256)
    );
}

#[tokio::test]
async fn no_id_token_without_the_openid_scope() {
    let server = setup().await;
    let r = flow(&server, "rp", "&scope=profile%20email&nonce=n-123").await;
    assert!(r.json.get("id_token").is_none(), "{:?}", r.json);
    assert!(r.json.get("access_token").is_some());
    let r = flow(&server, "rp", "").await;
    assert!(r.json.get("id_token").is_none(), "{:?}", r.json);
}

// ---------------------------------------------------------------------------------------------
// Userinfo
// ---------------------------------------------------------------------------------------------

async fn userinfo_bearer(server: &TestServer, token: &str) -> TokenResponse {
    let r = server
        .http()
        .get(server.url(USERINFO))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    TokenResponse::from(r).await
}

fn challenge(r: &TokenResponse) -> String {
    r.headers
        .get(WWW_AUTHENTICATE)
        .unwrap_or_else(|| panic!("no WWW-Authenticate on {}", r.status))
        .to_str()
        .unwrap()
        .to_owned()
}

/// RFC 6750 §3: a Bearer challenge with this error code, no body needed, not cached.
fn assert_bearer_error(r: &TokenResponse, status: StatusCode, error: &str) {
    assert_eq!(r.status, status, "{:?}", r.json);
    let c = challenge(r);
    assert!(c.starts_with("Bearer realm=\"oauthd\""), "{c}");
    assert!(c.contains(&format!("error=\"{error}\"")), "{c}");
    r.assert_no_store();
}

async fn access_for(server: &TestServer, scope: &str) -> String {
    flow(server, "rp", &format!("&scope={}", encode(scope)))
        .await
        .str("access_token")
}

#[tokio::test]
async fn userinfo_get_with_bearer_returns_claims_by_scope() {
    let server = setup().await;
    let alice = server.user_id("alice").await;
    let cases = [
        (
            "openid profile email",
            json!({
                "sub": alice,
                "preferred_username": "alice",
                "name": "User alice",
                "email": "alice@example.com",
                "email_verified": false,
            }),
        ),
        ("openid", json!({ "sub": alice })),
        (
            "openid profile",
            json!({ "sub": alice, "preferred_username": "alice", "name": "User alice" }),
        ),
        (
            "openid email",
            json!({ "sub": alice, "email": "alice@example.com", "email_verified": false }),
        ),
    ];
    for (scope, expected) in cases {
        let token = access_for(&server, scope).await;
        let r = userinfo_bearer(&server, &token).await;
        assert_eq!(r.status, StatusCode::OK, "{scope}: {:?}", r.json);
        assert_eq!(r.json, expected, "{scope}");
        r.assert_no_store();
        let content_type = r.headers.get("content-type").unwrap().to_str().unwrap();
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
    }
}

#[tokio::test]
async fn userinfo_post_with_form_access_token_works() {
    let server = setup().await;
    let token = access_for(&server, "openid profile").await;
    let r = server
        .http()
        .post(server.url(USERINFO))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("access_token={}", encode(&token)))
        .send()
        .await
        .unwrap();
    let r = TokenResponse::from(r).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    r.assert_no_store();
    assert_eq!(r.json["sub"], server.user_id("alice").await);
    assert_eq!(r.json["preferred_username"], "alice");
    // POST with the header works too.
    let r = server
        .http()
        .post(server.url(USERINFO))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn userinfo_accepts_a_jwt_access_token() {
    let server = setup().await;
    server
        .client("jwtrp", |a| {
            a.scopes = vec!["openid".into(), "email".into()];
            a.access_token = "jwt".into();
        })
        .await;
    let token = flow(&server, "jwtrp", "&scope=openid%20email")
        .await
        .str("access_token");
    let r = userinfo_bearer(&server, &token).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(
        r.json,
        json!({
            "sub": server.user_id("alice").await,
            "email": "alice@example.com",
            "email_verified": false,
        })
    );
}

#[tokio::test]
async fn userinfo_without_a_token_is_a_bare_bearer_challenge() {
    let server = setup().await;
    for method in [reqwest::Method::GET, reqwest::Method::POST] {
        let r = server
            .http()
            .request(method.clone(), server.url(USERINFO))
            .send()
            .await
            .unwrap();
        let r = TokenResponse::from(r).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method}");
        // RFC 6750 §3.1: no error code when no credentials were sent.
        assert_eq!(challenge(&r), "Bearer realm=\"oauthd\"", "{method}");
        r.assert_no_store();
    }
}

#[tokio::test]
async fn userinfo_with_an_invalid_token_is_invalid_token() {
    let server = setup().await;
    let r = userinfo_bearer(&server, "oat_not-a-real-token").await;
    assert_bearer_error(&r, StatusCode::UNAUTHORIZED, "invalid_token");
    assert!(r.json.get("sub").is_none());
}

#[tokio::test]
async fn userinfo_with_a_revoked_token_is_invalid_token() {
    let server = setup().await;
    let token = access_for(&server, "openid profile").await;
    assert_eq!(
        userinfo_bearer(&server, &token).await.status,
        StatusCode::OK
    );
    let r = server
        .post_form(
            "/o/oauth2/revoke",
            &format!("token={}&client_id=rp", encode(&token)),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(server.access_status(&token).await, TokenStatus::Revoked);
    let r = userinfo_bearer(&server, &token).await;
    assert_bearer_error(&r, StatusCode::UNAUTHORIZED, "invalid_token");
}

#[tokio::test]
async fn userinfo_with_an_expired_token_is_invalid_token() {
    let server = setup().await;
    let token = access_for(&server, "openid profile").await;
    server.clock.advance(599);
    assert_eq!(
        userinfo_bearer(&server, &token).await.status,
        StatusCode::OK
    );
    server.clock.advance(1);
    let r = userinfo_bearer(&server, &token).await;
    assert_bearer_error(&r, StatusCode::UNAUTHORIZED, "invalid_token");
    assert_eq!(server.access_status(&token).await, TokenStatus::Expired);
}

#[tokio::test]
async fn userinfo_without_openid_scope_is_insufficient_scope() {
    let server = setup().await;
    let token = access_for(&server, "profile email").await;
    let r = userinfo_bearer(&server, &token).await;
    assert_bearer_error(&r, StatusCode::FORBIDDEN, "insufficient_scope");
    assert!(
        challenge(&r).contains("scope=\"openid\""),
        "{}",
        challenge(&r)
    );
    assert!(r.json.get("sub").is_none());
}

#[tokio::test]
async fn userinfo_token_in_header_and_body_is_invalid_request() {
    let server = setup().await;
    let token = access_for(&server, "openid").await;
    let r = server
        .http()
        .post(server.url(USERINFO))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("access_token={}", encode(&token)))
        .send()
        .await
        .unwrap();
    let r = TokenResponse::from(r).await;
    assert_bearer_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(r.json.get("sub").is_none());
}

#[tokio::test]
async fn userinfo_with_a_malformed_authorization_header_is_invalid_request() {
    let server = setup().await;
    let token = access_for(&server, "openid").await;
    for value in [format!("Basic {token}"), "Bearer".into(), "Bearer ".into()] {
        let r = server
            .http()
            .get(server.url(USERINFO))
            .header(AUTHORIZATION, value.clone())
            .send()
            .await
            .unwrap();
        let r = TokenResponse::from(r).await;
        assert_bearer_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
    }
}

#[tokio::test]
async fn userinfo_refuses_a_refresh_token_as_bearer() {
    let server = setup().await;
    let r = flow(&server, "rp", OIDC_SCOPE).await;
    let refresh = r.str("refresh_token");
    let r = userinfo_bearer(&server, &refresh).await;
    assert_bearer_error(&r, StatusCode::UNAUTHORIZED, "invalid_token");
    assert!(r.json.get("sub").is_none());
    // Nothing happened to it.
    assert_eq!(server.refresh_status(&refresh).await, TokenStatus::Active);
}

#[tokio::test]
async fn userinfo_refuses_an_id_token_as_bearer() {
    let server = setup().await;
    let r = flow(&server, "rp", OIDC_SCOPE).await;
    let r = userinfo_bearer(&server, &r.str("id_token")).await;
    assert_bearer_error(&r, StatusCode::UNAUTHORIZED, "invalid_token");
}

// ---------------------------------------------------------------------------------------------
// prompt=none
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn prompt_none_without_a_session_is_login_required() {
    let server = setup().await;
    let browser = server.browser();
    let r = browser
        .authorize(&query("trusted", "&scope=openid&prompt=none&state=s-1"))
        .await;
    assert_redirect_error(&r, "login_required", "s-1", server.issuer());
    // Nothing was started: the trusted client still needs a login.
    let r = browser.authorize(&query("trusted", "&scope=openid")).await;
    assert!(location(&r).starts_with("/login?pending="));
}

#[tokio::test]
async fn prompt_none_with_a_session_but_consent_needed_is_consent_required() {
    let server = setup().await;
    let browser = server.browser();
    // Log in (and approve once); a public client is asked again every time.
    sign_in(&browser, "rp", "&scope=openid").await;
    let r = browser
        .authorize(&query("rp", "&scope=openid&prompt=none&state=s-2"))
        .await;
    assert_redirect_error(&r, "consent_required", "s-2", server.issuer());
}

#[tokio::test]
async fn prompt_none_with_a_session_and_a_trusted_client_issues_a_code() {
    let server = setup().await;
    let browser = server.browser();
    sign_in(&browser, "trusted", "&scope=openid").await;
    server.clock.advance(5);
    let r = browser
        .authorize(&query(
            "trusted",
            "&scope=openid&prompt=none&state=s-3&nonce=n-3",
        ))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = location(&r);
    let code = code_of(&loc);
    assert_eq!(param(&loc, "state").as_deref(), Some("s-3"));
    assert_eq!(param(&loc, "iss").as_deref(), Some(server.issuer()));
    let t = redeem(&server, "trusted", &code).await;
    let claims = id_token_claims(&server, &t.str("id_token"), JwsAlg::RS256).await;
    assert_eq!(claims["nonce"], "n-3");
    assert_eq!(claims["auth_time"], START, "the earlier login");
}

#[tokio::test]
async fn prompt_none_with_a_session_older_than_max_age_is_login_required() {
    let server = setup().await;
    let browser = server.browser();
    sign_in(&browser, "trusted", "&scope=openid").await;
    server.clock.advance(301);
    let r = browser
        .authorize(&query(
            "trusted",
            "&scope=openid&prompt=none&max_age=300&state=s-4",
        ))
        .await;
    assert_redirect_error(&r, "login_required", "s-4", server.issuer());
}

// ---------------------------------------------------------------------------------------------
// prompt=login
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn prompt_login_asks_again_even_with_a_session() {
    let server = setup().await;
    let browser = server.browser();
    sign_in(&browser, "rp", "&scope=openid").await;
    server.clock.advance(20);

    let r = browser
        .authorize(&query("rp", "&scope=openid&prompt=login&state=s-5"))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let login = location(&r);
    assert!(login.starts_with("/login?pending="), "{login}");
    let pending = login.strip_prefix("/login?pending=").unwrap().to_owned();

    // Going straight to the consent page does not skip the new login.
    let r = browser.get(&format!("/consent?pending={pending}")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), login);
    // Nor does the login page wave the old session through.
    let (status, html) = browser.page(&login).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("name=\"password\""), "{html}");
    // Nor does approving by POST with a valid CSRF token: no code, back to the login.
    let csrf = hidden(&html, "csrf").unwrap();
    let r = browser
        .post_form(
            "/consent",
            &[
                ("csrf", &csrf),
                ("pending", &pending),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), login);

    let r = browser.login(&login, "alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let consent = location(&r);
    assert_eq!(consent, format!("/consent?pending={pending}"));
    let r = browser.decide(&consent, "approve").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = location(&r);
    let code = code_of(&loc);
    assert_eq!(param(&loc, "state").as_deref(), Some("s-5"));
    let t = redeem(&server, "rp", &code).await;
    let claims = id_token_claims(&server, &t.str("id_token"), JwsAlg::RS256).await;
    assert_eq!(claims["auth_time"], START + 20, "the new login");
}

#[tokio::test]
async fn prompt_login_on_a_trusted_client_completes_after_the_new_login() {
    let server = setup().await;
    let browser = server.browser();
    sign_in(&browser, "trusted", "&scope=openid").await;
    server.clock.advance(7);
    let r = browser
        .authorize(&query("trusted", "&scope=openid&prompt=login"))
        .await;
    let login = location(&r);
    assert!(login.starts_with("/login?pending="), "{login}");
    let r = browser.login(&login, "alice", PASSWORD).await;
    let consent = location(&r);
    assert!(consent.starts_with("/consent?pending="), "{consent}");
    // Trusted: the consent step issues the code without asking.
    let r = browser.get(&consent).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let code = code_of(&location(&r));
    let t = redeem(&server, "trusted", &code).await;
    let claims = id_token_claims(&server, &t.str("id_token"), JwsAlg::RS256).await;
    assert_eq!(claims["auth_time"], START + 7);
}

// ---------------------------------------------------------------------------------------------
// max_age
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn session_older_than_max_age_must_log_in_again() {
    let server = setup().await;
    let browser = server.browser();
    sign_in(&browser, "trusted", "&scope=openid").await;
    server.clock.advance(301);
    let r = browser
        .authorize(&query("trusted", "&scope=openid&max_age=300"))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let login = location(&r);
    assert!(login.starts_with("/login?pending="), "{login}");
    // The stale session does not get past the consent step either.
    let pending = login.strip_prefix("/login?pending=").unwrap();
    let r = browser.get(&format!("/consent?pending={pending}")).await;
    assert_eq!(location(&r), login);

    let r = browser.login(&login, "alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = browser.get(&location(&r)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let code = code_of(&location(&r));
    let t = redeem(&server, "trusted", &code).await;
    let claims = id_token_claims(&server, &t.str("id_token"), JwsAlg::RS256).await;
    assert_eq!(claims["auth_time"], START + 301);
}

#[tokio::test]
async fn session_within_max_age_goes_straight_to_a_code() {
    let server = setup().await;
    let browser = server.browser();
    sign_in(&browser, "trusted", "&scope=openid").await;
    server.clock.advance(301);
    for max_age in [3600, 301] {
        let r = browser
            .authorize(&query(
                "trusted",
                &format!("&scope=openid&max_age={max_age}"),
            ))
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let code = code_of(&location(&r));
        let t = redeem(&server, "trusted", &code).await;
        let claims = id_token_claims(&server, &t.str("id_token"), JwsAlg::RS256).await;
        assert_eq!(claims["auth_time"], START, "max_age={max_age}");
    }
}

#[tokio::test]
async fn max_age_zero_always_asks_for_a_login() {
    // OIDC Core §3.1.2.1 (errata set 2): "max_age=0 is equivalent to prompt=login", even
    // when the last login was less than a second ago.
    let server = setup().await;
    let browser = server.browser();
    sign_in(&browser, "trusted", "&scope=openid").await;
    let r = browser
        .authorize(&query("trusted", "&scope=openid&max_age=0"))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let login = location(&r);
    assert!(login.starts_with("/login?pending="), "{login}");
    // The new login satisfies it, so the flow completes (no login loop).
    let r = browser.login(&login, "alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = browser.get(&location(&r)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    code_of(&location(&r));
}

// ---------------------------------------------------------------------------------------------
// prompt=consent
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn prompt_consent_on_a_trusted_client_shows_the_consent_page() {
    let server = setup().await;
    let browser = server.browser();
    sign_in(&browser, "trusted", "&scope=openid").await;
    let r = browser
        .authorize(&query("trusted", "&scope=openid%20profile&prompt=consent"))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let consent = location(&r);
    assert!(consent.starts_with("/consent?pending="), "{consent}");
    let (status, html) = browser.page(&consent).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("name=\"decision\""), "{html}");
    assert!(html.contains("value=\"approve\""), "{html}");
    let r = browser.decide(&consent, "approve").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let code = code_of(&location(&r));
    redeem(&server, "trusted", &code).await;
}

#[tokio::test]
async fn prompt_consent_denied_on_a_trusted_client_is_access_denied() {
    let server = setup().await;
    let browser = server.browser();
    sign_in(&browser, "trusted", "&scope=openid").await;
    let r = browser
        .authorize(&query("trusted", "&scope=openid&prompt=consent&state=s-6"))
        .await;
    let consent = location(&r);
    assert!(consent.starts_with("/consent?pending="), "{consent}");
    let r = browser.decide(&consent, "deny").await;
    assert_redirect_error(&r, "access_denied", "s-6", server.issuer());
}
