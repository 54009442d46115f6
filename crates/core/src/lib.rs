//! oauthd-core: the protocol and domain rules of oauthd.
//!
//! Pure functions and newtypes only: no I/O, no async runtime, no clock reads. Time is
//! passed in as Unix seconds; randomness comes from [`secret`] alone.
#![forbid(unsafe_code)]

pub mod authorize;
pub mod client;
pub mod code;
pub mod code_sealing;
pub mod error;
pub mod form;
pub mod jose;
pub mod key_sealing;
pub mod pkce;
pub mod redirect_uri;
pub mod refresh;
pub mod scope;
pub mod secret;
pub mod token_request;

/// Seconds since the Unix epoch, as handed in by the caller's clock.
pub type UnixTime = i64;
