//! End to end: a native app gets tokens from the real `oauthd` binary and calls the example
//! API (`examples/photos-api`, run in-process so its clock can be moved), which checks them
//! by introspection or locally as JWTs.
use std::sync::Arc;

use oauthd_core::form::encode;
use oauthd_core::pkce::s256_challenge;
use oauthd_resource::{IntrospectionConfig, JwtConfig, ManualClock, Validator};

use crate::process::*;

const VERIFIER: &str = "e2e-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";
const REDIRECT: &str = "http://127.0.0.1:5555/callback";
const PASSWORD: &str = "alice's long password";

fn create(db: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["client", "create", "--database", db, "--json"];
    args.extend_from_slice(extra);
    let (code, out, err) = run(&args, None);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(out.trim()).unwrap()
}

/// A server with an opaque-token app, a JWT app (both for `photos-api`) and the API's
/// resource-server credentials.
async fn setup() -> (tempfile::TempDir, String, Served, String) {
    let (dir, db) = temp_db();
    for (id, format) in [("native", "opaque"), ("jwt-app", "jwt")] {
        create(
            &db,
            &[
                "--name",
                id,
                "--client-id",
                id,
                "--redirect-uri",
                "http://127.0.0.1/callback",
                "--scope",
                "photos:read",
                "--scope",
                "profile",
                "--audience",
                "photos-api",
                "--access-token",
                format,
            ],
        );
    }
    let api = create(
        &db,
        &[
            "--name",
            "Photos API",
            "--client-id",
            "photos-api",
            "--kind",
            "resource-server",
        ],
    );
    let secret = api["client_secret"].as_str().unwrap().to_owned();
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
        Some(PASSWORD),
    );
    assert_eq!(code, 0, "{err}");
    let served = serve(&["--database", &db]).await;
    (dir, db, served, secret)
}

/// The native app's flow: authorize in the browser, exchange the code with the verifier.
async fn access_token(served: &Served, client_id: &str, scope: &str) -> String {
    let url = format!(
        "{}/o/oauth2/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope={}&code_challenge={}&code_challenge_method=S256",
        served.base,
        encode(REDIRECT),
        encode(scope),
        s256_challenge(VERIFIER)
    );
    let back = sign_in_and_approve(&browser(), &served.base, &url, "alice", PASSWORD).await;
    let query = url::Url::parse(&back).unwrap();
    let code = query
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let body = format!(
        "grant_type=authorization_code&client_id={client_id}&redirect_uri={}&code_verifier={VERIFIER}&code={code}",
        encode(REDIRECT)
    );
    let r = reqwest::Client::new()
        .post(format!("{}/o/oauth2/token", served.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Run the example API on a free port; returns its base URL.
async fn start_api(validator: Validator) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = photos_api::app(Arc::new(validator));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

async fn call(api: &str, path: &str, token: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .get(format!("{api}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (r.status().as_u16(), challenge)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn introspection_mode_scopes_and_revocation() {
    let (_dir, _db, served, secret) = setup().await;
    let clock = Arc::new(ManualClock::new(now()));
    let mut config = IntrospectionConfig::new(
        format!("{}/o/oauth2/introspect", served.base),
        "photos-api",
        secret,
    );
    config.audience = Some("photos-api".into());
    let api = start_api(
        Validator::introspection(config)
            .unwrap()
            .with_clock(clock.clone()),
    )
    .await;

    let reader = access_token(&served, "native", "photos:read profile").await;
    let profile_only = access_token(&served, "native", "profile").await;
    assert_eq!(call(&api, "/photos", &reader).await.0, 200);
    let (status, challenge) = call(&api, "/photos", &profile_only).await;
    assert_eq!(status, 403);
    assert!(
        challenge.contains("insufficient_scope") && challenge.contains("photos:read"),
        "{challenge}"
    );
    assert_eq!(call(&api, "/me", &profile_only).await.0, 200);
    let (status, challenge) = call(&api, "/photos", "oat_not-a-token").await;
    assert_eq!(status, 401);
    assert!(challenge.contains("invalid_token"), "{challenge}");

    let r = reqwest::Client::new()
        .post(format!("{}/o/oauth2/revoke", served.base))
        .form(&[("client_id", "native"), ("token", reader.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The API's introspection cache may still hold the answer for its TTL (30 s)...
    assert_eq!(call(&api, "/photos", &reader).await.0, 200);
    // ...and once it lapses, the revoked token is refused.
    clock.advance(31);
    let (status, challenge) = call(&api, "/photos", &reader).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("invalid_token"), "{challenge}");
}

#[tokio::test]
async fn jwt_mode_survives_rotation_and_stops_at_retirement() {
    let (_dir, db, served, _) = setup().await;
    let clock = Arc::new(ManualClock::new(now()));
    let mut config = JwtConfig::new(
        served.issuer.clone(),
        "photos-api",
        format!("{}/o/oauth2/jwks", served.base),
    );
    config.max_key_age = std::time::Duration::from_secs(60);
    let api = start_api(Validator::jwt(config).unwrap().with_clock(clock.clone())).await;

    let old = access_token(&served, "jwt-app", "photos:read").await;
    let old_kid = oauthd_core::jose::peek_kid(&old).unwrap();
    assert_eq!(call(&api, "/photos", &old).await.0, 200);

    let (code, _, err) = run(
        &["keys", "rotate", "--alg", "ES256", "--database", &db],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let new = access_token(&served, "jwt-app", "photos:read").await;
    let new_kid = oauthd_core::jose::peek_kid(&new).unwrap();
    assert_ne!(new_kid, old_kid, "new tokens use the new key");
    // Past the API's refetch window, the unknown kid makes it fetch the JWKS again.
    clock.advance(11);
    assert_eq!(call(&api, "/photos", &new).await.0, 200);
    assert_eq!(
        call(&api, "/photos", &old).await.0,
        200,
        "the old key stays published"
    );

    let (code, _, err) = run(&["keys", "retire", &old_kid, "--database", &db], None);
    assert_eq!(code, 0, "{err}");
    // Once the API's keys are older than max_key_age it refetches them: the old one is gone.
    clock.advance(61);
    let (status, challenge) = call(&api, "/photos", &old).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("invalid_token"), "{challenge}");
    assert_eq!(call(&api, "/photos", &new).await.0, 200);
}
