//! Argon2id for passwords and client secrets, run off the async workers.
//!
//! Each verification takes ~19 MiB and tens of milliseconds, so at most one per core runs at
//! a time (others wait): a burst of logins cannot exhaust memory. The 19 MiB working areas are
//! kept and reused (one per core) rather than allocated per check: the allocator would keep
//! each freed area in a different thread's arena, and the server's memory would grow with
//! every blocking thread that ever verified a password. Successful client-secret
//! checks are remembered for a while, so an API that introspects on every request does not
//! pay Argon2 each time; the entry is keyed by a digest of the stored hash and the presented
//! secret, so a rotated secret misses at once on every instance.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use tokio::sync::Semaphore;

use oauthd_core::secret::Secret;

pub struct Passwords {
    /// Verified against when the username is unknown, so both cases cost the same time.
    dummy_hash: String,
    /// One Argon2 computation per core at a time.
    slots: Semaphore,
    /// Argon2 working memory, one area per slot, reused.
    areas: Arc<Mutex<Vec<Vec<Block>>>>,
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
            areas: Arc::new(Mutex::new(Vec::new())),
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

/// Verify `secret` against a PHC string, computing in `area` (grown when the stored
/// parameters need more). What `PasswordVerifier` does, without allocating the area.
fn verify_sync(secret: &Secret, phc: &str, area: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(version), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        parsed
            .version
            .map_or(Ok(Version::default()), Version::try_from),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    if area.len() < params.block_count() {
        area.resize(params.block_count(), Block::default());
    }
    let mut computed = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(
            secret.expose().as_bytes(),
            salt,
            &mut computed,
            &mut area[..],
        )
        .is_ok()
        && bool::from(computed.ct_eq(expected.as_bytes()))
}

impl Passwords {
    /// Verify against `stored`, or against the dummy hash when there is none (and fail).
    pub async fn verify(&self, secret: Secret, stored: Option<String>) -> bool {
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| self.dummy_hash.clone());
        let Ok(_slot) = self.slots.acquire().await else {
            return false;
        };
        let areas = self.areas.clone();
        let ok = tokio::task::spawn_blocking(move || {
            let mut area = areas
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop()
                .unwrap_or_default();
            let ok = verify_sync(&secret, &phc, &mut area);
            areas.lock().unwrap_or_else(|e| e.into_inner()).push(area);
            ok
        })
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
        // The working areas are reused: never more than one per slot.
        assert!(
            p.areas.lock().unwrap().len() <= std::thread::available_parallelism().unwrap().get()
        );
    }

    #[test]
    fn reused_area_verifies_hashes_with_other_parameters() {
        // A stored hash made with other parameters (and the argon2 crate's own verifier
        // agreeing) still verifies, in an area first sized for the defaults.
        let mut area = Vec::new();
        let default_hash = hash(&Secret::from_presented("pw"));
        assert!(verify_sync(
            &Secret::from_presented("pw"),
            &default_hash,
            &mut area
        ));
        let params = Params::new(32 * 1024, 3, 1, Some(16)).unwrap();
        let salt = SaltString::generate(&mut OsRng);
        let bigger = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"pw", &salt)
            .unwrap()
            .to_string();
        assert!(verify_sync(
            &Secret::from_presented("pw"),
            &bigger,
            &mut area
        ));
        assert!(!verify_sync(
            &Secret::from_presented("pW"),
            &bigger,
            &mut area
        ));
        assert_eq!(area.len(), 32 * 1024);
        // Argon2i and a truncated hash are handled, not mistaken for a match.
        let argon2i = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"pw", &salt)
        .unwrap()
        .to_string();
        assert!(verify_sync(
            &Secret::from_presented("pw"),
            &argon2i,
            &mut area
        ));
        let cut = &default_hash[..default_hash.len() - 4];
        assert!(!verify_sync(&Secret::from_presented("pw"), cut, &mut area));
    }
}
