//! JSON Web Signatures for access tokens (RFC 9068) and ID tokens (OIDC Core §2): signing
//! keys, their public JWKs (RFC 7517), signing, and strict verification.
//!
//! Verification takes the algorithm from the key, never from the token alone: the header's
//! `alg` must equal the key's, so `none` and algorithm-confusion tricks fail (RFC 8725 §2.1).
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, KeyPair as _, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair,
    RsaPublicKeyComponents, UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256, Sha512};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JwsAlg {
    ES256,
    EdDSA,
    RS256,
}

impl JwsAlg {
    pub const ALL: [JwsAlg; 3] = [JwsAlg::ES256, JwsAlg::EdDSA, JwsAlg::RS256];

    pub fn as_str(self) -> &'static str {
        match self {
            JwsAlg::ES256 => "ES256",
            JwsAlg::EdDSA => "EdDSA",
            JwsAlg::RS256 => "RS256",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        JwsAlg::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
    #[error("the key could not be generated")]
    KeyGeneration,
    #[error("the stored private key is not a valid {0} key")]
    BadPrivateKey(&'static str),
    #[error("the token could not be signed")]
    Signing,
}

enum Inner {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

/// A private signing key with its key id.
pub struct SigningKey {
    pub kid: String,
    pub alg: JwsAlg,
    inner: Inner,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SigningKey({} {}, <private>)",
            self.alg.as_str(),
            self.kid
        )
    }
}

impl SigningKey {
    /// A new key; returns it with its PKCS#8 DER encoding for storage.
    pub fn generate(kid: String, alg: JwsAlg) -> Result<(SigningKey, Vec<u8>), JoseError> {
        let rng = SystemRandom::new();
        let der = match alg {
            JwsAlg::ES256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|_| JoseError::KeyGeneration)?
                .as_ref()
                .to_vec(),
            JwsAlg::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| JoseError::KeyGeneration)?
                .as_ref()
                .to_vec(),
            JwsAlg::RS256 => {
                use aws_lc_rs::encoding::AsDer as _;
                let key = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|_| JoseError::KeyGeneration)?;
                key.as_der()
                    .map_err(|_| JoseError::KeyGeneration)?
                    .as_ref()
                    .to_vec()
            }
        };
        Ok((SigningKey::from_pkcs8(kid, alg, &der)?, der))
    }

    pub fn from_pkcs8(kid: String, alg: JwsAlg, der: &[u8]) -> Result<SigningKey, JoseError> {
        let bad = |_| JoseError::BadPrivateKey(alg.as_str());
        let inner = match alg {
            JwsAlg::ES256 => Inner::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).map_err(bad)?,
            ),
            JwsAlg::EdDSA => Inner::Ed(Ed25519KeyPair::from_pkcs8(der).map_err(bad)?),
            JwsAlg::RS256 => Inner::Rsa(RsaKeyPair::from_pkcs8(der).map_err(bad)?),
        };
        Ok(SigningKey { kid, alg, inner })
    }

    /// The public half as a JWK (RFC 7518 §6).
    pub fn public_jwk(&self) -> Jwk {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let mut jwk = Jwk {
            kty: String::new(),
            kid: self.kid.clone(),
            alg: self.alg.as_str().to_owned(),
            key_use: Some("sig".into()),
            crv: None,
            x: None,
            y: None,
            n: None,
            e: None,
        };
        match &self.inner {
            Inner::Ec(k) => {
                // Uncompressed point: 0x04 || X || Y.
                let point = k.public_key().as_ref();
                jwk.kty = "EC".into();
                jwk.crv = Some("P-256".into());
                jwk.x = Some(b64(&point[1..33]));
                jwk.y = Some(b64(&point[33..65]));
            }
            Inner::Ed(k) => {
                jwk.kty = "OKP".into();
                jwk.crv = Some("Ed25519".into());
                jwk.x = Some(b64(k.public_key().as_ref()));
            }
            Inner::Rsa(k) => {
                let public = k.public_key();
                jwk.kty = "RSA".into();
                jwk.n = Some(b64(public.modulus().big_endian_without_leading_zero()));
                jwk.e = Some(b64(public.exponent().big_endian_without_leading_zero()));
            }
        }
        jwk
    }

    /// A compact JWS of `claims` with header `{alg, typ, kid}`.
    pub fn sign_jwt(&self, typ: &str, claims: &serde_json::Value) -> Result<String, JoseError> {
        let header = serde_json::json!({ "alg": self.alg.as_str(), "typ": typ, "kid": self.kid });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let rng = SystemRandom::new();
        let signature = match &self.inner {
            Inner::Ec(k) => k
                .sign(&rng, signing_input.as_bytes())
                .map_err(|_| JoseError::Signing)?
                .as_ref()
                .to_vec(),
            Inner::Ed(k) => k.sign(signing_input.as_bytes()).as_ref().to_vec(),
            Inner::Rsa(k) => {
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &rng, signing_input.as_bytes(), &mut sig)
                    .map_err(|_| JoseError::Signing)?;
                sig
            }
        };
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

