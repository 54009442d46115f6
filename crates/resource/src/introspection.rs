//! Validation by asking the authorization server (OAuth 2.0 Token Introspection, RFC 7662),
//! with a short, bounded cache of the answers.
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::Url;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::error::{AuthError, ConfigError};
use crate::jwt::{non_empty, parse_url, secs};
use crate::token::{BearerToken, parse_scope};

/// Settings for [`Validator::introspection`](crate::Validator::introspection).
///
/// Caching trades revocation latency for load: a token revoked at the authorization server
/// is still accepted for up to `cache_ttl`. Set `cache_capacity` to 0 to ask every time.
#[derive(Clone)]
pub struct IntrospectionConfig {
    /// The introspection endpoint (RFC 7662 §2, RFC 8414 `introspection_endpoint`).
    pub introspection_endpoint: String,
    /// This resource server's client credentials at the authorization server (RFC 7662 §2.1).
    pub client_id: String,
    pub client_secret: String,
    /// When set, an active token's `aud` must contain it.
    pub audience: Option<String>,
    /// When set and the answer has `iss`, they must be equal.
    pub issuer: Option<String>,
    /// How long an active answer is reused; never beyond the token's `exp` (default 30 s).
    pub cache_ttl: Duration,
    /// How long a refusal (`{"active":false}`, a refresh token, another audience…) is
    /// reused, at most `cache_ttl`; zero caches no refusals (default 5 s). Failures to reach
    /// the server are never cached.
    pub negative_cache_ttl: Duration,
    /// At most this many cached answers; when full, those expiring first are dropped
    /// (default 10 000).
    pub cache_capacity: usize,
    /// Clock skew tolerated on `exp` (default 30 s).
    pub leeway: Duration,
}

impl IntrospectionConfig {
    pub fn new(
        introspection_endpoint: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        IntrospectionConfig {
            introspection_endpoint: introspection_endpoint.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            audience: None,
            issuer: None,
            cache_ttl: Duration::from_secs(30),
            negative_cache_ttl: Duration::from_secs(5),
            cache_capacity: 10_000,
            leeway: Duration::from_secs(30),
        }
    }
}

impl std::fmt::Debug for IntrospectionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionConfig")
            .field("introspection_endpoint", &self.introspection_endpoint)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("audience", &self.audience)
            .field("issuer", &self.issuer)
            .field("cache_ttl", &self.cache_ttl)
            .field("negative_cache_ttl", &self.negative_cache_ttl)
            .field("cache_capacity", &self.cache_capacity)
            .field("leeway", &self.leeway)
            .finish()
    }
}

/// HTTP Basic credentials with both parts form-urlencoded first (RFC 6749 §2.3.1).
pub(crate) fn basic_authorization(client_id: &str, client_secret: &str) -> String {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", encode(client_id), encode(client_secret));
    format!("Basic {}", STANDARD.encode(pair))
}

type Outcome = Result<BearerToken, AuthError>;

pub(crate) struct Introspector {
    endpoint: Url,
    authorization: HeaderValue,
    audience: Option<String>,
    issuer: Option<String>,
    ttl: i64,
    negative_ttl: i64,
    leeway: i64,
    cache: Mutex<TtlCache<Outcome>>,
}

