//! The browser pages: login, consent, logout, their headers, cookies, CSRF protection,
//! throttling and escaping (DESIGN §3 "Browser pages").
use oauthd::clock::Clock;
use oauthd_core::form::encode;
use oauthd_core::secret::{Secret, SecretHash};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION, RETRY_AFTER, SET_COOKIE};

use crate::common::*;

const WRONG_CREDENTIALS: &str = "The username or password is incorrect.";

fn app_query(extra: &str) -> String {
    format!(
        "response_type=code&client_id=app&redirect_uri={}&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}",
        encode(APP_REDIRECT)
    )
}

fn query_for(client_id: &str, extra: &str) -> String {
    format!(
        "response_type=code&client_id={client_id}&redirect_uri={}&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}",
        encode(APP_REDIRECT)
    )
}

async fn setup() -> TestServer {
    let server = TestServer::start().await;
    server.app().await;
    server.user("alice").await;
    server
}

/// Start a request in `browser`; the `/login?pending=…` it is sent to.
async fn start(browser: &Browser, query: &str) -> String {
    let r = browser.authorize(query).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = location(&r);
    assert!(loc.starts_with("/login?pending="), "{loc}");
    loc
}

/// Start a request and sign in as alice; the `/consent?pending=…` path.
async fn signed_in(browser: &Browser, query: &str) -> String {
    let login = start(browser, query).await;
    let r = browser.login(&login, "alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = location(&r);
    assert!(loc.starts_with("/consent?pending="), "{loc}");
    loc
}

/// The consent page's (csrf, pending) fields.
async fn consent_form(browser: &Browser, consent: &str) -> (String, String) {
    let (status, html) = browser.page(consent).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    (
        hidden(&html, "csrf").unwrap(),
        hidden(&html, "pending").unwrap(),
    )
}

/// The login page's csrf field.
async fn login_csrf(browser: &Browser, path: &str) -> String {
    let (status, html) = browser.page(path).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    hidden(&html, "csrf").unwrap()
}

/// Our own HTML error page with this status, never a redirect.
async fn assert_page(r: reqwest::Response, status: StatusCode, what: &str) -> String {
    let got = r.status();
    let loc = r.headers().get(LOCATION).cloned();
    let content_type = r
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = r.text().await.unwrap();
    assert_eq!(got, status, "{what}: {body}");
    assert!(loc.is_none(), "{what}: unexpected Location {loc:?}");
    assert!(
        content_type.starts_with("text/html"),
        "{what}: {content_type}"
    );
    body
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

/// The `oauthd_session` Set-Cookie header of a response, if any.
fn session_set_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("oauthd_session="))
}

fn assert_security_headers(r: &reqwest::Response, what: &str) {
    let csp = header(r, "content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("frame-ancestors 'none'"),
        "{what}: CSP {csp:?}"
    );
    assert_eq!(
        header(r, "x-frame-options").as_deref(),
        Some("DENY"),
        "{what}"
    );
    assert_eq!(
        header(r, "referrer-policy").as_deref(),
        Some("no-referrer"),
        "{what}"
    );
    assert_eq!(
        header(r, "x-content-type-options").as_deref(),
        Some("nosniff"),
        "{what}"
    );
}

#[tokio::test]
async fn pages_send_security_headers() {
    let server = setup().await;
    let browser = server.browser();
    let login = start(&browser, &app_query("")).await;
    let r = browser.get(&login).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_security_headers(&r, "login page");

    let consent = signed_in(&browser, &app_query("")).await;
    let r = browser.get(&consent).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_security_headers(&r, "consent page");

    let r = browser.get("/o/oauth2/authorize?client_id=nobody").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_security_headers(&r, "error page");

    let r = browser.get("/logout").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_security_headers(&r, "logout page");
}

