//! Hostile input: oversized requests, malformed encodings, redirect traps, header injection,
//! markup and SQL in every field, slow connections, and abuse limits. Each test checks that
//! nothing was issued or changed.
use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use oauthd_core::form::encode;

use crate::common::*;

fn authorize_query(redirect: &str, extra: &str) -> String {
    format!(
        "response_type=code&client_id=app&redirect_uri={}&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}",
        encode(redirect)
    )
}

/// A code obtained before the hostile requests must still work after them.
async fn code_still_redeems(server: &TestServer, code: &str) {
    let r = server.token(&exchange_body("app", code, VERIFIER)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
}

/// Send raw bytes and read the whole answer (the server closes the connection).
async fn raw(server: &TestServer, bytes: &[u8]) -> String {
    let mut conn = tokio::net::TcpStream::connect(server.server.addr)
        .await
        .unwrap();
    conn.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn oversized_body_uri_and_headers_are_refused() {
    let server = TestServer::start().await;
    server.app().await;
    server.user("alice").await;
    let code = server.code_for(&server.browser(), "app", "").await;

    let big_body = format!(
        "{}&pad={}",
        exchange_body("app", &code, VERIFIER),
        "a".repeat(20 * 1024)
    );
    let r = server.token(&big_body).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);

    let r = server
        .browser()
        .authorize(&authorize_query(
            APP_REDIRECT,
            &format!("&state={}", "s".repeat(9 * 1024)),
        ))
        .await;
    assert_eq!(r.status(), StatusCode::URI_TOO_LONG);
    // Refused before any handler, and still with the headers every response carries.
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");

    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "h".repeat(40 * 1024)
    );
    let answer = raw(&server, head.as_bytes()).await;
    assert!(
        answer.starts_with("HTTP/1.1 431") || answer.is_empty(),
        "{answer:.80}"
    );
    code_still_redeems(&server, &code).await;
}

