//! The photos-api routes, as a library so tests can run the real example in-process.
#![forbid(unsafe_code)]

use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use oauthd_resource::{BearerToken, Rejection, Validator};
use serde_json::{Value, json};

/// `GET /photos` needs the scope `photos:read`; `GET /me` any valid token.
pub fn app(validator: Arc<Validator>) -> Router {
    Router::new()
        .route("/photos", get(photos))
        .route("/me", get(me))
        .with_state(validator)
}

async fn photos(token: BearerToken) -> Result<Json<Value>, Rejection> {
    token.require(&["photos:read"])?;
    Ok(Json(json!({
        "photos": [
            { "id": 1, "title": "Sunrise over the harbour" },
            { "id": 2, "title": "A cat asleep on a keyboard" },
        ],
        "user": token.sub,
    })))
}

async fn me(token: BearerToken) -> Json<Value> {
    Json(json!({
        "sub": token.sub,
        "username": token.username,
        "client_id": token.client_id,
        "scope": token.scope.to_string(),
        "exp": token.exp,
    }))
}
