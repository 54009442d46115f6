//! `GET /o/oauth2/authorize` (RFC 6749 §4.1.1, RFC 7636 §4.3, RFC 9207, DESIGN §3).
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;

use oauthd_core::authorize::{self, AuthorizeError, ValidAuthorize};
use oauthd_core::client::{Client, ClientKind};
use oauthd_core::code::IssuedCode;
use oauthd_core::code_sealing::{self, SealedRecord};
use oauthd_core::error::{ErrorCode, OAuthError};
use oauthd_core::form::{append_query, encode};
use oauthd_core::secret::{Secret, SecretKind};
use oauthd_store::{NextRead, PendingAuthorization, ReadAlongside, Session};

use crate::http::browser::{Browser, SESSION_COOKIE, cookie};
use crate::http::response::{error_page, see_other, store_failure_page};
use crate::routes;
use crate::state::AppState;

pub async fn get(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let query = uri.query().unwrap_or("").as_bytes();
    let (params, client_id) = match authorize::parse_query(query) {
        Ok(v) => v,
        Err(e) => return invalid_request_page(&e.to_string()),
    };
    // The browser's session is read together with the client (one read transaction).
    let session_cookie = cookie(&headers, SESSION_COOKIE).map(Secret::from_presented);
    let next = match &session_cookie {
        Some(secret) => NextRead::Session(secret.hash(), state.now()),
        None => NextRead::Nothing,
    };
    let (client, alongside) = match state.store.client_and(&client_id, next).await {
        Ok(read) => read,
        Err(e) => return store_failure_page(&e),
    };
    let request = match authorize::validate(&params, client.as_ref()) {
        Ok(r) => r,
        Err(AuthorizeError::Page(e)) => return invalid_request_page(&e.to_string()),
        Err(AuthorizeError::Redirect(e)) => {
            return redirect_error(&state, &e.redirect_uri, &e.error, e.state.as_deref());
        }
    };
    let Some(client) = client else {
        return invalid_request_page("The application is not registered.");
    };
    if request.used_liferay_compat {
        metrics::counter!(crate::ops::names::LIFERAY_COMPAT, "step" => "authorize").increment(1);
        tracing::warn!(client_id = %client.client_id, "liferay-compat: code_challenge_method omitted, treated as S256");
    }

    let browser = Browser::identify(&state, &headers);
    let session = match alongside {
        ReadAlongside::Session(session) => session,
        _ => None,
    };
    let now = state.now();
    // OIDC Core §3.1.2.1: prompt=login, or a login older than max_age, needs a new login.
    // max_age=0 is prompt=login (OIDC Core §3.1.2.1, errata 2).
    let login_required = request.prompt.login
        || request.max_age == Some(0)
        || matches!((&session, request.max_age), (Some(s), Some(max)) if now - s.auth_time > max);
    let usable_session = session.as_ref().filter(|_| !login_required);
    if let Some(session) = usable_session {
        match consent_needed(&state, &client, session, &request).await {
            Ok(false) => {
                return with_browser(
                    &browser,
                    issue_code(&state, &client, session, &request, None).await,
                );
            }
            Ok(true) if request.prompt.none => {
                let e = OAuthError::new(
                    ErrorCode::ConsentRequired,
                    "The user has not approved this application.",
                );
                return redirect_error(&state, &request.redirect_uri, &e, request.state.as_deref());
            }
            Ok(true) => {}
            Err(response) => return response,
        }
    } else if request.prompt.none {
        // OIDC Core §3.1.2.6: no interaction allowed, and none possible without a login.
        let e = OAuthError::new(ErrorCode::LoginRequired, "The user is not signed in.");
        return redirect_error(&state, &request.redirect_uri, &e, request.state.as_deref());
    }
    let pending_id = state.new_secret(SecretKind::PendingAuthorization);
    let pending = PendingAuthorization {
        id_hash: pending_id.hash(),
        browser_hash: browser.secret.hash(),
        request,
        login_required,
        login_session: None,
        created_at: now,
        expires_at: now + state.policy.pending_lifetime,
    };
    if let Err(e) = state.store.insert_pending(&pending).await {
        return store_failure_page(&e);
    }
    let next = if usable_session.is_some() {
        routes::CONSENT
    } else {
        routes::LOGIN
    };
    with_browser(
        &browser,
        see_other(&format!("{next}?pending={}", encode(pending_id.expose()))),
    )
}

