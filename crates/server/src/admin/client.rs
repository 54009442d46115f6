//! `oauthd client create|list|show|delete|rotate-secret`.
use oauthd_core::client::{AccessTokenFormat, Client, ClientKind, GrantType, validate_client_id};
use oauthd_core::jose::JwsAlg;
use oauthd_core::pkce::PkceMode;
use oauthd_core::redirect_uri::RedirectUri;
use oauthd_core::scope::Scope;
use oauthd_core::secret::{Secret, SecretKind, random_id};
use oauthd_store::Store;

use super::Failure;
use crate::cli::ClientCreate;
use crate::passwords;

/// Validate the arguments into a client; warnings are for the operator.
pub fn build(args: &ClientCreate, now: i64) -> Result<(Client, Vec<String>), Failure> {
    let client_id = match &args.client_id {
        Some(id) => {
            validate_client_id(id).map_err(|e| Failure::bad_input(e.to_string()))?;
            id.clone()
        }
        None => random_id(),
    };
    if args.name.trim().is_empty() || args.name.len() > 200 {
        return Err(Failure::bad_input("--name must be 1 to 200 characters"));
    }
    let kind = match (args.kind.as_deref(), args.confidential) {
        (None, false) => ClientKind::Public,
        (None, true) | (Some("confidential"), _) => ClientKind::Confidential,
        (Some(k), false) => ClientKind::parse(k).ok_or_else(|| {
            Failure::bad_input(format!(
                "--kind {k:?} is not valid; use public, confidential or resource-server"
            ))
        })?,
        (Some(_), true) => {
            return Err(Failure::bad_input(
                "--confidential conflicts with --kind; use one",
            ));
        }
    };
    let is_api = kind == ClientKind::ResourceServer;
    if is_api && !args.redirect_uris.is_empty() {
        return Err(Failure::bad_input(
            "a resource server has no redirect URIs; remove --redirect-uri",
        ));
    }
    if !is_api && args.redirect_uris.is_empty() {
        return Err(Failure::bad_input(
            "at least one --redirect-uri is required",
        ));
    }
    let mut warnings = Vec::new();
    let mut redirect_uris = Vec::new();
    for uri in &args.redirect_uris {
        let (r, w) = RedirectUri::register(uri).map_err(|e| Failure::bad_input(e.to_string()))?;
        warnings.extend(w.iter().map(ToString::to_string));
        redirect_uris.push(r);
    }
    let mut grants = Vec::new();
    for g in &args.grants {
        let grant = GrantType::parse(g).ok_or_else(|| {
            Failure::bad_input(format!(
                "grant {g:?} is not supported; use authorization_code or refresh_token"
            ))
        })?;
        if !grants.contains(&grant) {
            grants.push(grant);
        }
    }
    if is_api && !grants.is_empty() {
        return Err(Failure::bad_input(
            "a resource server uses no grants; remove --grant",
        ));
    }
    if grants.is_empty() && !is_api {
        grants = GrantType::ALL.to_vec();
    }
    let scopes = Scope::from_tokens(&args.scopes).map_err(|e| Failure::bad_input(e.to_string()))?;
    let pkce = PkceMode::parse(&args.pkce).ok_or_else(|| {
        Failure::bad_input(format!(
            "--pkce {:?} is not valid; use strict or liferay-compat",
            args.pkce
        ))
    })?;
    if pkce == PkceMode::LiferayCompat {
        warnings.push("pkce = liferay-compat accepts requests without code_challenge_method and short verifiers; use it only for clients migrating from Liferay".into());
    }
    for (name, ttl) in [
        ("--access-token-ttl", args.access_token_ttl),
        ("--refresh-token-ttl", args.refresh_token_ttl),
    ] {
        if !(1..=365 * 24 * 3600).contains(&ttl) {
            return Err(Failure::bad_input(format!(
                "{name} must be between 1 second and 365 days"
            )));
        }
    }
    let access_token_format = AccessTokenFormat::parse(&args.access_token).ok_or_else(|| {
        Failure::bad_input(format!(
            "--access-token {:?} is not valid; use opaque or jwt",
            args.access_token
        ))
    })?;
    let access_token_alg = JwsAlg::parse(&args.access_token_alg).ok_or_else(|| {
        Failure::bad_input(format!(
            "--access-token-alg {:?} is not valid; use ES256, EdDSA or RS256",
            args.access_token_alg
        ))
    })?;
    // OIDC Core §15.1: RS256 is what every relying party supports; EdDSA is not offered for
    // ID tokens.
    let id_token_alg = match JwsAlg::parse(&args.id_token_alg) {
        Some(a @ (JwsAlg::RS256 | JwsAlg::ES256)) => a,
        _ => {
            return Err(Failure::bad_input(format!(
                "--id-token-alg {:?} is not valid; use RS256 or ES256",
                args.id_token_alg
            )));
        }
    };
    for a in &args.audience {
        if a.is_empty() || a.len() > 256 || a.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Failure::bad_input(format!(
                "--audience {a:?} must be 1 to 256 characters without spaces"
            )));
        }
    }
    let client = Client {
        client_id,
        name: args.name.trim().to_owned(),
        kind,
        secret_hash: None,
        redirect_uris,
        grants,
        scopes,
        trusted: args.trusted,
        pkce,
        access_token_ttl: args.access_token_ttl,
        refresh_token_ttl: args.refresh_token_ttl,
        access_token_format,
        access_token_alg,
        id_token_alg,
        audience: args.audience.clone(),
        created_at: now,
    };
    Ok((client, warnings))
}

