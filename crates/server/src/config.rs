//! Configuration: defaults, then a TOML file, then `OAUTHD_*` environment variables, then
//! command-line flags (DESIGN §4).
use std::net::SocketAddr;
use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};
use serde::{Deserialize, Serialize};

use oauthd_core::code::MAX_CODE_LIFETIME;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: String,
    /// `sqlite://path` (the embedded default).
    pub database_url: String,
    /// The issuer identifier (RFC 8414 §2); unset means `http://localhost:<port>`.
    pub issuer: Option<String>,
    /// Seconds an authorization code lives (at most 600, RFC 6749 §4.1.2).
    pub code_lifetime: i64,
    /// Seconds a rotated-out refresh token may still recover a lost response.
    pub refresh_grace_period: i64,
    /// Seconds after which every refresh token of a grant expires, however often used.
    pub refresh_absolute_lifetime: i64,
    /// Seconds a browser session lasts.
    pub session_lifetime: i64,
    /// Seconds a user has to log in and decide on an authorization request.
    pub pending_lifetime: i64,
    /// Seals signing keys at rest (at least 32 characters); unset stores them unsealed.
    pub key_encryption_key: Option<Sensitive>,
    /// Seconds between housekeeping passes that delete expired rows; 0 turns them off.
    pub housekeeping_interval: u64,
    /// Requests per second one client may make to the token, revocation and introspection
    /// endpoints (per instance); 0 turns the limit off.
    pub client_requests_per_second: u32,
    /// Seconds a client has to send a request head; idle connections close after it too.
    pub header_read_timeout: u64,
}

/// A configuration value that must never be printed (`Debug` redacts it).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sensitive(pub String);

impl std::fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            database_url: "sqlite://oauthd.db".into(),
            issuer: None,
            code_lifetime: oauthd_core::code::DEFAULT_CODE_LIFETIME,
            refresh_grace_period: oauthd_core::refresh::DEFAULT_GRACE_PERIOD,
            refresh_absolute_lifetime: oauthd_core::refresh::DEFAULT_ABSOLUTE_LIFETIME,
            session_lifetime: 12 * 3600,
            pending_lifetime: 15 * 60,
            key_encryption_key: None,
            housekeeping_interval: 60,
            client_requests_per_second: 1000,
            header_read_timeout: 10,
        }
    }
}

/// Flags given on the command line; each overrides the file and the environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub database_url: Option<String>,
    pub issuer: Option<String>,
}

const ENV_KEYS: &[&str] = &[
    "listen",
    "database_url",
    "issuer",
    "code_lifetime",
    "refresh_grace_period",
    "refresh_absolute_lifetime",
    "session_lifetime",
    "pending_lifetime",
    "key_encryption_key",
    "housekeeping_interval",
    "client_requests_per_second",
    "header_read_timeout",
];

/// A configuration problem, as one line for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Config {
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError(format!(
                    "config file {} does not exist or is not a file",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment.merge(Env::prefixed("OAUTHD_").only(ENV_KEYS));
        let mut config: Config = figment.extract().map_err(|e| {
            ConfigError(format!(
                "invalid configuration: {}",
                e.to_string().replace('\n', " ")
            ))
        })?;
        if let Some(v) = &overrides.listen {
            config.listen = v.clone();
        }
        if let Some(v) = &overrides.database_url {
            config.database_url = v.clone();
        }
        if let Some(v) = &overrides.issuer {
            config.issuer = Some(v.clone());
        }
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        if !["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|p| self.database_url.starts_with(p))
        {
            return Err(ConfigError(format!(
                "database URL {:?} is not supported; use sqlite://path/to/oauthd.db or postgres://user@host/db",
                self.database_url
            )));
        }
        if let Some(issuer) = &self.issuer {
            validate_issuer(issuer)?;
        }
        if !(1..=MAX_CODE_LIFETIME).contains(&self.code_lifetime) {
            return Err(ConfigError(format!(
                "code_lifetime must be between 1 and {MAX_CODE_LIFETIME} seconds"
            )));
        }
        for (name, value) in [
            ("refresh_absolute_lifetime", self.refresh_absolute_lifetime),
            ("session_lifetime", self.session_lifetime),
            ("pending_lifetime", self.pending_lifetime),
        ] {
            if value < 1 {
                return Err(ConfigError(format!(
                    "{name} must be a positive number of seconds"
                )));
            }
        }
        if let Some(kek) = &self.key_encryption_key {
            oauthd_core::key_sealing::Kek::derive(&kek.0)
                .map_err(|e| ConfigError(format!("key_encryption_key: {e}")))?;
        }
        if !(1..=300).contains(&self.header_read_timeout) {
            return Err(ConfigError(
                "header_read_timeout must be between 1 and 300 seconds".into(),
            ));
        }
        if !(0..=300).contains(&self.refresh_grace_period) {
            return Err(ConfigError(
                "refresh_grace_period must be between 0 and 300 seconds".into(),
            ));
        }
        Ok(())
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| {
            ConfigError(format!(
                "listen address {:?} is not an IP:port like 127.0.0.1:8080",
                self.listen
            ))
        })
    }
}

/// RFC 8414 §2: an https URL with no query or fragment; plain http only for loopback.
pub fn validate_issuer(issuer: &str) -> Result<(), ConfigError> {
    let url = url::Url::parse(issuer)
        .map_err(|_| ConfigError(format!("issuer {issuer:?} is not an absolute URL")))?;
    if url.query().is_some() || url.fragment().is_some() || issuer.contains(['?', '#']) {
        return Err(ConfigError(format!(
            "issuer {issuer:?} must not have a query or fragment (RFC 8414 §2)"
        )));
    }
    if issuer.ends_with('/') {
        return Err(ConfigError(format!(
            "issuer {issuer:?} must not end with a slash"
        )));
    }
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(ConfigError(format!(
            "issuer {issuer:?} must use https (plain http is only allowed for localhost)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_design() {
        let c = Config::default();
        assert_eq!(c.listen, "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://oauthd.db");
        assert_eq!(c.issuer, None);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn the_key_encryption_key_is_checked_and_never_printed() {
        let c = Config {
            key_encryption_key: Some(Sensitive("short".into())),
            ..Config::default()
        };
        assert!(c.validate().unwrap_err().0.contains("at least 32"));
        let c = Config {
            key_encryption_key: Some(Sensitive("k".repeat(32))),
            ..Config::default()
        };
        assert!(c.validate().is_ok());
        assert!(!format!("{c:?}").contains(&"k".repeat(32)));
    }

    #[test]
    fn issuer_rules() {
        assert!(validate_issuer("https://auth.example").is_ok());
        assert!(validate_issuer("http://localhost:8080").is_ok());
        assert!(validate_issuer("http://auth.example").is_err());
        assert!(validate_issuer("https://auth.example/?x=1").is_err());
        assert!(validate_issuer("https://auth.example/").is_err());
        assert!(validate_issuer("not a url").is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        let bad = [
            Config {
                listen: "nowhere".into(),
                ..Config::default()
            },
            Config {
                database_url: "mysql://x".into(),
                ..Config::default()
            },
            Config {
                code_lifetime: 601,
                ..Config::default()
            },
            Config {
                refresh_grace_period: -1,
                ..Config::default()
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }
}