/// The answer (RFC 7662 §2.2); `active` is required.
#[derive(Deserialize)]
struct Answer {
    active: bool,
    scope: Option<String>,
    client_id: Option<String>,
    username: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    iss: Option<String>,
    exp: Option<i64>,
    nbf: Option<i64>,
    jti: Option<String>,
    token_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Introspector {
    pub(crate) fn new(config: IntrospectionConfig) -> Result<Self, ConfigError> {
        let endpoint = parse_url("introspection_endpoint", &config.introspection_endpoint)?;
        non_empty("client_id", &config.client_id)?;
        let mut authorization = HeaderValue::from_str(&basic_authorization(
            &config.client_id,
            &config.client_secret,
        ))
        .map_err(|_| ConfigError::Empty {
            field: "client_secret",
        })?;
        authorization.set_sensitive(true);
        let ttl = secs(config.cache_ttl);
        Ok(Introspector {
            endpoint,
            authorization,
            audience: config.audience,
            issuer: config.issuer,
            ttl,
            negative_ttl: secs(config.negative_cache_ttl).min(ttl),
            leeway: secs(config.leeway),
            cache: Mutex::new(TtlCache::new(config.cache_capacity)),
        })
    }

    pub(crate) async fn validate(
        &self,
        token: &str,
        now: i64,
        http: &reqwest::Client,
        realm: &Arc<str>,
    ) -> Outcome {
        // Keyed by the token's hash: the cache never holds a usable token.
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(hit) = self.lock().get(&key, now) {
            return hit.clone();
        }
        let answer = self.ask(token, http).await?;
        let outcome = self.judge(answer, now, realm);
        let until = match &outcome {
            Ok(t) => now.saturating_add(self.ttl).min(t.exp),
            Err(_) => now.saturating_add(self.negative_ttl),
        };
        self.lock().insert(key, outcome.clone(), until, now);
        outcome
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TtlCache<Outcome>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// POST `token=…` with the resource server's credentials (RFC 7662 §2.1). Any failure
    /// here is the server's or the network's, not the client's: `Unavailable`.
    async fn ask(&self, token: &str, http: &reqwest::Client) -> Result<Answer, AuthError> {
        let unavailable =
            |e: String| AuthError::Unavailable(format!("introspection at {}: {e}", self.endpoint));
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .append_pair("token_type_hint", "access_token")
            .finish();
        let response = http
            .post(self.endpoint.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(unavailable(format!("status {status}")));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| unavailable(format!("malformed answer: {e}")))
    }

    fn judge(&self, a: Answer, now: i64, realm: &Arc<str>) -> Outcome {
        if !a.active {
            // RFC 7662 §2.2: expired, revoked, unknown, or not for us; no reason is given.
            return Err(AuthError::invalid(
                "the token is invalid, expired or revoked",
            ));
        }
        // Only an access token is a bearer token: a refresh token introspects as active
        // too, with another token_type (RFC 7662 §2.2, RFC 6749 §7.1).
        if !a
            .token_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("Bearer"))
        {
            return Err(AuthError::invalid("the token is not a bearer access token"));
        }
        let exp = a
            .exp
            .ok_or_else(|| AuthError::invalid("the token has no expiry"))?;
        if now >= exp.saturating_add(self.leeway) {
            return Err(AuthError::invalid("the token has expired"));
        }
        if a.nbf
            .is_some_and(|nbf| now.saturating_add(self.leeway) < nbf)
        {
            return Err(AuthError::invalid("the token is not valid yet"));
        }
        let aud = match a.aud {
            None => Vec::new(),
            Some(Audience::One(a)) => vec![a],
            Some(Audience::Many(list)) => list,
        };
        if let Some(audience) = &self.audience
            && !aud.iter().any(|a| a == audience)
        {
            return Err(AuthError::invalid(
                "the token is not meant for this audience",
            ));
        }
        if let (Some(want), Some(got)) = (&self.issuer, &a.iss)
            && want != got
        {
            return Err(AuthError::invalid("the token was issued by another issuer"));
        }
        Ok(BearerToken {
            sub: a
                .sub
                .ok_or_else(|| AuthError::invalid("the token has no subject"))?,
            client_id: a
                .client_id
                .ok_or_else(|| AuthError::invalid("the token has no client_id"))?,
            scope: parse_scope(a.scope.as_deref())?,
            username: a.username,
            exp,
            jti: a.jti,
            aud,
            realm: realm.clone(),
        })
    }
}

/// A map whose entries expire, bounded in size: when full, expired entries go first, then
/// those expiring soonest.
pub(crate) struct TtlCache<V> {
    capacity: usize,
    entries: HashMap<[u8; 32], (V, i64, u64)>,
    /// (expires_at, insertion number, key), soonest first.
    by_expiry: BTreeSet<(i64, u64, [u8; 32])>,
    next: u64,
}

impl<V> TtlCache<V> {
    pub(crate) fn new(capacity: usize) -> Self {
        TtlCache {
            capacity,
            entries: HashMap::new(),
            by_expiry: BTreeSet::new(),
            next: 0,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn get(&mut self, key: &[u8; 32], now: i64) -> Option<&V> {
        let expired = self.entries.get(key)?.1 <= now;
        if expired {
            self.remove(key);
            return None;
        }
        self.entries.get(key).map(|e| &e.0)
    }

    pub(crate) fn insert(&mut self, key: [u8; 32], value: V, until: i64, now: i64) {
        if self.capacity == 0 || until <= now {
            return;
        }
        self.remove(&key);
        while let Some(&(at, _, k)) = self.by_expiry.first()
            && (at <= now || self.entries.len() >= self.capacity)
        {
            self.remove(&k);
        }
        self.by_expiry.insert((until, self.next, key));
        self.entries.insert(key, (value, until, self.next));
        self.next += 1;
    }

    fn remove(&mut self, key: &[u8; 32]) {
        if let Some((_, at, n)) = self.entries.remove(key) {
            self.by_expiry.remove(&(at, n, *key));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_urlencoded_first() {
        // RFC 6749 §2.3.1: "photos api" → "photos+api", "s:e/c%" → "s%3Ae%2Fc%25".
        assert_eq!(
            basic_authorization("photos api", "s:e/c%"),
            format!("Basic {}", STANDARD.encode("photos+api:s%3Ae%2Fc%25"))
        );
    }

    #[test]
    fn cache_expires_and_stays_bounded() {
        let k = |n: u8| [n; 32];
        let mut cache = TtlCache::new(2);
        cache.insert(k(1), "a", 130, 100);
        cache.insert(k(2), "b", 110, 100);
        assert_eq!(cache.get(&k(1), 100), Some(&"a"));
        // Full: the entry expiring first (k2) makes room.
        cache.insert(k(3), "c", 120, 100);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&k(2), 100), None);
        assert_eq!(cache.get(&k(3), 119), Some(&"c"));
        assert_eq!(cache.get(&k(3), 120), None);
        assert_eq!(cache.len(), 1);
        // Re-inserting a key replaces it.
        cache.insert(k(1), "a2", 200, 150);
        assert_eq!(cache.get(&k(1), 150), Some(&"a2"));
        assert_eq!(cache.by_expiry.len(), cache.entries.len());
        // Nothing is stored already expired, nor at all with capacity 0.
        cache.insert(k(4), "d", 150, 150);
        assert_eq!(cache.get(&k(4), 150), None);
        let mut none = TtlCache::new(0);
        none.insert(k(1), "a", 200, 100);
        assert_eq!(none.len(), 0);
    }
}
