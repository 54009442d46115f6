//! Token endpoint requests (RFC 6749 §3.2, §4.1.3, §6) and client authentication (§2.3.1).
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::{ErrorCode, OAuthError};
use crate::form::Params;
use crate::secret::Secret;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenGrant {
    AuthorizationCode {
        code: Secret,
        redirect_uri: Option<String>,
        code_verifier: Option<String>,
    },
    RefreshToken {
        refresh_token: Secret,
        scope: Option<String>,
    },
}

/// How the client authenticated (RFC 6749 §2.3.1; "none" for public clients, RFC 8414).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    None,
    ClientSecretBasic,
    ClientSecretPost,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    pub client_id: String,
    pub secret: Option<Secret>,
    pub method: AuthMethod,
}

fn invalid_request(description: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRequest, description)
}

/// Every parameter must appear at most once (RFC 6749 §3.2).
pub fn reject_repeated(params: &Params) -> Result<(), OAuthError> {
    match params.first_repeated() {
        Some(name) => Err(invalid_request(format!(
            "The parameter {name} was sent more than once."
        ))),
        None => Ok(()),
    }
}

/// The grant the request asks for.
pub fn parse_grant(params: &Params) -> Result<TokenGrant, OAuthError> {
    let get = |n: &str| params.single(n).ok().flatten();
    let required =
        |n: &str| get(n).ok_or_else(|| invalid_request(format!("The parameter {n} is required.")));
    match get("grant_type") {
        None => Err(invalid_request("The parameter grant_type is required.")),
        Some("authorization_code") => Ok(TokenGrant::AuthorizationCode {
            code: Secret::from_presented(required("code")?),
            redirect_uri: get("redirect_uri").map(str::to_owned),
            code_verifier: get("code_verifier").map(str::to_owned),
        }),
        Some("refresh_token") => Ok(TokenGrant::RefreshToken {
            refresh_token: Secret::from_presented(required("refresh_token")?),
            scope: get("scope").map(str::to_owned),
        }),
        Some(other) => Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            format!(
                "The grant type {other:?} is not supported; use authorization_code or refresh_token."
            ),
        )),
    }
}

/// Decode an `Authorization: Basic` value into client id and secret (RFC 6749 §2.3.1: both
/// form-urlencoded before base64).
pub fn parse_basic(header: &str) -> Result<(String, Secret), OAuthError> {
    let bad = || {
        OAuthError::new(
            ErrorCode::InvalidClient,
            "The Basic authorization header is malformed.",
        )
    };
    let (scheme, value) = header.trim().split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad());
    }
    let decoded = STANDARD.decode(value.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let id = url_decode(id).ok_or_else(bad)?;
    let secret = url_decode(secret).ok_or_else(bad)?;
    if id.is_empty() {
        return Err(bad());
    }
    Ok((id, Secret::from_presented(secret)))
}

fn url_decode(s: &str) -> Option<String> {
    let p = Params::parse(format!("v={s}").as_bytes()).ok()?;
    Some(p.single("v").ok().flatten().unwrap_or("").to_owned())
}

/// Who is calling: from Basic credentials or the body, never both (RFC 6749 §2.3.1: "MUST
/// NOT use more than one authentication method in each request").
pub fn client_credentials(
    params: &Params,
    basic: Option<(String, Secret)>,
) -> Result<ClientCredentials, OAuthError> {
    let body_id = params.single("client_id").ok().flatten();
    let body_secret = params.single("client_secret").ok().flatten();
    match basic {
        Some((id, secret)) => {
            if body_secret.is_some() {
                return Err(invalid_request(
                    "The client authenticated with both Basic and client_secret; use only one method.",
                ));
            }
            if body_id.is_some_and(|b| b != id) {
                return Err(invalid_request(
                    "The client_id in the body differs from the one in the Basic header.",
                ));
            }
            Ok(ClientCredentials {
                client_id: id,
                secret: Some(secret),
                method: AuthMethod::ClientSecretBasic,
            })
        }
        None => {
            let client_id = body_id
                .ok_or_else(|| {
                    invalid_request(
                        "The parameter client_id is required (or authenticate with Basic).",
                    )
                })?
                .to_owned();
            Ok(match body_secret {
                Some(s) => ClientCredentials {
                    client_id,
                    secret: Some(Secret::from_presented(s)),
                    method: AuthMethod::ClientSecretPost,
                },
                None => ClientCredentials {
                    client_id,
                    secret: None,
                    method: AuthMethod::None,
                },
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Params {
        Params::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn grants() {
        assert!(matches!(
            parse_grant(&p("grant_type=authorization_code&code=c")),
            Ok(TokenGrant::AuthorizationCode { .. })
        ));
        assert_eq!(
            parse_grant(&p("grant_type=authorization_code"))
                .unwrap_err()
                .code,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            parse_grant(&p("grant_type=password")).unwrap_err().code,
            ErrorCode::UnsupportedGrantType
        );
        assert_eq!(
            parse_grant(&p("code=c")).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        assert!(matches!(
            parse_grant(&p("grant_type=refresh_token&refresh_token=r&scope=a")),
            Ok(TokenGrant::RefreshToken { scope: Some(s), .. }) if s == "a"
        ));
    }

    #[test]
    fn basic_decoding() {
        // "my%3Aid:s%20p" base64: client id "my:id", secret "s p".
        let v = format!("Basic {}", STANDARD.encode("my%3Aid:s%20p"));
        let (id, secret) = parse_basic(&v).unwrap();
        assert_eq!(id, "my:id");
        assert_eq!(secret.expose(), "s p");
        for bad in [
            "Basic",
            "Bearer abc",
            "Basic !!!",
            &format!("Basic {}", STANDARD.encode("nocolon")),
        ] {
            assert_eq!(
                parse_basic(bad).unwrap_err().code,
                ErrorCode::InvalidClient,
                "{bad}"
            );
        }
    }

    #[test]
    fn one_authentication_method_only() {
        let basic = || Some(("c".to_owned(), Secret::from_presented("s")));
        assert_eq!(
            client_credentials(&p("client_secret=s"), basic())
                .unwrap_err()
                .code,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            client_credentials(&p("client_id=other"), basic())
                .unwrap_err()
                .code,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            client_credentials(&p("client_id=c"), basic())
                .unwrap()
                .method,
            AuthMethod::ClientSecretBasic
        );
        assert_eq!(
            client_credentials(&p("client_id=c&client_secret=s"), None)
                .unwrap()
                .method,
            AuthMethod::ClientSecretPost
        );
        assert_eq!(
            client_credentials(&p("client_id=c"), None).unwrap().method,
            AuthMethod::None
        );
        assert_eq!(
            client_credentials(&p(""), None).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
    }
}
