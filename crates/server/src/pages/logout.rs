//! `/logout`: end the browser session (a POST with a CSRF token, never a bare GET).
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::form;
use super::login::csrf_failure;
use super::templates::{LogoutPage, MessagePage};
use crate::http::browser::{Browser, SESSION_COOKIE, clear_cookie, csrf_ok, current_session};
use crate::http::response::{page, see_other, store_failure_page};
use crate::routes;
use crate::state::AppState;

pub async fn show(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let browser = Browser::identify(&state, &headers);
    let mut response = match current_session(&state, &headers).await {
        Ok(Some((_, s))) => page(
            StatusCode::OK,
            &LogoutPage {
                username: s.username,
                csrf: browser.csrf(),
            },
        ),
        Ok(None) => page(
            StatusCode::OK,
            &MessagePage {
                title: "Signed out".into(),
                message: "You are not signed in on this browser.".into(),
            },
        ),
        Err(e) => return store_failure_page(&e),
    };
    browser.apply(response.headers_mut());
    response
}

pub async fn submit(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let csrf = form(&body).and_then(|f| f.single("csrf").ok().flatten().map(str::to_owned));
    if csrf_ok(&headers, csrf.as_deref()).is_none() {
        return csrf_failure();
    }
    match current_session(&state, &headers).await {
        Ok(Some((secret, _))) => {
            if let Err(e) = state.store.delete_session(&secret.hash()).await {
                return store_failure_page(&e);
            }
        }
        Ok(None) => {}
        Err(e) => return store_failure_page(&e),
    }
    let mut response = see_other(routes::LOGOUT);
    response
        .headers_mut()
        .append(SET_COOKIE, clear_cookie(&state, SESSION_COOKIE));
    response
}
