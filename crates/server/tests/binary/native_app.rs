//! A native app built on the `oauth2` crate against the real binary: PKCE S256, a loopback
//! redirect listener on a random port (RFC 8252 §7.3), code exchange and refresh.
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, CsrfToken, PkceCodeChallenge, RedirectUrl, Scope,
    TokenResponse as _, TokenUrl,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use crate::process::*;

/// Accept one request on the loopback listener, as the app's redirect handler; returns the
/// request target (path and query).
async fn receive_redirect(listener: TcpListener) -> String {
    let (mut socket, _) = listener.accept().await.unwrap();
    let mut buf = vec![0u8; 8192];
    let n = socket.read(&mut buf).await.unwrap();
    let request = String::from_utf8_lossy(&buf[..n]).into_owned();
    let target = request.split(' ').nth(1).unwrap().to_owned();
    let body = "You can close this window and return to the app.";
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(response.as_bytes()).await.unwrap();
    target
}

#[tokio::test]
async fn oauth2_crate_native_app_with_loopback_redirect() {
    let (_dir, db) = temp_db();
    let (code, out, err) = run(
        &[
            "client",
            "create",
            "--database",
            &db,
            "--name",
            "Native",
            "--client-id",
            "native",
            "--redirect-uri",
            "http://127.0.0.1/callback",
            "--scope",
            "profile",
            "--json",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let created: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(created["client_id"], "native");
    assert!(
        created.get("client_secret").is_none(),
        "a public client has no secret"
    );
    let (code, _, err) = run(
        &[
            "user",
            "create",
            "--database",
            &db,
            "--username",
            "alice",
            "--password-stdin",
        ],
        Some("s3cret-password\n"),
    );
    assert_eq!(code, 0, "{err}");

    let served = serve(&["--database", &db]).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirect = format!(
        "http://127.0.0.1:{}/callback",
        listener.local_addr().unwrap().port()
    );
    let client = BasicClient::new(ClientId::new("native".into()))
        .set_auth_uri(AuthUrl::new(format!("{}/o/oauth2/authorize", served.base)).unwrap())
        .set_token_uri(TokenUrl::new(format!("{}/o/oauth2/token", served.base)).unwrap())
        .set_redirect_uri(RedirectUrl::new(redirect.clone()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();

    let redirect_task = tokio::spawn(receive_redirect(listener));
    let browser = browser();
    let back = sign_in_and_approve(
        &browser,
        &served.base,
        auth_url.as_str(),
        "alice",
        "s3cret-password",
    )
    .await;
    assert!(back.starts_with(&format!("{redirect}?")), "{back}");
    // The browser follows the redirect to the app's loopback listener.
    browser.get(&back).send().await.unwrap();
    let target = redirect_task.await.unwrap();
    let query = url::Url::parse(&format!("http://127.0.0.1{target}")).unwrap();
    let params: std::collections::HashMap<_, _> = query.query_pairs().into_owned().collect();
    assert_eq!(params.get("state"), Some(csrf.secret()), "state echoed");
    assert_eq!(params.get("iss"), Some(&served.issuer), "RFC 9207 iss");

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let tokens = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    assert!(tokens.access_token().secret().starts_with("oat_"));
    assert_eq!(tokens.expires_in().map(|d| d.as_secs()), Some(600));
    assert_eq!(
        tokens.scopes().map(|s| s[0].to_string()),
        Some("profile".into())
    );
    let refresh = tokens.refresh_token().expect("refresh token").clone();

    let refreshed = client
        .exchange_refresh_token(&refresh)
        .request_async(&http)
        .await
        .expect("refresh");
    assert_ne!(
        refreshed.access_token().secret(),
        tokens.access_token().secret()
    );
    let rotated = refreshed.refresh_token().expect("rotated refresh token");
    assert_ne!(rotated.secret(), refresh.secret());

    // The crate's own error type reports reuse of the rotated-out token as invalid_grant
    // once the grace period is over; within it the server answers with a fresh pair, so the
    // successor is checked instead: it was replaced and no longer works.
    let again = client
        .exchange_refresh_token(&refresh)
        .request_async(&http)
        .await
        .expect("lost-response grace");
    let err = client
        .exchange_refresh_token(rotated)
        .request_async(&http)
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("invalid_grant"), "{err:?}");
    drop(again);
}
