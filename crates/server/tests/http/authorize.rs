//! `GET /o/oauth2/authorize`: which errors are pages and which are redirects, redirect URI
//! matching, PKCE policy, consent, SSO and the metadata document (DESIGN §3).
use oauthd_core::form::encode;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION};

use crate::common::*;

/// A valid request for `app`, plus `extra` (which starts with `&`).
fn app_query(extra: &str) -> String {
    format!(
        "response_type=code&client_id=app&redirect_uri={}&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}",
        encode(APP_REDIRECT)
    )
}

/// The same request without any PKCE parameter.
fn without_pkce(extra: &str) -> String {
    format!(
        "response_type=code&client_id=app&redirect_uri={}{extra}",
        encode(APP_REDIRECT)
    )
}

/// A valid request for `client_id` with this redirect URI (`None`: not sent).
fn query_for(client_id: &str, redirect_uri: Option<&str>, extra: &str) -> String {
    let redirect = redirect_uri.map_or(String::new(), |u| format!("&redirect_uri={}", encode(u)));
    format!(
        "response_type=code&client_id={client_id}{redirect}&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}"
    )
}

/// A server with the standard client `app` and the user alice.
async fn setup() -> TestServer {
    let server = TestServer::start().await;
    server.app().await;
    server.user("alice").await;
    server
}

/// Our own HTML error page: 400, and never a redirect (no open redirector).
async fn assert_error_page(r: reqwest::Response, what: &str) -> String {
    let status = r.status();
    let location = r.headers().get(LOCATION).cloned();
    let content_type = r
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = r.text().await.unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
    assert!(
        location.is_none(),
        "{what}: an error page must not redirect, got Location {location:?}"
    );
    assert!(
        content_type.starts_with("text/html"),
        "{what}: content-type {content_type}"
    );
    assert!(body.contains("<!DOCTYPE html>"), "{what}: {body}");
    body
}

/// An error sent back to the validated redirect URI; returns the Location.
fn assert_redirected_error(
    server: &TestServer,
    r: &reqwest::Response,
    redirect_uri: &str,
    error: &str,
    state: Option<&str>,
) -> String {
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "expected a redirect for {error}"
    );
    let loc = location(r);
    assert!(
        loc.starts_with(&format!("{redirect_uri}?")),
        "{error}: redirected to {loc}, not to {redirect_uri}"
    );
    assert_eq!(param(&loc, "error").as_deref(), Some(error), "{loc}");
    assert!(
        param(&loc, "error_description").is_some_and(|d| !d.is_empty()),
        "{loc}"
    );
    assert_eq!(param(&loc, "state").as_deref(), state, "{loc}");
    assert_eq!(
        param(&loc, "iss").as_deref(),
        Some(server.issuer()),
        "{loc}"
    );
    assert_eq!(param(&loc, "code"), None, "an error carries no code: {loc}");
    loc
}

/// The request was accepted and, without a session, the user is sent to sign in.
fn assert_to_login(r: &reqwest::Response, what: &str) {
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{what}");
    let loc = location(r);
    assert!(loc.starts_with("/login?pending="), "{what}: {loc}");
    assert!(
        param(&loc, "pending").is_some_and(|p| !p.is_empty()),
        "{what}: {loc}"
    );
}

/// A successful redirect to `redirect_uri` with a code, `iss` and the given state.
fn assert_code(server: &TestServer, loc: &str, redirect_uri: &str, state: Option<&str>) -> String {
    assert!(loc.starts_with(&format!("{redirect_uri}?")), "{loc}");
    assert_eq!(param(loc, "error"), None, "{loc}");
    assert_eq!(param(loc, "state").as_deref(), state, "{loc}");
    assert_eq!(param(loc, "iss").as_deref(), Some(server.issuer()), "{loc}");
    param(loc, "code").unwrap_or_else(|| panic!("no code in {loc}"))
}