#[tokio::test]
async fn malformed_encodings_are_invalid_requests() {
    let server = TestServer::start().await;
    server.app().await;
    server.user("alice").await;
    let code = server.code_for(&server.browser(), "app", "").await;
    for body in [
        format!("grant_type=authorization_code&client_id=app&code={code}&code_verifier=%zz"),
        format!("grant_type=authorization_code&client_id=app&code={code}&code_verifier=%C0%AF"),
        format!("grant_type=authorization_code&client_id=app&code={code}&code_verifier=%"),
    ] {
        server
            .token(&body)
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    }
    // Raw invalid UTF-8 in the body.
    let mut bytes =
        format!("grant_type=authorization_code&client_id=app&code={code}&code_verifier=")
            .into_bytes();
    bytes.extend([0xff, 0xfe]);
    let r = server
        .http()
        .post(server.url("/o/oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // A double-encoded code is a different (unknown) code, not a decoded one.
    let r = server
        .token(&exchange_body("app", &code.replace('_', "%255F"), VERIFIER))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Bad escapes in the authorize query: an error page, never a redirect.
    let r = server
        .browser()
        .authorize("client_id=app&redirect_uri=%zz")
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
    code_still_redeems(&server, &code).await;
}

#[tokio::test]
async fn redirect_uri_traps_never_redirect() {
    let server = TestServer::start().await;
    server
        .client("app", |a| {
            a.redirect_uris = vec!["http://127.0.0.1/callback".into(), "http://[::1]/cb".into()]
        })
        .await;
    for trap in [
        "http://127.0.0.1@evil.example/callback",
        "http://127.0.0.1:80@evil.example/callback",
        "http://evil.example#@127.0.0.1/callback",
        "HTTP://127.0.0.1/callback",
        "http://127.0.0.1/./callback",
        "http://127.0.0.1/x/../callback",
        "http://127.0.0.1/%2Fcallback",
        "http://127.0.0.1/callback%2F..%2Fevil",
        "http://127.1/callback",
        "http://2130706433/callback",
        "http://[::1]/callback",
        "http://[0:0:0:0:0:0:0:1]/cb",
        "http://localhost/callback",
        "http://127.0.0.1:8080@evil.example/callback",
    ] {
        let r = server
            .browser()
            .authorize(&authorize_query(trap, "&state=s"))
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{trap}");
        assert!(
            r.headers().get("location").is_none(),
            "{trap} must not redirect"
        );
    }
    // The real ones work, on any loopback port.
    for ok in ["http://127.0.0.1:4321/callback", "http://[::1]:4321/cb"] {
        let r = server.browser().authorize(&authorize_query(ok, "")).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{ok}");
    }
}

#[tokio::test]
async fn crlf_in_reflected_values_injects_no_header() {
    let server = TestServer::start().await;
    server.app().await;
    let r = server
        .browser()
        .authorize(&authorize_query(
            APP_REDIRECT,
            "&state=a%0D%0ASet-Cookie:%20injected=1",
        ))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let back = location(&r);
    assert!(!back.contains('\r') && !back.contains('\n'), "{back:?}");
    assert_eq!(param(&back, "error").as_deref(), Some("invalid_request"));
    assert_eq!(
        param(&back, "state"),
        None,
        "an unprintable state is not echoed"
    );
    assert!(
        r.headers()
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap().contains("injected"))
    );
    // CR/LF in other reflected values is percent-encoded in the Location.
    let r = server
        .browser()
        .authorize(&authorize_query(APP_REDIRECT, "&scope=a%0D%0Ab&state=ok"))
        .await;
    let back = location(&r);
    assert!(!back.contains('\r') && !back.contains('\n'), "{back:?}");
    assert_eq!(param(&back, "state").as_deref(), Some("ok"));
}

#[tokio::test]
async fn markup_is_escaped_on_every_page() {
    let server = TestServer::start().await;
    let xss = "<script>alert(1)</script>";
    server
        .client("app", |a| {
            a.name = format!("{xss} \"quoted\" & <b>bold</b>")
        })
        .await;
    server.user("alice").await;
    let browser = server.browser();
    let login = location(&browser.authorize(&authorize_query(APP_REDIRECT, "")).await);
    let (_, html) = browser.page(&login).await;
    assert!(
        !html.contains(xss)
            && (html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;")),
        "login page"
    );
    // The username is echoed back on a failed login: escaped.
    let r = browser
        .login(&login, "<img src=x onerror=alert(1)>", "wrong")
        .await;
    let html = r.text().await.unwrap();
    assert!(!html.contains("<img src=x"), "failed login page");
    let consent = location(&browser.login(&login, "alice", PASSWORD).await);
    let (_, html) = browser.page(&consent).await;
    assert!(
        !html.contains(xss) && !html.contains("<b>bold</b>"),
        "consent page"
    );
    // Error pages show fixed text only: the request's values are not reflected.
    let (_, html) = browser
        .page(&format!("/o/oauth2/authorize?client_id={}", encode(xss)))
        .await;
    assert!(!html.contains(xss), "error page");
}

#[tokio::test]
async fn sql_metacharacters_are_just_data() {
    let server = TestServer::start().await;
    server.app().await;
    server.user("alice").await;
    let browser = server.browser();
    let login = location(&browser.authorize(&authorize_query(APP_REDIRECT, "")).await);
    for username in [
        "alice' OR '1'='1",
        "alice'--",
        "\" OR \"\"=\"",
        "alice; DROP TABLE users; --",
    ] {
        let r = browser.login(&login, username, "' OR '1'='1").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{username}");
    }
    let state = "'; DROP TABLE clients; --";
    let back = browser
        .authorize_and_approve(
            &authorize_query(APP_REDIRECT, &format!("&state={}", encode(state))),
            "alice",
        )
        .await;
    assert_eq!(param(&back, "state").as_deref(), Some(state));
    let r = server
        .browser()
        .authorize(
            &authorize_query(APP_REDIRECT, "")
                .replace("client_id=app", "client_id=x'%20OR%201=1--"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    server
        .token(&exchange_body("app' OR '1'='1", "x", VERIFIER))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    // Everything is still there and still works.
    assert_eq!(server.store().clients().await.unwrap().len(), 1);
    assert_eq!(server.store().users().await.unwrap().len(), 1);
    let code = param(&back, "code").unwrap();
    code_still_redeems(&server, &code).await;
}

#[tokio::test]
async fn slow_and_idle_connections_are_cut() {
    let server = TestServer::start_with(|c| c.header_read_timeout = 1).await;
    let mut slow = tokio::net::TcpStream::connect(server.server.addr)
        .await
        .unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut idle = tokio::net::TcpStream::connect(server.server.addr)
        .await
        .unwrap();
    // The server closes both once the header timeout passes (well before this bound).
    for conn in [&mut slow, &mut idle] {
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await;
        match read {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            Ok(Ok(n)) => assert!(
                String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"),
                "closed with an answer"
            ),
            Err(_) => panic!("the connection was not cut"),
        }
    }
    // The server still serves others.
    let r = server
        .http()
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn token_endpoint_limits_requests_per_client() {
    let server = TestServer::start_with(|c| c.client_requests_per_second = 3).await;
    server.app().await;
    for _ in 0..3 {
        server
            .token("grant_type=refresh_token&client_id=app&refresh_token=ort_x")
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let r = server
        .token("grant_type=refresh_token&client_id=app&refresh_token=ort_x")
        .await;
    r.assert_error(StatusCode::TOO_MANY_REQUESTS, "temporarily_unavailable");
    assert_eq!(
        r.headers.get("retry-after").map(|v| v.to_str().unwrap()),
        Some("1")
    );
    server.clock.advance(1);
    server
        .token("grant_type=refresh_token&client_id=app&refresh_token=ort_x")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
}

#[tokio::test]
async fn repeated_wrong_client_secrets_lock_the_client_out() {
    let server = TestServer::start().await;
    let (_, secret) = server.client("conf", |a| a.confidential = true).await;
    let secret = secret.unwrap();
    let body = "grant_type=refresh_token&refresh_token=ort_x";
    for _ in 0..10 {
        server
            .token_with(body, Some(("conf", "wrong")))
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    server.token_with(body, Some(("conf", "wrong"))).await;
    // Locked now: even the right secret waits.
    let r = server
        .token_with(body, Some(("conf", secret.expose())))
        .await;
    r.assert_error(StatusCode::TOO_MANY_REQUESTS, "temporarily_unavailable");
    let wait: i64 = r
        .headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    server.clock.advance(wait);
    server
        .token_with(body, Some(("conf", secret.expose())))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
}
