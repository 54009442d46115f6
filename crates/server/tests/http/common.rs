//! The test harness: a server per test, a browser with a cookie jar, and helpers.
#![allow(dead_code)]

use std::sync::Arc;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION};

use oauthd::admin;
use oauthd::cli::ClientCreate;
use oauthd::clock::ManualClock;
use oauthd::config::Config;
use oauthd::serve::RunningServer;
use oauthd_core::client::Client;
use oauthd_core::form::{Params, encode};
use oauthd_core::pkce::s256_challenge;
use oauthd_core::secret::Secret;
use oauthd_store::Store;

pub const START: i64 = 1_800_000_000;
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub const APP_REDIRECT: &str = "com.example.app:/cb";
pub const PASSWORD: &str = "correct horse battery";

pub struct TestServer {
    pub server: RunningServer,
    pub clock: Arc<ManualClock>,
    pub base: String,
    config: Config,
    _dir: tempfile::TempDir,
    _pg: Option<crate::support::PgSchema>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        // OAUTHD_TEST_BACKEND=postgres runs the same test on PostgreSQL, in a schema of its own.
        let pg = match std::env::var("OAUTHD_TEST_BACKEND").as_deref() {
            Ok("postgres") => {
                let base = crate::support::postgres_url()
                    .expect("OAUTHD_TEST_BACKEND=postgres needs OAUTHD_TEST_POSTGRES_URL");
                Some(crate::support::PgSchema::create(&base).await)
            }
            _ => None,
        };
        let database_url = match &pg {
            Some(schema) => schema.url.clone(),
            None => format!("sqlite://{}", dir.path().join("oauthd.db").display()),
        };
        let mut config = Config {
            listen: "127.0.0.1:0".into(),
            database_url,
            // Tests move the clock; a background purge must not race their assertions.
            housekeeping_interval: 0,
            ..Config::default()
        };
        adjust(&mut config);
        Self::run(config, Arc::new(ManualClock::new(START)), dir, pg).await
    }

    async fn run(
        config: Config,
        clock: Arc<ManualClock>,
        _dir: tempfile::TempDir,
        _pg: Option<crate::support::PgSchema>,
    ) -> TestServer {
        let server = RunningServer::start(&config, clock.clone()).await.unwrap();
        let base = server.base_url();
        TestServer {
            server,
            clock,
            base,
            config,
            _dir,
            _pg,
        }
    }

    /// A second server on the same database and configuration, as another instance behind
    /// the same load balancer would be.
    pub async fn another_instance(&self) -> RunningServer {
        RunningServer::start(&self.config, self.clock.clone())
            .await
            .unwrap()
    }

    /// Stop the server and start it again on the same database and configuration (on a new
    /// port), as an operator's restart would.
    pub async fn restart(self) -> TestServer {
        let TestServer {
            server,
            clock,
            config,
            _dir,
            _pg,
            ..
        } = self;
        server.shutdown().await.unwrap();
        Self::run(config, clock, _dir, _pg).await
    }

    pub fn store(&self) -> &dyn Store {
        self.server.state.store.as_ref()
    }

    pub fn issuer(&self) -> &str {
        &self.server.state.policy.issuer
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Register a client like `oauthd client create` would.
    pub async fn client(
        &self,
        id: &str,
        adjust: impl FnOnce(&mut ClientCreate),
    ) -> (Client, Option<Secret>) {
        self.client_created_at(id, START, adjust).await
    }

    /// As [`TestServer::client`], registered at `now`.
    pub async fn client_created_at(
        &self,
        id: &str,
        now: i64,
        adjust: impl FnOnce(&mut ClientCreate),
    ) -> (Client, Option<Secret>) {
        let mut args = ClientCreate {
            name: format!("App {id}"),
            client_id: Some(id.into()),
            redirect_uris: vec![APP_REDIRECT.into(), "http://127.0.0.1/callback".into()],
            grants: vec![],
            kind: None,
            confidential: false,
            access_token: "opaque".into(),
            access_token_alg: "ES256".into(),
            id_token_alg: "RS256".into(),
            audience: vec![],
            scopes: vec!["photos:read".into(), "profile".into()],
            trusted: false,
            pkce: "strict".into(),
            access_token_ttl: 600,
            refresh_token_ttl: 3600,
            json: false,
        };
        adjust(&mut args);
        let (client, _) = admin::client::build(&args, now).unwrap();
        admin::client::create(self.store(), client).await.unwrap()
    }

    /// The standard public, strict test client `app`.
    pub async fn app(&self) -> Client {
        self.client("app", |_| {}).await.0
    }

    pub async fn user(&self, username: &str) {
        admin::user::create(
            self.store(),
            username,
            &Secret::from_presented(PASSWORD),
            admin::user::Profile {
                email: Some(format!("{username}@example.com")),
                display_name: Some(format!("User {username}")),
            },
            START,
        )
        .await
        .unwrap();
    }

    pub fn browser(&self) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .cookie_store(true)
                .build()
                .unwrap(),
            base: self.base.clone(),
        }
    }

    /// A plain HTTP client (no cookies, no redirects), as a native app's token call.
    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// POST a form body to the token endpoint.
    pub async fn token(&self, body: &str) -> TokenResponse {
        self.token_with(body, None).await
    }

    pub async fn token_with(&self, body: &str, basic: Option<(&str, &str)>) -> TokenResponse {
        let mut req = self
            .http()
            .post(self.url("/o/oauth2/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        if let Some((id, secret)) = basic {
            req = req.basic_auth(encode(id), Some(encode(secret)));
        }
        TokenResponse::from(req.send().await.unwrap()).await
    }

    /// Log in and approve for `app`'s standard request; returns the code.
    pub async fn code_for(&self, browser: &Browser, client_id: &str, extra: &str) -> String {
        let query = format!(
            "response_type=code&client_id={client_id}&redirect_uri={}&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}",
            encode(APP_REDIRECT)
        );
        let location = browser.authorize_and_approve(&query, "alice").await;
        param(&location, "code").unwrap_or_else(|| panic!("no code in {location}"))
    }

    /// A full flow to tokens for `app` (which must exist, with user alice).
    pub async fn tokens(&self, client_id: &str) -> serde_json::Value {
        let code = self.code_for(&self.browser(), client_id, "").await;
        let r = self.token(&exchange_body(client_id, &code, VERIFIER)).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
        r.json
    }
}

