//! HTTP tests against the real server on port 0, one module per area. Each test starts its
//! own server on its own SQLite file with a manual clock.
#[path = "../support/mod.rs"]
mod support;

mod common;

mod authorize;
mod hostile;
mod introspect;
mod jwt;
mod oidc;
mod ops;
mod pages;
mod race;
mod revoke;
mod seed;
mod token;