pub fn to_json(c: &Client) -> serde_json::Value {
    serde_json::json!({
        "client_id": c.client_id,
        "name": c.name,
        "kind": c.kind.as_str(),
        "redirect_uris": c.redirect_uris.iter().map(RedirectUri::as_str).collect::<Vec<_>>(),
        "grants": c.grants.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "scopes": c.scopes.iter().collect::<Vec<_>>(),
        "trusted": c.trusted,
        "pkce": c.pkce.as_str(),
        "access_token_ttl": c.access_token_ttl,
        "refresh_token_ttl": c.refresh_token_ttl,
        "access_token": c.access_token_format.as_str(),
        "access_token_alg": c.access_token_alg.as_str(),
        "id_token_alg": c.id_token_alg.as_str(),
        "audience": c.audience,
    })
}

fn describe(c: &Client) -> String {
    let uris: Vec<_> = c.redirect_uris.iter().map(RedirectUri::as_str).collect();
    let grants: Vec<_> = c.grants.iter().map(|g| g.as_str()).collect();
    [
        format!("client_id: {}", c.client_id),
        format!("name: {}", c.name),
        format!("kind: {}", c.kind.as_str()),
        format!("redirect_uris: {}", uris.join(" ")),
        format!("grants: {}", grants.join(" ")),
        format!("scopes: {}", c.scopes),
        format!("trusted: {}", c.trusted),
        format!("pkce: {}", c.pkce.as_str()),
        format!("access_token_ttl: {}", c.access_token_ttl),
        format!("refresh_token_ttl: {}", c.refresh_token_ttl),
        format!(
            "access_token: {} ({})",
            c.access_token_format.as_str(),
            c.access_token_alg.as_str()
        ),
        format!("id_token_alg: {}", c.id_token_alg.as_str()),
        format!("audience: {}", c.audience.join(" ")),
    ]
    .join("\n")
}

/// Create the client; returns its secret, when it has one, to be shown once.
pub async fn create(
    store: &dyn Store,
    mut client: Client,
) -> Result<(Client, Option<Secret>), Failure> {
    let secret = client
        .kind
        .has_secret()
        .then(|| Secret::generate(SecretKind::ClientSecret));
    client.secret_hash = secret.as_ref().map(passwords::hash);
    store.insert_client(&client).await?;
    Ok((client, secret))
}

pub async fn run_create(store: &dyn Store, args: &ClientCreate, now: i64) -> Result<(), Failure> {
    let (client, warnings) = build(args, now)?;
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let (client, secret) = create(store, client).await?;
    if args.json {
        let mut v = to_json(&client);
        if let Some(s) = &secret {
            v["client_secret"] = s.expose().into();
        }
        println!("{v}");
    } else {
        println!("{}", describe(&client));
        if let Some(s) = &secret {
            println!("client_secret: {}", s.expose());
            println!("Store the client secret now: it is shown only once.");
        }
    }
    Ok(())
}

pub async fn run_list(store: &dyn Store, json: bool) -> Result<(), Failure> {
    let clients = store.clients().await?;
    if json {
        println!(
            "{}",
            serde_json::Value::Array(clients.iter().map(to_json).collect())
        );
    } else if clients.is_empty() {
        println!("No clients registered.");
    } else {
        for c in &clients {
            println!("{}\t{}\t{}", c.client_id, c.kind.as_str(), c.name);
        }
    }
    Ok(())
}

pub async fn run_show(store: &dyn Store, client_id: &str, json: bool) -> Result<(), Failure> {
    let client = store
        .client(client_id)
        .await?
        .ok_or_else(|| Failure::failed(format!("client {client_id:?} does not exist")))?;
    if json {
        println!("{}", to_json(&client));
    } else {
        println!("{}", describe(&client));
    }
    Ok(())
}

pub async fn run_delete(store: &dyn Store, client_id: &str) -> Result<(), Failure> {
    if store.delete_client(client_id).await? {
        println!("Deleted client {client_id} and every token issued to it.");
        Ok(())
    } else {
        Err(Failure::failed(format!(
            "client {client_id:?} does not exist"
        )))
    }
}

pub async fn run_rotate_secret(
    store: &dyn Store,
    client_id: &str,
    json: bool,
) -> Result<(), Failure> {
    let client = store
        .client(client_id)
        .await?
        .ok_or_else(|| Failure::failed(format!("client {client_id:?} does not exist")))?;
    if !client.kind.has_secret() {
        return Err(Failure::bad_input(format!(
            "client {client_id:?} is public and has no secret"
        )));
    }
    let secret = Secret::generate(SecretKind::ClientSecret);
    store
        .set_client_secret(client_id, &passwords::hash(&secret))
        .await?;
    if json {
        println!(
            "{}",
            serde_json::json!({ "client_id": client_id, "client_secret": secret.expose() })
        );
    } else {
        println!("client_secret: {}", secret.expose());
        println!(
            "Store the client secret now: it is shown only once. The old secret no longer works."
        );
    }
    Ok(())
}
