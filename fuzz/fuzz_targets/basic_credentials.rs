//! `Authorization: Basic` values (RFC 6749 §2.3.1, RFC 7617). The first byte picks how the
//! rest becomes a header value:
//!   0: as is;  1: "Basic " + rest;  2: "Basic " + base64(rest);
//!   3: round trip: rest is `id \n secret`, form-encoded each, joined by ':', base64'd.
//! Invariants: never a panic; an accepted value has a non-empty client id; the round trip
//! gives back exactly the id and secret that were encoded.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use oauthd_core::error::ErrorCode;
use oauthd_core::form::encode;
use oauthd_core::token_request::parse_basic;
use oauthd_fuzz::split_once_byte;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let header = match mode % 4 {
        0 => match std::str::from_utf8(rest) {
            Ok(s) => s.to_owned(),
            Err(_) => return,
        },
        1 => match std::str::from_utf8(rest) {
            Ok(s) => format!("Basic {s}"),
            Err(_) => return,
        },
        2 => format!("Basic {}", STANDARD.encode(rest)),
        _ => {
            let (id, secret) = split_once_byte(rest, b'\n');
            let (Ok(id), Ok(secret)) = (std::str::from_utf8(id), std::str::from_utf8(secret))
            else {
                return;
            };
            let header = format!(
                "Basic {}",
                STANDARD.encode(format!("{}:{}", encode(id), encode(secret)))
            );
            match parse_basic(&header) {
                Ok((got_id, got_secret)) => {
                    assert_eq!(got_id, id);
                    assert_eq!(got_secret.expose(), secret);
                }
                Err(e) => {
                    assert_eq!(e.code, ErrorCode::InvalidClient);
                    assert!(id.is_empty(), "{id:?}:{secret:?} refused");
                }
            }
            return;
        }
    };
    match parse_basic(&header) {
        Ok((id, _secret)) => assert!(!id.is_empty(), "empty client id from {header:?}"),
        Err(e) => assert_eq!(e.code, ErrorCode::InvalidClient),
    }
});
