//! Local validation of JWT access tokens (RFC 9068 §4) against the authorization server's
//! JWKS (RFC 7517 §5), fetched lazily and refetched, rate-limited, for an unknown `kid`.
use std::sync::{Arc, RwLock};
use std::time::Duration;

use oauthd_core::jose::{Jwk, JwtError, peek_kid, validate_claims, verify_jwt};
use reqwest::Url;
use serde::Deserialize;

use crate::error::{AuthError, ConfigError};
use crate::token::BearerToken;

/// Settings for [`Validator::jwt`](crate::Validator::jwt).
#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// The authorization server's issuer identifier; `iss` must equal it (RFC 9068 §4).
    pub issuer: String,
    /// This API's identifier; `aud` must contain it (RFC 9068 §4).
    pub audience: String,
    /// Where the signing keys are published (RFC 8414 §2 `jwks_uri`).
    pub jwks_uri: String,
    /// Clock skew tolerated on `exp`, `nbf` and `iat` (default 30 s).
    pub leeway: Duration,
    /// At most one JWKS refetch per this interval, so tokens naming made-up `kid`s cannot
    /// make the API hammer the authorization server (default 10 s).
    pub refetch_interval: Duration,
    /// Keys older than this are refetched on the next request, so a key the server has
    /// withdrawn stops being trusted; if that fetch fails the old keys stay in use
    /// (default 1 h).
    pub max_key_age: Duration,
}

impl JwtConfig {
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        jwks_uri: impl Into<String>,
    ) -> Self {
        JwtConfig {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks_uri: jwks_uri.into(),
            leeway: Duration::from_secs(30),
            refetch_interval: Duration::from_secs(10),
            max_key_age: Duration::from_secs(3600),
        }
    }
}

pub(crate) fn parse_url(field: &'static str, value: &str) -> Result<Url, ConfigError> {
    Url::parse(value)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        .ok_or_else(|| ConfigError::BadUrl {
            field,
            value: value.to_owned(),
        })
}

pub(crate) fn non_empty(field: &'static str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty() {
        Err(ConfigError::Empty { field })
    } else {
        Ok(())
    }
}

pub(crate) fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

pub(crate) struct JwtValidator {
    issuer: String,
    audience: String,
    leeway: i64,
    jwks: Jwks,
}

impl JwtValidator {
    pub(crate) fn new(config: JwtConfig) -> Result<Self, ConfigError> {
        non_empty("issuer", &config.issuer)?;
        non_empty("audience", &config.audience)?;
        let uri = parse_url("jwks_uri", &config.jwks_uri)?;
        Ok(JwtValidator {
            issuer: config.issuer,
            audience: config.audience,
            leeway: secs(config.leeway),
            jwks: Jwks {
                uri,
                refetch_interval: secs(config.refetch_interval),
                max_age: secs(config.max_key_age),
                current: RwLock::new(Snapshot::default()),
                last_attempt: tokio::sync::Mutex::new(None),
            },
        })
    }

    pub(crate) fn audience(&self) -> &str {
        &self.audience
    }

    pub(crate) async fn validate(
        &self,
        token: &str,
        now: i64,
        http: &reqwest::Client,
        realm: &Arc<str>,
    ) -> Result<BearerToken, AuthError> {
        let kid = peek_kid(token);
        let keys = self.jwks.keys(kid.as_deref(), now, http).await?;
        // Signature, `alg` bound to the key (RFC 8725 §3.1) and `typ` (RFC 9068 §4).
        let claims = verify_jwt(token, &keys, "at+jwt").map_err(describe)?;
        // `iss`, `aud`, `exp`, `nbf`, `iat` (RFC 9068 §4).
        validate_claims(&claims, now, &self.issuer, &self.audience, self.leeway)
            .map_err(describe)?;
        BearerToken::from_jwt_claims(&claims, realm)
    }
}

fn describe(e: JwtError) -> AuthError {
    AuthError::invalid(match e {
        JwtError::UnknownKey => "the token was not signed by a known key".to_owned(),
        e => e.to_string(),
    })
}

