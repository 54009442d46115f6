//! Operations: liveness, readiness, metrics, and housekeeping with the clock moved.
use reqwest::StatusCode;

use oauthd::clock::Clock as _;
use oauthd::housekeeping;
use oauthd_core::secret::Secret;
use oauthd_store::TokenStatus;

use crate::common::*;

#[tokio::test]
async fn healthz_and_readyz_answer() {
    let server = TestServer::start().await;
    let r = server
        .http()
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = server
        .http()
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ready");
}

fn metric(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn metrics_count_requests_tokens_replays_and_reuses() {
    let server = TestServer::start_with(|c| c.refresh_grace_period = 0).await;
    server.app().await;
    server.user("alice").await;
    let scrape = || async {
        let r = server
            .http()
            .get(server.url("/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.text().await.unwrap()
    };
    // Counters are process-wide (every test server shares them): compare before and after.
    let before = scrape().await;
    let code = server.code_for(&server.browser(), "app", "").await;
    let first = server.token(&exchange_body("app", &code, VERIFIER)).await;
    assert_eq!(first.status, StatusCode::OK);
    server
        .token(&exchange_body("app", &code, VERIFIER))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    // The replay revoked that grant; rotation is shown on a second one.
    let refresh = server.tokens("app").await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        server.token(&refresh_body("app", &refresh)).await.status,
        StatusCode::OK
    );
    server
        .token(&refresh_body("app", &refresh))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    let after = scrape().await;
    let delta =
        |name: &str, labels: &str| metric(&after, name, labels) - metric(&before, name, labels);
    assert!(delta("oauthd_tokens_issued_total", "grant=\"authorization_code\"") >= 1.0);
    assert!(delta("oauthd_tokens_issued_total", "grant=\"refresh_token\"") >= 1.0);
    assert!(delta("oauthd_code_replays_total", "") >= 1.0);
    assert!(delta("oauthd_refresh_token_reuses_total", "") >= 1.0);
    assert!(
        delta(
            "oauthd_http_requests_total",
            "endpoint=\"/o/oauth2/token\",status=\"200\""
        ) >= 2.0
    );
    assert!(
        after.contains("oauthd_http_request_duration_seconds_bucket"),
        "latency histogram"
    );
    assert!(after.contains("oauthd_db_pool_connections"), "pool state");
}

#[tokio::test]
async fn housekeeping_removes_expired_rows_and_keeps_live_ones() {
    let server = TestServer::start().await;
    server.client("short", |a| a.refresh_token_ttl = 100).await;
    server.app().await;
    server.user("alice").await;
    let short = server.tokens("short").await;
    let long = server.tokens("app").await;
    let status = |kind: &'static str, token: String| {
        let store = server.store();
        let now = server.clock.now();
        async move {
            let hash = Secret::from_presented(token).hash();
            if kind == "access" {
                store.access_token_status(&hash, now).await.unwrap()
            } else {
                store.refresh_token_status(&hash, now).await.unwrap()
            }
        }
    };
    let text = |v: &serde_json::Value, f: &str| v[f].as_str().unwrap().to_owned();
    // Nothing has expired: nothing goes.
    housekeeping::run_once(server.store(), server.clock.now())
        .await
        .unwrap();
    assert_eq!(
        status("refresh", text(&short, "refresh_token")).await,
        TokenStatus::Active
    );
    // Past 100 s the short refresh token is gone; access tokens (600 s) and the long refresh
    // token (3600 s) stay.
    server.clock.advance(101);
    assert!(
        housekeeping::run_once(server.store(), server.clock.now())
            .await
            .unwrap()
            >= 1
    );
    assert_eq!(
        status("refresh", text(&short, "refresh_token")).await,
        TokenStatus::Unknown
    );
    assert_eq!(
        status("refresh", text(&long, "refresh_token")).await,
        TokenStatus::Active
    );
    assert_eq!(
        status("access", text(&long, "access_token")).await,
        TokenStatus::Active
    );
    // Past 600 s the access tokens go; the long refresh token still works.
    server.clock.advance(500);
    housekeeping::run_once(server.store(), server.clock.now())
        .await
        .unwrap();
    assert_eq!(
        status("access", text(&long, "access_token")).await,
        TokenStatus::Unknown
    );
    let r = server
        .token(&refresh_body("app", &text(&long, "refresh_token")))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
}
