//! The `oauth2` crate's revocation (RFC 7009) and introspection (RFC 7662) requests against
//! the real binary: an app revokes its tokens, an API (a resource-server client) introspects.
use std::collections::HashMap;

use oauth2::basic::{BasicClient, BasicTokenType};
use oauth2::{
    AccessToken, AsyncHttpClient as _, AuthUrl, AuthorizationCode, ClientId, ClientSecret,
    CsrfToken, HttpRequest, HttpResponse, IntrospectionUrl, PkceCodeChallenge, RedirectUrl,
    RevocationUrl, Scope, StandardRevocableToken, TokenIntrospectionResponse as _,
    TokenResponse as _, TokenUrl,
};

use crate::flow::*;
use crate::process::*;

/// The oauth2 crate refuses a revocation URL that is not https (RFC 7009 §2: "Clients MUST
/// verify that the URL is an HTTPS URL"), and oauthd speaks plain HTTP behind a TLS proxy.
/// This HTTP client plays the proxy: the crate is given https URLs, the requests go to the
/// loopback server in plain HTTP.
async fn tls_terminating_proxy(
    mut request: HttpRequest,
) -> Result<HttpResponse, oauth2::HttpClientError<reqwest::Error>> {
    let plain = request.uri().to_string().replacen("https://", "http://", 1);
    *request.uri_mut() = plain.parse().unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    http.call(request).await
}

struct Setup {
    _dir: tempfile::TempDir,
    served: Served,
    user_id: String,
    api_secret: String,
}

async fn setup() -> Setup {
    let (dir, db) = temp_db();
    create_app(&db, "photo-app", "photos.read", &[]);
    let api_secret = create_api(&db, "photos-api");
    let user_id = create_user(&db, "alice");
    let served = serve(&["--database", &db]).await;
    Setup {
        _dir: dir,
        served,
        user_id,
        api_secret,
    }
}

fn https(base: &str, path: &str) -> String {
    format!("{}{path}", base.replacen("http://", "https://", 1))
}

