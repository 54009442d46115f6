//! Protocol endpoints, one module each.
pub mod authorize;
pub mod introspect;
pub mod jwks;
pub mod metadata;
pub mod revoke;
pub mod token;
pub mod userinfo;
