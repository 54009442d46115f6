//! A relying party built on the `openidconnect` crate against the real binary: discovery,
//! PKCE S256 with a nonce, a loopback redirect listener, code exchange, ID token
//! verification through the JWKS the crate fetched (iss, aud, alg, signature, nonce), the
//! at_hash, and userinfo.
use std::collections::HashMap;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse as _, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse as _,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use crate::process::*;

/// Accept one request on the loopback listener, as the app's redirect handler; returns the
/// query parameters it carried.
async fn receive_redirect(listener: TcpListener) -> HashMap<String, String> {
    let (mut socket, _) = listener.accept().await.unwrap();
    let mut buf = vec![0u8; 8192];
    let n = socket.read(&mut buf).await.unwrap();
    let request = String::from_utf8_lossy(&buf[..n]).into_owned();
    let target = request.split(' ').nth(1).unwrap().to_owned();
    let body = "Signed in; return to the app.";
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(response.as_bytes()).await.unwrap();
    url::Url::parse(&format!("http://127.0.0.1{target}"))
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn cli_ok(args: &[&str], stdin: Option<&str>) -> String {
    let (code, out, err) = run(args, stdin);
    assert_eq!(code, 0, "{args:?}: {err}");
    out
}

/// The whole relying-party flow for a client whose ID tokens are signed with `id_token_alg`.
async fn relying_party_flow(id_token_alg: &str, crate_alg: CoreJwsSigningAlgorithm) {
    let (_dir, db) = temp_db();
    cli_ok(
        &[
            "client",
            "create",
            "--database",
            &db,
            "--name",
            "Photo app",
            "--client-id",
            "photo-app",
            "--redirect-uri",
            "http://127.0.0.1/callback",
            "--scope",
            "openid",
            "--scope",
            "profile",
            "--scope",
            "email",
            "--id-token-alg",
            id_token_alg,
        ],
        None,
    );
    cli_ok(
        &[
            "user",
            "create",
            "--database",
            &db,
            "--username",
            "alice",
            "--email",
            "alice@example.com",
            "--name",
            "Alice Liddell",
            "--password-stdin",
        ],
        Some("s3cret-password\n"),
    );
    // The default issuer is http://localhost:PORT, and localhost is this loopback address:
    // every URL the discovery document advertises is reachable as is, and matches the issuer.
    let served = serve(&["--database", &db]).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(served.issuer.clone()).unwrap(), &http)
            .await
            .expect("discovery (issuer match, JWKS fetch)");
    assert_eq!(metadata.issuer().as_str(), served.issuer);
    assert!(
        metadata
            .id_token_signing_alg_values_supported()
            .contains(&crate_alg)
    );
    assert!(
        metadata.jwks().keys().len() >= 3,
        "the crate parsed every published key (EC, OKP, RSA)"
    );

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirect = format!(
        "http://127.0.0.1:{}/callback",
        listener.local_addr().unwrap().port()
    );
    let client =
        CoreClient::from_provider_metadata(metadata, ClientId::new("photo-app".into()), None)
            .set_redirect_uri(RedirectUrl::new(redirect.clone()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let query: HashMap<String, String> = auth_url.query_pairs().into_owned().collect();
    assert_eq!(query["scope"], "openid profile email");
    assert_eq!(query["code_challenge_method"], "S256");

    // The browser talks to the bound address (its cookies are per host).
    let browser_url = auth_url.as_str().replacen(&served.issuer, &served.base, 1);
    let redirect_task = tokio::spawn(receive_redirect(listener));
    let browser = browser();
    let back = sign_in_and_approve(
        &browser,
        &served.base,
        &browser_url,
        "alice",
        "s3cret-password",
    )
    .await;
    assert!(back.starts_with(&format!("{redirect}?")), "{back}");
    browser.get(&back).send().await.unwrap();
    let params = redirect_task.await.unwrap();
    assert_eq!(params.get("state"), Some(csrf.secret()), "state echoed");
    assert_eq!(params.get("iss"), Some(&served.issuer), "RFC 9207 iss");

    let tokens = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .expect("token endpoint discovered")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("an ID token for scope openid");

    let id_verifier = client
        .id_token_verifier()
        .set_allowed_algs(vec![crate_alg.clone()]);
    let claims = id_token
        .claims(&id_verifier, &nonce)
        .expect("the crate verifies the ID token");
    assert_eq!(claims.issuer().as_str(), served.issuer);
    assert_eq!(claims.audiences().len(), 1);
    assert_eq!(claims.audiences()[0].as_str(), "photo-app");
    assert_eq!(
        claims.authorized_party().map(|p| p.as_str()),
        Some("photo-app")
    );
    assert_eq!(claims.nonce().map(|n| n.secret()), Some(nonce.secret()));
    assert!(claims.auth_time().is_some(), "auth_time");
    assert!(claims.expiration() > claims.issue_time());
    assert_eq!(id_token.signing_alg().unwrap(), &crate_alg);

    // A different nonce is refused: the check is real.
    assert!(
        id_token
            .claims(&id_verifier, &Nonce::new("another".into()))
            .is_err()
    );
    // A verifier for another client refuses it (aud).
    let other = CoreClient::from_provider_metadata(
        CoreProviderMetadata::discover_async(IssuerUrl::new(served.issuer.clone()).unwrap(), &http)
            .await
            .unwrap(),
        ClientId::new("someone-else".into()),
        None,
    );
    assert!(
        id_token
            .claims(
                &other
                    .id_token_verifier()
                    .set_allowed_algs(vec![crate_alg.clone()]),
                &nonce
            )
            .is_err()
    );

    // OIDC Core §3.1.3.8: at_hash binds the access token to the ID token.
    let expected = claims.access_token_hash().expect("at_hash");
    let actual = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(&actual, expected);

    let info: CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().to_owned(),
            Some(claims.subject().clone()),
        )
        .expect("userinfo endpoint discovered")
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(info.subject(), claims.subject());
    assert_eq!(info.email().map(|e| e.as_str()), Some("alice@example.com"));
    assert_eq!(info.email_verified(), Some(false));
    assert_eq!(
        info.name().and_then(|n| n.get(None)).map(|n| n.as_str()),
        Some("Alice Liddell")
    );
    assert_eq!(info.preferred_username().map(|u| u.as_str()), Some("alice"));
    // The granted scope, in whatever order the server lists it (RFC 6749 §3.3: a set).
    let mut granted: Vec<String> = tokens
        .scopes()
        .expect("scope in the token response")
        .iter()
        .map(|s| s.to_string())
        .collect();
    granted.sort();
    assert_eq!(granted, ["email", "openid", "profile"]);
}

#[tokio::test]
async fn openidconnect_crate_verifies_rs256_id_token_and_reads_userinfo() {
    relying_party_flow("RS256", CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256).await;
}

#[tokio::test]
async fn openidconnect_crate_verifies_es256_id_token() {
    relying_party_flow("ES256", CoreJwsSigningAlgorithm::EcdsaP256Sha256).await;
}
