//! `/consent`: the user approves or denies an application's request.
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use oauthd_core::client::Client;
use oauthd_core::form::encode;
use oauthd_core::scope::describe;
use oauthd_core::secret::Secret;
use oauthd_store::{ConsumeOutcome, PendingAuthorization, Session};

use super::login::{PendingQuery, csrf_failure};
use super::templates::{ConsentPage, ScopeLine};
use super::{form, invalid_form, pending_for_browser};
use crate::endpoints::authorize::{
    access_denied, already_answered_page, consent_needed, issue_code, login_satisfies,
};
use crate::http::browser::{Browser, csrf_ok, current_session};
use crate::http::response::{error_page, page, see_other, store_failure_page};
use crate::routes;
use crate::state::AppState;

/// The pending request (started in this browser), the signed-in user and the client; or
/// the response to give instead.
async fn load(
    state: &AppState,
    headers: &HeaderMap,
    pending_id: &str,
) -> Result<(PendingAuthorization, Session, Client), Response> {
    let pending = match pending_for_browser(state, headers, Some(pending_id)).await {
        Ok(Some(p)) => p,
        Ok(None) => return Err(already_answered_page()),
        Err(e) => return Err(store_failure_page(&e)),
    };
    let session = match current_session(state, headers).await {
        Ok(Some((secret, s))) if login_satisfies(&pending, &secret.hash()) => s,
        Ok(_) => {
            return Err(see_other(&format!(
                "{}?pending={}",
                routes::LOGIN,
                encode(pending_id)
            )));
        }
        Err(e) => return Err(store_failure_page(&e)),
    };
    match state.store.client(&pending.request.client_id).await {
        Ok(Some(client)) => Ok((pending, session, client)),
        Ok(None) => Err(already_answered_page()),
        Err(e) => Err(store_failure_page(&e)),
    }
}

pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PendingQuery>,
) -> Response {
    let Some(pending_id) = q.pending else {
        return already_answered_page();
    };
    let (pending, session, client) = match load(&state, &headers, &pending_id).await {
        Ok(loaded) => loaded,
        Err(response) => return response,
    };
    match consent_needed(&state, &client, &session, &pending.request).await {
        Ok(false) => {
            return issue_code(
                &state,
                &client,
                &session,
                &pending.request,
                Some(&pending.id_hash),
            )
            .await;
        }
        Ok(true) => {}
        Err(r) => return r,
    }
    let browser = Browser::identify(&state, &headers);
    page(
        StatusCode::OK,
        &ConsentPage {
            app_name: client.name,
            scopes: pending
                .request
                .scope
                .iter()
                .map(|t| ScopeLine {
                    token: t.to_owned(),
                    words: describe(t),
                })
                .collect(),
            redirect_uri: pending.request.redirect_uri,
            pending: pending_id,
            csrf: browser.csrf(),
            username: session.username,
        },
    )
}

pub async fn submit(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(fields) = form(&body) else {
        return invalid_form();
    };
    let get = |n: &str| fields.single(n).ok().flatten().map(str::to_owned);
    if csrf_ok(&headers, get("csrf").as_deref()).is_none() {
        return csrf_failure();
    }
    let Some(pending_id) = get("pending") else {
        return already_answered_page();
    };
    let (pending, session, client) = match load(&state, &headers, &pending_id).await {
        Ok(loaded) => loaded,
        Err(response) => return response,
    };
    match get("decision").as_deref() {
        Some("approve") => {
            let response = issue_code(
                &state,
                &client,
                &session,
                &pending.request,
                Some(&pending.id_hash),
            )
            .await;
            if response.status() == StatusCode::SEE_OTHER
                && let Err(e) = state
                    .store
                    .remember_consent(
                        &session.user_id,
                        &client.client_id,
                        &pending.request.scope,
                        state.now(),
                    )
                    .await
            {
                tracing::error!(error = ?e, "could not remember consent");
            }
            response
        }
        Some("deny") => match state
            .store
            .consume_pending(&Secret::from_presented(pending_id).hash(), state.now())
            .await
        {
            Ok(ConsumeOutcome::Consumed) => access_denied(&state, &pending.request),
            Ok(_) => already_answered_page(),
            Err(e) => store_failure_page(&e),
        },
        _ => error_page(
            StatusCode::BAD_REQUEST,
            "Invalid form",
            "Choose Allow or Deny.",
        ),
    }
}
