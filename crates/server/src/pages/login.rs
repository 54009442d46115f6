//! `/login`: username and password, throttled per account and per address.
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::header::{RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use oauthd_core::form::encode;
use oauthd_core::secret::{Secret, SecretKind};
use oauthd_store::{NewSession, PendingAuthorization};

use super::templates::{LoginPage, MessagePage};
use super::{form, invalid_form, pending_for_browser};
use crate::endpoints::authorize::login_satisfies;
use crate::http::browser::{Browser, SESSION_COOKIE, csrf_ok, current_session, set_cookie};
use crate::http::response::{error_page, page, see_other, store_failure_page};
use crate::routes;
use crate::state::AppState;
use crate::throttle::{ACCOUNT_LIMITS, ADDRESS_LIMITS, account_key, address_key};

#[derive(Deserialize)]
pub struct PendingQuery {
    pub pending: Option<String>,
}

/// The name of the application a pending request is for, to show on the login page.
async fn app_name(state: &AppState, pending: Option<&PendingAuthorization>) -> Option<String> {
    let p = pending?;
    state
        .store
        .client(&p.request.client_id)
        .await
        .ok()
        .flatten()
        .map(|c| c.name)
}

const WRONG_CREDENTIALS: &str = "The username or password is incorrect.";

pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PendingQuery>,
) -> Response {
    let browser = Browser::identify(&state, &headers);
    let pending = match pending_for_browser(&state, &headers, q.pending.as_deref()).await {
        Ok(p) => p,
        Err(e) => return store_failure_page(&e),
    };
    let session = current_session(&state, &headers).await.ok().flatten();
    if let (Some(p), Some((secret, _))) = (&pending, &session)
        && login_satisfies(p, &secret.hash())
    {
        return see_other(&format!(
            "{}?pending={}",
            routes::CONSENT,
            encode(q.pending.as_deref().unwrap_or(""))
        ));
    }
    let app_name = app_name(&state, pending.as_ref()).await;
    let mut response = page(
        StatusCode::OK,
        &LoginPage {
            app_name,
            pending: pending.as_ref().and(q.pending),
            csrf: browser.csrf(),
            username: String::new(),
            error: None,
        },
    );
    browser.apply(response.headers_mut());
    response
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(fields) = form(&body) else {
        return invalid_form();
    };
    let get = |n: &str| fields.single(n).ok().flatten().map(str::to_owned);
    let Some(browser) = csrf_ok(&headers, get("csrf").as_deref()) else {
        return csrf_failure();
    };
    let pending = get("pending");
    let username = get("username").unwrap_or_default();
    let password = Secret::from_presented(get("password").unwrap_or_default());
    let pending_record = match pending_for_browser(&state, &headers, pending.as_deref()).await {
        Ok(p) => p,
        Err(e) => return store_failure_page(&e),
    };
    let rerender = |status: StatusCode, error: &str, app_name: Option<String>| {
        page(
            status,
            &LoginPage {
                app_name,
                pending: pending.clone(),
                csrf: oauthd_core::secret::csrf_token_for(&browser),
                username: username.clone(),
                error: Some(error.to_owned()),
            },
        )
    };
    if username.is_empty() || username.len() > 256 || password.expose().len() > 1024 {
        let name = app_name(&state, pending_record.as_ref()).await;
        return rerender(StatusCode::UNAUTHORIZED, WRONG_CREDENTIALS, name);
    }
    let now = state.now();
    let (account, address) = (account_key(&username), address_key(peer.ip()));
    if let Err(wait) = state.throttle.check(&[&account, &address], now) {
        metrics::counter!(crate::ops::names::LOGIN_THROTTLED).increment(1);
        tracing::warn!(
            event = "login_throttled",
            retry_after = wait,
            "login refused while throttled"
        );
        let name = app_name(&state, pending_record.as_ref()).await;
        let mut r = rerender(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("Too many failed sign-in attempts. Try again in {wait} seconds."),
            name,
        );
        r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(wait));
        return r;
    }
    let user = match state.store.user_by_username(&username).await {
        Ok(u) => u,
        Err(e) => return store_failure_page(&e),
    };
    // Unknown usernames are verified against a dummy hash: same time, same answer.
    let ok = state
        .passwords
        .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
        .await;
    let Some(user) = user.filter(|_| ok) else {
        state.throttle.record_failure(
            &[(&account, ACCOUNT_LIMITS), (&address, ADDRESS_LIMITS)],
            now,
        );
        metrics::counter!(crate::ops::names::LOGIN_FAILURES).increment(1);
        tracing::info!(event = "login_failed", "failed sign-in attempt");
        let name = app_name(&state, pending_record.as_ref()).await;
        return rerender(StatusCode::UNAUTHORIZED, WRONG_CREDENTIALS, name);
    };
    state.throttle.record_success(&account);

    // A new session id at every login (no fixation); the old session ends.
    if let Ok(Some((old, _))) = current_session(&state, &headers).await {
        let _ = state.store.delete_session(&old.hash()).await;
    }
    let session = state.new_secret(SecretKind::Session);
    let new = NewSession {
        id_hash: session.hash(),
        user_id: user.id,
        auth_time: now,
        expires_at: now + state.policy.session_lifetime,
    };
    if let Err(e) = state.store.insert_session(&new).await {
        return store_failure_page(&e);
    }
    // A login made for a pending request satisfies its prompt=login / max_age.
    if let Some(p) = &pending_record
        && let Err(e) = state.store.attach_login(&p.id_hash, &new.id_hash).await
    {
        return store_failure_page(&e);
    }
    let next = match pending {
        Some(p) => format!("{}?pending={}", routes::CONSENT, encode(&p)),
        None => routes::ACCOUNT.to_owned(),
    };
    let mut response = see_other(&next);
    response.headers_mut().append(
        SET_COOKIE,
        set_cookie(
            &state,
            SESSION_COOKIE,
            session.expose(),
            state.policy.session_lifetime,
        ),
    );
    response
}

/// `/account`: who is signed in here.
pub async fn account(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match current_session(&state, &headers).await {
        Ok(Some((_, s))) => page(
            StatusCode::OK,
            &MessagePage {
                title: "Signed in".into(),
                message: format!("You are signed in as {}.", s.username),
            },
        ),
        Ok(None) => see_other(routes::LOGIN),
        Err(e) => store_failure_page(&e),
    }
}

pub fn csrf_failure() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "This form has expired",
        "The form was not submitted from this site or has expired. Go back, reload the page and try again.",
    )
}