#[derive(Default)]
struct Snapshot {
    keys: Arc<[Jwk]>,
    /// When the keys were fetched; `None` before the first successful fetch.
    fetched_at: Option<i64>,
}

struct Jwks {
    uri: Url,
    refetch_interval: i64,
    max_age: i64,
    current: RwLock<Snapshot>,
    /// Held across a fetch, so concurrent requests wait for it rather than fetch again;
    /// holds the time of the last attempt, successful or not, for the rate limit.
    last_attempt: tokio::sync::Mutex<Option<i64>>,
}

#[derive(PartialEq, Eq)]
enum Need {
    Nothing,
    /// Never fetched: the first request fetches lazily.
    First,
    /// The token names a `kid` we do not hold: perhaps the server rotated its keys.
    UnknownKid,
    Stale,
}

impl Jwks {
    fn snapshot(&self) -> (Arc<[Jwk]>, Option<i64>) {
        let s = self.current.read().unwrap_or_else(|p| p.into_inner());
        (s.keys.clone(), s.fetched_at)
    }

    fn need(&self, kid: Option<&str>, now: i64) -> (Arc<[Jwk]>, Option<i64>, Need) {
        let (keys, fetched_at) = self.snapshot();
        let need = match fetched_at {
            None => Need::First,
            Some(_) if kid.is_some_and(|kid| !keys.iter().any(|k| k.kid == kid)) => {
                Need::UnknownKid
            }
            Some(at) if now.saturating_sub(at) >= self.max_age => Need::Stale,
            Some(_) => Need::Nothing,
        };
        (keys, fetched_at, need)
    }

    /// The keys to verify a token naming `kid` with, fetching them when needed and allowed.
    async fn keys(
        &self,
        kid: Option<&str>,
        now: i64,
        http: &reqwest::Client,
    ) -> Result<Arc<[Jwk]>, AuthError> {
        if let (keys, _, Need::Nothing) = self.need(kid, now) {
            return Ok(keys);
        }
        let mut last_attempt = self.last_attempt.lock().await;
        // Another request may have fetched while this one waited.
        let (keys, fetched_at, need) = self.need(kid, now);
        if need == Need::Nothing {
            return Ok(keys);
        }
        if last_attempt.is_some_and(|at| now.saturating_sub(at) < self.refetch_interval) {
            // Rate-limited: answer with what we have (an unknown kid then fails as invalid).
            return match fetched_at {
                Some(_) => Ok(keys),
                None => Err(AuthError::Unavailable(
                    "the JWKS could not be fetched recently; not retrying yet".into(),
                )),
            };
        }
        *last_attempt = Some(now);
        match self.fetch(http).await {
            Ok(fresh) => {
                tracing::debug!(uri = %self.uri, keys = fresh.len(), "fetched JWKS");
                let fresh: Arc<[Jwk]> = fresh.into();
                let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
                *current = Snapshot {
                    keys: fresh.clone(),
                    fetched_at: Some(now),
                };
                Ok(fresh)
            }
            Err(detail) => {
                let detail = format!("JWKS fetch from {} failed: {detail}", self.uri);
                if need == Need::Stale {
                    tracing::warn!(%detail, "keeping the previously fetched keys");
                    Ok(keys)
                } else {
                    Err(AuthError::Unavailable(detail))
                }
            }
        }
    }

    async fn fetch(&self, http: &reqwest::Client) -> Result<Vec<Jwk>, String> {
        #[derive(Deserialize)]
        struct RawSet {
            keys: Vec<serde_json::Value>,
        }
        let response = http
            .get(self.uri.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("status {status}"));
        }
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        let set: RawSet = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        // Skip keys this crate cannot use (no kid or alg, or not for signatures) rather than
        // refuse the whole set (RFC 7517 §5: ignore unknown or unsupported members).
        Ok(set
            .keys
            .into_iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k).ok())
            .filter(|k| k.key_use.as_deref().is_none_or(|u| u == "sig"))
            .collect())
    }
}