/// A public JSON Web Key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use", skip_serializing_if = "Option::is_none", default)]
    pub key_use: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub crv: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub y: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub e: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm is not accepted")]
    UnsupportedAlgorithm,
    #[error("the token was signed by an unknown key")]
    UnknownKey,
    #[error("the token has the wrong type")]
    WrongType,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    #[error("the token is not meant for this audience")]
    WrongAudience,
}

#[derive(Debug, Clone, Deserialize)]
pub struct JwsHeader {
    pub alg: String,
    pub kid: Option<String>,
    pub typ: Option<String>,
}

/// The key id a token names, to find an unknown key before verifying (e.g. refetch a JWKS).
pub fn peek_kid(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let bytes = URL_SAFE_NO_PAD.decode(header).ok()?;
    serde_json::from_slice::<JwsHeader>(&bytes).ok()?.kid
}

/// Verify a compact JWS against `keys` and return its claims. `typ` is compared
/// case-insensitively, with or without the `application/` prefix (RFC 9068 §4).
pub fn verify_jwt(token: &str, keys: &[Jwk], typ: &str) -> Result<serde_json::Value, JwtError> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header: JwsHeader = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwtError::Malformed)?;
    let alg = JwsAlg::parse(&header.alg).ok_or(JwtError::UnsupportedAlgorithm)?;
    let seen_typ = header.typ.as_deref().unwrap_or("");
    let seen_typ = seen_typ.strip_prefix("application/").unwrap_or(seen_typ);
    if !seen_typ.eq_ignore_ascii_case(typ) {
        return Err(JwtError::WrongType);
    }
    let kid = header.kid.ok_or(JwtError::UnknownKey)?;
    let key = keys
        .iter()
        .find(|k| k.kid == kid)
        .ok_or(JwtError::UnknownKey)?;
    if key.alg != alg.as_str() {
        return Err(JwtError::UnsupportedAlgorithm);
    }
    let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?;
    let message = &token.as_bytes()[..h.len() + 1 + c.len()];
    verify_signature(key, alg, message, &signature)?;
    let claims = URL_SAFE_NO_PAD.decode(c).map_err(|_| JwtError::Malformed)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&claims).map_err(|_| JwtError::Malformed)?;
    if !claims.is_object() {
        return Err(JwtError::Malformed);
    }
    Ok(claims)
}

fn verify_signature(key: &Jwk, alg: JwsAlg, message: &[u8], sig: &[u8]) -> Result<(), JwtError> {
    let b64 = |v: &Option<String>| {
        v.as_deref()
            .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
            .ok_or(JwtError::UnknownKey)
    };
    let ok = match (alg, key.kty.as_str(), key.crv.as_deref()) {
        (JwsAlg::ES256, "EC", Some("P-256")) => {
            let mut point = vec![0x04];
            point.extend(b64(&key.x)?);
            point.extend(b64(&key.y)?);
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                .verify(message, sig)
                .is_ok()
        }
        (JwsAlg::EdDSA, "OKP", Some("Ed25519")) => UnparsedPublicKey::new(&ED25519, b64(&key.x)?)
            .verify(message, sig)
            .is_ok(),
        (JwsAlg::RS256, "RSA", _) => {
            let components = RsaPublicKeyComponents {
                n: b64(&key.n)?,
                e: b64(&key.e)?,
            };
            components
                .verify(&RSA_PKCS1_2048_8192_SHA256, message, sig)
                .is_ok()
        }
        _ => return Err(JwtError::UnsupportedAlgorithm),
    };
    if ok {
        Ok(())
    } else {
        Err(JwtError::BadSignature)
    }
}

/// Check the registered claims RFC 9068 §4 asks a resource server to check.
pub fn validate_claims(
    claims: &serde_json::Value,
    now: i64,
    issuer: &str,
    audience: &str,
    leeway: i64,
) -> Result<(), JwtError> {
    if claims["iss"].as_str() != Some(issuer) {
        return Err(JwtError::WrongIssuer);
    }
    let aud_ok = match &claims["aud"] {
        serde_json::Value::String(a) => a == audience,
        serde_json::Value::Array(list) => list.iter().any(|a| a.as_str() == Some(audience)),
        _ => false,
    };
    if !aud_ok {
        return Err(JwtError::WrongAudience);
    }
    let exp = claims["exp"].as_i64().ok_or(JwtError::Malformed)?;
    if now >= exp + leeway {
        return Err(JwtError::Expired);
    }
    if let Some(nbf) = claims["nbf"].as_i64()
        && now + leeway < nbf
    {
        return Err(JwtError::NotYetValid);
    }
    if claims["iat"].as_i64().is_some_and(|iat| now + leeway < iat) {
        return Err(JwtError::NotYetValid);
    }
    Ok(())
}

