//! The authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3) and its policy (DESIGN §3).
//!
//! Validation runs in two stages, because errors before the redirect URI is trusted must
//! never be redirected (RFC 6749 §4.1.2.1, RFC 9700 §4.11): an attacker could otherwise use
//! us as an open redirector.
use crate::client::{Client, GrantType};
use crate::error::{ErrorCode, OAuthError};
use crate::form::Params;
use crate::pkce::{self, ChallengeMethod, CodeChallenge, PkceError, PkceMode};
use crate::redirect_uri;
use crate::scope::Scope;

/// An error shown on our own error page, because the redirect URI cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("The authorization request is malformed: {0}.")]
    Malformed(String),
    #[error("The authorization request has no client_id.")]
    MissingClientId,
    #[error("This application is not registered with this server.")]
    UnknownClient,
    #[error("The redirect_uri is not registered for this application.")]
    RedirectUriMismatch,
    #[error(
        "This application has several redirect URIs registered, so the request must name one in redirect_uri."
    )]
    RedirectUriRequired,
    #[error("The parameter {0} was sent more than once.")]
    Repeated(String),
}

/// An error returned to the client at its validated redirect URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectError {
    pub redirect_uri: String,
    pub error: OAuthError,
    /// Echoed exactly when the request carried one (RFC 6749 §4.1.2.1).
    pub state: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    Page(PageError),
    Redirect(RedirectError),
}

/// A request that passed every check; the user may now be asked to log in and consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidAuthorize {
    pub client_id: String,
    pub redirect_uri: String,
    /// RFC 6749 §4.1.3: when sent, the token request must repeat it.
    pub redirect_uri_sent: bool,
    pub scope: Scope,
    pub state: Option<String>,
    pub code_challenge: CodeChallenge,
    pub code_challenge_method: ChallengeMethod,
    /// The request relied on liferay-compat leniency (method omitted); logged and counted.
    pub used_liferay_compat: bool,
    /// OpenID Connect (OIDC Core §3.1.2.1).
    pub nonce: Option<String>,
    pub prompt: Prompt,
    /// Seconds since the last login beyond which the user must log in again.
    pub max_age: Option<i64>,
}

/// OIDC Core §3.1.2.1 `prompt`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

impl Prompt {
    pub fn parse(value: Option<&str>) -> Result<Prompt, String> {
        let mut p = Prompt::default();
        for v in value.unwrap_or("").split(' ').filter(|v| !v.is_empty()) {
            match v {
                "none" => p.none = true,
                "login" | "select_account" => p.login = true,
                "consent" => p.consent = true,
                other => {
                    return Err(format!(
                        "prompt value {other:?} is not supported; use none, login or consent"
                    ));
                }
            }
        }
        if p.none && (p.login || p.consent) {
            return Err("prompt=none cannot be combined with other values".into());
        }
        Ok(p)
    }

    pub fn to_stored(self) -> String {
        let mut v = Vec::new();
        if self.none {
            v.push("none");
        }
        if self.login {
            v.push("login");
        }
        if self.consent {
            v.push("consent");
        }
        v.join(" ")
    }
}

fn has_control(value: &str) -> bool {
    value.chars().any(char::is_control)
}

/// Stage one: the query string and the client id, before the client is looked up.
pub fn parse_query(query: &[u8]) -> Result<(Params, String), PageError> {
    let params = Params::parse(query).map_err(|e| {
        PageError::Malformed(e.to_string().trim_start_matches("the request ").to_owned())
    })?;
    let client_id = params
        .single("client_id")
        .map_err(|r| PageError::Repeated(r.0))?
        .ok_or(PageError::MissingClientId)?
        .to_owned();
    Ok((params, client_id))
}

