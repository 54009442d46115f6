//! The authorization request: query string → `parse_query` → `validate` against fixed
//! clients. The open-redirect rules are the invariants: an error is only ever redirected to
//! a registered redirect URI (or a loopback port variant of one), and `state` is echoed
//! exactly as sent.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use oauthd_core::authorize::{AuthorizeError, PageError, parse_query, validate};
use oauthd_core::client::Client;
use oauthd_core::form::{Params, append_query};
use oauthd_core::pkce::PkceMode;
use oauthd_fuzz::{clients, registered_or_loopback_variant};
use url::Url;

static CLIENTS: LazyLock<Vec<Client>> = LazyLock::new(clients);

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// The URI a response may go to, as the request decided it: the one it sent, or the only
/// registration when it sent none.
fn expected_target<'a>(client: &'a Client, requested: Option<&'a str>) -> Option<&'a str> {
    match requested {
        Some(r) => Some(r),
        None if client.redirect_uris.len() == 1 => Some(client.redirect_uris[0].as_str()),
        None => None,
    }
}

/// The redirect actually built from a trusted URI must still point at a registered
/// scheme and host (a query appended to it must not move the authority).
fn check_built_redirect(client: &Client, uri: &str, state: Option<&str>) {
    let mut params = vec![("error", "invalid_request")];
    if let Some(s) = state {
        params.push(("state", s));
    }
    let built = append_query(uri, &params);
    assert!(built.starts_with(uri), "{built:?} does not extend {uri:?}");
    let Ok(built) = Url::parse(&built) else {
        // A browser cannot follow it either (e.g. a loopback port over 65535).
        return;
    };
    let same_origin = client.redirect_uris.iter().any(|r| {
        let r = Url::parse(r.as_str()).expect("registered URIs parse");
        r.scheme() == built.scheme() && r.host_str() == built.host_str()
    });
    assert!(
        same_origin,
        "redirect {built} is not on a registered scheme and host"
    );
}

fn check(params: &Params, client: &Client) {
    let requested = params.single("redirect_uri");
    let sent_state = params.single("state");
    match validate(params, Some(client)) {
        Ok(v) => {
            let requested = requested.expect("a repeated redirect_uri was accepted");
            assert!(
                registered_or_loopback_variant(client, &v.redirect_uri),
                "accepted an unregistered redirect_uri {:?}",
                v.redirect_uri
            );
            assert_eq!(
                Some(v.redirect_uri.as_str()),
                expected_target(client, requested)
            );
            assert_eq!(v.redirect_uri_sent, requested.is_some());
            assert_eq!(v.client_id, client.client_id);
            assert_eq!(
                v.state.as_deref(),
                sent_state.expect("a repeated state was accepted")
            );
            assert!(!v.state.as_deref().is_some_and(has_control));
            assert_eq!(
                params.first_repeated(),
                None,
                "a repeated parameter was accepted"
            );
            assert_eq!(params.single("response_type"), Ok(Some("code")));
            assert!(v.scope.is_subset_of(&client.scopes));
            assert_eq!(
                Ok(Some(v.code_challenge.as_str())),
                params.single("code_challenge")
            );
            let method = params.single("code_challenge_method").ok().flatten();
            match client.pkce {
                PkceMode::Strict => {
                    assert_eq!(method, Some("S256"));
                    assert!(!v.used_liferay_compat);
                }
                PkceMode::LiferayCompat => {
                    assert!(method.is_none() || method == Some("S256"));
                    assert_eq!(v.used_liferay_compat, method.is_none());
                }
            }
            assert!(
                v.nonce
                    .as_deref()
                    .is_none_or(|n| n.len() <= 512 && !has_control(n))
            );
            assert!(!(v.prompt.none && (v.prompt.login || v.prompt.consent)));
            assert!(v.max_age.is_none_or(|m| m >= 0));
            check_built_redirect(client, &v.redirect_uri, v.state.as_deref());
        }
        Err(AuthorizeError::Redirect(e)) => {
            // Never an attacker-chosen target.
            assert!(
                registered_or_loopback_variant(client, &e.redirect_uri),
                "error redirected to an unregistered URI {:?}",
                e.redirect_uri
            );
            let requested = requested.expect("redirected although redirect_uri was repeated");
            assert_eq!(
                Some(e.redirect_uri.as_str()),
                expected_target(client, requested)
            );
            // state: echoed exactly when sent once and printable, otherwise not at all.
            match sent_state {
                Ok(Some(s)) if !has_control(s) => assert_eq!(e.state.as_deref(), Some(s)),
                _ => assert_eq!(e.state, None, "state echoed though not sent exactly once"),
            }
            check_built_redirect(client, &e.redirect_uri, e.state.as_deref());
        }
        Err(AuthorizeError::Page(PageError::RedirectUriMismatch)) => {
            let requested = requested.expect("mismatch reported for a repeated redirect_uri");
            let requested = requested.expect("mismatch reported without a redirect_uri");
            assert!(
                !client.redirect_uris.iter().any(|r| r.as_str() == requested),
                "the registered URI {requested:?} was refused"
            );
        }
        Err(AuthorizeError::Page(PageError::RedirectUriRequired)) => {
            assert_eq!(requested, Ok(None));
            assert!(client.redirect_uris.len() > 1);
        }
        Err(AuthorizeError::Page(_)) => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok((params, client_id)) = parse_query(data) else {
        return;
    };
    assert!(!client_id.is_empty());
    assert_eq!(params.single("client_id"), Ok(Some(client_id.as_str())));
    assert_eq!(
        validate(&params, None),
        Err(AuthorizeError::Page(PageError::UnknownClient))
    );
    for client in CLIENTS.iter() {
        check(&params, client);
    }
});