#[tokio::test]
async fn session_cookie_is_http_only_lax_and_stored_hashed() {
    let server = setup().await;
    assert!(
        server.issuer().starts_with("http://"),
        "{}",
        server.issuer()
    );
    let browser = server.browser();
    let login = start(&browser, &app_query("")).await;
    let r = browser.login(&login, "alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = session_set_cookie(&r).expect("a session cookie after login");
    let mut parts = cookie.split(';').map(str::trim);
    let value = parts
        .next()
        .unwrap()
        .strip_prefix("oauthd_session=")
        .unwrap()
        .to_owned();
    let attributes: Vec<String> = parts.map(str::to_ascii_lowercase).collect();
    assert!(attributes.iter().any(|a| a == "httponly"), "{cookie}");
    assert!(attributes.iter().any(|a| a == "samesite=lax"), "{cookie}");
    assert!(
        !attributes.iter().any(|a| a == "secure"),
        "no Secure on an http issuer: {cookie}"
    );
    assert!(!value.is_empty());

    let now = server.clock.now();
    let in_clear = server
        .store()
        .session(&SecretHash::from_stored(value.clone()), now)
        .await
        .unwrap();
    assert!(in_clear.is_none(), "the session id is stored in clear");
    let hashed = server
        .store()
        .session(&Secret::from_presented(value).hash(), now)
        .await
        .unwrap();
    assert!(
        hashed.is_some(),
        "the session is stored under the id's hash"
    );
}

#[tokio::test]
async fn login_success_is_a_303_to_consent() {
    let server = setup().await;
    let browser = server.browser();
    let login = start(&browser, &app_query("")).await;
    let pending = param(&login, "pending").unwrap();
    let r = browser.login(&login, "alice", PASSWORD).await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "a redirect after POST is a 303"
    );
    let loc = location(&r);
    assert!(loc.starts_with("/consent?pending="), "{loc}");
    assert_eq!(param(&loc, "pending"), Some(pending));
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let server = setup().await;
    let browser = server.browser();
    let login = start(&browser, &app_query("")).await;

    let r = browser.login(&login, "alice", "wrong password").await;
    assert!(session_set_cookie(&r).is_none());
    let wrong = assert_page(r, StatusCode::UNAUTHORIZED, "wrong password").await;
    assert!(wrong.contains(WRONG_CREDENTIALS), "{wrong}");

    let r = browser.login(&login, "nobody", "wrong password").await;
    assert!(session_set_cookie(&r).is_none());
    let unknown = assert_page(r, StatusCode::UNAUTHORIZED, "unknown user").await;
    assert!(unknown.contains(WRONG_CREDENTIALS), "{unknown}");
}

/// `attempts` failed logins for `username`, each answered 401.
async fn fail_logins(browser: &Browser, login: &str, username: &str, attempts: usize) {
    for i in 1..=attempts {
        let r = browser.login(login, username, "wrong password").await;
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "failure {i} for {username}"
        );
    }
}

/// A login refused while throttled: 429, a Retry-After in seconds, no session.
async fn assert_throttled(r: reqwest::Response) -> i64 {
    assert!(
        session_set_cookie(&r).is_none(),
        "no session while throttled"
    );
    let retry_after = header(&r, RETRY_AFTER.as_str()).expect("Retry-After");
    let wait: i64 = retry_after.parse().expect("Retry-After in seconds");
    assert!(wait > 0, "{wait}");
    assert_page(r, StatusCode::TOO_MANY_REQUESTS, "throttled").await;
    wait
}

