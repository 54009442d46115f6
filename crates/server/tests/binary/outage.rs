//! A database outage under load, on a throwaway PostgreSQL cluster the test owns: while the
//! database is down, every endpoint that needs it answers 503 quickly (JSON at the API
//! endpoints, a page in the browser), never 500 and never a hang; `/readyz` fails and
//! `/healthz` does not; once the database is back, the same `oauthd` process recovers by
//! itself.
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oauth2::TokenResponse as _;
use oauthd_core::form::encode;
use oauthd_core::pkce::s256_challenge;
use oauthd_core::secret::random_id;

use crate::flow::*;
use crate::process::*;

const APP: &str = "outage-app";
const API: &str = "outage-api";
const SCOPE: &str = "photos.read";
/// What the README promises: the pool waits at most 3 s for a connection.
const MAX_ANSWER: Duration = Duration::from_secs(10);
/// Bound on one request of the load: a hang shows up as a failure, not a stuck test.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// A PostgreSQL cluster in a temporary directory, stopped (immediately) when dropped, even
/// when the test fails.
struct Cluster {
    bin: PathBuf,
    /// Run the tools as the `postgres` user (initdb refuses to run as root).
    as_postgres: bool,
    port: u16,
    dir: tempfile::TempDir,
}

/// The newest `/usr/lib/postgresql/<version>/bin` with `initdb` and `pg_ctl`.
fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Cluster {
    /// A new cluster, not started; `Err` says why none can be made here.
    fn create() -> Result<Cluster, String> {
        let bin = postgres_bin()
            .ok_or("no PostgreSQL binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin")?;
        let as_postgres = is_root();
        if as_postgres {
            let user = std::process::Command::new("id").arg("postgres").output();
            if !user.is_ok_and(|o| o.status.success()) {
                return Err("running as root and there is no postgres user to run initdb".into());
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("oauthd-outage-")
            .tempdir_in("/tmp")
            .map_err(|e| e.to_string())?;
        let cluster = Cluster {
            bin,
            as_postgres,
            port: free_port(),
            dir,
        };
        if as_postgres {
            let ok = std::process::Command::new("chown")
                .arg("postgres:")
                .arg(cluster.dir.path())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err("cannot chown the cluster directory to postgres".into());
            }
        }
        let out = cluster
            .tool("initdb")
            .arg("-D")
            .arg(cluster.data())
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-locale",
                "-N",
            ])
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(cluster)
    }

    fn tool(&self, name: &str) -> std::process::Command {
        let path = self.bin.join(name);
        let mut command = if self.as_postgres {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            std::process::Command::new(path)
        };
        command.stdin(Stdio::null());
        command
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl start` or `pg_ctl stop -m <mode>`, waited for; run off the async workers so
    /// the load keeps going meanwhile.
    async fn pg_ctl(&self, action: &[&str]) {
        let mut command = tokio::process::Command::from(self.tool("pg_ctl"));
        command.arg("-D").arg(self.data()).args(["-w", "-t", "30"]);
        if action[0] == "start" {
            let log = self.dir.path().join("postgres.log");
            let options = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                self.port,
                self.dir.path().display()
            );
            command.arg("-l").arg(log).arg("-o").arg(options);
        }
        command.args(action).kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(60), command.output())
            .await
            .unwrap_or_else(|_| panic!("pg_ctl {action:?} did not finish in 60 s"))
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl {action:?}: {}{}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            log_tail(&self.dir.path().join("postgres.log"))
        );
    }
}

fn log_tail(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<_> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.data().join("postmaster.pid").exists() {
            let _ = self
                .tool("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-w", "-t", "30", "stop", "-m", "immediate"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `POST /o/oauth2/token`, refresh grant.
    Token,
    /// `POST /o/oauth2/introspect`.
    Introspect,
    /// `GET /o/oauth2/authorize`.
    Authorize,
    /// `GET /login?pending=…` (looks the pending request up).
    LoginPage,
    /// `POST /login`.
    LoginSubmit,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::Token,
        Kind::Introspect,
        Kind::Authorize,
        Kind::LoginPage,
        Kind::LoginSubmit,
    ];

    fn is_api(self) -> bool {
        matches!(self, Kind::Token | Kind::Introspect)
    }

    /// The answer while the database is up.
    fn healthy_status(self) -> u16 {
        match self {
            Kind::Token | Kind::Introspect | Kind::LoginPage => 200,
            Kind::Authorize | Kind::LoginSubmit => 303,
        }
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

#[derive(Debug)]
struct Sample {
    kind: Kind,
    started: Instant,
    elapsed: Duration,
    answer: Result<Answer, String>,
}

#[derive(Clone)]
struct Load {
    base: String,
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
    deadline: Instant,
}

impl Load {
    fn running(&self) -> bool {
        !self.stop.load(Ordering::SeqCst) && Instant::now() < self.deadline
    }

    /// Send, time and record a request; the answer when there was one.
    async fn record(&self, kind: Kind, request: reqwest::RequestBuilder) -> Option<Answer> {
        let started = Instant::now();
        let result = async {
            let r = request.send().await?;
            let status = r.status().as_u16();
            let content_type = r
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let location = r
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let body = r.text().await?;
            // A redirect's body is empty; keep its target instead.
            let body = if status == 303 { location } else { body };
            Ok::<_, reqwest::Error>(Answer {
                status,
                content_type,
                body,
            })
        }
        .await
        .map_err(|e| format!("{e:?}"));
        let elapsed = started.elapsed();
        let copy = result.as_ref().ok().map(|a| Answer {
            status: a.status,
            content_type: a.content_type.clone(),
            body: a.body.clone(),
        });
        self.samples.lock().unwrap().push(Sample {
            kind,
            started,
            elapsed,
            answer: result,
        });
        copy
    }
}

fn client(cookies: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(cookies)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap()
}

const PAUSE: Duration = Duration::from_millis(100);

/// An app refreshing its tokens over and over, keeping the newest refresh token.
async fn refresher(load: Load, mut refresh_token: String) -> String {
    let http = client(false);
    while load.running() {
        let request = http.post(format!("{}/o/oauth2/token", load.base)).form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
            ("client_id", APP),
        ]);
        if let Some(a) = load.record(Kind::Token, request).await
            && a.status == 200
        {
            let json: serde_json::Value = serde_json::from_str(&a.body).unwrap();
            refresh_token = json["refresh_token"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(PAUSE).await;
    }
    refresh_token
}

/// An API introspecting a token over and over.
async fn introspector(load: Load, api_secret: String, token: String) {
    let http = client(false);
    while load.running() {
        let request = http
            .post(format!("{}/o/oauth2/introspect", load.base))
            .basic_auth(API, Some(&api_secret))
            .form(&[("token", token.as_str())]);
        load.record(Kind::Introspect, request).await;
        tokio::time::sleep(PAUSE).await;
    }
}

/// People starting to sign in: authorize, the login page, the login form.
async fn browsers(load: Load) {
    while load.running() {
        let b = client(true);
        // The blank login page needs no database: it sets the browser cookie and gives the
        // form's CSRF token (not recorded: it is not what this test is about).
        let Ok(r) = b.get(format!("{}/login", load.base)).send().await else {
            tokio::time::sleep(PAUSE).await;
            continue;
        };
        let html = r.text().await.unwrap_or_default();
        let csrf = hidden(&html, "csrf").unwrap_or_default();
        let verifier = format!("{}{}", random_id(), random_id());
        let url = format!(
            "{}/o/oauth2/authorize?response_type=code&client_id={APP}&redirect_uri={}&scope={}&code_challenge={}&code_challenge_method=S256",
            load.base,
            encode(REDIRECT),
            encode(SCOPE),
            s256_challenge(&verifier)
        );
        let answer = load.record(Kind::Authorize, b.get(url)).await;
        // The pending id from the redirect to /login, or one that names nothing.
        let pending = answer
            .filter(|a| a.status == 303)
            .and_then(|a| {
                url::Url::parse(&format!("http://x{}", a.body))
                    .ok()?
                    .query_pairs()
                    .find(|(k, _)| k == "pending")
                    .map(|(_, v)| v.into_owned())
            })
            .unwrap_or_else(|| "pa_unknown".to_owned());
        load.record(
            Kind::LoginPage,
            b.get(format!("{}/login?pending={}", load.base, encode(&pending))),
        )
        .await;
        let form = [
            ("csrf", csrf.as_str()),
            ("pending", pending.as_str()),
            ("username", "alice"),
            ("password", PASSWORD),
        ];
        load.record(
            Kind::LoginSubmit,
            b.post(format!("{}/login", load.base)).form(&form),
        )
        .await;
        tokio::time::sleep(PAUSE).await;
    }
}

async fn get(base: &str, path: &str) -> (u16, Duration) {
    let started = Instant::now();
    let r = client(false)
        .get(format!("{base}{path}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = r.status().as_u16();
    let _ = r.bytes().await;
    (status, started.elapsed())
}

async fn refresh_status(base: &str, token: &str) -> u16 {
    client(false)
        .post(format!("{base}/o/oauth2/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", APP),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_gives_quick_503s_and_recovers_without_restart() {
    let cluster = match Cluster::create() {
        Ok(c) => c,
        Err(why) => {
            println!("skipped: {why}");
            return;
        }
    };
    cluster.pg_ctl(&["start"]).await;
    let db = cluster.url();
    create_app(&db, APP, SCOPE, &[]);
    let api_secret = create_api(&db, API);
    create_user(&db, "alice");
    let mut served = serve(&["--database", &db]).await;
    let base = served.base.clone();
    let api = (API, api_secret.as_str());

    // Healthy: a flow works and the server is ready.
    let before = tokens_for(&base, APP, SCOPE, "alice").await;
    let old_access = before.access_token().secret().clone();
    assert_eq!(introspect(&base, api, &old_access).await["active"], true);
    assert_eq!(get(&base, "/readyz").await.0, 200);
    assert_eq!(get(&base, "/healthz").await.0, 200);
    let mut refresh_tokens = Vec::new();
    for _ in 0..2 {
        let t = tokens_for(&base, APP, SCOPE, "alice").await;
        refresh_tokens.push(t.refresh_token().unwrap().secret().clone());
    }

    // A small load, then the database stops underneath it.
    let load = Load {
        base: base.clone(),
        samples: Arc::default(),
        stop: Arc::default(),
        deadline: Instant::now() + Duration::from_secs(120),
    };
    let refreshers: Vec<_> = refresh_tokens
        .into_iter()
        .map(|t| tokio::spawn(refresher(load.clone(), t)))
        .collect();
    let others = vec![
        tokio::spawn(introspector(
            load.clone(),
            api_secret.clone(),
            old_access.clone(),
        )),
        tokio::spawn(browsers(load.clone())),
    ];
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stopping = Instant::now();
    cluster.pg_ctl(&["stop", "-m", "fast"]).await;
    let stopped = Instant::now();

    let (health, _) = get(&base, "/healthz").await;
    assert_eq!(health, 200, "/healthz while the database is down");
    let (ready, took) = get(&base, "/readyz").await;
    assert_eq!(ready, 503, "/readyz while the database is down");
    assert!(took < Duration::from_secs(5), "/readyz took {took:?}");
    let readyz_down = took;

    // Keep the load on until every kind of request has been answered a few times since the
    // database stopped (at least 8 s of outage), bounded.
    let enough = Instant::now() + Duration::from_secs(45);
    loop {
        let counts: Vec<usize> = {
            let samples = load.samples.lock().unwrap();
            Kind::ALL
                .iter()
                .map(|k| {
                    samples
                        .iter()
                        .filter(|s| s.kind == *k && s.started >= stopped)
                        .count()
                })
                .collect()
        };
        if stopped.elapsed() >= Duration::from_secs(8) && counts.iter().all(|&c| c >= 2) {
            break;
        }
        assert!(
            Instant::now() < enough,
            "too few requests during the outage: {:?}",
            Kind::ALL.iter().zip(&counts).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(get(&base, "/healthz").await.0, 200);
    load.stop.store(true, Ordering::SeqCst);
    let mut current_refresh = Vec::new();
    for task in refreshers {
        current_refresh.push(
            tokio::time::timeout(REQUEST_TIMEOUT * 2, task)
                .await
                .expect("a load task stops")
                .unwrap(),
        );
    }
    for task in others {
        tokio::time::timeout(REQUEST_TIMEOUT * 2, task)
            .await
            .expect("a load task stops")
            .unwrap();
    }

    // Every answer: quick, never a 500, never a hang; while the database was down, a 503
    // in the right form.
    let samples = std::mem::take(&mut *load.samples.lock().unwrap());
    let mut problems = Vec::new();
    let mut slowest_503 = Duration::ZERO;
    let mut answered_503 = 0;
    let mut healthy = 0;
    for s in &samples {
        let answer = match &s.answer {
            Ok(a) => a,
            Err(e) => {
                problems.push(format!(
                    "{:?} after {:?}: no answer: {e}",
                    s.kind, s.elapsed
                ));
                continue;
            }
        };
        if s.elapsed >= MAX_ANSWER {
            problems.push(format!(
                "{:?}: {} after {:?}",
                s.kind, answer.status, s.elapsed
            ));
        }
        if answer.status >= 500 && answer.status != 503 {
            problems.push(format!("{:?}: {} {}", s.kind, answer.status, answer.body));
        }
        if answer.status == 503 {
            answered_503 += 1;
            slowest_503 = slowest_503.max(s.elapsed);
            let right_form = if s.kind.is_api() {
                answer.content_type.starts_with("application/json")
                    && serde_json::from_str::<serde_json::Value>(&answer.body)
                        .is_ok_and(|j| j["error"] == "temporarily_unavailable")
            } else {
                answer.content_type.starts_with("text/html")
                    && answer.body.contains("Temporarily unavailable")
            };
            if !right_form {
                problems.push(format!(
                    "{:?}: a 503 as {:?}: {}",
                    s.kind, answer.content_type, answer.body
                ));
            }
        }
        if s.started >= stopped && answer.status != 503 {
            problems.push(format!(
                "{:?} sent while the database was down: {} {}",
                s.kind, answer.status, answer.body
            ));
        }
        if s.started + s.elapsed < stopping {
            if answer.status == s.kind.healthy_status() {
                healthy += 1;
            } else {
                problems.push(format!(
                    "{:?} before the outage: {} {}",
                    s.kind, answer.status, answer.body
                ));
            }
        }
    }
    println!(
        "outage: {} requests, {healthy} answered before the database stopped, {answered_503} answered 503 \
         (slowest {slowest_503:?}); /readyz answered 503 in {readyz_down:?}",
        samples.len()
    );
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(healthy > 0, "the load did nothing before the outage");

    // The database comes back on the same port: the same process recovers by itself.
    let restarting = Instant::now();
    cluster.pg_ctl(&["start"]).await;
    let back = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _) = get(&base, "/readyz").await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < back,
            "/readyz is still {status} 20 s after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!(
        "outage: ready again {:?} after pg_ctl start began",
        restarting.elapsed()
    );
    assert!(
        served.child.try_wait().unwrap().is_none(),
        "oauthd exited during the outage"
    );
    let after = tokens_for(&base, APP, SCOPE, "alice").await;
    let new_access = after.access_token().secret().clone();
    assert_eq!(introspect(&base, api, &new_access).await["active"], true);
    assert_eq!(
        refresh_status(&base, after.refresh_token().unwrap().secret()).await,
        200
    );
    assert_eq!(
        introspect(&base, api, &old_access).await["active"],
        true,
        "a token issued before the outage"
    );
    for t in &current_refresh {
        assert_eq!(
            refresh_status(&base, t).await,
            200,
            "an app's refresh token from before the outage"
        );
    }
    stop(served.child).await;
    drop(cluster);
}
