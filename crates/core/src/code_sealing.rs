//! Authorization codes that carry their own record, sealed with AES-256-GCM.
//!
//! Issuing a code then writes nothing: what the authorization request decided (client, user,
//! redirect URI, scope, PKCE challenge, nonce, expiry) travels inside the code, encrypted and
//! authenticated, and the token endpoint opens it. What must happen once is still recorded:
//! the store keeps a code's redemption and failed verifiers under the code's hash, in the one
//! compare-and-set that issues its tokens (RFC 6749 §4.1.2, DESIGN §2).
//!
//! Each code gets its own key, expanded (HKDF-SHA256) from the server's code key and the code's
//! 256 random bits, so no key ever seals twice and a zero nonce is safe. The server's code key
//! is derived from the key encryption key when one is configured, so a database dump holds
//! nothing that opens or forges a code; without one it is a random key every instance reads
//! from the database, as unsealed signing keys are.
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Prk, Salt};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::UnixTime;
use crate::code::IssuedCode;
use crate::key_sealing::{MIN_KEK_LENGTH, SealingError};
use crate::pkce::{CodeChallenge, PkceMode};
use crate::scope::Scope;
use crate::secret::{self, Secret, SecretKind};

/// 2: the code's stored form starts with its issue time (`secret::SecretHash`). Format 1
/// codes were stored without it, so one redeemed before an upgrade would not be found as
/// redeemed after it: they are refused, as codes sealed with another key are.
const FORMAT: u8 = 2;
const RANDOM_LEN: usize = 32;
const TAG_LEN: usize = 16;
/// The issue time in the clear, as in every other secret of ours ([`secret::time_prefix`]).
const TIME_DIGITS: usize = 11;
const FLAG_REDIRECT_URI_SENT: u8 = 1;
const FLAG_NONCE: u8 = 2;

/// The server's key for sealing codes. `Debug` never prints it.
pub struct CodeKey(Prk);

impl std::fmt::Debug for CodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeKey(<redacted>)")
    }
}

impl CodeKey {
    /// Derived from the operator's key encryption key: the same in every process given the
    /// same key, and nothing about it is stored.
    pub fn derive(kek_secret: &str) -> Result<CodeKey, SealingError> {
        if kek_secret.chars().count() < MIN_KEK_LENGTH {
            return Err(SealingError::WeakKek);
        }
        Ok(CodeKey::from_material(kek_secret.as_bytes()))
    }

    /// A new random key in the form [`CodeKey::from_stored`] reads: 256 bits, base64url.
    pub fn generate_stored() -> String {
        URL_SAFE_NO_PAD.encode(secret::random_bytes())
    }

    /// The key stored by [`CodeKey::generate_stored`]; `None` if the value is not one.
    pub fn from_stored(stored: &str) -> Option<CodeKey> {
        let bytes = URL_SAFE_NO_PAD.decode(stored).ok()?;
        (bytes.len() == RANDOM_LEN).then(|| CodeKey::from_material(&bytes))
    }

    fn from_material(material: &[u8]) -> CodeKey {
        CodeKey(Salt::new(HKDF_SHA256, b"oauthd code sealing v1").extract(material))
    }

    fn for_code(&self, random: &[u8]) -> LessSafeKey {
        let info = [b"aes-256-gcm".as_slice(), random];
        let okm = self
            .0
            .expand(&info, &AES_256_GCM)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        LessSafeKey::new(UnboundKey::from(okm))
    }
}

/// What a code carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedRecord {
    pub code: IssuedCode,
    /// When the code's client was registered: a client deleted and registered again under
    /// the same id is another client, and the codes of the first one die with it.
    pub client_created_at: UnixTime,
}

/// A new code: `oac_`, the issue time, then base64url of 32 random bytes and the sealed record.
pub fn seal(key: &CodeKey, record: &SealedRecord, now_millis: i64) -> Secret {
    let random = secret::random_bytes();
    let header = secret::time_prefix(SecretKind::AuthorizationCode, now_millis);
    let mut data = encode(record);
    // The prefix and time are bound as associated data: neither can be altered.
    key.for_code(&random)
        .seal_in_place_append_tag(zero_nonce(), Aad::from(header.as_bytes()), &mut data)
        .expect("AES-GCM sealing cannot fail for in-memory data");
    let mut body = random.to_vec();
    body.extend(data);
    Secret::from_presented(format!("{header}{}", URL_SAFE_NO_PAD.encode(body)))
}

