//! The server limited to one CPU runs every request on one thread, and serves a whole flow.
use crate::flow::*;
use crate::process::*;

/// Limited to one CPU (as by a container or `taskset`), `oauthd serve` says it runs every
/// request on one thread, and a native app's whole flow works: sign-in, code exchange with
/// PKCE, refresh, introspection; then a graceful stop.
#[tokio::test]
async fn on_one_cpu_a_whole_flow_works() {
    let (_dir, db) = temp_db();
    create_user(&db, "alice");
    create_app(&db, "photo-app", "photos.read", &[]);
    let api_secret = create_api(&db, "photos-api");
    let (child, base, log) = start_on_one_cpu(&db).await;
    assert!(
        log.contains("one CPU available: every request runs on one thread"),
        "{log}"
    );
    let tokens = tokens_for(&base, "photo-app", "photos.read", "alice").await;
    let access = oauth2::TokenResponse::access_token(&tokens)
        .secret()
        .clone();
    let info = introspect(&base, ("photos-api", &api_secret), &access).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["client_id"], "photo-app", "{info}");
    let refresh = oauth2::TokenResponse::refresh_token(&tokens)
        .expect("a refresh token")
        .secret()
        .clone();
    let r = http()
        .post(format!("{base}/o/oauth2/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("client_id", "photo-app"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_ne!(
        body["refresh_token"].as_str(),
        Some(refresh.as_str()),
        "{body}"
    );
    stop(child).await;
}
