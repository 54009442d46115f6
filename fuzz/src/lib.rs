//! Helpers shared by the fuzz targets: fixed clients, and oracles written independently of
//! the code under test (so a target checks the rule, not the implementation against itself).

use oauthd_core::client::{AccessTokenFormat, Client, ClientKind, GrantType};
use oauthd_core::jose::JwsAlg;
use oauthd_core::pkce::PkceMode;
use oauthd_core::redirect_uri::RedirectUri;
use oauthd_core::scope::Scope;

/// The seed's challenge, `BASE64URL(SHA256("test"))`.
pub const SEED_CHALLENGE: &str = "n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg";

/// A public client built the way the tests in `crates/core/src/authorize.rs` build theirs.
pub fn client(pkce: PkceMode, uris: &[&str]) -> Client {
    Client {
        client_id: "54321".into(),
        name: "Fuzz".into(),
        kind: ClientKind::Public,
        secret_hash: None,
        redirect_uris: uris
            .iter()
            .map(|u| RedirectUri::register(u).expect("fixture URI registers").0)
            .collect(),
        grants: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: Scope::parse("photos:read profile openid").expect("fixture scope"),
        trusted: false,
        pkce,
        access_token_ttl: 600,
        refresh_token_ttl: 3600,
        access_token_format: AccessTokenFormat::Opaque,
        access_token_alg: JwsAlg::ES256,
        id_token_alg: JwsAlg::RS256,
        audience: vec![],
        created_at: 0,
    }
}

/// The fixed clients the authorize target validates every request against: the seed's
/// (one custom-scheme URI, liferay-compat) and a strict one with several registrations,
/// loopback ones included.
pub fn clients() -> Vec<Client> {
    vec![
        client(PkceMode::LiferayCompat, &["myapp://oauth2redirect"]),
        client(
            PkceMode::Strict,
            &[
                "https://app.example/cb",
                "com.example.app:/oauth2redirect",
                "http://127.0.0.1/callback",
                "http://127.0.0.1:8080/cb?x=1",
                "http://[::1]/cb",
            ],
        ),
    ]
}

/// A loopback IP literal http URI split into (host, rest after the port), parsed byte by byte:
/// `http://` then `127.0.0.1` or `[::1]`, then optionally `:` and 1 to 5 ASCII digits naming a
/// real TCP port (1 to 65535, the product's rule), then nothing or a path, query or fragment.
fn split_loopback(uri: &str) -> Option<(&str, &str)> {
    let after_scheme = uri.strip_prefix("http://")?;
    let host_len = if after_scheme.starts_with("127.0.0.1") {
        9
    } else if after_scheme.starts_with("[::1]") {
        5
    } else {
        return None;
    };
    let host = &after_scheme[..host_len];
    let mut rest = &after_scheme[host_len..];
    if let Some(after_colon) = rest.strip_prefix(':') {
        let n = after_colon.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 5 {
            return None;
        }
        // Port 0 and ports over 65535 name nothing a browser can reach (found by the CI
        // fuzz run: 68039 counted as a variant here, and the product rightly refused it).
        let value: u32 = after_colon[..n].parse().ok()?;
        if !(1..=65535).contains(&value) {
            return None;
        }
        rest = &after_colon[n..];
    }
    match rest.bytes().next() {
        None | Some(b'/' | b'?' | b'#') => Some((host, rest)),
        _ => None,
    }
}

/// Are `a` and `b` the same loopback IP literal http URI, differing at most in the port?
pub fn loopback_port_variant(a: &str, b: &str) -> bool {
    match (split_loopback(a), split_loopback(b)) {
        (Some((ha, ra)), Some((hb, rb))) => ha == hb && ra == rb,
        _ => false,
    }
}

/// May an authorization response be sent to `uri` for `client`? Only to a registered URI,
/// or to a loopback port variant of one (RFC 8252 §7.3).
pub fn registered_or_loopback_variant(client: &Client, uri: &str) -> bool {
    client
        .redirect_uris
        .iter()
        .any(|r| r.as_str() == uri || loopback_port_variant(r.as_str(), uri))
}

/// Split fuzz input at the first `sep` byte: (before, after); all of it is `before` when
/// there is none.
pub fn split_once_byte(data: &[u8], sep: u8) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == sep) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}