/// The record inside a presented code; `None` for anything this key did not seal.
pub fn open(key: &CodeKey, presented: &str) -> Option<SealedRecord> {
    let prefix = SecretKind::AuthorizationCode.prefix();
    // `get` is `None` when the code is shorter than the header or cuts a character.
    let header = presented.get(..prefix.len() + TIME_DIGITS)?;
    if !header.starts_with(prefix) {
        return None;
    }
    let mut body = URL_SAFE_NO_PAD.decode(&presented[header.len()..]).ok()?;
    if body.len() < RANDOM_LEN + TAG_LEN {
        return None;
    }
    let (random, sealed) = body.split_at_mut(RANDOM_LEN);
    let plain = key
        .for_code(random)
        .open_in_place(zero_nonce(), Aad::from(header.as_bytes()), sealed)
        .ok()?;
    decode(plain)
}

fn zero_nonce() -> Nonce {
    Nonce::assume_unique_for_key([0u8; NONCE_LEN])
}

fn encode(r: &SealedRecord) -> Vec<u8> {
    let c = &r.code;
    let mut out = Vec::with_capacity(160 + c.redirect_uri.len());
    out.push(FORMAT);
    let mut flags = 0;
    if c.redirect_uri_sent {
        flags |= FLAG_REDIRECT_URI_SENT;
    }
    if c.nonce.is_some() {
        flags |= FLAG_NONCE;
    }
    out.push(flags);
    for text in [
        c.client_id.as_str(),
        c.user_id.as_str(),
        c.redirect_uri.as_str(),
        &c.scope.to_string(),
        c.code_challenge.as_str(),
        c.pkce_mode.as_str(),
        c.nonce.as_deref().unwrap_or(""),
    ] {
        out.extend((text.len() as u32).to_be_bytes());
        out.extend(text.as_bytes());
    }
    for time in [c.auth_time, c.expires_at, r.client_created_at] {
        out.extend(time.to_be_bytes());
    }
    out
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn text(&mut self) -> Option<&'a str> {
        let len = u32::from_be_bytes(self.take(4)?.try_into().ok()?) as usize;
        std::str::from_utf8(self.take(len)?).ok()
    }

    fn time(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
}