/// Is the browser's session good enough for this pending authorization?
pub fn login_satisfies(
    pending: &PendingAuthorization,
    session_hash: &oauthd_core::secret::SecretHash,
) -> bool {
    !pending.login_required || pending.login_session.as_ref() == Some(session_hash)
}

fn with_browser(browser: &Browser, mut response: Response) -> Response {
    browser.apply(response.headers_mut());
    response
}

fn invalid_request_page(message: &str) -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "This sign-in link is not valid",
        message,
    )
}

/// Must the user be asked? Always with prompt=consent; trusted clients never; public
/// (native) clients always, since anyone can claim their identity (RFC 8252 §8.6); others
/// when not already approved.
pub async fn consent_needed(
    state: &AppState,
    client: &Client,
    session: &Session,
    request: &ValidAuthorize,
) -> Result<bool, Response> {
    if request.prompt.consent {
        return Ok(true);
    }
    if client.trusted {
        return Ok(false);
    }
    if client.kind == ClientKind::Public {
        return Ok(true);
    }
    match state
        .store
        .consent(&session.user_id, &client.client_id)
        .await
    {
        Ok(Some(approved)) => Ok(!request.scope.is_subset_of(&approved)),
        Ok(None) => Ok(true),
        Err(e) => Err(store_failure_page(&e)),
    }
}

/// A code for an approved request, sealed with what the request decided
/// (`oauthd_core::code_sealing`): issuing it writes nothing.
pub fn new_code(
    state: &AppState,
    client: &Client,
    session: &Session,
    request: &ValidAuthorize,
) -> Secret {
    let now = state.now();
    let record = SealedRecord {
        code: IssuedCode {
            client_id: client.client_id.clone(),
            user_id: session.user_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            redirect_uri_sent: request.redirect_uri_sent,
            scope: request.scope.clone(),
            code_challenge: request.code_challenge.clone(),
            pkce_mode: client.pkce,
            auth_time: session.auth_time,
            expires_at: now + state.policy.code_lifetime,
            nonce: request.nonce.clone(),
        },
        client_created_at: client.created_at,
    };
    code_sealing::seal(&state.code_key, &record, state.now_millis())
}

/// Issue a code and send the browser back to the client. With `pending`, the pending
/// authorization is consumed first, so it can yield one code only.
pub async fn issue_code(
    state: &AppState,
    client: &Client,
    session: &Session,
    request: &ValidAuthorize,
    pending: Option<&oauthd_core::secret::SecretHash>,
) -> Response {
    if let Some(id) = pending {
        match state.store.consume_pending(id, state.now()).await {
            Ok(oauthd_store::ConsumeOutcome::Consumed) => {}
            Ok(_) => return already_answered_page(),
            Err(e) => return store_failure_page(&e),
        }
    }
    let secret = new_code(state, client, session, request);
    let mut params = vec![("code", secret.expose())];
    if let Some(s) = &request.state {
        params.push(("state", s));
    }
    params.push(("iss", &state.policy.issuer));
    see_other(&append_query(&request.redirect_uri, &params))
}

pub fn already_answered_page() -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "This request was already answered",
        "This authorization request has already been completed or has expired. Return to the app and start again.",
    )
}

/// An error sent back to the client's validated redirect URI, with `state` and `iss`
/// (RFC 6749 §4.1.2.1, RFC 9207 §2).
pub fn redirect_error(
    state: &AppState,
    redirect_uri: &str,
    error: &OAuthError,
    client_state: Option<&str>,
) -> Response {
    let mut params = vec![
        ("error", error.code.as_str()),
        ("error_description", error.description.as_str()),
    ];
    if let Some(s) = client_state {
        params.push(("state", s));
    }
    params.push(("iss", &state.policy.issuer));
    see_other(&append_query(redirect_uri, &params))
}

pub fn access_denied(state: &AppState, request: &ValidAuthorize) -> Response {
    let error = OAuthError::new(ErrorCode::AccessDenied, "The user denied the request.");
    redirect_error(
        state,
        &request.redirect_uri,
        &error,
        request.state.as_deref(),
    )
}
