//! Argon2id for passwords and client secrets, run off the async workers.
use argon2::Argon2;
use argon2::password_hash::{
    PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString, rand_core::OsRng,
};

use oauthd_core::secret::Secret;

pub struct Passwords {
    /// Verified against when the username is unknown, so both cases cost the same time.
    dummy_hash: String,
}

impl Default for Passwords {
    fn default() -> Self {
        Passwords {
            dummy_hash: hash(&Secret::from_presented("oauthd-dummy-password")),
        }
    }
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
        let ok = tokio::task::spawn_blocking(move || verify_sync(&secret, &phc))
            .await
            .unwrap_or(false);
        ok && known
    }

    pub async fn hash(&self, secret: Secret) -> String {
        tokio::task::spawn_blocking(move || hash(&secret))
            .await
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
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
