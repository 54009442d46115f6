//! The validator an API holds: one of the two modes, an HTTP client and a clock.
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;

use crate::clock::{Clock, SystemClock};
use crate::error::{AuthError, ConfigError, Rejection};
use crate::introspection::{IntrospectionConfig, Introspector};
use crate::jwt::{JwtConfig, JwtValidator};
use crate::token::{BearerToken, bearer_token};

enum Mode {
    Jwt(JwtValidator),
    Introspection(Introspector),
}

/// Checks bearer tokens, by one of two modes:
/// - [`Validator::jwt`]: JWT access tokens (RFC 9068) verified locally with the
///   authorization server's published keys;
/// - [`Validator::introspection`]: any token, asked about at the introspection endpoint
///   (RFC 7662), answers cached briefly.
///
/// Share one per API (`Arc<Validator>`): it holds the key set and the cache.
///
/// # HTTP and TLS
/// The default HTTP client is a plain `reqwest::Client` with timeouts. This crate enables
/// no TLS feature of `reqwest`, so reaching an `https` authorization server needs the
/// application to choose one (e.g. `reqwest = { features = ["rustls-tls"] }`) and, ideally,
/// pass its own client with [`with_http_client`](Self::with_http_client).
pub struct Validator {
    mode: Mode,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    realm: Arc<str>,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.mode {
            Mode::Jwt(_) => "jwt",
            Mode::Introspection(_) => "introspection",
        };
        f.debug_struct("Validator")
            .field("mode", &mode)
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

fn default_http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("the HTTP client could be built")
}

impl Validator {
    /// Local validation of JWT access tokens (RFC 9068). The realm defaults to the audience.
    pub fn jwt(config: JwtConfig) -> Result<Self, ConfigError> {
        let jwt = JwtValidator::new(config)?;
        let realm = jwt.audience().into();
        Ok(Validator::with_mode(Mode::Jwt(jwt), realm))
    }

    /// Validation by token introspection (RFC 7662). The realm defaults to the audience,
    /// or else to the resource server's client id.
    pub fn introspection(config: IntrospectionConfig) -> Result<Self, ConfigError> {
        let realm = config
            .audience
            .clone()
            .unwrap_or_else(|| config.client_id.clone());
        let introspector = Introspector::new(config)?;
        Ok(Validator::with_mode(
            Mode::Introspection(introspector),
            realm.into(),
        ))
    }

    fn with_mode(mode: Mode, realm: Arc<str>) -> Self {
        Validator {
            mode,
            http: default_http_client(),
            clock: Arc::new(SystemClock),
            realm,
        }
    }

    /// The client for the JWKS and introspection requests; the application picks its TLS
    /// features, proxies and timeouts.
    pub fn with_http_client(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The `realm` of the `WWW-Authenticate` challenges (RFC 6750 §3).
    pub fn with_realm(mut self, realm: impl Into<Arc<str>>) -> Self {
        self.realm = realm.into();
        self
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Validate the request's `Authorization: Bearer` token (RFC 6750 §2.1).
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<BearerToken, Rejection> {
        let token = bearer_token(headers).map_err(|e| self.reject(e))?;
        self.validate(token).await
    }

    /// Validate a raw access token.
    pub async fn validate(&self, token: &str) -> Result<BearerToken, Rejection> {
        let now = self.clock.now();
        let outcome = match &self.mode {
            Mode::Jwt(v) => v.validate(token, now, &self.http, &self.realm).await,
            Mode::Introspection(v) => v.validate(token, now, &self.http, &self.realm).await,
        };
        if let Err(e @ AuthError::InvalidToken(_)) = &outcome {
            tracing::debug!(reason = %e, "bearer token refused");
        }
        outcome.map_err(|e| self.reject(e))
    }

    fn reject(&self, error: AuthError) -> Rejection {
        Rejection::new(self.realm.clone(), error)
    }
}