/// OIDC Core §3.1.3.6: the left half of the hash of the access token, base64url; the hash
/// is the one of the ID token's signing algorithm (SHA-512 for Ed25519).
pub fn at_hash(access_token: &str, alg: JwsAlg) -> String {
    match alg {
        JwsAlg::EdDSA => {
            let d = Sha512::digest(access_token.as_bytes());
            URL_SAFE_NO_PAD.encode(&d[..32])
        }
        _ => {
            let d = Sha256::digest(access_token.as_bytes());
            URL_SAFE_NO_PAD.encode(&d[..16])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> serde_json::Value {
        serde_json::json!({ "iss": "https://as.example", "aud": ["api"], "exp": 2000, "iat": 1000, "sub": "u1" })
    }

    #[test]
    fn every_algorithm_signs_and_verifies_through_its_jwk() {
        for alg in JwsAlg::ALL {
            let (key, der) = SigningKey::generate(format!("k-{}", alg.as_str()), alg).unwrap();
            let reloaded = SigningKey::from_pkcs8(key.kid.clone(), alg, &der).unwrap();
            let token = reloaded.sign_jwt("at+jwt", &claims()).unwrap();
            let jwks = vec![key.public_jwk()];
            let got = verify_jwt(&token, &jwks, "at+jwt").unwrap();
            assert_eq!(got["sub"], "u1", "{alg:?}");
            assert_eq!(
                validate_claims(&got, 1500, "https://as.example", "api", 0),
                Ok(())
            );
            assert_eq!(peek_kid(&token).as_deref(), Some(key.kid.as_str()));
        }
    }

    #[test]
    fn tampering_and_confusion_are_refused() {
        let (key, _) = SigningKey::generate("k1".into(), JwsAlg::ES256).unwrap();
        let jwks = vec![key.public_jwk()];
        let token = key.sign_jwt("at+jwt", &claims()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        // Claims changed after signing.
        let forged = URL_SAFE_NO_PAD
            .encode(r#"{"iss":"https://as.example","aud":"api","exp":9999999999,"sub":"admin"}"#);
        assert_eq!(
            verify_jwt(
                &format!("{}.{forged}.{}", parts[0], parts[2]),
                &jwks,
                "at+jwt"
            ),
            Err(JwtError::BadSignature)
        );
        // alg none.
        let none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt","kid":"k1"}"#);
        assert_eq!(
            verify_jwt(&format!("{none}.{}.", parts[1]), &jwks, "at+jwt"),
            Err(JwtError::UnsupportedAlgorithm)
        );
        // The header claims another algorithm than the key's.
        let rs = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"at+jwt","kid":"k1"}"#);
        assert_eq!(
            verify_jwt(&format!("{rs}.{}.{}", parts[1], parts[2]), &jwks, "at+jwt"),
            Err(JwtError::UnsupportedAlgorithm)
        );
        assert_eq!(verify_jwt(&token, &jwks, "JWT"), Err(JwtError::WrongType));
        assert_eq!(verify_jwt(&token, &[], "at+jwt"), Err(JwtError::UnknownKey));
        assert_eq!(verify_jwt("a.b", &jwks, "at+jwt"), Err(JwtError::Malformed));
        let (other, _) = SigningKey::generate("k1".into(), JwsAlg::ES256).unwrap();
        assert_eq!(
            verify_jwt(&token, &[other.public_jwk()], "at+jwt"),
            Err(JwtError::BadSignature)
        );
        let id_token = key.sign_jwt("JWT", &claims()).unwrap();
        assert!(verify_jwt(&id_token, &jwks, "jwt").is_ok());
    }

    #[test]
    fn registered_claims() {
        let c = claims();
        assert_eq!(
            validate_claims(&c, 2000, "https://as.example", "api", 0),
            Err(JwtError::Expired)
        );
        assert_eq!(
            validate_claims(&c, 2029, "https://as.example", "api", 30),
            Ok(())
        );
        assert_eq!(
            validate_claims(&c, 1500, "https://other.example", "api", 0),
            Err(JwtError::WrongIssuer)
        );
        assert_eq!(
            validate_claims(&c, 1500, "https://as.example", "other", 0),
            Err(JwtError::WrongAudience)
        );
        assert_eq!(
            validate_claims(&c, 900, "https://as.example", "api", 0),
            Err(JwtError::NotYetValid)
        );
    }

    #[test]
    fn at_hash_matches_the_oidc_example() {
        // OIDC Core A.3: at_hash of "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y" with RS256.
        assert_eq!(
            at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", JwsAlg::RS256),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
