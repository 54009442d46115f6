//! Argon2id for passwords and client secrets, run off the async workers.
//!
//! Each verification takes ~19 MiB and tens of milliseconds, so at most one per core runs at
//! a time (others wait): a burst of logins cannot exhaust memory. Successful client-secret
//! checks are remembered for a while, so an API that introspects on every request does not
//! pay Argon2 each time; the entry is keyed by a digest of the stored hash and the presented
//! secret, so a rotated secret misses at once on every instance.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{
    PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString, rand_core::OsRng,
};
use sha2::{Digest as _, Sha256};
use tokio::sync::Semaphore;

use oauthd_core::secret::Secret;

pub struct Passwords {
    /// Verified against when the username is unknown, so both cases cost the same time.
    dummy_hash: String,
    /// One Argon2 computation per core at a time.
    slots: Semaphore,
    /// Digests of (stored hash, presented client secret) that verified, until when.
    verified_secrets: Mutex<HashMap<[u8; 32], Instant>>,
}

/// How long a verified client secret is remembered.
const CLIENT_SECRET_CACHE_TTL: Duration = Duration::from_secs(300);
const CLIENT_SECRET_CACHE_MAX: usize = 10_000;

impl Default for Passwords {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Passwords {
            dummy_hash: hash(&Secret::from_presented("oauthd-dummy-password")),
            slots: Semaphore::new(cores),
            verified_secrets: Mutex::new(HashMap::new()),
        }
    }
}

fn cache_key(phc: &str, secret: &Secret) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(phc.as_bytes());
    h.update([0]);
    h.update(secret.expose().as_bytes());
    h.finalize().into()
}

/// Argon2id with the crate's defaults (19 MiB, 2 passes, 1 lane: OWASP's recommendation).
pub fn hash(secret: &Secret) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(secret.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .unwrap_or_default()
}

fn verify_sync(secret: &Secret, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| {
            Argon2::default()
                .verify_password(secret.expose().as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

impl Passwords {
    /// Verify against `stored`, or against the dummy hash when there is none (and fail).
    pub async fn verify(&self, secret: Secret, stored: Option<String>) -> bool {
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| self.dummy_hash.clone());
        let Ok(_slot) = self.slots.acquire().await else {
            return false;
        };
        let ok = tokio::task::spawn_blocking(move || verify_sync(&secret, &phc))
            .await
            .unwrap_or(false);
        ok && known
    }

    /// A client secret check, remembered for a while when it succeeds. Failures are never
    /// remembered (and are throttled by the caller).
    pub async fn verify_client_secret(&self, secret: Secret, stored: Option<String>) -> bool {
        let Some(phc) = stored else {
            return self.verify(secret, None).await;
        };
        let key = cache_key(&phc, &secret);
        let now = Instant::now();
        {
            let cache = self
                .verified_secrets
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if cache.get(&key).is_some_and(|until| *until > now) {
                return true;
            }
        }
        if !self.verify(secret, Some(phc)).await {
            return false;
        }
        let mut cache = self
            .verified_secrets
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CLIENT_SECRET_CACHE_MAX {
            cache.retain(|_, until| *until > now);
            if cache.len() >= CLIENT_SECRET_CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(key, now + CLIENT_SECRET_CACHE_TTL);
        true
    }

    pub async fn hash(&self, secret: Secret) -> String {
        let _slot = self.slots.acquire().await;
        tokio::task::spawn_blocking(move || hash(&secret))
            .await
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn verified_client_secrets_are_remembered_per_stored_hash() {
        let p = Passwords::default();
        let phc = p.hash(Secret::from_presented("ocs_secret")).await;
        assert!(
            !p.verify_client_secret(Secret::from_presented("ocs_wrong"), Some(phc.clone()))
                .await
        );
        assert!(
            p.verify_client_secret(Secret::from_presented("ocs_secret"), Some(phc.clone()))
                .await
        );
        assert_eq!(
            p.verified_secrets.lock().unwrap().len(),
            1,
            "only successes are remembered"
        );
        assert!(
            p.verify_client_secret(Secret::from_presented("ocs_secret"), Some(phc))
                .await
        );
        // A rotated secret (another stored hash) misses the cache: the old secret fails.
        let rotated = p.hash(Secret::from_presented("ocs_new")).await;
        assert!(
            !p.verify_client_secret(Secret::from_presented("ocs_secret"), Some(rotated))
                .await
        );
        assert!(
            !p.verify_client_secret(Secret::from_presented("ocs_secret"), None)
                .await
        );
    }

    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let p = Passwords::default();
        let h = p.hash(Secret::from_presented("correct horse")).await;
        assert!(h.starts_with("$argon2id$"));
        assert!(
            p.verify(Secret::from_presented("correct horse"), Some(h.clone()))
                .await
        );
        assert!(!p.verify(Secret::from_presented("wrong"), Some(h)).await);
        assert!(
            !p.verify(Secret::from_presented("oauthd-dummy-password"), None)
                .await
        );
        assert!(
            !p.verify(Secret::from_presented("x"), Some("not a phc".into()))
                .await
        );
    }
}
