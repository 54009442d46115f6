//! Tests of the real `oauthd` binary: the CLI, configuration errors, signals, the seed's
//! walkthrough against `--demo`, a native app built on the `oauth2` crate, a relying party
//! built on the `openidconnect` crate, revocation and introspection, and signing keys
//! (rotation, retirement, sealing at rest) managed while the server runs, and the example
//! API checking tokens end to end.
#[path = "../support/mod.rs"]
mod support;

mod cli;
mod crash;
mod example_api;
mod flow;
mod keys;
mod multi_instance;
mod native_app;
mod oidc_client;
mod one_cpu;
mod outage;
mod process;
mod revoke_introspect;
mod seed_demo;
mod shutdown;
