//! Server-rendered browser pages: login, consent, logout, and their assets.
pub mod assets;
pub mod consent;
pub mod login;
pub mod logout;
pub mod templates;

use axum::http::HeaderMap;

use oauthd_core::secret::Secret;
use oauthd_store::PendingAuthorization;

use crate::state::AppState;

/// The pending authorization named by a page, if it exists, is live, and was started in
/// this browser.
pub(crate) async fn pending_for_browser(
    state: &AppState,
    headers: &HeaderMap,
    pending: Option<&str>,
) -> Result<Option<PendingAuthorization>, oauthd_store::StoreError> {
    let (Some(id), Some(browser)) = (pending, crate::http::browser::Browser::existing(headers))
    else {
        return Ok(None);
    };
    let found = state
        .store
        .pending(&Secret::from_presented(id).hash(), state.now())
        .await?;
    Ok(found.filter(|p| p.browser_hash == browser.hash()))
}

/// Parse a urlencoded form body strictly (no repeated fields).
pub(crate) fn form(body: &[u8]) -> Option<oauthd_core::form::Params> {
    let p = oauthd_core::form::Params::parse(body).ok()?;
    p.first_repeated().is_none().then_some(p)
}

/// The answer to a form that [`form`] could not read.
pub(crate) fn invalid_form() -> axum::response::Response {
    crate::http::response::error_page(
        axum::http::StatusCode::BAD_REQUEST,
        "Invalid form",
        "The form could not be read. Go back and try again.",
    )
}
