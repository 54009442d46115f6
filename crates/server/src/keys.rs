//! Signing keys: generated on first start and kept in the store, so every instance signs
//! and publishes the same keys; sealed at rest when a key encryption key is configured.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use oauthd_core::jose::{JoseError, JwkSet, JwsAlg, SigningKey};
use oauthd_core::key_sealing::{self, Kek, SealingError};
use oauthd_core::secret::random_id;
use oauthd_store::{Store, StoreError, StoredKey};

/// ID tokens are for the client right after login; ten minutes is plenty.
pub const ID_TOKEN_LIFETIME: i64 = 600;
/// Verifiers may be a little behind: keep a rotated-out key published this much longer.
const PUBLISH_MARGIN: i64 = 300;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sealing(#[from] SealingError),
    #[error(transparent)]
    Jose(#[from] JoseError),
    #[error("there is no active {0} signing key; run `oauthd keys rotate --alg {0}`")]
    NoActiveKey(&'static str),
    #[error("stored signing key {0} is unreadable")]
    Unreadable(String),
}

pub struct KeyRing {
    store: Arc<dyn Store>,
    kek: Option<Kek>,
    /// Parsed private keys by kid; key material never changes for a kid.
    parsed: Mutex<HashMap<String, Arc<SigningKey>>>,
}

impl KeyRing {
    pub fn new(store: Arc<dyn Store>, kek: Option<Kek>) -> Self {
        KeyRing {
            store,
            kek,
            parsed: Mutex::new(HashMap::new()),
        }
    }

    /// A fresh key of `alg`, sealed for storage.
    pub fn new_stored_key(&self, alg: JwsAlg, now: i64) -> Result<StoredKey, KeyError> {
        let kid = random_id();
        let (key, der) = SigningKey::generate(kid.clone(), alg)?;
        Ok(StoredKey {
            private_key: key_sealing::seal(self.kek.as_ref(), &kid, &der),
            public_jwk: serde_json::to_string(&key.public_jwk())
                .map_err(|_| KeyError::Unreadable(kid.clone()))?,
            kid,
            alg: alg.as_str().to_owned(),
            created_at: now,
            rotated_at: None,
            publish_until: None,
            retired_at: None,
        })
    }

    /// At start: make sure each algorithm has an active key (another instance may create it
    /// at the same moment; the store keeps one), and that every stored key can be opened.
    pub async fn ensure_active_keys(&self, now: i64) -> Result<(), KeyError> {
        let keys = self.store.signing_keys().await?;
        for alg in JwsAlg::ALL {
            if !keys.iter().any(|k| k.is_active() && k.alg == alg.as_str()) {
                let created = self
                    .store
                    .insert_active_key(&self.new_stored_key(alg, now)?)
                    .await?;
                if created {
                    tracing::info!(alg = alg.as_str(), "generated a signing key");
                }
            }
        }
        for k in self.store.signing_keys().await?.iter() {
            if k.retired_at.is_none() {
                self.load(k)?;
            }
            // A key encryption key configured after keys were stored: seal those keys now, so
            // the database no longer holds any private key in clear.
            if let Some(kek) = &self.kek
                && !key_sealing::is_sealed(&k.private_key)
            {
                let der = key_sealing::open(None, &k.kid, &k.private_key)?;
                self.store
                    .replace_private_key(&k.kid, &key_sealing::seal(Some(kek), &k.kid, &der))
                    .await?;
                tracing::warn!(kid = %k.kid, "sealed a signing key that was stored in clear; earlier copies may remain in the database file's free space until it is vacuumed");
            }
        }
        Ok(())
    }

    fn load(&self, stored: &StoredKey) -> Result<Arc<SigningKey>, KeyError> {
        let mut parsed = self.parsed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = parsed.get(&stored.kid) {
            return Ok(k.clone());
        }
        let alg =
            JwsAlg::parse(&stored.alg).ok_or_else(|| KeyError::Unreadable(stored.kid.clone()))?;
        let der = key_sealing::open(self.kek.as_ref(), &stored.kid, &stored.private_key)?;
        let key = Arc::new(SigningKey::from_pkcs8(stored.kid.clone(), alg, &der)?);
        parsed.insert(stored.kid.clone(), key.clone());
        Ok(key)
    }

    /// The active key for `alg`, as stored now (a rotation on any instance takes effect on
    /// the next token).
    pub async fn signing_key(&self, alg: JwsAlg) -> Result<Arc<SigningKey>, KeyError> {
        let keys = self.store.signing_keys().await?;
        let active = keys
            .iter()
            .find(|k| k.is_active() && k.alg == alg.as_str())
            .ok_or(KeyError::NoActiveKey(alg.as_str()))?;
        self.load(active)
    }

    /// Every published key (active, or rotated out and still within its overlap).
    pub async fn jwks(&self, now: i64) -> Result<JwkSet, KeyError> {
        let keys = self.store.signing_keys().await?;
        let mut set = JwkSet::default();
        for k in keys.iter().filter(|k| k.is_published(now)) {
            set.keys.push(
                serde_json::from_str(&k.public_jwk)
                    .map_err(|_| KeyError::Unreadable(k.kid.clone()))?,
            );
        }
        Ok(set)
    }
}

/// How long a key rotated out now must stay published: past the longest-lived token it may
/// have signed.
pub fn publish_until(now: i64, longest_access_token_ttl: i64) -> i64 {
    now + longest_access_token_ttl.max(ID_TOKEN_LIFETIME) + PUBLISH_MARGIN
}
