//! Running the `oauthd` binary.
#![allow(dead_code)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_oauthd");

/// Run a command to completion: (exit code, stdout, stderr).
pub fn run(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    use std::io::Write as _;
    let mut child = std::process::Command::new(BIN)
        .args(args)
        .env_remove("OAUTHD_DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A running `oauthd serve`, killed when dropped.
pub struct Served {
    pub child: Child,
    pub base: String,
    pub issuer: String,
    /// Everything it printed on stdout before it started listening.
    pub stdout: Vec<String>,
}

pub async fn serve(args: &[&str]) -> Served {
    serve_with_env(args, &[]).await
}

/// `serve` with extra environment variables (configuration through `OAUTHD_*`).
pub async fn serve_with_env(args: &[&str], env: &[(&str, &str)]) -> Served {
    let mut child = Command::new(BIN)
        .arg("serve")
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .env("OAUTHD_LOG", "info")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            if line.contains("listening on") {
                return line;
            }
        }
        panic!("oauthd exited before listening");
    })
    .await
    .expect("oauthd did not start listening in time");
    // "... oauthd listening on http://127.0.0.1:PORT with issuer ISSUER"
    let base = line
        .split("listening on ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let issuer = line.split("with issuer ").nth(1).unwrap().trim().to_owned();
    // Keep draining stderr so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
    let mut stdout_lines = Vec::new();
    if let Some(out) = child.stdout.take() {
        let mut out = BufReader::new(out).lines();
        while let Ok(Ok(Some(l))) =
            tokio::time::timeout(Duration::from_millis(300), out.next_line()).await
        {
            stdout_lines.push(l);
        }
        tokio::spawn(async move { while let Ok(Some(_)) = out.next_line().await {} });
    }
    Served {
        child,
        base,
        issuer,
        stdout: stdout_lines,
    }
}

pub fn temp_db() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("oauthd.db").display());
    (dir, url)
}

pub use crate::support::hidden;

pub fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_owned()
}

pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

/// Log in and approve as a browser would, starting from the authorize URL; returns the
/// final redirect to the client.
pub async fn sign_in_and_approve(
    browser: &reqwest::Client,
    base: &str,
    authorize_url: &str,
    user: &str,
    password: &str,
) -> String {
    let r = browser.get(authorize_url).send().await.unwrap();
    assert_eq!(r.status(), 303, "{:?}", r.text().await);
    let login_path = location(&r);
    assert!(login_path.starts_with("/login?"), "{login_path}");
    let html = browser
        .get(format!("{base}{login_path}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let form = [
        ("csrf", hidden(&html, "csrf").unwrap()),
        ("pending", hidden(&html, "pending").unwrap()),
        ("username", user.to_owned()),
        ("password", password.to_owned()),
    ];
    let r = browser
        .post(format!("{base}/login"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let consent_path = location(&r);
    let html = browser
        .get(format!("{base}{consent_path}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let form = [
        ("csrf", hidden(&html, "csrf").unwrap()),
        ("pending", hidden(&html, "pending").unwrap()),
        ("decision", "approve".to_owned()),
    ];
    let r = browser
        .post(format!("{base}/consent"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    location(&r)
}
