//! The browser and session cookie parser of the server (`oauthd::http::browser::cookie`).
//! Input: one `Cookie` header value per line (values `HeaderValue` refuses are skipped).
//! Invariant: a returned value is 1..=128 characters of [A-Za-z0-9_-], sent as exactly
//! `name=value` in one of the headers.
#![no_main]

use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use oauthd::http::browser::{BROWSER_COOKIE, SESSION_COOKIE, cookie};

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            headers.append(COOKIE, v);
        }
    }
    for name in [BROWSER_COOKIE, SESSION_COOKIE] {
        let Some(value) = cookie(&headers, name) else {
            continue;
        };
        assert!((1..=128).contains(&value.len()), "{name}: {value:?}");
        assert!(
            value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "{name}: {value:?}"
        );
        let pair = format!("{name}={value}");
        let sent = headers.get_all(COOKIE).iter().any(|h| {
            h.to_str()
                .is_ok_and(|t| t.split(';').any(|p| p.trim() == pair))
        });
        assert!(sent, "{pair:?} was not in any Cookie header");
    }
});
