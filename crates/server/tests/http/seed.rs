//! The seed's worked example: word for word in liferay-compat, refused by a strict client.
use reqwest::StatusCode;

use oauthd::demo;

use crate::common::*;

/// The seed's authorize query (Liferay PKCE sub-task, "First part").
const SEED_QUERY: &str = "response_type=code&client_id=54321&redirect_uri=myapp://oauth2redirect&code_challenge=n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg";

#[tokio::test]
async fn seed_example_works_word_for_word_on_the_demo_client() {
    let server = TestServer::start().await;
    let password = demo::seed(server.store(), START).await.unwrap().password;
    let browser = server.browser();
    let login = location(&browser.authorize(SEED_QUERY).await);
    let consent = location(
        &browser
            .login(&login, demo::USERNAME, password.expose())
            .await,
    );
    let back = location(&browser.decide(&consent, "approve").await);
    assert!(back.starts_with("myapp://oauth2redirect?code="), "{back}");
    assert_eq!(param(&back, "iss").as_deref(), Some(server.issuer()));
    let code = param(&back, "code").unwrap();
    // Second part, the exact form body the seed's curl sends.
    let body = format!(
        "grant_type=authorization_code&client_id=54321&redirect_uri=myapp://oauth2redirect&code_verifier=test&code={code}"
    );
    let r = server.token(&body).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(r.json["token_type"], "Bearer");
    assert_eq!(r.json["expires_in"], 600);
    assert!(r.str("access_token").starts_with("oat_"));
    assert!(r.str("refresh_token").starts_with("ort_"));
    r.assert_no_store();
}

#[tokio::test]
async fn a_strict_client_refuses_the_seed_request_with_a_clear_invalid_request() {
    let server = TestServer::start().await;
    server
        .client("54321", |a| {
            a.redirect_uris = vec!["myapp://oauth2redirect".into()];
            a.scopes = vec![];
        })
        .await;
    let r = server
        .browser()
        .authorize(&format!("{SEED_QUERY}&state=s1"))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let back = location(&r);
    assert!(back.starts_with("myapp://oauth2redirect?"), "{back}");
    assert_eq!(param(&back, "error").as_deref(), Some("invalid_request"));
    let description = param(&back, "error_description").unwrap();
    assert!(
        description.contains("code_challenge_method") && description.contains("S256"),
        "{description}"
    );
    assert_eq!(param(&back, "state").as_deref(), Some("s1"));
    assert_eq!(param(&back, "iss").as_deref(), Some(server.issuer()));
    assert!(param(&back, "code").is_none());
}
