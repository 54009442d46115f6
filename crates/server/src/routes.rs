//! The one route table. Every path the server answers is here; the metadata document is
//! generated from these constants.
use axum::Router;
use axum::routing::{MethodRouter, any, get};

use crate::endpoints::{authorize, introspect, jwks, metadata, revoke, token, userinfo};
use crate::ops;
use crate::pages::{assets, consent, login, logout};
use crate::state::AppState;

pub const AUTHORIZE: &str = "/o/oauth2/authorize";
pub const TOKEN: &str = "/o/oauth2/token";
pub const REVOKE: &str = "/o/oauth2/revoke";
pub const INTROSPECT: &str = "/o/oauth2/introspect";
pub const JWKS: &str = "/o/oauth2/jwks";
pub const USERINFO: &str = "/o/oauth2/userinfo";
pub const METADATA: &str = "/.well-known/oauth-authorization-server";
pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
pub const LOGIN: &str = "/login";
pub const CONSENT: &str = "/consent";
pub const LOGOUT: &str = "/logout";
pub const ACCOUNT: &str = "/account";
pub const STYLESHEET: &str = "/assets/oauthd.css";
pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
pub const METRICS: &str = "/metrics";

/// Every route: its path and what answers it, by method.
type Route = (&'static str, fn() -> MethodRouter<AppState>);

const ROUTES: [Route; 16] = [
    (AUTHORIZE, || get(authorize::get)),
    (TOKEN, || any(token::handle)),
    (REVOKE, || any(revoke::handle)),
    (INTROSPECT, || any(introspect::handle)),
    (JWKS, || get(jwks::get)),
    (USERINFO, || get(userinfo::handle).post(userinfo::handle)),
    (METADATA, || get(metadata::oauth)),
    (OPENID_CONFIGURATION, || get(metadata::openid)),
    (LOGIN, || get(login::show).post(login::submit)),
    (CONSENT, || get(consent::show).post(consent::submit)),
    (LOGOUT, || get(logout::show).post(logout::submit)),
    (ACCOUNT, || get(login::account)),
    (STYLESHEET, || get(assets::stylesheet)),
    (HEALTHZ, || get(ops::healthz)),
    (READYZ, || get(ops::readyz)),
    (METRICS, || get(ops::metrics)),
];

/// The routes; what every request goes through around them is [`crate::edge`].
pub fn router(state: AppState) -> Router {
    ROUTES
        .iter()
        .fold(Router::new(), |router, (path, answer)| {
            router.route(path, answer())
        })
        .fallback(assets::not_found)
        .with_state(state)
}

/// The route a request's path is answered by, as the metrics name it: the path itself, or
/// "unmatched". Paths have no parameters, so the path is the whole match.
pub fn endpoint(path: &str) -> &'static str {
    ROUTES
        .iter()
        .find(|(route, _)| *route == path)
        .map_or("unmatched", |(route, _)| route)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_route_is_its_own_endpoint_and_nothing_else_is_one() {
        for (path, _) in ROUTES {
            assert_eq!(endpoint(path), path);
        }
        assert_eq!(endpoint("/o/oauth2/token/"), "unmatched");
        assert_eq!(endpoint("/"), "unmatched");
    }
}
