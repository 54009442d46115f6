//! Private keys at rest: sealed with AES-256-GCM under a key derived (HKDF-SHA256) from the
//! operator's key encryption key, so a database dump alone yields no signing key.
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

const SEALED_PREFIX: &str = "aes256gcm:v1:";
const PLAIN_PREFIX: &str = "plain:";
pub const MIN_KEK_LENGTH: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealingError {
    #[error("the key encryption key must be at least {MIN_KEK_LENGTH} characters")]
    WeakKek,
    #[error(
        "the signing keys are encrypted; set OAUTHD_KEY_ENCRYPTION_KEY (or key_encryption_key) to the key they were encrypted with"
    )]
    KekRequired,
    #[error(
        "a signing key could not be decrypted: the key encryption key is wrong or the stored key is damaged"
    )]
    CannotOpen,
    #[error("a stored signing key has an unknown format")]
    UnknownFormat,
}

/// The key encryption key, ready to use.
pub struct Kek(LessSafeKey);

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(<redacted>)")
    }
}

impl Kek {
    pub fn derive(secret: &str) -> Result<Kek, SealingError> {
        if secret.chars().count() < MIN_KEK_LENGTH {
            return Err(SealingError::WeakKek);
        }
        let prk = Salt::new(HKDF_SHA256, b"oauthd key sealing v1").extract(secret.as_bytes());
        let okm = prk
            .expand(&[b"aes-256-gcm"], &AES_256_GCM)
            .map_err(|_| SealingError::WeakKek)?;
        Ok(Kek(LessSafeKey::new(UnboundKey::from(okm))))
    }
}

/// The stored form of a private key: sealed when a KEK is configured, plain otherwise.
pub fn seal(kek: Option<&Kek>, kid: &str, der: &[u8]) -> String {
    let Some(kek) = kek else {
        return format!("{PLAIN_PREFIX}{}", STANDARD.encode(der));
    };
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .expect("the system random generator failed");
    let mut data = der.to_vec();
    // The key id is bound as associated data: a sealed key cannot be swapped to another kid.
    kek.0
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(kid.as_bytes()),
            &mut data,
        )
        .expect("AES-GCM sealing cannot fail for in-memory data");
    let mut out = nonce.to_vec();
    out.extend(data);
    format!("{SEALED_PREFIX}{}", STANDARD.encode(out))
}

pub fn open(kek: Option<&Kek>, kid: &str, stored: &str) -> Result<Vec<u8>, SealingError> {
    if let Some(plain) = stored.strip_prefix(PLAIN_PREFIX) {
        return STANDARD
            .decode(plain)
            .map_err(|_| SealingError::UnknownFormat);
    }
    let sealed = stored
        .strip_prefix(SEALED_PREFIX)
        .ok_or(SealingError::UnknownFormat)?;
    let kek = kek.ok_or(SealingError::KekRequired)?;
    let bytes = STANDARD
        .decode(sealed)
        .map_err(|_| SealingError::UnknownFormat)?;
    if bytes.len() < NONCE_LEN {
        return Err(SealingError::CannotOpen);
    }
    let (nonce, data) = bytes.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealingError::CannotOpen)?;
    let mut data = data.to_vec();
    let plain = kek
        .0
        .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut data)
        .map_err(|_| SealingError::CannotOpen)?;
    Ok(plain.to_vec())
}

pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn round_trip_and_failures() {
        let kek = Kek::derive(SECRET).unwrap();
        let sealed = seal(Some(&kek), "k1", b"private");
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains(&STANDARD.encode(b"private")));
        assert_eq!(open(Some(&kek), "k1", &sealed).unwrap(), b"private");
        assert_eq!(open(None, "k1", &sealed), Err(SealingError::KekRequired));
        assert_eq!(
            open(Some(&kek), "k2", &sealed),
            Err(SealingError::CannotOpen),
            "bound to the kid"
        );
        let other = Kek::derive("another key encryption key, 32+ chars").unwrap();
        assert_eq!(
            open(Some(&other), "k1", &sealed),
            Err(SealingError::CannotOpen)
        );
        let plain = seal(None, "k1", b"private");
        assert_eq!(open(Some(&kek), "k1", &plain).unwrap(), b"private");
        assert_eq!(
            open(None, "k1", "rot13:xyz"),
            Err(SealingError::UnknownFormat)
        );
        assert!(matches!(Kek::derive("short"), Err(SealingError::WeakKek)));
    }
}
