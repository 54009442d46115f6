//! Proof Key for Code Exchange (RFC 7636).
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

use crate::secret::constant_time_eq;

/// How strictly a client's PKCE parameters are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkceMode {
    /// DESIGN §3: method must be sent and be `S256`; verifier 43–128 unreserved characters.
    Strict,
    /// The seed's provider, for migrating clients: a missing method means S256 and the
    /// verifier's length is not checked (its charset still is).
    LiferayCompat,
}

impl PkceMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PkceMode::Strict => "strict",
            PkceMode::LiferayCompat => "liferay-compat",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "strict" => Some(PkceMode::Strict),
            "liferay-compat" => Some(PkceMode::LiferayCompat),
            _ => None,
        }
    }
}

/// A validated `code_challenge` for the S256 method: 43 base64url characters (RFC 7636 §4.2
/// — the encoding of a 32-byte SHA-256 digest without padding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    pub fn parse(value: &str) -> Result<Self, PkceError> {
        if value.len() != 43 || !value.bytes().all(is_base64url) {
            return Err(PkceError::MalformedChallenge);
        }
        // 43 base64url characters carry 258 bits; the last character's low two bits must be
        // zero for the value to be a canonical encoding of 32 bytes.
        match URL_SAFE_NO_PAD.decode(value) {
            Ok(bytes) if bytes.len() == 32 => Ok(CodeChallenge(value.to_owned())),
            _ => Err(PkceError::MalformedChallenge),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether a challenge method was sent and which: the authorize policy decides what to do
/// with each case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeMethod {
    S256,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PkceError {
    #[error("code_challenge is required (PKCE, RFC 7636)")]
    MissingChallenge,
    #[error(
        "code_challenge_method is required and must be S256; a missing method would mean plain (RFC 7636 §4.3)"
    )]
    MissingMethod,
    #[error("code_challenge_method plain is not allowed; use S256")]
    PlainRefused,
    #[error("code_challenge_method is not supported; use S256")]
    UnknownMethod,
    #[error("code_challenge must be 43 base64url characters: BASE64URL(SHA256(code_verifier))")]
    MalformedChallenge,
    #[error("code_verifier is required")]
    MissingVerifier,
    #[error("code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~")]
    MalformedVerifier,
    #[error("code_verifier does not match the code_challenge")]
    Mismatch,
}

/// RFC 7636 §4.3: decide the method for an authorize request.
pub fn choose_method(method: Option<&str>, mode: PkceMode) -> Result<ChallengeMethod, PkceError> {
    match (method, mode) {
        (Some("S256"), _) => Ok(ChallengeMethod::S256),
        (Some("plain"), _) => Err(PkceError::PlainRefused),
        (Some(_), _) => Err(PkceError::UnknownMethod),
        (None, PkceMode::Strict) => Err(PkceError::MissingMethod),
        (None, PkceMode::LiferayCompat) => Ok(ChallengeMethod::S256),
    }
}

/// RFC 7636 §4.1: `code-verifier = 43*128unreserved`. In liferay-compat the length is not
/// checked, but the charset still is, and it may not be empty.
pub fn validate_verifier(verifier: &str, mode: PkceMode) -> Result<(), PkceError> {
    let length_ok = match mode {
        PkceMode::Strict => (43..=128).contains(&verifier.len()),
        PkceMode::LiferayCompat => !verifier.is_empty() && verifier.len() <= 128,
    };
    if length_ok && verifier.bytes().all(is_unreserved) {
        Ok(())
    } else {
        Err(PkceError::MalformedVerifier)
    }
}

/// `BASE64URL(SHA256(ASCII(code_verifier)))`, RFC 7636 §4.2.
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// RFC 7636 §4.6: validate the verifier's form, then compare in constant time.
pub fn verify(verifier: &str, challenge: &CodeChallenge, mode: PkceMode) -> Result<(), PkceError> {
    validate_verifier(verifier, mode)?;
    if constant_time_eq(&s256_challenge(verifier), challenge.as_str()) {
        Ok(())
    } else {
        Err(PkceError::Mismatch)
    }
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// RFC 3986 §2.3 unreserved characters.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_vector() {
        assert_eq!(
            s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let challenge =
            CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM").unwrap();
        assert_eq!(
            verify(
                "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
                &challenge,
                PkceMode::Strict
            ),
            Ok(())
        );
    }

    #[test]
    fn seed_vector_verifier_test() {
        assert_eq!(
            s256_challenge("test"),
            "n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg"
        );
        let challenge =
            CodeChallenge::parse("n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg").unwrap();
        // The seed's four-character verifier only passes in liferay-compat.
        assert_eq!(verify("test", &challenge, PkceMode::LiferayCompat), Ok(()));
        assert_eq!(
            verify("test", &challenge, PkceMode::Strict),
            Err(PkceError::MalformedVerifier)
        );
    }

    #[test]
    fn method_policy() {
        assert_eq!(
            choose_method(Some("S256"), PkceMode::Strict),
            Ok(ChallengeMethod::S256)
        );
        assert_eq!(
            choose_method(None, PkceMode::Strict),
            Err(PkceError::MissingMethod)
        );
        assert_eq!(
            choose_method(None, PkceMode::LiferayCompat),
            Ok(ChallengeMethod::S256)
        );
        assert_eq!(
            choose_method(Some("plain"), PkceMode::LiferayCompat),
            Err(PkceError::PlainRefused)
        );
        assert_eq!(
            choose_method(Some("s256"), PkceMode::Strict),
            Err(PkceError::UnknownMethod)
        );
    }

    #[test]
    fn challenge_shape() {
        assert!(CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM").is_ok());
        for bad in [
            "",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cMM",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c=",
            // Non-canonical final character (low bits set).
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN",
        ] {
            assert_eq!(
                CodeChallenge::parse(bad),
                Err(PkceError::MalformedChallenge),
                "{bad}"
            );
        }
    }

    #[test]
    fn verifier_shape() {
        let ok43 = "a".repeat(43);
        let ok128 = "a".repeat(128);
        assert_eq!(validate_verifier(&ok43, PkceMode::Strict), Ok(()));
        assert_eq!(validate_verifier(&ok128, PkceMode::Strict), Ok(()));
        assert_eq!(
            validate_verifier("-._~AZaz09", PkceMode::LiferayCompat),
            Ok(())
        );
        for bad in [
            "a".repeat(42),
            "a".repeat(129),
            format!("{}!", "a".repeat(43)),
            format!("{} ", "a".repeat(43)),
        ] {
            assert_eq!(
                validate_verifier(&bad, PkceMode::Strict),
                Err(PkceError::MalformedVerifier)
            );
        }
        assert_eq!(
            validate_verifier("", PkceMode::LiferayCompat),
            Err(PkceError::MalformedVerifier)
        );
        assert_eq!(
            validate_verifier("tést", PkceMode::LiferayCompat),
            Err(PkceError::MalformedVerifier)
        );
    }

    #[test]
    fn wrong_verifier_is_a_mismatch() {
        let challenge = CodeChallenge::parse(&s256_challenge(&"a".repeat(43))).unwrap();
        assert_eq!(
            verify(&"b".repeat(43), &challenge, PkceMode::Strict),
            Err(PkceError::Mismatch)
        );
    }

    proptest::proptest! {
        #[test]
        fn any_valid_verifier_verifies_against_its_own_challenge(v in "[A-Za-z0-9._~-]{43,128}") {
            let challenge = CodeChallenge::parse(&s256_challenge(&v)).unwrap();
            proptest::prop_assert_eq!(verify(&v, &challenge, PkceMode::Strict), Ok(()));
        }
    }
}
