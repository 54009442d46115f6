//! Random secrets (tokens, codes, session ids) and their stored form.
//!
//! A secret is shown to its holder once and stored only as its SHA-256 hash: the values are
//! 256-bit random, so a fast hash is enough and a database dump yields no usable token.
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use std::fmt;
use subtle::ConstantTimeEq as _;

/// What a secret is for; its prefix makes a leaked value easy to recognise and scan for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    AccessToken,
    RefreshToken,
    AuthorizationCode,
    Session,
    Browser,
    PendingAuthorization,
    ClientSecret,
}

impl SecretKind {
    pub const fn prefix(self) -> &'static str {
        match self {
            SecretKind::AccessToken => "oat_",
            SecretKind::RefreshToken => "ort_",
            SecretKind::AuthorizationCode => "oac_",
            SecretKind::Session => "oss_",
            SecretKind::Browser => "obr_",
            SecretKind::PendingAuthorization => "opa_",
            SecretKind::ClientSecret => "ocs_",
        }
    }
}

/// A secret value. `Debug` and `Display` never print it; use [`Secret::expose`] deliberately.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// 32 random bytes from the OS generator, base64url, behind the kind's prefix.
    pub fn generate(kind: SecretKind) -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Secret(format!(
            "{}{}",
            kind.prefix(),
            URL_SAFE_NO_PAD.encode(bytes)
        ))
    }

    /// Wrap a value received from outside (a presented token, a typed password).
    pub fn from_presented(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> SecretHash {
        SecretHash::of(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The stored form of a secret: lowercase hex SHA-256.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SecretHash(String);

impl SecretHash {
    pub fn of(value: &str) -> Self {
        let digest = Sha256::digest(value.as_bytes());
        let mut hex = String::with_capacity(64);
        for b in digest {
            hex.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
            hex.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
        }
        SecretHash(hex)
    }

    /// Rebuild from a stored column; the store is the only caller.
    pub fn from_stored(hex: String) -> Self {
        SecretHash(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A hash is not usable as a token, but a prefix is enough to correlate log lines.
        let prefix: String = self.0.chars().take(8).collect();
        write!(f, "SecretHash({prefix}…)")
    }
}

/// A random identifier that is not a credential (grant, user, client and key ids): 16 bytes,
/// base64url. It never starts with `-`, so it can be passed to the CLI as an argument.
pub fn random_id() -> String {
    loop {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        let id = URL_SAFE_NO_PAD.encode(bytes);
        if !id.starts_with('-') {
            return id;
        }
    }
}

/// A random id that sorts by creation time: the second `now` in hex, then [`random_id`].
/// Rows keyed by it (grants) go in at the end of their indexes, so a batch of inserts
/// touches a few pages at the end of the B-tree instead of one random page each. The time is
/// not a secret; the id is not an authenticator.
pub fn time_ordered_id(now: crate::UnixTime) -> String {
    format!("{:08x}{}", now.clamp(0, i64::from(u32::MAX)), random_id())
}

/// Constant-time string equality, for comparing values derived from secrets.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The CSRF token for a browser: derived from the browser cookie's secret, so it needs no
/// storage and cannot be computed by a page that cannot read that cookie.
pub fn csrf_token_for(browser_secret: &Secret) -> String {
    let mut h = Sha256::new();
    h.update(b"oauthd-csrf\0");
    h.update(browser_secret.expose().as_bytes());
    URL_SAFE_NO_PAD.encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ordered_ids_sort_by_time_and_are_unique() {
        let a = time_ordered_id(1_700_000_000);
        let b = time_ordered_id(1_700_000_001);
        let c = time_ordered_id(1_700_000_001);
        assert!(a < b && a < c);
        assert_ne!(b, c);
        assert!(a.starts_with("6553f100"));
        assert_eq!(a.len(), 8 + 22);
        assert!(time_ordered_id(-5).starts_with("00000000"));
    }

    #[test]
    fn generated_secrets_are_prefixed_unique_and_url_safe() {
        let a = Secret::generate(SecretKind::AccessToken);
        let b = Secret::generate(SecretKind::AccessToken);
        assert!(a.expose().starts_with("oat_"));
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 4 + 43);
        assert!(
            a.expose()[4..]
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }

    #[test]
    fn random_ids_never_look_like_options() {
        // 1 in 64 ids would start with '-' if nothing prevented it.
        for _ in 0..5000 {
            let id = random_id();
            assert!(!id.starts_with('-'), "{id}");
            assert_eq!(id.len(), 22);
        }
    }

    #[test]
    fn debug_never_prints_the_value() {
        let s = Secret::generate(SecretKind::RefreshToken);
        let shown = format!("{s:?}");
        assert!(!shown.contains(&s.expose()[4..]));
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn hash_is_sha256_hex() {
        // SHA-256("abc"), FIPS 180-2 Appendix B.1.
        assert_eq!(
            SecretHash::of("abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn csrf_token_depends_on_the_browser_secret() {
        let a = Secret::from_presented("obr_a");
        let b = Secret::from_presented("obr_b");
        assert_eq!(csrf_token_for(&a), csrf_token_for(&a));
        assert_ne!(csrf_token_for(&a), csrf_token_for(&b));
    }

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
    }
}