fn decode(plain: &[u8]) -> Option<SealedRecord> {
    let mut r = Reader(plain);
    if r.take(1)? != [FORMAT] {
        return None;
    }
    let flags = r.take(1)?[0];
    let client_id = r.text()?.to_owned();
    let user_id = r.text()?.to_owned();
    let redirect_uri = r.text()?.to_owned();
    let scope = Scope::parse(r.text()?).ok()?;
    let code_challenge = CodeChallenge::parse(r.text()?).ok()?;
    let pkce_mode = PkceMode::parse(r.text()?)?;
    let nonce = r.text()?;
    let nonce = (flags & FLAG_NONCE != 0).then(|| nonce.to_owned());
    let (auth_time, expires_at, client_created_at) = (r.time()?, r.time()?, r.time()?);
    if !r.0.is_empty() {
        return None;
    }
    Some(SealedRecord {
        code: IssuedCode {
            client_id,
            user_id,
            redirect_uri,
            redirect_uri_sent: flags & FLAG_REDIRECT_URI_SENT != 0,
            scope,
            code_challenge,
            pkce_mode,
            auth_time,
            expires_at,
            nonce,
        },
        client_created_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretHash;

    impl CodeKey {
        fn random() -> CodeKey {
            CodeKey::from_stored(&CodeKey::generate_stored()).unwrap()
        }
    }

    fn record(nonce: Option<&str>) -> SealedRecord {
        SealedRecord {
            code: IssuedCode {
                client_id: "app".into(),
                user_id: "u-1".into(),
                redirect_uri: "myapp://cb?x=ü".into(),
                redirect_uri_sent: true,
                scope: Scope::parse("openid api").unwrap(),
                code_challenge: CodeChallenge::parse(&"A".repeat(43)).unwrap(),
                pkce_mode: PkceMode::Strict,
                auth_time: 1_700_000_000,
                expires_at: 1_700_000_060,
                nonce: nonce.map(str::to_owned),
            },
            client_created_at: 1_600_000_000,
        }
    }

    #[test]
    fn a_sealed_code_opens_to_what_was_sealed() {
        let key = CodeKey::random();
        for r in [record(None), record(Some("n-0")), record(Some(""))] {
            let code = seal(&key, &r, 1_700_000_000_123);
            assert!(code.expose().starts_with("oac_18bcfe5687b"));
            assert_eq!(open(&key, code.expose()), Some(r));
        }
    }

    #[test]
    fn two_codes_for_the_same_record_differ() {
        let key = CodeKey::random();
        let (a, b) = (seal(&key, &record(None), 0), seal(&key, &record(None), 0));
        assert_ne!(a, b);
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn the_record_is_not_readable_in_the_code() {
        let code = seal(&CodeKey::random(), &record(Some("n-0")), 0);
        let body = URL_SAFE_NO_PAD
            .decode(&code.expose()[4 + TIME_DIGITS..])
            .unwrap();
        for clear in [&b"u-1"[..], b"myapp://", b"openid", b"AAAA"] {
            assert!(!body.windows(clear.len()).any(|w| w == clear));
        }
    }

    #[test]
    fn another_key_or_any_change_does_not_open() {
        let key = CodeKey::random();
        let code = seal(&key, &record(None), 1_700_000_000_123);
        let code = code.expose();
        assert_eq!(open(&CodeKey::random(), code), None);
        // Every single-character change, including the time in the clear, is refused.
        for i in 0..code.len() {
            let mut changed = code.as_bytes().to_vec();
            changed[i] = if changed[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(changed).unwrap();
            assert_eq!(open(&key, &changed), None, "changed at {i}");
        }
        for cut in 0..code.len() {
            assert_eq!(open(&key, &code[..cut]), None);
        }
        assert_eq!(open(&key, "oac_é"), None);
        assert_eq!(open(&key, "oat_00000000000AAAA"), None);
    }

    #[test]
    fn a_key_derived_from_the_same_secret_opens_across_processes() {
        let secret = "0123456789abcdef0123456789abcdef";
        let code = seal(&CodeKey::derive(secret).unwrap(), &record(None), 0);
        assert_eq!(
            open(&CodeKey::derive(secret).unwrap(), code.expose()),
            Some(record(None))
        );
        assert_eq!(
            open(
                &CodeKey::derive(&secret.replace('0', "1")).unwrap(),
                code.expose()
            ),
            None
        );
        assert_eq!(CodeKey::derive("short").err(), Some(SealingError::WeakKek));
    }

    #[test]
    fn a_stored_key_opens_what_it_sealed_and_only_that() {
        let stored = CodeKey::generate_stored();
        assert_ne!(stored, CodeKey::generate_stored());
        let code = seal(&CodeKey::from_stored(&stored).unwrap(), &record(None), 0);
        let again = CodeKey::from_stored(&stored).unwrap();
        assert_eq!(open(&again, code.expose()), Some(record(None)));
        assert_eq!(open(&CodeKey::random(), code.expose()), None);
        for bad in ["", "short", &stored[1..], &format!("{stored}A"), "!!!!"] {
            assert!(CodeKey::from_stored(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn malformed_plaintext_is_refused() {
        let good = encode(&record(Some("n")));
        assert!(decode(&good).is_some());
        for cut in 0..good.len() {
            assert_eq!(decode(&good[..cut]), None);
        }
        let mut longer = good.clone();
        longer.push(0);
        assert_eq!(decode(&longer), None);
        // Format 1 (before codes were stored under their issue time) and unknown formats.
        for format in [1, 3] {
            let mut other_format = good.clone();
            other_format[0] = format;
            assert_eq!(decode(&other_format), None);
        }
    }

    /// A code's stored form starts with its issue time, so the rows of codes redeemed together
    /// go in side by side at the end of the codes' primary key.
    #[test]
    fn a_sealed_code_is_stored_under_its_issue_time() {
        let key = CodeKey::random();
        let (a, b) = (
            seal(&key, &record(None), 1_700_000_000_123),
            seal(&key, &record(None), 1_700_000_000_124),
        );
        let (ha, hb) = (a.hash(), b.hash());
        assert!(ha.as_str().starts_with("18bcfe5687b"));
        assert_eq!(ha.as_str().len(), 11 + 32);
        assert!(ha.as_str() < hb.as_str());
        // The digest still covers the whole code: another time in the header is another
        // stored form, and does not open.
        let forged = format!("oac_18bcfe5687c{}", &a.expose()[15..]);
        assert_ne!(SecretHash::of(&forged), ha);
        assert_eq!(open(&key, &forged), None);
    }
}
