//! PKCE (RFC 7636). Input: a code_verifier (also tried as a code_challenge). Invariants: a
//! verifier valid in strict mode verifies against its own S256 challenge in both modes;
//! every S256 challenge is a well-formed `CodeChallenge`; a verifier only matches the
//! seed's challenge if it is the seed's verifier; accepted challenges are canonical.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use oauthd_core::pkce::{
    CodeChallenge, PkceError, PkceMode, s256_challenge, validate_verifier, verify,
};
use oauthd_fuzz::SEED_CHALLENGE;

fuzz_target!(|data: &[u8]| {
    let Ok(verifier) = std::str::from_utf8(data) else {
        return;
    };
    let strict = validate_verifier(verifier, PkceMode::Strict);
    let compat = validate_verifier(verifier, PkceMode::LiferayCompat);
    if strict.is_ok() {
        assert!(
            compat.is_ok(),
            "strict accepts what liferay-compat refuses: {verifier:?}"
        );
        assert!((43..=128).contains(&verifier.len()));
    }
    if compat.is_ok() {
        assert!(!verifier.is_empty() && verifier.len() <= 128);
        assert!(
            verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        );
    }

    // Its own challenge: always well-formed, and it verifies whenever the form is valid.
    let own = s256_challenge(verifier);
    let own = CodeChallenge::parse(&own).expect("an S256 challenge is a valid code_challenge");
    for (mode, valid) in [
        (PkceMode::Strict, &strict),
        (PkceMode::LiferayCompat, &compat),
    ] {
        match verify(verifier, &own, mode) {
            Ok(()) => assert!(valid.is_ok()),
            Err(e) => {
                assert_eq!(
                    Err(e),
                    *valid,
                    "{verifier:?} failed its own challenge in {mode:?}"
                );
                assert_eq!(e, PkceError::MalformedVerifier);
            }
        }
    }

    // Someone else's challenge.
    let seed = CodeChallenge::parse(SEED_CHALLENGE).unwrap();
    if verify(verifier, &seed, PkceMode::LiferayCompat).is_ok() {
        assert_eq!(verifier, "test");
    }
    assert!(verify(verifier, &seed, PkceMode::Strict).is_err());

    // The input as a challenge: accepted only when canonical base64url of 32 bytes.
    if let Ok(c) = CodeChallenge::parse(verifier) {
        assert_eq!(c.as_str(), verifier);
        let bytes = URL_SAFE_NO_PAD
            .decode(verifier)
            .expect("accepted challenge decodes");
        assert_eq!(bytes.len(), 32);
        assert_eq!(URL_SAFE_NO_PAD.encode(&bytes), verifier);
    }
});
