//! The command line (DESIGN §4).
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "oauthd",
    version,
    about = "An OAuth 2.0 authorization server for native apps."
)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database URL, e.g. sqlite://oauthd.db.
    #[arg(long, global = true, value_name = "URL")]
    pub database: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Manage client applications.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// List signing keys and their state.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Make new signing keys active; the old ones stay published until their tokens expire.
    Rotate {
        /// Only this algorithm (ES256, EdDSA, RS256); default: all.
        #[arg(long)]
        alg: Option<String>,
    },
    /// Stop publishing and trusting a key at once: every token it signed stops working.
    Retire { kid: String },
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Issuer URL (default http://localhost:<port>).
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
    /// Start a throwaway server with the seed's example application and a demo user.
    #[arg(long)]
    pub demo: bool,
}

#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Register a client application.
    Create(Box<ClientCreate>),
    /// List registered clients.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one client.
    Show {
        client_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a client and everything issued to it.
    Delete { client_id: String },
    /// Give a confidential client a new secret (shown once); the old one stops working.
    RotateSecret {
        client_id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct ClientCreate {
    /// Name shown to users on the consent page.
    #[arg(long)]
    pub name: String,
    /// Client id (generated when omitted).
    #[arg(long)]
    pub client_id: Option<String>,
    /// Redirect URI; repeat for several (none for a resource server).
    #[arg(long = "redirect-uri", value_name = "URI")]
    pub redirect_uris: Vec<String>,
    /// public (native apps, the default), confidential, or resource-server (an API that
    /// introspects tokens).
    #[arg(long)]
    pub kind: Option<String>,
    /// Allowed grant: authorization_code, refresh_token; repeat for several (default: both).
    #[arg(long = "grant", value_name = "GRANT")]
    pub grants: Vec<String>,
    /// Same as --kind confidential.
    #[arg(long)]
    pub confidential: bool,
    /// Access token format: opaque (checked by introspection) or jwt (RFC 9068).
    #[arg(long, default_value = "opaque")]
    pub access_token: String,
    /// Algorithm of JWT access tokens: ES256, EdDSA or RS256.
    #[arg(long, default_value = "ES256")]
    pub access_token_alg: String,
    /// Algorithm of ID tokens: RS256 or ES256.
    #[arg(long, default_value = "RS256")]
    pub id_token_alg: String,
    /// API its access tokens are for (the `aud` claim); repeat for several (default: the issuer).
    #[arg(long = "audience", value_name = "AUDIENCE")]
    pub audience: Vec<String>,
    /// Allowed scope; repeat for several.
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// Skip the consent page for this client.
    #[arg(long)]
    pub trusted: bool,
    /// PKCE checking: strict, or liferay-compat for clients migrating from Liferay.
    #[arg(long, default_value = "strict")]
    pub pkce: String,
    /// Access token lifetime in seconds.
    #[arg(long, default_value_t = oauthd_core::client::DEFAULT_ACCESS_TOKEN_TTL)]
    pub access_token_ttl: i64,
    /// Refresh token idle lifetime in seconds.
    #[arg(long, default_value_t = oauthd_core::client::DEFAULT_REFRESH_TOKEN_TTL)]
    pub refresh_token_ttl: i64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user.
    Create {
        #[arg(long)]
        username: String,
        /// Email address (the OpenID Connect `email` claim).
        #[arg(long)]
        email: Option<String>,
        /// Display name (the OpenID Connect `name` claim).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// List users.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete a user, with their sessions, consents and tokens.
    Delete { username: String },
    /// Set a user's password; their browser sessions end.
    SetPassword {
        username: String,
        #[command(flatten)]
        password: PasswordSource,
    },
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct PasswordSource {
    /// Read the password from standard input (first line).
    #[arg(long)]
    pub password_stdin: bool,
    /// The password (visible in the process list; prefer --password-stdin).
    #[arg(long)]
    pub password: Option<String>,
}
