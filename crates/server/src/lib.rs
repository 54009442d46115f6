//! oauthd: the server binary's library (the `oauthd` binary is a thin `main` over it, and the
//! HTTP tests start the same server on port 0).
#![forbid(unsafe_code)]

pub mod admin;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod edge;
pub mod endpoints;
pub mod housekeeping;
pub mod http;
pub mod issue;
pub mod keys;
pub mod limits;
pub mod ops;
pub mod pages;
pub mod passwords;
pub mod routes;
pub mod serve;
pub mod state;
pub mod throttle;