pub fn exchange_body(client_id: &str, code: &str, verifier: &str) -> String {
    format!(
        "grant_type=authorization_code&client_id={client_id}&redirect_uri={}&code_verifier={verifier}&code={code}",
        encode(APP_REDIRECT)
    )
}

pub fn refresh_body(client_id: &str, refresh_token: &str) -> String {
    format!("grant_type=refresh_token&client_id={client_id}&refresh_token={refresh_token}")
}

pub struct TokenResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: serde_json::Value,
}

impl TokenResponse {
    pub async fn from(r: reqwest::Response) -> TokenResponse {
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        TokenResponse {
            status,
            headers,
            json,
        }
    }

    pub fn error(&self) -> &str {
        self.json["error"].as_str().unwrap_or("<none>")
    }

    pub fn str(&self, field: &str) -> String {
        self.json[field]
            .as_str()
            .unwrap_or_else(|| panic!("no {field} in {:?}", self.json))
            .to_owned()
    }

    /// RFC 6749 §5.1: token responses are never cached.
    pub fn assert_no_store(&self) {
        assert_eq!(
            self.headers
                .get("cache-control")
                .map(|v| v.to_str().unwrap()),
            Some("no-store")
        );
        assert_eq!(
            self.headers.get("pragma").map(|v| v.to_str().unwrap()),
            Some("no-cache")
        );
    }