#[tokio::test]
async fn oauth2_crate_revokes_and_an_api_introspects() {
    let s = setup().await;
    let base = &s.served.base;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let app = BasicClient::new(ClientId::new("photo-app".into()))
        .set_auth_uri(AuthUrl::new(format!("{base}/o/oauth2/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(format!("{base}/o/oauth2/token")).unwrap())
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap())
        .set_revocation_url(RevocationUrl::new(https(base, "/o/oauth2/revoke")).unwrap());
    let api = BasicClient::new(ClientId::new("photos-api".into()))
        .set_client_secret(ClientSecret::new(s.api_secret.clone()))
        .set_introspection_url(
            IntrospectionUrl::new(format!("{base}/o/oauth2/introspect")).unwrap(),
        );

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, _csrf) = app
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("photos.read".into()))
        .set_pkce_challenge(challenge)
        .url();
    let back = sign_in_and_approve(
        &browser(),
        base,
        auth_url.as_str(),
        "alice",
        "s3cret-password",
    )
    .await;
    let params: HashMap<_, _> = url::Url::parse(&back)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let tokens = app
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let access = tokens.access_token().clone();
    let refresh = tokens.refresh_token().expect("refresh token").clone();

    // RFC 7662 §2.2: an active token, described.
    let info = api
        .introspect(&access)
        .request_async(&http)
        .await
        .expect("introspection");
    assert!(info.active());
    assert_eq!(info.sub(), Some(s.user_id.as_str()));
    assert_eq!(info.username(), Some("alice"));
    assert_eq!(
        info.scopes()
            .map(|v| v.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        Some(vec!["photos.read".to_owned()])
    );
    assert_eq!(info.client_id().map(|c| c.as_str()), Some("photo-app"));
    assert_eq!(info.token_type(), Some(&BasicTokenType::Bearer));
    assert_eq!(info.iss(), Some(s.served.issuer.as_str()));
    let (exp, iat) = (info.exp().unwrap(), info.iat().unwrap());
    assert_eq!((exp - iat).num_seconds(), 600);

    // Only an API may introspect: the app's own attempt is refused.
    let app_introspects = BasicClient::new(ClientId::new("photo-app".into()))
        .set_introspection_url(
            IntrospectionUrl::new(format!("{base}/o/oauth2/introspect")).unwrap(),
        );
    let err = app_introspects
        .introspect(&access)
        .request_async(&http)
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("invalid_client"), "{err:?}");

    // The app revokes its access token: the API now sees it inactive, and nothing more.
    app.revoke_token(StandardRevocableToken::AccessToken(access.clone()))
        .expect("https revocation URL")
        .request_async(&tls_terminating_proxy)
        .await
        .expect("revocation");
    let info = api.introspect(&access).request_async(&http).await.unwrap();
    assert!(!info.active());
    assert_eq!(info.sub(), None);
    assert_eq!(info.username(), None);
    assert_eq!(info.scopes(), None);
    // Revoking the access token left the grant alone: the refresh token still works.
    let info = api
        .introspect(&AccessToken::new(refresh.secret().clone()))
        .request_async(&http)
        .await
        .unwrap();
    assert!(info.active(), "the refresh token is untouched");
    assert_eq!(info.username(), Some("alice"));
    // Revoking an unknown or already revoked token is not an error (RFC 7009 §2.2).
    app.revoke_token(StandardRevocableToken::AccessToken(access.clone()))
        .unwrap()
        .request_async(&tls_terminating_proxy)
        .await
        .expect("revoking twice is fine");

    let refreshed = app
        .exchange_refresh_token(&refresh)
        .request_async(&http)
        .await
        .expect("refresh after the access token was revoked");
    let access2 = refreshed.access_token().clone();
    let refresh2 = refreshed.refresh_token().expect("rotated").clone();
    assert!(
        api.introspect(&access2)
            .request_async(&http)
            .await
            .unwrap()
            .active()
    );

    // RFC 7009 §2.1: revoking the refresh token revokes the grant, its access tokens too.
    app.revoke_token(StandardRevocableToken::RefreshToken(refresh2.clone()))
        .unwrap()
        .request_async(&tls_terminating_proxy)
        .await
        .expect("revocation");
    for (what, token) in [
        ("access token of the grant", access2.secret()),
        ("refresh token", refresh2.secret()),
        ("rotated-out refresh token", refresh.secret()),
    ] {
        let info = api
            .introspect(&AccessToken::new(token.clone()))
            .request_async(&http)
            .await
            .unwrap();
        assert!(!info.active(), "{what} is inactive");
    }
    let err = app
        .exchange_refresh_token(&refresh2)
        .request_async(&http)
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("invalid_grant"), "{err:?}");
}

#[tokio::test]
async fn revocation_by_another_client_changes_nothing() {
    let s = setup().await;
    let base = &s.served.base;
    let http = http();
    let tokens = tokens_for(base, "photo-app", "photos.read", "alice").await;
    // The API (authenticated, but not the token's client) tries to revoke the app's token:
    // answered 200 as RFC 7009 §2.2 allows, yet the token stays active.
    let api = BasicClient::new(ClientId::new("photos-api".into()))
        .set_client_secret(ClientSecret::new(s.api_secret.clone()))
        .set_revocation_url(RevocationUrl::new(https(base, "/o/oauth2/revoke")).unwrap())
        .set_introspection_url(
            IntrospectionUrl::new(format!("{base}/o/oauth2/introspect")).unwrap(),
        );
    api.revoke_token(StandardRevocableToken::AccessToken(
        tokens.access_token().clone(),
    ))
    .unwrap()
    .request_async(&tls_terminating_proxy)
    .await
    .expect("answered as if revoked");
    assert!(
        api.introspect(tokens.access_token())
            .request_async(&http)
            .await
            .unwrap()
            .active()
    );
    // A wrong API secret is refused (RFC 7662 §2.1: the caller must authenticate).
    let impostor = BasicClient::new(ClientId::new("photos-api".into()))
        .set_client_secret(ClientSecret::new("ocs_wrong".into()))
        .set_introspection_url(
            IntrospectionUrl::new(format!("{base}/o/oauth2/introspect")).unwrap(),
        );
    let err = impostor
        .introspect(tokens.access_token())
        .request_async(&http)
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("invalid_client"), "{err:?}");
}
