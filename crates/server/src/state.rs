//! What every handler shares.
use std::sync::Arc;

use oauthd_core::code_sealing::CodeKey;
use oauthd_core::secret::{Secret, SecretKind};
use oauthd_store::Store;

use crate::clock::Clock;
use crate::keys::KeyRing;
use crate::passwords::Passwords;
use crate::throttle::{LoginThrottle, RateLimiter};

/// Runtime policy derived from the configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    pub issuer: String,
    pub code_lifetime: i64,
    pub refresh_grace_period: i64,
    pub refresh_absolute_lifetime: i64,
    pub session_lifetime: i64,
    pub pending_lifetime: i64,
    /// Cookies get `Secure` when the issuer is https.
    pub secure_cookies: bool,
    /// A request head must arrive within this; idle connections close after it.
    pub header_read_timeout: std::time::Duration,
}

/// What every handler shares, behind one `Arc`: axum clones the state for each extractor
/// and middleware of every request, and one reference count is cheaper to bump and drop
/// than seven (dropping the seven showed in the c=8 profile).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub store: Arc<dyn Store>,
    pub policy: Arc<Policy>,
    pub clock: Arc<dyn Clock>,
    pub throttle: Arc<LoginThrottle>,
    pub client_rate: Arc<RateLimiter>,
    pub passwords: Arc<Passwords>,
    pub keys: Arc<KeyRing>,
    /// Seals authorization codes (`oauthd_core::code_sealing`).
    pub code_key: CodeKey,
}

impl Shared {
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Milliseconds since the epoch, for ids that sort by creation time.
    pub fn now_millis(&self) -> i64 {
        self.clock.now_millis()
    }

    /// A token, code or id that is stored by hash: stamped with the issue time so that what
    /// is issued together is stored together ([`Secret::generate_at`]).
    pub fn new_secret(&self, kind: SecretKind) -> Secret {
        Secret::generate_at(kind, self.now_millis())
    }
}
