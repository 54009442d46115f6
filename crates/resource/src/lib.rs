//! oauthd-resource: check oauthd's bearer tokens in an API (RFC 6750).
//!
//! Build one [`Validator`], either
//! - [`Validator::jwt`] — JWT access tokens (RFC 9068) verified locally with the
//!   authorization server's JWKS, fetched lazily, cached, and refetched (at most once per
//!   `refetch_interval`) when a token names an unknown key; or
//! - [`Validator::introspection`] — tokens checked at the introspection endpoint
//!   (RFC 7662), answers cached by the token's SHA-256 for a short, bounded time;
//!
//! then take a [`BearerToken`] in axum handlers (the validator comes from the state via
//! `Arc<Validator>: FromRef<S>`) and require scopes with [`BearerToken::require`] or the
//! [`RequireScope`] layer.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use axum::{Json, Router, routing::get};
//! use oauthd_resource::{BearerToken, JwtConfig, Rejection, Validator};
//! use serde_json::{Value, json};
//!
//! async fn photos(token: BearerToken) -> Result<Json<Value>, Rejection> {
//!     token.require(&["photos:read"])?; // else 403 insufficient_scope
//!     Ok(Json(json!({ "photos": [], "user": token.sub })))
//! }
//!
//! # async fn run(http: reqwest::Client) -> Result<(), Box<dyn std::error::Error>> {
//! let validator = Validator::jwt(JwtConfig::new(
//!     "https://auth.example",
//!     "photos-api",
//!     "https://auth.example/o/oauth2/jwks",
//! ))?
//! .with_http_client(http); // built with the TLS features the application chose
//! let app = Router::new()
//!     .route("/photos", get(photos))
//!     .with_state(Arc::new(validator));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8081").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! Refusals ([`Rejection`]) answer as RFC 6750 §3 asks: 401 with a bare
//! `WWW-Authenticate: Bearer realm="…"` when no token was sent, 401 `invalid_token` for a
//! bad one, 403 `insufficient_scope` with the needed `scope`; and 503 when the
//! authorization server cannot be reached, which is not the client's fault.
//!
//! Time comes from a [`Clock`] ([`SystemClock`] by default), so tests can move a
//! [`ManualClock`].
#![forbid(unsafe_code)]

mod clock;
mod error;
mod extract;
mod introspection;
mod jwt;
mod token;
mod validator;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{AuthError, ConfigError, Rejection};
pub use extract::{RequireScope, RequireScopeService};
pub use introspection::IntrospectionConfig;
pub use jwt::JwtConfig;
pub use oauthd_core::scope::Scope;
pub use token::{BearerToken, bearer_token};
pub use validator::Validator;
