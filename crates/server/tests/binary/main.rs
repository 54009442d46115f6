//! Tests of the real `oauthd` binary: the CLI, configuration errors, signals, the seed's
//! walkthrough against `--demo`, and a native app built on the `oauth2` crate.
#[path = "../support/mod.rs"]
mod support;

mod cli;
mod native_app;
mod process;
mod seed_demo;
