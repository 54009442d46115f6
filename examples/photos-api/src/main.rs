//! photos-api: a tiny API protected by oauthd's bearer tokens, through oauthd-resource.
//!
//! `GET /photos` needs the scope `photos:read`; `GET /me` any valid token. Tokens are
//! checked locally as JWTs (`--jwks-uri`, RFC 9068) or by introspection (`--introspect`,
//! RFC 7662). See README.md.
#![forbid(unsafe_code)]

use std::io::{BufRead as _, IsTerminal as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::{ArgGroup, Parser};
use oauthd_resource::{IntrospectionConfig, JwtConfig, Validator};
use photos_api::app;

const SECRET_ENV: &str = "PHOTOS_API_CLIENT_SECRET";

#[derive(Parser, Debug)]
#[command(
    name = "photos-api",
    version,
    about = "An example API protected by oauthd bearer tokens.",
    group(ArgGroup::new("mode").required(true).args(["jwks_uri", "introspect"]))
)]
struct Cli {
    /// The authorization server's issuer identifier.
    #[arg(
        long,
        env = "PHOTOS_API_ISSUER",
        value_name = "URL",
        default_value = "http://localhost:8080"
    )]
    issuer: String,
    /// This API's identifier: tokens must be meant for it (`aud`).
    #[arg(
        long,
        env = "PHOTOS_API_AUDIENCE",
        value_name = "ID",
        default_value = "photos-api"
    )]
    audience: String,
    /// JWT mode: verify tokens locally with the keys published here.
    #[arg(long, env = "PHOTOS_API_JWKS_URI", value_name = "URL")]
    jwks_uri: Option<String>,
    /// Introspection mode: ask this endpoint about each token (answers cached for 30 s).
    #[arg(
        long,
        env = "PHOTOS_API_INTROSPECT",
        value_name = "URL",
        requires = "client_id"
    )]
    introspect: Option<String>,
    /// This API's client id at the authorization server (introspection mode).
    #[arg(
        long,
        env = "PHOTOS_API_CLIENT_ID",
        value_name = "ID",
        requires = "introspect"
    )]
    client_id: Option<String>,
    /// Read the client secret from the first line of stdin (otherwise from
    /// $PHOTOS_API_CLIENT_SECRET).
    #[arg(long, requires = "introspect")]
    client_secret_stdin: bool,
    /// Address to listen on.
    #[arg(
        long,
        env = "PHOTOS_API_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:8081"
    )]
    listen: SocketAddr,
}

fn validator(cli: &Cli) -> Result<Validator, String> {
    // No TLS features are enabled in this workspace, so this client speaks plain http,
    // which is enough for a local oauthd; a real API enables e.g. reqwest's `rustls-tls`.
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let validator = match (&cli.jwks_uri, &cli.introspect) {
        (Some(jwks_uri), _) => Validator::jwt(JwtConfig::new(
            cli.issuer.clone(),
            cli.audience.clone(),
            jwks_uri.clone(),
        )),
        (None, Some(endpoint)) => {
            let client_id = cli
                .client_id
                .clone()
                .ok_or("--introspect needs --client-id")?;
            let secret = client_secret(cli.client_secret_stdin)?;
            Validator::introspection(IntrospectionConfig {
                audience: Some(cli.audience.clone()),
                issuer: Some(cli.issuer.clone()),
                ..IntrospectionConfig::new(endpoint.clone(), client_id, secret)
            })
        }
        (None, None) => return Err("one of --jwks-uri or --introspect is required".into()),
    };
    Ok(validator.map_err(|e| e.to_string())?.with_http_client(http))
}

fn client_secret(from_stdin: bool) -> Result<String, String> {
    let secret = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the client secret from stdin: {e}"))?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        std::env::var(SECRET_ENV).map_err(|_| {
            format!("introspection needs the client secret: --client-secret-stdin or ${SECRET_ENV}")
        })?
    };
    if secret.is_empty() {
        return Err("the client secret is empty".into());
    }
    Ok(secret)
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PHOTOS_API_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    let validator = match validator(&cli) {
        Ok(v) => Arc::new(v),
        Err(e) => fail(&e),
    };
    let listener = match tokio::net::TcpListener::bind(cli.listen).await {
        Ok(l) => l,
        Err(e) => fail(&format!("cannot listen on {}: {e}", cli.listen)),
    };
    let addr = listener.local_addr().unwrap_or(cli.listen);
    let mode = match (&cli.jwks_uri, &cli.introspect) {
        (Some(uri), _) => format!("JWT, keys from {uri}"),
        (None, Some(uri)) => format!("introspection at {uri}"),
        (None, None) => unreachable!("checked by validator()"),
    };
    tracing::info!(
        "photos-api listening on http://{addr} (audience {}, issuer {}, {mode})",
        cli.audience,
        cli.issuer
    );
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if let Err(e) = axum::serve(listener, app(validator))
        .with_graceful_shutdown(shutdown)
        .await
    {
        fail(&format!("server error: {e}"));
    }
}

fn fail(message: &str) -> ! {
    eprintln!("photos-api: {message}");
    std::process::exit(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("photos-api").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn exactly_one_mode() {
        let jwt = parse(&["--jwks-uri", "http://localhost:8080/o/oauth2/jwks"]).unwrap();
        assert_eq!(jwt.listen, "127.0.0.1:8081".parse().unwrap());
        assert_eq!(jwt.audience, "photos-api");
        assert!(validator(&jwt).is_ok());
        let introspect = parse(&[
            "--introspect",
            "http://localhost:8080/o/oauth2/introspect",
            "--client-id",
            "photos-api",
        ])
        .unwrap();
        assert_eq!(introspect.client_id.as_deref(), Some("photos-api"));
        assert!(parse(&[]).is_err());
        assert!(parse(&["--jwks-uri", "http://a/j", "--introspect", "http://a/i"]).is_err());
        assert!(parse(&["--introspect", "http://a/i"]).is_err());
        assert!(parse(&["--jwks-uri", "http://a/j", "--client-secret-stdin"]).is_err());
        let bad = parse(&["--jwks-uri", "not a url"]).unwrap();
        assert!(validator(&bad).is_err());
    }
}