    pub fn assert_error(&self, status: StatusCode, error: &str) {
        assert_eq!(
            (self.status, self.error()),
            (status, error),
            "{:?}",
            self.json
        );
        assert!(
            self.json["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
        self.assert_no_store();
    }
}

/// A browser: cookie jar, no automatic redirects.
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
}

impl Browser {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        self.http.get(url).send().await.unwrap()
    }

    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        self.http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.join("&"))
            .send()
            .await
            .unwrap()
    }

    pub async fn authorize(&self, query: &str) -> reqwest::Response {
        self.get(&format!("/o/oauth2/authorize?{query}")).await
    }

    /// Fetch a page and return (status, body).
    pub async fn page(&self, path: &str) -> (StatusCode, String) {
        let r = self.get(path).await;
        (r.status(), r.text().await.unwrap())
    }

    /// Submit the login form found at `login_path` (a `/login?pending=…` location).
    pub async fn login(
        &self,
        login_path: &str,
        username: &str,
        password: &str,
    ) -> reqwest::Response {
        let (status, html) = self.page(login_path).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        let csrf = hidden(&html, "csrf").expect("csrf field");
        let mut fields = vec![
            ("csrf", csrf.as_str()),
            ("username", username),
            ("password", password),
        ];
        let pending = hidden(&html, "pending");
        if let Some(p) = &pending {
            fields.push(("pending", p));
        }
        self.post_form("/login", &fields).await
    }

    /// Answer the consent page at `consent_path` with `decision`.
    pub async fn decide(&self, consent_path: &str, decision: &str) -> reqwest::Response {
        let (status, html) = self.page(consent_path).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        let csrf = hidden(&html, "csrf").unwrap();
        let pending = hidden(&html, "pending").unwrap();
        self.post_form(
            "/consent",
            &[
                ("csrf", &csrf),
                ("pending", &pending),
                ("decision", decision),
            ],
        )
        .await
    }

    /// Authorize, log in if asked, approve if asked; the final redirect to the client.
    pub async fn authorize_and_approve(&self, query: &str, username: &str) -> String {
        let mut location = location(&self.authorize(query).await);
        if location.starts_with("/login") {
            let r = self.login(&location, username, PASSWORD).await;
            assert_eq!(r.status(), StatusCode::SEE_OTHER);
            location = self::location(&r);
        }
        if location.starts_with("/consent") {
            let r = self.decide(&location, "approve").await;
            assert_eq!(r.status(), StatusCode::SEE_OTHER);
            location = self::location(&r);
        }
        location
    }
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("no Location on a {} response", r.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

pub use crate::support::hidden;

/// A query parameter of a URL (any scheme).
pub fn param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    Params::parse(query.as_bytes())
        .ok()?
        .single(name)
        .ok()
        .flatten()
        .map(str::to_owned)
}

pub fn challenge_of(verifier: &str) -> String {
    s256_challenge(verifier)
}

// ---------------------------------------------------------------------------------------------
// Helpers for the revocation, introspection, JWT and OpenID Connect tests
// ---------------------------------------------------------------------------------------------

impl TestServer {
    /// POST a form body to `path` (revocation, introspection), optionally with Basic.
    pub async fn post_form(
        &self,
        path: &str,
        body: &str,
        basic: Option<(&str, &str)>,
    ) -> TokenResponse {
        let mut req = self
            .http()
            .post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        if let Some((id, secret)) = basic {
            req = req.basic_auth(encode(id), Some(encode(secret)));
        }
        TokenResponse::from(req.send().await.unwrap()).await
    }

    pub async fn access_status(&self, token: &str) -> oauthd_store::TokenStatus {
        use oauthd::clock::Clock as _;
        self.store()
            .access_token_status(&Secret::from_presented(token).hash(), self.clock.now())
            .await
            .unwrap()
    }

    pub async fn refresh_status(&self, token: &str) -> oauthd_store::TokenStatus {
        use oauthd::clock::Clock as _;
        self.store()
            .refresh_token_status(&Secret::from_presented(token).hash(), self.clock.now())
            .await
            .unwrap()
    }

    /// The stable subject identifier of a user.
    pub async fn user_id(&self, username: &str) -> String {
        self.store()
            .user_by_username(username)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no user {username}"))
            .id
    }

    /// Register a resource server (an API that introspects); returns its secret.
    pub async fn resource_server(&self, id: &str) -> String {
        let (_, secret) = self
            .client(id, |a| {
                a.kind = Some("resource-server".into());
                a.redirect_uris = vec![];
                a.scopes = vec![];
            })
            .await;
        secret
            .expect("a resource server has a secret")
            .expose()
            .to_owned()
    }

    /// The published JWKS.
    pub async fn jwks(&self) -> oauthd_core::jose::JwkSet {
        let r = self
            .http()
            .get(self.url("/o/oauth2/jwks"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }
}