#[tokio::test]
async fn failed_logins_are_throttled_even_for_the_right_password() {
    let server = setup().await;
    let browser = server.browser();
    let login = start(&browser, &app_query("")).await;
    // Five failures are free; the sixth locks the account.
    fail_logins(&browser, &login, "alice", 6).await;
    let r = browser.login(&login, "alice", PASSWORD).await;
    let wait = assert_throttled(r).await;

    server.clock.advance(wait);
    let r = browser.login(&login, "alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(&r).starts_with("/consent?pending="));
    assert!(session_set_cookie(&r).is_some());
}

#[tokio::test]
async fn unknown_usernames_are_throttled_the_same_way() {
    let server = setup().await;
    let browser = server.browser();
    let login = start(&browser, &app_query("")).await;
    fail_logins(&browser, &login, "mallory", 6).await;
    let r = browser.login(&login, "mallory", "another guess").await;
    assert_throttled(r).await;
}

#[tokio::test]
async fn consent_without_csrf_is_refused_and_harmless() {
    let server = setup().await;
    let browser = server.browser();
    let consent = signed_in(&browser, &app_query("&state=c1")).await;
    let (csrf, pending) = consent_form(&browser, &consent).await;
    let r = browser
        .post_form(
            "/consent",
            &[("pending", &pending), ("decision", "approve")],
        )
        .await;
    assert_page(r, StatusCode::FORBIDDEN, "consent without csrf").await;
    // The request was not consumed: the real form still works.
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
    let loc = location(&r);
    assert!(loc.starts_with(&format!("{APP_REDIRECT}?")), "{loc}");
    assert!(param(&loc, "code").is_some(), "{loc}");
    assert_eq!(param(&loc, "state").as_deref(), Some("c1"));
}

#[tokio::test]
async fn consent_with_forged_csrf_is_refused() {
    let server = setup().await;
    let browser = server.browser();
    let consent = signed_in(&browser, &app_query("")).await;
    let (csrf, pending) = consent_form(&browser, &consent).await;
    // Another browser's genuine token is no better than a made-up one.
    let other = server.browser();
    let other_csrf = login_csrf(&other, "/login").await;
    assert_ne!(other_csrf, csrf);
    for forged in ["forged-csrf-value", other_csrf.as_str()] {
        let r = browser
            .post_form(
                "/consent",
                &[
                    ("csrf", forged),
                    ("pending", &pending),
                    ("decision", "approve"),
                ],
            )
            .await;
        assert_page(r, StatusCode::FORBIDDEN, forged).await;
    }
}

#[tokio::test]
async fn login_with_wrong_csrf_is_refused() {
    let server = setup().await;
    let browser = server.browser();
    let login = start(&browser, &app_query("")).await;
    let pending = param(&login, "pending").unwrap();
    let csrf = login_csrf(&browser, &login).await;
    let r = browser
        .post_form(
            "/login",
            &[
                ("csrf", "wrong-csrf"),
                ("pending", &pending),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert!(session_set_cookie(&r).is_none());
    assert_page(r, StatusCode::FORBIDDEN, "login with wrong csrf").await;
    // Control: the same post with the page's token signs in.
    let r = browser
        .post_form(
            "/login",
            &[
                ("csrf", &csrf),
                ("pending", &pending),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn logout_without_csrf_is_refused() {
    let server = setup().await;
    let browser = server.browser();
    let loc = browser.authorize_and_approve(&app_query(""), "alice").await;
    assert!(param(&loc, "code").is_some(), "{loc}");
    let r = browser.post_form("/logout", &[]).await;
    assert_page(r, StatusCode::FORBIDDEN, "logout without csrf").await;
    // Still signed in: the next request goes to consent, not to login.
    let r = browser.authorize(&app_query("")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = location(&r);
    assert!(loc.starts_with("/consent?pending="), "{loc}");
}

#[tokio::test]
async fn resubmitting_an_answered_consent_is_refused() {
    let server = setup().await;
    let browser = server.browser();
    let consent = signed_in(&browser, &app_query("")).await;
    let (csrf, pending) = consent_form(&browser, &consent).await;
    let fields = [
        ("csrf", csrf.as_str()),
        ("pending", pending.as_str()),
        ("decision", "approve"),
    ];
    let r = browser.post_form("/consent", &fields).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(param(&location(&r), "code").is_some());
    // The back button and the same form again: no second code.
    let r = browser.post_form("/consent", &fields).await;
    assert_page(r, StatusCode::BAD_REQUEST, "second approval").await;
}

#[tokio::test]
async fn logout_ends_the_session() {
    let server = setup().await;
    let browser = server.browser();
    browser.authorize_and_approve(&app_query(""), "alice").await;
    let (status, html) = browser.page("/logout").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains(r#"<form method="post" action="/logout">"#),
        "{html}"
    );
    let csrf = hidden(&html, "csrf").expect("csrf on the logout form");
    let r = browser.post_form("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    start(&browser, &app_query("")).await;
}

#[tokio::test]
async fn client_name_is_escaped_on_the_pages() {
    let server = setup().await;
    server
        .client("evil", |a| a.name = "<script>alert(1)</script>".into())
        .await;
    let browser = server.browser();
    let login = start(&browser, &query_for("evil", "")).await;
    let escaped = |html: &str| html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;");

    let (status, html) = browser.page(&login).await;
    assert_eq!(status, StatusCode::OK);
    assert!(escaped(&html), "{html}");
    assert!(!html.contains("<script>alert(1)"), "{html}");

    let r = browser.login(&login, "alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (status, html) = browser.page(&location(&r)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(r#"name="decision" value="approve""#),
        "{html}"
    );
    assert!(escaped(&html), "{html}");
    assert!(!html.contains("<script>alert(1)"), "{html}");
}

#[tokio::test]
async fn pending_request_is_bound_to_its_browser() {
    let server = setup().await;
    // A trusted client: were the binding missing, the consent step would issue a code at once.
    server.client("trusted", |a| a.trusted = true).await;
    let victim = server.browser();
    let login = start(&victim, &query_for("trusted", "&state=v1")).await;
    let pending = param(&login, "pending").unwrap();

    // Another browser, signed in on its own.
    let attacker = server.browser();
    let loc = attacker
        .authorize_and_approve(&app_query(""), "alice")
        .await;
    assert!(param(&loc, "code").is_some(), "{loc}");
    let theirs = format!("?pending={}", encode(&pending));

    let r = attacker.get(&format!("/login{theirs}")).await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "the login page must not move the request on"
    );
    let html = r.text().await.unwrap();
    assert_eq!(hidden(&html, "pending"), None, "{html}");

    let r = attacker.get(&format!("/consent{theirs}")).await;
    let body = assert_page(
        r,
        StatusCode::BAD_REQUEST,
        "consent page in another browser",
    )
    .await;
    assert!(body.contains("already answered"), "{body}");

    let csrf = login_csrf(&attacker, "/login").await;
    let r = attacker
        .post_form(
            "/consent",
            &[
                ("csrf", &csrf),
                ("pending", &pending),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_page(
        r,
        StatusCode::BAD_REQUEST,
        "consent post in another browser",
    )
    .await;

    // The request still belongs to, and works in, the browser that started it.
    let r = victim.login(&login, "alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = victim.get(&location(&r)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = location(&r);
    assert!(loc.starts_with(&format!("{APP_REDIRECT}?")), "{loc}");
    assert!(param(&loc, "code").is_some(), "{loc}");
    assert_eq!(param(&loc, "state").as_deref(), Some("v1"));
}

#[tokio::test]
async fn stylesheet_is_served() {
    let server = TestServer::start().await;
    let r = server.browser().get("/assets/oauthd.css").await;
    assert_eq!(r.status(), StatusCode::OK);
    let content_type = header(&r, CONTENT_TYPE.as_str()).unwrap_or_default();
    assert!(content_type.starts_with("text/css"), "{content_type}");
    assert!(!r.text().await.unwrap().is_empty());
}

#[tokio::test]
async fn unknown_path_is_a_404_page() {
    let server = TestServer::start().await;
    let r = server.browser().get("/no/such/page").await;
    let body = assert_page(r, StatusCode::NOT_FOUND, "unknown path").await;
    assert!(body.contains("<!DOCTYPE html>"), "{body}");
}

/// Pages carry CSRF tokens and request ids: they are never stored by a cache, so Back shows
/// the server's current answer rather than a stale form.
#[tokio::test]
async fn pages_are_never_cached() {
    let server = TestServer::start().await;
    server.app().await;
    server.user("alice").await;
    let browser = server.browser();
    let login = location(&browser.authorize(&format!(
        "response_type=code&client_id=app&redirect_uri={}&code_challenge={CHALLENGE}&code_challenge_method=S256",
        oauthd_core::form::encode(APP_REDIRECT)
    )).await);
    let no_store = |r: &reqwest::Response| {
        r.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let r = browser.get(&login).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(no_store(&r).as_deref(), Some("no-store"), "login page");
    let consent = location(&browser.login(&login, "alice", PASSWORD).await);
    for path in [
        consent.as_str(),
        "/logout",
        "/o/oauth2/authorize?client_id=unknown",
    ] {
        let r = browser.get(path).await;
        assert!(
            r.status() == StatusCode::OK || r.status() == StatusCode::BAD_REQUEST,
            "{path}"
        );
        assert_eq!(no_store(&r).as_deref(), Some("no-store"), "{path}");
    }
}
