//! Redirect URI registration and matching. Input: `registered \n requested`. Invariants: a
//! registration matches itself, and a match is either the exact string or a loopback IP
//! literal http URI that differs only in its port (RFC 9700 §4.1.3, RFC 8252 §7.3).
#![no_main]

use libfuzzer_sys::fuzz_target;
use oauthd_core::redirect_uri::{RedirectUri, resolve};
use oauthd_fuzz::{loopback_port_variant, split_once_byte};
use url::{Host, Url};

fuzz_target!(|data: &[u8]| {
    let (a, b) = split_once_byte(data, b'\n');
    let (Ok(a), Ok(b)) = (std::str::from_utf8(a), std::str::from_utf8(b)) else {
        return;
    };
    let Ok((registered, _warnings)) = RedirectUri::register(a) else {
        return;
    };

    // What registration promises.
    assert_eq!(registered.as_str(), a);
    assert!(
        !a.bytes()
            .any(|c| c.is_ascii_whitespace() || c.is_ascii_control())
    );
    assert!(!a.contains('#'));
    let url = Url::parse(a).expect("a registered URI parses");
    assert!(url.username().is_empty() && url.password().is_none());
    let scheme = url.scheme();
    assert!(
        !["javascript", "data", "file", "vbscript", "about", "blob"].contains(&scheme),
        "{a:?}"
    );
    if scheme == "http" {
        let loopback = match url.host() {
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            Some(Host::Domain(d)) => d == "localhost",
            None => false,
        };
        assert!(
            loopback,
            "plain http to a non-loopback host registered: {a:?}"
        );
    }

    // Matching.
    assert!(registered.matches(a), "{a:?} does not match itself");
    let one = [registered.clone()];
    assert_eq!(resolve(&one, None), Some(a));
    assert_eq!(resolve(&one, Some(a)), Some(a));

    let matched = registered.matches(b);
    assert_eq!(resolve(&one, Some(b)), matched.then_some(b));
    if matched && a != b {
        assert!(
            loopback_port_variant(a, b),
            "{a:?} matched {b:?}: not the same loopback URI with another port"
        );
        // A browser must land on the same loopback host and path, or not go at all.
        let target =
            Url::parse(b).unwrap_or_else(|e| panic!("{b:?} matched but does not parse: {e}"));
        assert_eq!(target.scheme(), "http");
        assert_eq!(target.host(), url.host(), "{b:?}");
        assert_eq!(target.path(), url.path(), "{b:?}");
        assert_eq!(target.query(), url.query(), "{b:?}");
    }
    // And the other way round: every loopback port variant of a registration matches.
    if !matched {
        assert_ne!(a, b);
        assert!(!loopback_port_variant(a, b), "{a:?} did not match {b:?}");
    }
});