/// Stage two: everything else, given the looked-up client (`None` when unknown).
pub fn validate(
    params: &Params,
    client: Option<&Client>,
) -> Result<ValidAuthorize, AuthorizeError> {
    let page = AuthorizeError::Page;
    let client = client.ok_or(page(PageError::UnknownClient))?;
    let requested = params
        .single("redirect_uri")
        .map_err(|r| page(PageError::Repeated(r.0)))?;
    let redirect_uri = match redirect_uri::resolve(&client.redirect_uris, requested) {
        Some(uri) => uri.to_owned(),
        None if requested.is_none() => return Err(page(PageError::RedirectUriRequired)),
        None => return Err(page(PageError::RedirectUriMismatch)),
    };

    // From here on, errors go back to the client's validated redirect URI. A `state` with
    // control characters is not echoed (RFC 6749 App. A.5: printable characters only).
    let raw_state = params.single("state").ok().flatten();
    let state = raw_state.filter(|s| !has_control(s)).map(str::to_owned);
    let fail = |code: ErrorCode, description: String| {
        AuthorizeError::Redirect(RedirectError {
            redirect_uri: redirect_uri.clone(),
            error: OAuthError::new(code, description),
            state: state.clone(),
        })
    };
    if raw_state.is_some_and(has_control) {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "state must not contain control characters.".into(),
        ));
    }
    if let Some(name) = params.first_repeated() {
        return Err(fail(
            ErrorCode::InvalidRequest,
            format!("The parameter {name} was sent more than once."),
        ));
    }
    match params.single("response_type").ok().flatten() {
        None => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "response_type is required; use response_type=code.".into(),
            ));
        }
        Some("code") => {}
        Some(_) => {
            return Err(fail(
                ErrorCode::UnsupportedResponseType,
                "Only response_type=code is supported.".into(),
            ));
        }
    }
    if !client.allows(GrantType::AuthorizationCode) {
        return Err(fail(
            ErrorCode::UnauthorizedClient,
            "This application is not allowed to use the authorization code grant.".into(),
        ));
    }
    let scope = match Scope::parse(params.single("scope").ok().flatten().unwrap_or("")) {
        Ok(s) if s.is_subset_of(&client.scopes) => s,
        Ok(_) => {
            return Err(fail(
                ErrorCode::InvalidScope,
                "The requested scope is not allowed for this application.".into(),
            ));
        }
        Err(e) => return Err(fail(ErrorCode::InvalidScope, format!("{e}."))),
    };
    // PKCE is required for every code request (RFC 9700 §2.1.1), checked before any login.
    let pkce_error = |e: PkceError| fail(ErrorCode::InvalidRequest, format!("{e}."));
    let challenge = params
        .single("code_challenge")
        .ok()
        .flatten()
        .ok_or(pkce_error(PkceError::MissingChallenge))?;
    let method_param = params.single("code_challenge_method").ok().flatten();
    let method = pkce::choose_method(method_param, client.pkce).map_err(pkce_error)?;
    let code_challenge = CodeChallenge::parse(challenge).map_err(pkce_error)?;
    let prompt = Prompt::parse(params.single("prompt").ok().flatten())
        .map_err(|e| fail(ErrorCode::InvalidRequest, format!("{e}.")))?;
    let max_age = match params.single("max_age").ok().flatten() {
        None => None,
        Some(v) => Some(v.parse::<i64>().ok().filter(|m| *m >= 0).ok_or_else(|| {
            fail(
                ErrorCode::InvalidRequest,
                "max_age must be a non-negative number of seconds.".into(),
            )
        })?),
    };
    let nonce = params.single("nonce").ok().flatten();
    if nonce.is_some_and(|n| n.len() > 512 || has_control(n)) {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "nonce must be at most 512 characters, without control characters.".into(),
        ));
    }
    Ok(ValidAuthorize {
        client_id: client.client_id.clone(),
        redirect_uri,
        redirect_uri_sent: requested.is_some(),
        scope,
        state,
        code_challenge,
        code_challenge_method: method,
        used_liferay_compat: client.pkce == PkceMode::LiferayCompat && method_param.is_none(),
        nonce: nonce.map(str::to_owned),
        prompt,
        max_age,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientKind;
    use crate::redirect_uri::RedirectUri;

    const CHALLENGE: &str = "n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg";

    fn client(pkce: PkceMode, uris: &[&str]) -> Client {
        Client {
            client_id: "54321".into(),
            name: "Test".into(),
            kind: ClientKind::Public,
            secret_hash: None,
            redirect_uris: uris
                .iter()
                .map(|u| RedirectUri::register(u).unwrap().0)
                .collect(),
            grants: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scopes: Scope::parse("photos:read profile").unwrap(),
            trusted: false,
            pkce,
            access_token_ttl: 600,
            refresh_token_ttl: 3600,
            access_token_format: crate::client::AccessTokenFormat::Opaque,
            access_token_alg: crate::jose::JwsAlg::ES256,
            id_token_alg: crate::jose::JwsAlg::RS256,
            audience: vec![],
            created_at: 0,
        }
    }

    fn run(query: &str, c: &Client) -> Result<ValidAuthorize, AuthorizeError> {
        let (params, id) = parse_query(query.as_bytes()).map_err(AuthorizeError::Page)?;
        assert_eq!(id, c.client_id);
        validate(&params, Some(c))
    }

    fn redirect_code(r: Result<ValidAuthorize, AuthorizeError>) -> ErrorCode {
        match r {
            Err(AuthorizeError::Redirect(e)) => e.error.code,
            other => panic!("expected a redirected error, got {other:?}"),
        }
    }

    #[test]
    fn seed_request_passes_in_liferay_compat() {
        let c = client(PkceMode::LiferayCompat, &["myapp://oauth2redirect"]);
        let v = run(&format!("response_type=code&client_id=54321&redirect_uri=myapp://oauth2redirect&code_challenge={CHALLENGE}"), &c).unwrap();
        assert_eq!(v.redirect_uri, "myapp://oauth2redirect");
        assert!(v.redirect_uri_sent);
        assert!(v.used_liferay_compat);
        assert!(v.scope.is_empty());
    }

    #[test]
    fn seed_request_is_refused_in_strict() {
        let c = client(PkceMode::Strict, &["myapp://oauth2redirect"]);
        let r = run(
            &format!(
                "response_type=code&client_id=54321&redirect_uri=myapp://oauth2redirect&code_challenge={CHALLENGE}&state=s"
            ),
            &c,
        );
        match r {
            Err(AuthorizeError::Redirect(e)) => {
                assert_eq!(e.error.code, ErrorCode::InvalidRequest);
                assert!(e.error.description.contains("code_challenge_method"));
                assert_eq!(e.state.as_deref(), Some("s"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn untrusted_redirects_are_page_errors() {
        let c = client(PkceMode::Strict, &["https://a.example/cb", "myapp://cb"]);
        let base = format!(
            "response_type=code&client_id=54321&code_challenge={CHALLENGE}&code_challenge_method=S256"
        );
        assert_eq!(
            run(&base, &c),
            Err(AuthorizeError::Page(PageError::RedirectUriRequired))
        );
        assert_eq!(
            run(&format!("{base}&redirect_uri=https://evil.example/cb"), &c),
            Err(AuthorizeError::Page(PageError::RedirectUriMismatch))
        );
        assert_eq!(
            run(
                &format!("{base}&redirect_uri=myapp://cb&redirect_uri=myapp://cb"),
                &c
            ),
            Err(AuthorizeError::Page(PageError::Repeated(
                "redirect_uri".into()
            )))
        );
        assert_eq!(
            validate(&Params::default(), None),
            Err(AuthorizeError::Page(PageError::UnknownClient))
        );
        assert_eq!(
            parse_query(b"response_type=code").unwrap_err(),
            PageError::MissingClientId
        );
        assert!(matches!(
            parse_query(b"client_id=%zz"),
            Err(PageError::Malformed(_))
        ));
    }

    #[test]
    fn redirected_errors() {
        let c = client(PkceMode::Strict, &["myapp://cb"]);
        let ok = format!("client_id=54321&code_challenge={CHALLENGE}&code_challenge_method=S256");
        assert_eq!(redirect_code(run(&ok, &c)), ErrorCode::InvalidRequest);
        assert_eq!(
            redirect_code(run(&format!("{ok}&response_type=token"), &c)),
            ErrorCode::UnsupportedResponseType
        );
        assert_eq!(
            redirect_code(run(&format!("{ok}&response_type=code&scope=admin"), &c)),
            ErrorCode::InvalidScope
        );
        assert_eq!(
            redirect_code(run(&format!("{ok}&response_type=code&state=a&state=b"), &c)),
            ErrorCode::InvalidRequest
        );
        let no_method = format!("response_type=code&client_id=54321&code_challenge={CHALLENGE}");
        assert_eq!(
            redirect_code(run(&no_method, &c)),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            redirect_code(run(&format!("{no_method}&code_challenge_method=plain"), &c)),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            redirect_code(run(
                "response_type=code&client_id=54321&code_challenge_method=S256",
                &c
            )),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            redirect_code(run(
                "response_type=code&client_id=54321&code_challenge_method=S256&code_challenge=short",
                &c
            )),
            ErrorCode::InvalidRequest
        );
        let v = run(
            &format!("{ok}&response_type=code&scope=profile&state=x%20y"),
            &c,
        )
        .unwrap();
        assert_eq!(v.state.as_deref(), Some("x y"));
        assert!(!v.redirect_uri_sent);
        assert!(!v.used_liferay_compat);
    }

    #[test]
    fn control_characters_in_state_and_nonce_are_refused() {
        let c = client(PkceMode::Strict, &["myapp://cb"]);
        let ok = format!(
            "response_type=code&client_id=54321&code_challenge={CHALLENGE}&code_challenge_method=S256"
        );
        match run(&format!("{ok}&state=a%00b"), &c) {
            Err(AuthorizeError::Redirect(e)) => {
                assert_eq!(e.error.code, ErrorCode::InvalidRequest);
                assert_eq!(e.state, None, "an unprintable state is not echoed");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            redirect_code(run(&format!("{ok}&state=a%0D%0Ab"), &c)),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            redirect_code(run(&format!("{ok}&nonce=n%00"), &c)),
            ErrorCode::InvalidRequest
        );
        assert!(
            run(&format!("{ok}&state=caf%C3%A9%20%26x"), &c).is_ok(),
            "printable Unicode is fine"
        );
    }

    #[test]
    fn oidc_parameters() {
        let c = client(PkceMode::Strict, &["myapp://cb"]);
        let ok = format!(
            "response_type=code&client_id=54321&code_challenge={CHALLENGE}&code_challenge_method=S256"
        );
        let v = run(
            &format!("{ok}&nonce=n-1&prompt=login%20consent&max_age=300"),
            &c,
        )
        .unwrap();
        assert_eq!(v.nonce.as_deref(), Some("n-1"));
        assert_eq!(
            v.prompt,
            Prompt {
                none: false,
                login: true,
                consent: true
            }
        );
        assert_eq!(v.max_age, Some(300));
        assert_eq!(v.prompt.to_stored(), "login consent");
        assert_eq!(
            redirect_code(run(&format!("{ok}&prompt=none%20login"), &c)),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            redirect_code(run(&format!("{ok}&prompt=sometimes"), &c)),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            redirect_code(run(&format!("{ok}&max_age=-1"), &c)),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            redirect_code(run(&format!("{ok}&max_age=soon"), &c)),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            redirect_code(run(&format!("{ok}&nonce={}", "n".repeat(513)), &c)),
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn client_without_code_grant_is_unauthorized() {
        let mut c = client(PkceMode::Strict, &["myapp://cb"]);
        c.grants = vec![GrantType::RefreshToken];
        let q = format!(
            "response_type=code&client_id=54321&code_challenge={CHALLENGE}&code_challenge_method=S256"
        );
        assert_eq!(redirect_code(run(&q, &c)), ErrorCode::UnauthorizedClient);
    }
}
