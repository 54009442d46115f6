//! The axum side: [`BearerToken`] as an extractor, and the [`RequireScope`] tower layer.
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::Request;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use oauthd_core::scope::Scope;
use tower::{Layer, Service};

use crate::error::Rejection;
use crate::token::BearerToken;
use crate::validator::Validator;

/// Extracts the request's validated token, with the validator from the router's state
/// (`Arc<Validator>: FromRef<S>`). A token already validated for this request (by
/// [`RequireScope`] or another extractor) is reused.
impl<S> FromRequestParts<S> for BearerToken
where
    Arc<Validator>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Rejection> {
        if let Some(token) = parts.extensions.get::<BearerToken>() {
            return Ok(token.clone());
        }
        let validator = Arc::<Validator>::from_ref(state);
        let token = validator.authenticate(&parts.headers).await?;
        parts.extensions.insert(token.clone());
        Ok(token)
    }
}

/// A tower layer that lets through only requests with a valid token holding all of some
/// scopes, and puts the [`BearerToken`] in the request's extensions for the handler.
///
/// ```no_run
/// # use std::sync::Arc;
/// # use axum::{Router, routing::get};
/// # use oauthd_resource::{BearerToken, RequireScope, Validator};
/// # fn app(validator: Arc<Validator>) -> Router {
/// Router::new()
///     .route(
///         "/albums",
///         get(|token: BearerToken| async move { token.sub })
///             .layer(RequireScope::new(validator.clone(), &["albums:read"])),
///     )
///     .with_state(validator)
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RequireScope {
    validator: Arc<Validator>,
    scope: Arc<Scope>,
}

impl RequireScope {
    /// # Panics
    /// If a scope is not a valid scope token (RFC 6749 §3.3).
    pub fn new(validator: Arc<Validator>, scopes: &[&str]) -> Self {
        let scope = Scope::from_tokens(scopes)
            .unwrap_or_else(|e| panic!("required scopes must be valid: {e}"));
        RequireScope {
            validator,
            scope: Arc::new(scope),
        }
    }

    async fn check(&self, parts: &mut Parts) -> Result<(), Rejection> {
        let token = match parts.extensions.get::<BearerToken>() {
            Some(token) => token.clone(),
            None => self.validator.authenticate(&parts.headers).await?,
        };
        token.require_scope(&self.scope)?;
        parts.extensions.insert(token);
        Ok(())
    }
}

impl<S> Layer<S> for RequireScope {
    type Service = RequireScopeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScopeService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`RequireScope`].
#[derive(Debug, Clone)]
pub struct RequireScopeService<S> {
    inner: S,
    layer: RequireScope,
}

impl<S, B> Service<Request<B>> for RequireScopeService<S>
where
    S: Service<Request<B>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone is not ready; keep the service that was polled ready (tower's rule).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            match layer.check(&mut parts).await {
                Ok(()) => inner.call(Request::from_parts(parts, body)).await,
                Err(rejection) => Ok(rejection.into_response()),
            }
        })
    }
}
