//! Random secrets (tokens, codes, session ids) and their stored form.
//!
//! A secret is shown to its holder once and stored only as its SHA-256 hash, truncated to 128
//! bits (NIST SP 800-107 §5.1): the values are 256-bit random, so a fast hash is enough and a
//! database dump yields no usable token.
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
        Secret(format!(
            "{}{}",
            kind.prefix(),
            URL_SAFE_NO_PAD.encode(random_bytes())
        ))
    }

    /// Like [`Secret::generate`], with the issue time (milliseconds since the epoch, 11 hex
    /// digits) between the prefix and the random part. The stored form then starts with that
    /// time too, so the rows of tokens issued together sit side by side in the database's
    /// indexes: a commit of many new tokens writes a few pages at the end of each index
    /// instead of one random page per token. The time is not secret (a client sees when it got
    /// its token; JWTs carry `iat`); the 256 random bits are what make the value unguessable.
    pub fn generate_at(kind: SecretKind, now_millis: i64) -> Self {
        let mut value = time_prefix(kind, now_millis);
        URL_SAFE_NO_PAD.encode_string(random_bytes(), &mut value);
        Secret(value)
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

/// Bytes of the SHA-256 digest kept in a [`SecretHash`].
pub const DIGEST_BYTES: usize = 16;

/// The largest issue time [`Secret::generate_at`] writes (11 hex digits of milliseconds).
const MAX_TIME: i64 = 0xfff_ffff_ffff;
const TIME_DIGITS: usize = 11;
/// `o??_` + time + 43 base64url characters (32 bytes).
const TIMED_LEN: usize = 4 + TIME_DIGITS + 43;

/// The issue time of a value shaped like [`Secret::generate_at`]'s output, or like a sealed
/// authorization code (`crate::code_sealing`: the same header, then more than 43 characters).
/// Anyone can forge the shape; it only chooses where the hash is stored, never whether a value
/// is accepted.
fn time_part(value: &str) -> Option<&str> {
    let b = value.as_bytes();
    let token = b.len() == TIMED_LEN && b[0] == b'o' && b[3] == b'_';
    let sealed_code =
        b.len() > TIMED_LEN && value.starts_with(SecretKind::AuthorizationCode.prefix());
    if !(token || sealed_code) {
        return None;
    }
    let time = value.get(4..4 + TIME_DIGITS)?;
    time.bytes()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        .then_some(time)
}

/// The stored form of a secret: the first 128 bits of the SHA-256 of the whole value, in
/// lowercase hex, preceded by the value's issue time when it has one ([`Secret::generate_at`],
/// sealed codes).
///
/// 128 bits because the hash is only a lookup key for values with 256 random bits that the
/// server drew itself: finding a value that matches a stored hash (from a stolen database, or
/// by guessing online) is still 2^128 work, and two stored values sharing a key is refused by
/// the primary key, not trusted. Every index on a hash holds half the bytes it held with the
/// whole digest, which is fewer pages written per commit (BENCHMARKS.md, seventh session).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SecretHash(String);

impl SecretHash {
    pub fn of(value: &str) -> Self {
        let digest = Sha256::digest(value.as_bytes());
        let time = time_part(value).unwrap_or("");
        let mut hex = String::with_capacity(time.len() + 2 * DIGEST_BYTES);
        hex.push_str(time);
        for b in &digest[..DIGEST_BYTES] {
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
        // A hash is not usable as a token, but a few digits are enough to correlate log
        // lines (taken from the digest, after any issue time).
        let digest = self
            .0
            .get(self.0.len().saturating_sub(2 * DIGEST_BYTES)..)
            .unwrap_or("");
        let prefix: String = digest.chars().take(8).collect();
        write!(f, "SecretHash({prefix}…)")
    }
}

/// 256 random bits from the OS generator, for keys of our own (sealed authorization codes).
pub(crate) fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// What every secret of `kind` issued at `now_millis` starts with: the prefix, then the time as
/// in [`Secret::generate_at`].
pub(crate) fn time_prefix(kind: SecretKind, now_millis: i64) -> String {
    format!("{}{:011x}", kind.prefix(), now_millis.clamp(0, MAX_TIME))
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

/// A random id that sorts by creation time: the millisecond `now_millis` in hex (11 digits,
/// as in [`Secret::generate_at`]), then [`random_id`]. Rows keyed by it (grants, and every
/// token and code row that points at a grant) go in at the end of their indexes, so a batch
/// of inserts touches a few pages at the end of each B-tree instead of one random page each.
/// Milliseconds, not seconds: within one second thousands of grants would otherwise land at
/// random among that second's pages (measured: 15 dirtied pages per commit in each token
/// table's `grant_id` index at c=64, BENCHMARKS.md). The time is not a secret; the id is not
/// an authenticator.
pub fn time_ordered_id(now_millis: i64) -> String {
    format!("{:011x}{}", now_millis.clamp(0, MAX_TIME), random_id())
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
    fn timed_secrets_store_their_issue_time_first() {
        let a = Secret::generate_at(SecretKind::AccessToken, 1_700_000_000_123);
        let b = Secret::generate_at(SecretKind::AccessToken, 1_700_000_000_124);
        assert!(a.expose().starts_with("oat_18bcfe5687b"));
        assert_eq!(a.expose().len(), TIMED_LEN);
        let (ha, hb) = (a.hash(), b.hash());
        assert!(ha.as_str().starts_with("18bcfe5687b"));
        assert_eq!(ha.as_str().len(), 11 + 32);
        assert!(ha.as_str() < hb.as_str(), "later tokens sort later");
        // The digest covers the whole value: the same time with other random bits, or a
        // forged time, gives another stored form.
        assert_ne!(
            ha,
            Secret::generate_at(SecretKind::AccessToken, 1_700_000_000_123).hash()
        );
        let forged = format!("oat_18bcfe5687c{}", &a.expose()[15..]);
        assert_ne!(SecretHash::of(&forged), ha);
        assert_eq!(SecretHash::of(a.expose()), ha);
        // Values without the shape (older tokens, other kinds, garbage) hash as before.
        let plain = Secret::generate(SecretKind::AccessToken);
        assert_eq!(plain.hash().as_str().len(), 32);
        assert_eq!(SecretHash::of("oat_ZZZZZZZZZZZ").as_str().len(), 32);
        // Longer than a token: only a sealed code (`oac_`) keeps its time.
        let long = format!("{}x", a.expose());
        assert_eq!(SecretHash::of(&long).as_str().len(), 32);
        let code_shaped = format!("oac_18bcfe5687b{}x", &a.expose()[15..]);
        assert!(
            SecretHash::of(&code_shaped)
                .as_str()
                .starts_with("18bcfe5687b")
        );
        let upper = format!("oat_18BCFE5687B{}", &a.expose()[15..]);
        assert_eq!(SecretHash::of(&upper).as_str().len(), 32);
        assert!(!format!("{ha:?}").contains("18bcfe56"));
        assert!(
            Secret::generate_at(SecretKind::AuthorizationCode, -1)
                .expose()
                .starts_with("oac_00000000000")
        );
    }

    #[test]
    fn time_ordered_ids_sort_by_time_and_are_unique() {
        let a = time_ordered_id(1_700_000_000_999);
        let b = time_ordered_id(1_700_000_001_000);
        let c = time_ordered_id(1_700_000_001_000);
        assert!(a < b && a < c);
        assert_ne!(b, c);
        assert!(a.starts_with("18bcfe56be7"));
        assert_eq!(a.len(), 11 + 22);
        assert!(time_ordered_id(-5).starts_with("00000000000"));
        assert!(time_ordered_id(i64::MAX).starts_with("fffffffffff"));
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
    fn hash_is_the_first_half_of_sha256_in_hex() {
        // SHA-256("abc") is ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
        // (FIPS 180-2 Appendix B.1); its first 128 bits are kept.
        assert_eq!(
            SecretHash::of("abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223"
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
