//! Administrative commands (`oauthd client …`, `oauthd user …`).
pub mod client;
pub mod keys;
pub mod user;

/// A command failure: a one-line message and the exit code (2 for bad input, 1 otherwise).
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub exit_code: u8,
}

impl Failure {
    pub fn bad_input(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            exit_code: 2,
        }
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            exit_code: 1,
        }
    }
}

impl From<oauthd_store::StoreError> for Failure {
    fn from(e: oauthd_store::StoreError) -> Self {
        match e {
            oauthd_store::StoreError::Conflict(what) => {
                Failure::bad_input(format!("{what} already exists"))
            }
            oauthd_store::StoreError::Unavailable(inner) => {
                Failure::failed(format!("database error: {inner}"))
            }
            other => Failure::failed(other.to_string()),
        }
    }
}

impl From<crate::serve::StartError> for Failure {
    fn from(e: crate::serve::StartError) -> Self {
        match e {
            crate::serve::StartError::Config(c) => Failure::bad_input(c.to_string()),
            other => Failure::failed(other.to_string()),
        }
    }
}
