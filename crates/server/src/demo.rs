//! `oauthd serve --demo`: a throwaway database with the seed's "Test OAuth2 Application"
//! and a demo user, and the seed's walkthrough printed ready to run.
use std::path::Path;

use oauthd_core::client::{
    AccessTokenFormat, Client, ClientKind, DEFAULT_REFRESH_TOKEN_TTL, GrantType,
};
use oauthd_core::jose::JwsAlg;
use oauthd_core::pkce::PkceMode;
use oauthd_core::redirect_uri::RedirectUri;
use oauthd_core::scope::Scope;
use oauthd_core::secret::{Secret, SecretKind};
use oauthd_store::Store;

use crate::admin::{self, Failure};

pub const CLIENT_ID: &str = "54321";
pub const REDIRECT_URI: &str = "myapp://oauth2redirect";
pub const USERNAME: &str = "demo";
/// BASE64URL(SHA256("test")), the seed's challenge.
pub const SEED_CHALLENGE: &str = "n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg";

pub fn database_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("demo.db").display())
}

pub const API_CLIENT_ID: &str = "photos-api";

/// What the demo prints once.
pub struct Seeded {
    pub password: Secret,
    pub api_secret: Secret,
}

/// Load the demo data: the seed's application, a demo user, and a resource server for the
/// example API.
pub async fn seed(store: &dyn Store, now: i64) -> Result<Seeded, Failure> {
    let client = Client {
        client_id: CLIENT_ID.into(),
        name: "Test OAuth2 Application".into(),
        kind: ClientKind::Public,
        secret_hash: None,
        redirect_uris: vec![RedirectUri::from_stored(REDIRECT_URI.into())],
        grants: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: Scope::parse("openid profile email photos:read")
            .map_err(|e| Failure::failed(e.to_string()))?,
        trusted: false,
        pkce: PkceMode::LiferayCompat,
        access_token_ttl: 600,
        refresh_token_ttl: DEFAULT_REFRESH_TOKEN_TTL,
        access_token_format: AccessTokenFormat::Opaque,
        access_token_alg: JwsAlg::ES256,
        id_token_alg: JwsAlg::RS256,
        audience: vec![API_CLIENT_ID.into()],
        created_at: now,
    };
    store.insert_client(&client).await?;
    let api = Client {
        client_id: API_CLIENT_ID.into(),
        name: "Photos API (example)".into(),
        kind: ClientKind::ResourceServer,
        redirect_uris: vec![],
        grants: vec![],
        scopes: Scope::default(),
        pkce: PkceMode::Strict,
        audience: vec![],
        ..client
    };
    let (_, api_secret) = admin::client::create(store, api).await?;
    let api_secret =
        api_secret.ok_or_else(|| Failure::failed("the demo resource server got no secret"))?;
    // A random password, so a demo left running is not an open door.
    let password =
        Secret::from_presented(Secret::generate(SecretKind::Browser).expose()[4..20].to_owned());
    let profile = admin::user::Profile {
        email: Some("demo@example.com".into()),
        display_name: Some("Demo User".into()),
    };
    admin::user::create(store, USERNAME, &password, profile, now).await?;
    Ok(Seeded {
        password,
        api_secret,
    })
}

pub fn instructions(issuer: &str, seeded: &Seeded) -> String {
    format!(
        "oauthd demo: a throwaway database with the seed's \"Test OAuth2 Application\" (client {CLIENT_ID}, redirect {REDIRECT_URI}, pkce = liferay-compat).
username: {USERNAME}
password: {password}
resource server: {API_CLIENT_ID}
resource server secret: {api_secret}
1. Open in a browser, sign in and approve:
   {issuer}/o/oauth2/authorize?response_type=code&client_id={CLIENT_ID}&redirect_uri={REDIRECT_URI}&code_challenge={SEED_CHALLENGE}
2. The browser is sent to {REDIRECT_URI}?code=CODE&iss=... ; copy CODE and run (the verifier is \"test\"):
   curl {issuer}/o/oauth2/token --data 'grant_type=authorization_code&client_id={CLIENT_ID}&redirect_uri={REDIRECT_URI}&code_verifier=test&code=CODE'",
        password = seeded.password.expose(),
        api_secret = seeded.api_secret.expose(),
    )
}
