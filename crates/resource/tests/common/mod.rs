//! A fake authorization server (JWKS and introspection endpoints) and an API using the
//! extractor, for the integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use oauthd_core::jose::{Jwk, JwkSet, JwsAlg, SigningKey};
use oauthd_resource::{BearerToken, ManualClock, Rejection, RequireScope, Validator};
use serde_json::{Value, json};
use tower::ServiceExt as _;

pub const NOW: i64 = 1_800_000_000;
pub const ISSUER: &str = "http://as.test";
pub const AUDIENCE: &str = "photos-api";

#[derive(Default)]
pub struct FakeState {
    pub jwks: Mutex<Vec<Jwk>>,
    pub jwks_status: Mutex<Option<StatusCode>>,
    pub jwks_calls: AtomicUsize,
    /// Answers by token; unknown tokens are `{"active":false}`.
    pub answers: Mutex<HashMap<String, Value>>,
    pub introspect_status: Mutex<Option<StatusCode>>,
    pub introspect_calls: AtomicUsize,
    pub last_authorization: Mutex<Option<String>>,
    pub last_form: Mutex<Option<HashMap<String, String>>>,
}

pub struct FakeAs {
    pub addr: SocketAddr,
    pub state: Arc<FakeState>,
}

impl FakeAs {
    pub async fn start() -> FakeAs {
        let state = Arc::new(FakeState::default());
        let app = Router::new()
            .route("/jwks", get(jwks))
            .route("/introspect", post(introspect))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeAs { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn publish(&self, key: &SigningKey) {
        self.state.jwks.lock().unwrap().push(key.public_jwk());
    }

    pub fn jwks_calls(&self) -> usize {
        self.state.jwks_calls.load(Ordering::SeqCst)
    }

    pub fn introspect_calls(&self) -> usize {
        self.state.introspect_calls.load(Ordering::SeqCst)
    }

    pub fn answer(&self, token: &str, answer: Value) {
        self.state
            .answers
            .lock()
            .unwrap()
            .insert(token.to_owned(), answer);
    }
}

async fn jwks(State(s): State<Arc<FakeState>>) -> Result<Json<JwkSet>, StatusCode> {
    s.jwks_calls.fetch_add(1, Ordering::SeqCst);
    if let Some(status) = *s.jwks_status.lock().unwrap() {
        return Err(status);
    }
    Ok(Json(JwkSet {
        keys: s.jwks.lock().unwrap().clone(),
    }))
}

async fn introspect(
    State(s): State<Arc<FakeState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Json<Value>, StatusCode> {
    s.introspect_calls.fetch_add(1, Ordering::SeqCst);
    *s.last_authorization.lock().unwrap() = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap().to_owned());
    let token = form.get("token").cloned().unwrap_or_default();
    *s.last_form.lock().unwrap() = Some(form);
    if let Some(status) = *s.introspect_status.lock().unwrap() {
        return Err(status);
    }
    let answers = s.answers.lock().unwrap();
    Ok(Json(
        answers
            .get(&token)
            .cloned()
            .unwrap_or(json!({"active": false})),
    ))
}

pub fn key(kid: &str, alg: JwsAlg) -> SigningKey {
    SigningKey::generate(kid.to_owned(), alg).unwrap().0
}

/// RFC 9068 §2.2 claims, valid at [`NOW`] for ten minutes.
pub fn claims(scope: &str) -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "client_id": "app",
        "scope": scope,
        "iat": NOW,
        "exp": NOW + 600,
        "jti": "jti-1",
    })
}

pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(NOW))
}

/// The API under test: `/me` needs a token, `/photos` `photos:read` (checked in the
/// handler), `/albums` `albums:read` (checked by the layer).
pub fn api(validator: Arc<Validator>) -> Router {
    Router::new()
        .route(
            "/me",
            get(|t: BearerToken| async move {
                Json(json!({
                    "sub": t.sub,
                    "client_id": t.client_id,
                    "scope": t.scope.to_string(),
                    "username": t.username,
                    "exp": t.exp,
                }))
            }),
        )
        .route(
            "/photos",
            get(|t: BearerToken| async move {
                t.require(&["photos:read"])?;
                Ok::<_, Rejection>(Json(json!({ "photos": [], "user": t.sub })))
            }),
        )
        .route(
            "/albums",
            get(|t: BearerToken| async move { Json(json!({ "user": t.sub })) })
                .layer(RequireScope::new(validator.clone(), &["albums:read"])),
        )
        .with_state(validator)
}

pub struct Reply {
    pub status: StatusCode,
    pub challenge: Option<String>,
    pub body: Value,
}

pub async fn call(app: &Router, path: &str, authorization: Option<&str>) -> Reply {
    let mut request = Request::get(path);
    if let Some(a) = authorization {
        request = request.header(header::AUTHORIZATION, a);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        challenge,
        body,
    }
}

pub async fn get_with(app: &Router, path: &str, token: &str) -> Reply {
    call(app, path, Some(&format!("Bearer {token}"))).await
}

pub fn invalid_token(description: &str) -> String {
    format!(
        "Bearer realm=\"{AUDIENCE}\", error=\"invalid_token\", error_description=\"{description}\""
    )
}

#[track_caller]
pub fn assert_invalid(reply: &Reply, description: &str) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{:?}", reply.body);
    assert_eq!(
        reply.challenge.as_deref(),
        Some(invalid_token(description).as_str())
    );
    assert_eq!(reply.body["error"], "invalid_token");
    assert_eq!(reply.body["error_description"], description);
}
