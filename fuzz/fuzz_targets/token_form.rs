//! Token endpoint bodies: `form::Params::parse`, then the token request rules. Invariants:
//! parsing is lossless (re-encoding every pair with `form::encode` parses back to the same
//! pairs), and the grant and client credentials say only what the body said.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oauthd_core::error::ErrorCode;
use oauthd_core::form::{Params, encode};
use oauthd_core::secret::Secret;
use oauthd_core::token_request::{
    AuthMethod, TokenGrant, client_credentials, parse_grant, reject_repeated,
};

fuzz_target!(|data: &[u8]| {
    let Ok(params) = Params::parse(data) else {
        return;
    };

    // Round trip.
    let pairs: Vec<(&str, &str)> = params.iter().collect();
    let body = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let again = Params::parse(body.as_bytes()).expect("encoded pairs parse");
    assert_eq!(again.iter().collect::<Vec<_>>(), pairs, "body {body:?}");
    // The encoding uses only unreserved characters and escapes.
    assert!(
        body.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~%=&".contains(&b))
    );

    // Repeated parameters.
    let repeated = reject_repeated(&params);
    assert_eq!(repeated.is_err(), params.first_repeated().is_some());
    if let Err(e) = &repeated {
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    } else {
        for (k, _) in &pairs {
            assert!(params.single(k).is_ok(), "{k:?} is repeated");
        }
    }
    let get = |n: &str| params.single(n).ok().flatten();

    // The grant.
    match parse_grant(&params) {
        Ok(TokenGrant::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        }) => {
            assert_eq!(get("grant_type"), Some("authorization_code"));
            assert_eq!(Some(code.expose()), get("code"));
            assert!(!code.expose().is_empty());
            assert_eq!(redirect_uri.as_deref(), get("redirect_uri"));
            assert_eq!(code_verifier.as_deref(), get("code_verifier"));
        }
        Ok(TokenGrant::RefreshToken {
            refresh_token,
            scope,
        }) => {
            assert_eq!(get("grant_type"), Some("refresh_token"));
            assert_eq!(Some(refresh_token.expose()), get("refresh_token"));
            assert!(!refresh_token.expose().is_empty());
            assert_eq!(scope.as_deref(), get("scope"));
        }
        Err(e) => {
            assert!(matches!(
                e.code,
                ErrorCode::InvalidRequest | ErrorCode::UnsupportedGrantType
            ));
        }
    }

    // Client authentication from the body alone.
    match client_credentials(&params, None) {
        Ok(c) => {
            assert!(!c.client_id.is_empty());
            assert_eq!(Some(c.client_id.as_str()), get("client_id"));
            match get("client_secret") {
                Some(s) => {
                    assert_eq!(c.method, AuthMethod::ClientSecretPost);
                    assert_eq!(c.secret.as_ref().map(Secret::expose), Some(s));
                }
                None => {
                    assert_eq!(c.method, AuthMethod::None);
                    assert!(c.secret.is_none());
                }
            }
        }
        Err(e) => {
            assert_eq!(e.code, ErrorCode::InvalidRequest);
            assert_eq!(get("client_id"), None);
        }
    }

    // With Basic credentials: never two methods, never a second client id.
    let basic = Some(("54321".to_owned(), Secret::from_presented("s3cret")));
    match client_credentials(&params, basic) {
        Ok(c) => {
            assert_eq!(c.client_id, "54321");
            assert_eq!(c.method, AuthMethod::ClientSecretBasic);
            assert_eq!(c.secret.as_ref().map(Secret::expose), Some("s3cret"));
            assert_eq!(get("client_secret"), None);
            assert!(get("client_id").is_none_or(|id| id == "54321"));
        }
        Err(e) => {
            assert_eq!(e.code, ErrorCode::InvalidRequest);
            assert!(
                get("client_secret").is_some() || get("client_id").is_some_and(|id| id != "54321")
            );
        }
    }
});