/// Authorize and sign in; the Location after the login form (a `/consent?pending=…`).
async fn authorize_and_login(browser: &Browser, query: &str) -> String {
    let r = browser.authorize(query).await;
    assert_to_login(&r, query);
    let r = browser.login(&location(&r), "alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    location(&r)
}

/// The consent page at `path` is shown (the user is asked).
async fn assert_consent_page(browser: &Browser, path: &str) {
    assert!(path.starts_with("/consent?pending="), "{path}");
    let (status, html) = browser.page(path).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains(r#"name="decision" value="approve""#),
        "{html}"
    );
}

// --- Client identification: errors shown on our own page -------------------------------

#[tokio::test]
async fn unknown_client_is_an_error_page() {
    let server = setup().await;
    let r = server
        .browser()
        .authorize(&query_for("nobody", Some(APP_REDIRECT), "&state=xyz"))
        .await;
    assert_error_page(r, "unknown client").await;
}

#[tokio::test]
async fn missing_client_id_is_an_error_page() {
    let server = setup().await;
    let query = format!(
        "response_type=code&redirect_uri={}&code_challenge={CHALLENGE}&code_challenge_method=S256&state=xyz",
        encode(APP_REDIRECT)
    );
    let r = server.browser().authorize(&query).await;
    assert_error_page(r, "missing client_id").await;
}

#[tokio::test]
async fn redirect_uri_is_matched_exactly_for_custom_schemes() {
    let server = setup().await;
    let browser = server.browser();
    // Control: the registered value itself is accepted.
    assert_to_login(
        &browser.authorize(&app_query("&state=xyz")).await,
        APP_REDIRECT,
    );
    for trap in [
        "com.example.app:/cb/",
        "COM.example.app:/cb",
        "com.example.app:/cb?x=1",
        "com.example.app:/cb#f",
        "https://evil.example/cb",
    ] {
        // `encode` turns `#` into %23, `?` into %3F: the whole trap reaches the server.
        let r = browser
            .authorize(&query_for("app", Some(trap), "&state=xyz"))
            .await;
        assert_error_page(r, trap).await;
    }
}

#[tokio::test]
async fn redirect_uri_is_matched_exactly_for_https() {
    let server = setup().await;
    server
        .client("web", |a| {
            a.redirect_uris = vec!["https://app.example/cb".into()]
        })
        .await;
    let browser = server.browser();
    let ok = browser
        .authorize(&query_for("web", Some("https://app.example/cb"), ""))
        .await;
    assert_to_login(&ok, "https://app.example/cb");
    for trap in [
        "https://app.example:443/cb",
        "https://APP.example/cb",
        "https://app.example/cb/",
        "https://evil.example/cb",
    ] {
        let r = browser
            .authorize(&query_for("web", Some(trap), "&state=xyz"))
            .await;
        assert_error_page(r, trap).await;
    }
}

#[tokio::test]
async fn several_redirect_uris_require_redirect_uri() {
    let server = setup().await;
    // `app` has two registered redirect URIs.
    let r = server
        .browser()
        .authorize(&query_for("app", None, "&state=xyz"))
        .await;
    assert_error_page(r, "no redirect_uri with two registered").await;
}

#[tokio::test]
async fn single_redirect_uri_may_be_omitted() {
    let server = setup().await;
    server
        .client("single", |a| a.redirect_uris = vec![APP_REDIRECT.into()])
        .await;
    let r = server
        .browser()
        .authorize(&query_for("single", None, "&state=xyz"))
        .await;
    assert_to_login(&r, "no redirect_uri with one registered");
}

#[tokio::test]
async fn loopback_redirect_matches_any_port() {
    let server = setup().await;
    let browser = server.browser();
    for ok in [
        "http://127.0.0.1:54321/callback",
        "http://127.0.0.1:1/callback",
    ] {
        assert_to_login(
            &browser.authorize(&query_for("app", Some(ok), "")).await,
            ok,
        );
    }
    for bad in [
        "http://127.0.0.1:54321/other",
        "http://localhost:54321/callback",
    ] {
        let r = browser
            .authorize(&query_for("app", Some(bad), "&state=xyz"))
            .await;
        assert_error_page(r, bad).await;
    }
}

#[tokio::test]
async fn loopback_flow_returns_to_the_requested_port() {
    let server = setup().await;
    // A port the OS considers free right now, as a native app would pick.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let loc = server
        .browser()
        .authorize_and_approve(&query_for("app", Some(&redirect), "&state=s1"), "alice")
        .await;
    assert_code(&server, &loc, &redirect, Some("s1"));
}

// --- PKCE: checked before any login page --------------------------------------------------

#[tokio::test]
async fn missing_code_challenge_is_invalid_request() {
    let server = setup().await;
    let r = server
        .browser()
        .authorize(&without_pkce("&code_challenge_method=S256&state=xyz"))
        .await;
    assert_redirected_error(&server, &r, APP_REDIRECT, "invalid_request", Some("xyz"));
}

#[tokio::test]
async fn missing_challenge_method_is_invalid_request_for_strict_clients() {
    let server = setup().await;
    let r = server
        .browser()
        .authorize(&without_pkce(&format!(
            "&code_challenge={CHALLENGE}&state=xyz"
        )))
        .await;
    assert_redirected_error(&server, &r, APP_REDIRECT, "invalid_request", Some("xyz"));
}

#[tokio::test]
async fn plain_challenge_method_is_refused() {
    let server = setup().await;
    let r = server
        .browser()
        .authorize(&without_pkce(&format!(
            "&code_challenge={CHALLENGE}&code_challenge_method=plain&state=xyz"
        )))
        .await;
    assert_redirected_error(&server, &r, APP_REDIRECT, "invalid_request", Some("xyz"));
}

#[tokio::test]
async fn unknown_challenge_method_is_refused() {
    let server = setup().await;
    let r = server
        .browser()
        .authorize(&without_pkce(&format!(
            "&code_challenge={CHALLENGE}&code_challenge_method=S512&state=xyz"
        )))
        .await;
    assert_redirected_error(&server, &r, APP_REDIRECT, "invalid_request", Some("xyz"));
}

#[tokio::test]
async fn malformed_challenge_is_refused() {
    let server = setup().await;
    let browser = server.browser();
    let short = &CHALLENGE[..42];
    let plus = format!("+{}", &CHALLENGE[1..]);
    assert_eq!(plus.len(), 43);
    for challenge in [short, plus.as_str()] {
        let r = browser
            .authorize(&without_pkce(&format!(
                "&code_challenge={}&code_challenge_method=S256&state=xyz",
                encode(challenge)
            )))
            .await;
        assert_redirected_error(&server, &r, APP_REDIRECT, "invalid_request", Some("xyz"));
    }
}

#[tokio::test]
async fn liferay_compat_accepts_a_missing_method() {
    let server = setup().await;
    server
        .client("legacy", |a| a.pkce = "liferay-compat".into())
        .await;
    let query = format!(
        "response_type=code&client_id=legacy&redirect_uri={}&code_challenge={CHALLENGE}&state=xyz",
        encode(APP_REDIRECT)
    );
    assert_to_login(&server.browser().authorize(&query).await, "liferay-compat");
}

// --- Other request errors: redirected with error, state and iss ---------------------------

#[tokio::test]
async fn missing_response_type_is_invalid_request() {
    let server = setup().await;
    let query = format!(
        "client_id=app&redirect_uri={}&code_challenge={CHALLENGE}&code_challenge_method=S256&state=xyz",
        encode(APP_REDIRECT)
    );
    let r = server.browser().authorize(&query).await;
    assert_redirected_error(&server, &r, APP_REDIRECT, "invalid_request", Some("xyz"));
}

#[tokio::test]
async fn token_response_type_is_unsupported() {
    let server = setup().await;
    let query = format!(
        "response_type=token&client_id=app&redirect_uri={}&code_challenge={CHALLENGE}&code_challenge_method=S256&state=xyz",
        encode(APP_REDIRECT)
    );
    let r = server.browser().authorize(&query).await;
    assert_redirected_error(
        &server,
        &r,
        APP_REDIRECT,
        "unsupported_response_type",
        Some("xyz"),
    );
}

#[tokio::test]
async fn repeated_state_or_scope_is_invalid_request() {
    let server = setup().await;
    let browser = server.browser();
    // Two states: neither can be echoed "exactly as sent".
    let r = browser.authorize(&app_query("&state=a&state=b")).await;
    assert_redirected_error(&server, &r, APP_REDIRECT, "invalid_request", None);
    let r = browser
        .authorize(&app_query("&scope=profile&scope=profile&state=xyz"))
        .await;
    assert_redirected_error(&server, &r, APP_REDIRECT, "invalid_request", Some("xyz"));
}

#[tokio::test]
async fn repeated_client_id_or_redirect_uri_is_an_error_page() {
    let server = setup().await;
    let browser = server.browser();
    let r = browser
        .authorize(&app_query("&client_id=app&state=xyz"))
        .await;
    assert_error_page(r, "repeated client_id").await;
    let r = browser
        .authorize(&app_query(&format!(
            "&redirect_uri={}&state=xyz",
            encode(APP_REDIRECT)
        )))
        .await;
    assert_error_page(r, "repeated redirect_uri").await;
}

#[tokio::test]
async fn scope_not_allowed_is_invalid_scope() {
    let server = setup().await;
    let r = server
        .browser()
        .authorize(&app_query("&scope=admin&state=xyz"))
        .await;
    assert_redirected_error(&server, &r, APP_REDIRECT, "invalid_scope", Some("xyz"));
    // An allowed scope plus one that is not is refused too.
    let r = server
        .browser()
        .authorize(&app_query("&scope=profile%20admin&state=xyz"))
        .await;
    assert_redirected_error(&server, &r, APP_REDIRECT, "invalid_scope", Some("xyz"));
}

#[tokio::test]
async fn state_with_special_characters_is_echoed_exactly() {
    let server = setup().await;
    let state = "a b&c=d/é";
    let extra = format!("&state={}", encode(state));
    let r = server
        .browser()
        .authorize(&app_query(&format!("&scope=admin{extra}")))
        .await;
    assert_redirected_error(&server, &r, APP_REDIRECT, "invalid_scope", Some(state));
    let loc = server
        .browser()
        .authorize_and_approve(&app_query(&extra), "alice")
        .await;
    assert_code(&server, &loc, APP_REDIRECT, Some(state));
}

#[tokio::test]
async fn client_without_code_grant_is_unauthorized() {
    let server = setup().await;
    server
        .client("refresher", |a| a.grants = vec!["refresh_token".into()])
        .await;
    let r = server
        .browser()
        .authorize(&query_for("refresher", Some(APP_REDIRECT), "&state=xyz"))
        .await;
    assert_redirected_error(
        &server,
        &r,
        APP_REDIRECT,
        "unauthorized_client",
        Some("xyz"),
    );
}

// --- Consent ------------------------------------------------------------------------------

#[tokio::test]
async fn deny_is_access_denied_and_final() {
    let server = setup().await;
    let browser = server.browser();
    let consent = authorize_and_login(&browser, &app_query("&state=xyz")).await;
    let (status, html) = browser.page(&consent).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let csrf = hidden(&html, "csrf").unwrap();
    let pending = hidden(&html, "pending").unwrap();
    let r = browser
        .post_form(
            "/consent",
            &[("csrf", &csrf), ("pending", &pending), ("decision", "deny")],
        )
        .await;
    assert_redirected_error(&server, &r, APP_REDIRECT, "access_denied", Some("xyz"));
    // The answered request cannot be turned into an approval afterwards.
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
    assert_error_page(r, "approve after deny").await;
}

#[tokio::test]
async fn confidential_client_consent_is_remembered() {
    let server = setup().await;
    server.client("conf", |a| a.confidential = true).await;
    let browser = server.browser();
    let query = query_for("conf", Some(APP_REDIRECT), "&scope=photos:read&state=s1");
    let consent = authorize_and_login(&browser, &query).await;
    assert_consent_page(&browser, &consent).await;
    let r = browser.decide(&consent, "approve").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_code(&server, &location(&r), APP_REDIRECT, Some("s1"));

    // Same browser, same request: straight back to the client with a new code.
    let query = query_for("conf", Some(APP_REDIRECT), "&scope=photos:read&state=s2");
    let r = browser.authorize(&query).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_code(&server, &location(&r), APP_REDIRECT, Some("s2"));
}

#[tokio::test]
async fn public_client_is_asked_every_time() {
    let server = setup().await;
    let browser = server.browser();
    let loc = browser
        .authorize_and_approve(&app_query("&scope=profile"), "alice")
        .await;
    assert_code(&server, &loc, APP_REDIRECT, None);
    let r = browser.authorize(&app_query("&scope=profile")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_consent_page(&browser, &location(&r)).await;
}

#[tokio::test]
async fn trusted_client_never_shows_consent() {
    let server = setup().await;
    server.client("trusted", |a| a.trusted = true).await;
    let browser = server.browser();
    let query = query_for("trusted", Some(APP_REDIRECT), "&scope=profile&state=t1");
    let consent = authorize_and_login(&browser, &query).await;
    // The consent step answers with the redirect itself, never with a page.
    let r = browser.get(&consent).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_code(&server, &location(&r), APP_REDIRECT, Some("t1"));
    // Signed in: the next request goes straight back to the client.
    let query = query_for("trusted", Some(APP_REDIRECT), "&scope=profile&state=t2");
    let r = browser.authorize(&query).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_code(&server, &location(&r), APP_REDIRECT, Some("t2"));
}

#[tokio::test]
async fn signed_in_browser_skips_login_for_another_client() {
    let server = setup().await;
    server.client("other", |_| {}).await;
    let browser = server.browser();
    let loc = browser.authorize_and_approve(&app_query(""), "alice").await;
    assert_code(&server, &loc, APP_REDIRECT, None);
    let r = browser
        .authorize(&query_for("other", Some(APP_REDIRECT), "&state=o1"))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let consent = location(&r);
    assert_consent_page(&browser, &consent).await;
    let r = browser.decide(&consent, "approve").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_code(&server, &location(&r), APP_REDIRECT, Some("o1"));
}

#[tokio::test]
async fn issued_code_is_accepted_at_the_token_endpoint() {
    let server = setup().await;
    let code = server.code_for(&server.browser(), "app", "").await;
    let r = server.token(&exchange_body("app", &code, VERIFIER)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert!(!r.str("access_token").is_empty());
}

// --- Metadata -----------------------------------------------------------------------------

#[tokio::test]
async fn metadata_matches_the_server() {
    let server = setup().await;
    let r = server
        .http()
        .get(server.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let content_type = r
        .headers()
        .get(CONTENT_TYPE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let doc: serde_json::Value = r.json().await.unwrap();
    let issuer = server.issuer();
    assert_eq!(doc["issuer"], issuer);
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{issuer}/o/oauth2/authorize")
    );
    assert_eq!(doc["token_endpoint"], format!("{issuer}/o/oauth2/token"));
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        doc["grant_types_supported"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);

    // Every advertised endpoint answers at its path on this server.
    let path_of = |field: &str| {
        doc[field]
            .as_str()
            .and_then(|u| u.strip_prefix(issuer))
            .unwrap_or_else(|| panic!("{field} is not under the issuer: {}", doc[field]))
            .to_owned()
    };
    let authorize = server
        .browser()
        .get(&path_of("authorization_endpoint"))
        .await;
    assert_error_page(authorize, "authorize without parameters").await;
    let token = server
        .http()
        .get(server.url(&path_of("token_endpoint")))
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), StatusCode::METHOD_NOT_ALLOWED);
}
