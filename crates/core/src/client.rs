//! Registered clients (RFC 6749 §2).
use crate::jose::JwsAlg;
use crate::pkce::PkceMode;
use crate::redirect_uri::RedirectUri;
use crate::scope::Scope;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// A native or browser app that cannot keep a secret (RFC 6749 §2.1).
    Public,
    /// A server-side client with a secret.
    Confidential,
    /// An API that checks tokens through introspection; it has a secret and no grants.
    ResourceServer,
}

impl ClientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Public => "public",
            ClientKind::Confidential => "confidential",
            ClientKind::ResourceServer => "resource-server",
        }
    }

    /// Whether the client authenticates with a secret.
    pub fn has_secret(self) -> bool {
        self != ClientKind::Public
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(ClientKind::Public),
            "confidential" => Some(ClientKind::Confidential),
            "resource-server" => Some(ClientKind::ResourceServer),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
}

impl GrantType {
    pub const ALL: [GrantType; 2] = [GrantType::AuthorizationCode, GrantType::RefreshToken];

    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        GrantType::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

/// How access tokens are represented: opaque handles checked by introspection, or RFC 9068
/// JWTs that an API can verify on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessTokenFormat {
    Opaque,
    Jwt,
}

impl AccessTokenFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessTokenFormat::Opaque => "opaque",
            AccessTokenFormat::Jwt => "jwt",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "opaque" => Some(AccessTokenFormat::Opaque),
            "jwt" => Some(AccessTokenFormat::Jwt),
            _ => None,
        }
    }
}

pub const DEFAULT_ACCESS_TOKEN_TTL: i64 = 600;
pub const DEFAULT_REFRESH_TOKEN_TTL: i64 = 14 * 24 * 3600;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    pub kind: ClientKind,
    /// Argon2id PHC string of the client secret; `None` for public clients.
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<RedirectUri>,
    pub grants: Vec<GrantType>,
    pub scopes: Scope,
    /// Consent is skipped for trusted clients (RFC 8252 §8.6 leaves this to the operator).
    pub trusted: bool,
    pub pkce: PkceMode,
    pub access_token_ttl: i64,
    /// Idle lifetime of a refresh token: each rotation starts it again.
    pub refresh_token_ttl: i64,
    pub access_token_format: AccessTokenFormat,
    /// Signs JWT access tokens.
    pub access_token_alg: JwsAlg,
    /// Signs ID tokens (OIDC Core §3.1.3.7: RS256 unless registered otherwise).
    pub id_token_alg: JwsAlg,
    /// The APIs its access tokens are for (`aud`); empty means the issuer's default.
    pub audience: Vec<String>,
    pub created_at: i64,
}

impl Client {
    pub fn allows(&self, grant: GrantType) -> bool {
        self.grants.contains(&grant)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("client id {0:?} must be 1 to 128 characters of A-Z a-z 0-9 - . _ ~")]
pub struct ClientIdError(pub String);

/// Client ids are kept to unreserved characters so they survive every encoding unchanged.
pub fn validate_client_id(id: &str) -> Result<(), ClientIdError> {
    if (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    {
        Ok(())
    } else {
        Err(ClientIdError(id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_id_rules() {
        assert!(validate_client_id("54321").is_ok());
        assert!(validate_client_id("my-app.v2_~").is_ok());
        assert!(validate_client_id("").is_err());
        assert!(validate_client_id("a b").is_err());
        assert!(validate_client_id("a:b").is_err());
        assert!(validate_client_id(&"a".repeat(129)).is_err());
    }

    #[test]
    fn grant_names_round_trip() {
        for g in GrantType::ALL {
            assert_eq!(GrantType::parse(g.as_str()), Some(g));
        }
        assert_eq!(GrantType::parse("password"), None);
    }
}
