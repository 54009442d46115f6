//! Shared steps of the end-to-end scenarios: admin commands that must succeed, a login and
//! code exchange with the `oauth2` crate, introspection and the JWKS as raw HTTP.
use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use oauth2::basic::{BasicClient, BasicTokenResponse};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, CsrfToken, PkceCodeChallenge, RedirectUrl, Scope,
    TokenUrl,
};
use oauthd_core::jose::JwkSet;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use crate::process::*;

pub const REDIRECT: &str = "http://127.0.0.1/callback";
pub const PASSWORD: &str = "s3cret-password";
pub const KEK_VAR: &str = "OAUTHD_KEY_ENCRYPTION_KEY";

/// Run an admin command that must succeed; its stdout.
pub fn cli_ok(args: &[&str], stdin: Option<&str>) -> String {
    let (code, out, err) = run(args, stdin);
    assert_eq!(code, 0, "{args:?}: {err}");
    out
}

/// A public app with the loopback redirect and `scope`, plus extra `client create` flags.
pub fn create_app(db: &str, client_id: &str, scope: &str, extra: &[&str]) {
    let mut args = vec![
        "client",
        "create",
        "--database",
        db,
        "--name",
        "Photo app",
        "--client-id",
        client_id,
        "--redirect-uri",
        REDIRECT,
        "--scope",
        scope,
    ];
    args.extend_from_slice(extra);
    cli_ok(&args, None);
}

/// A resource-server client; its secret.
pub fn create_api(db: &str, client_id: &str) -> String {
    let out = cli_ok(
        &[
            "client",
            "create",
            "--database",
            db,
            "--kind",
            "resource-server",
            "--client-id",
            client_id,
            "--name",
            "API",
            "--json",
        ],
        None,
    );
    let api: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    api["client_secret"].as_str().unwrap().to_owned()
}

/// A user with [`PASSWORD`]; their id (the `sub`).
pub fn create_user(db: &str, username: &str) -> String {
    cli_ok(
        &[
            "user",
            "create",
            "--database",
            db,
            "--username",
            username,
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    let users: serde_json::Value =
        serde_json::from_str(cli_ok(&["user", "list", "--database", db, "--json"], None).trim())
            .unwrap();
    users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == username)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Log in as `user`, approve, and exchange the code (PKCE S256) with the `oauth2` crate.
pub async fn tokens_for(
    base: &str,
    client_id: &str,
    scope: &str,
    user: &str,
) -> BasicTokenResponse {
    let app = BasicClient::new(ClientId::new(client_id.into()))
        .set_auth_uri(AuthUrl::new(format!("{base}/o/oauth2/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(format!("{base}/o/oauth2/token")).unwrap())
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, _) = app
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new(scope.into()))
        .set_pkce_challenge(challenge)
        .url();
    let back = sign_in_and_approve(&browser(), base, auth_url.as_str(), user, PASSWORD).await;
    let params: HashMap<_, _> = url::Url::parse(&back)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    app.exchange_code(AuthorizationCode::new(params["code"].clone()))
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .expect("code exchange")
}

/// RFC 7662 introspection by a resource server, as raw JSON.
pub async fn introspect(base: &str, api: (&str, &str), token: &str) -> serde_json::Value {
    let r = http()
        .post(format!("{base}/o/oauth2/introspect"))
        .basic_auth(api.0, Some(api.1))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

pub async fn jwks(base: &str) -> JwkSet {
    let r = http()
        .get(format!("{base}/o/oauth2/jwks"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

pub fn kids(set: &JwkSet) -> Vec<String> {
    set.keys.iter().map(|k| k.kid.clone()).collect()
}

/// `oauthd serve` with the key encryption key in the environment (or not): the running
/// child and its base URL as soon as it says it listens (nothing else awaited), or its exit
/// code and stderr if it exits first.
pub async fn start(db: &str, kek: Option<&str>) -> Result<(Child, String), (i32, String)> {
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--database", db, "--listen", "127.0.0.1:0"])
        .env_remove(KEK_VAR);
    if let Some(k) = kek {
        command.env(KEK_VAR, k);
    }
    launch(command).await.map(|(child, base, _)| (child, base))
}

/// `oauthd serve` limited to one CPU (by `taskset`, as a container limit would): the child,
/// its base URL and what it logged before it listened.
pub async fn start_on_one_cpu(db: &str) -> (Child, String, String) {
    let mut command = Command::new("taskset");
    command
        .args([
            "-c",
            "0",
            BIN,
            "serve",
            "--database",
            db,
            "--listen",
            "127.0.0.1:0",
        ])
        .env_remove(KEK_VAR);
    launch(command).await.expect("starts on one CPU")
}

/// Spawn `command` (an `oauthd serve`) and wait until it says it listens: the child, its base
/// URL and the lines logged before; or its exit code and stderr if it exits first.
async fn launch(mut command: Command) -> Result<(Child, String, String), (i32, String)> {
    command
        .env_remove("OAUTHD_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    let listening = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            if line.contains("listening on") {
                return Some(line);
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        None
    })
    .await
    .expect("oauthd neither listened nor exited in time");
    match listening {
        Some(line) => {
            let base = line
                .split("listening on ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .to_owned();
            tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
            Ok((child, base, seen))
        }
        None => {
            let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .expect("exits after closing stderr")
                .unwrap();
            Err((status.code().unwrap_or(-1), seen))
        }
    }
}

pub async fn stop(mut child: Child) {
    let pid = child.id().unwrap();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits promptly")
        .unwrap();
    assert!(status.success(), "{status:?}");
}
