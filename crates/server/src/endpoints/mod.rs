//! Protocol endpoints, one module each.
pub mod authorize;
pub mod metadata;
pub mod token;
