//! Crash safety: `oauthd serve` is killed with SIGKILL in the middle of a load of complete
//! flows (authorize, login, consent, code exchange, refresh) and restarted on the same
//! database. Whatever a client was answered 200 for must have been durable: its tokens are
//! still active, its code and its rotated-out refresh tokens are spent. Requests the kill
//! left unanswered may have gone either way, but never leave a 5xx behind.
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use oauthd_core::form::encode;
use oauthd_core::pkce::s256_challenge;
use oauthd_core::secret::random_id;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use crate::flow::*;
use crate::process::*;
use crate::support::{PgSchema, postgres_url};

const APP: &str = "crash-app";
const API: &str = "crash-api";
const SCOPE: &str = "photos.read";
const TASKS: usize = 8;
/// Kill the server once this many code exchanges have been answered 200.
const KILL_AFTER: usize = 30;
/// Bound on one HTTP request of the load.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn sigkill_under_load_loses_nothing_acknowledged_on_sqlite() {
    let (_dir, db) = temp_db();
    crash_and_restart(&db, "SQLite").await;
}

#[tokio::test]
async fn sigkill_under_load_loses_nothing_acknowledged_on_postgres() {
    let Some(base) = postgres_url() else {
        println!("skipped: OAUTHD_TEST_POSTGRES_URL is not set");
        return;
    };
    let schema = PgSchema::create(&base).await;
    crash_and_restart(&schema.url, "PostgreSQL").await;
}

/// `oauthd serve` on `db` with no refresh grace period (so a rotated-out refresh token is
/// always refused, never answered with a fresh pair): the child and its base URL.
async fn start_server(db: &str) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--database", db, "--listen", "127.0.0.1:0"])
        .env_remove("OAUTHD_DATABASE_URL")
        .env_remove(KEK_VAR)
        .env("OAUTHD_REFRESH_GRACE_PERIOD", "0")
        .env("OAUTHD_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), async {
        let mut seen = String::new();
        while let Ok(Some(line)) = stderr.next_line().await {
            if line.contains("listening on") {
                return line;
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        panic!("oauthd exited before listening:\n{seen}");
    })
    .await
    .expect("oauthd did not start listening in time");
    let base = line
        .split("listening on ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
    (child, base)
}

#[derive(Debug, Clone)]
struct Pair {
    access: String,
    refresh: String,
}

#[derive(Debug, Clone)]
enum Refresh {
    /// The flow stopped before refreshing.
    NotSent,
    /// Sent, but the kill came before an answer: the rotation may or may not have happened.
    Unanswered,
    /// Answered 200 with this pair; the first pair's refresh token is rotated out.
    Rotated(Pair),
}

/// One flow whose code exchange was sent.
#[derive(Debug, Clone)]
struct FlowRecord {
    verifier: String,
    code: String,
    /// The pair the exchange was answered 200 with; `None` when it got no answer.
    issued: Option<Pair>,
    refresh: Refresh,
}

/// Why a flow stopped.
enum Stop {
    /// The server is gone (after the kill): expected.
    Down,
    /// The server answered wrongly, or failed while it was supposed to be up.
    Wrong(String),
}

fn client(cookies: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(cookies)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap()
}

/// Send a request; a transport failure is expected only once the server has been killed.
async fn send(
    request: reqwest::RequestBuilder,
    killed: &AtomicBool,
    what: &str,
) -> Result<(u16, String, String), Stop> {
    let result = async {
        let r = request.send().await?;
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = r.text().await?;
        Ok::<_, reqwest::Error>((status, location, body))
    }
    .await;
    match result {
        Ok(answer) => Ok(answer),
        Err(_) if killed.load(Ordering::SeqCst) => Err(Stop::Down),
        Err(e) => Err(Stop::Wrong(format!(
            "{what}: request failed while the server was up: {e}"
        ))),
    }
}

fn expect_status(
    what: &str,
    (status, location, body): (u16, String, String),
    want: u16,
) -> Result<(String, String), Stop> {
    if status == want {
        Ok((location, body))
    } else {
        Err(Stop::Wrong(format!(
            "{what}: status {status} (wanted {want}): {body}"
        )))
    }
}

fn pair_from(what: &str, body: &str) -> Result<Pair, Stop> {
    let json: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| Stop::Wrong(format!("{what}: not JSON ({e}): {body}")))?;
    match (
        json["access_token"].as_str(),
        json["refresh_token"].as_str(),
    ) {
        (Some(a), Some(r)) => Ok(Pair {
            access: a.to_owned(),
            refresh: r.to_owned(),
        }),
        _ => Err(Stop::Wrong(format!("{what}: no token pair in {body}"))),
    }
}

/// One complete flow as a browser and a native app do it, recording into `records` from
/// the moment the code exchange is sent.
async fn one_flow(
    base: &str,
    killed: &AtomicBool,
    exchanges: &AtomicUsize,
    records: &mut Vec<FlowRecord>,
) -> Result<(), Stop> {
    let browser = client(true);
    let app = client(false);
    let verifier = format!("{}{}", random_id(), random_id());
    let url = format!(
        "{base}/o/oauth2/authorize?response_type=code&client_id={APP}&redirect_uri={}&scope={}&state=s&code_challenge={}&code_challenge_method=S256",
        encode(REDIRECT),
        encode(SCOPE),
        s256_challenge(&verifier)
    );
    let (login, _) = expect_status(
        "authorize",
        send(browser.get(&url), killed, "authorize").await?,
        303,
    )?;
    let (_, html) = expect_status(
        "login page",
        send(browser.get(format!("{base}{login}")), killed, "login page").await?,
        200,
    )?;
    let form = [
        ("csrf", hidden(&html, "csrf").unwrap_or_default()),
        ("pending", hidden(&html, "pending").unwrap_or_default()),
        ("username", "alice".to_owned()),
        ("password", PASSWORD.to_owned()),
    ];
    let (consent, _) = expect_status(
        "login",
        send(
            browser.post(format!("{base}/login")).form(&form),
            killed,
            "login",
        )
        .await?,
        303,
    )?;
    let (_, html) = expect_status(
        "consent page",
        send(
            browser.get(format!("{base}{consent}")),
            killed,
            "consent page",
        )
        .await?,
        200,
    )?;
    let form = [
        ("csrf", hidden(&html, "csrf").unwrap_or_default()),
        ("pending", hidden(&html, "pending").unwrap_or_default()),
        ("decision", "approve".to_owned()),
    ];
    let (back, _) = expect_status(
        "consent",
        send(
            browser.post(format!("{base}/consent")).form(&form),
            killed,
            "consent",
        )
        .await?,
        303,
    )?;
    let code = url::Url::parse(&back)
        .ok()
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned())
        })
        .ok_or_else(|| Stop::Wrong(format!("no code in the redirect {back}")))?;

    records.push(FlowRecord {
        verifier: verifier.clone(),
        code: code.clone(),
        issued: None,
        refresh: Refresh::NotSent,
    });
    let record = records.len() - 1;
    let exchange = app.post(format!("{base}/o/oauth2/token")).form(&[
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", APP),
        ("code_verifier", verifier.as_str()),
    ]);
    let (_, body) = expect_status(
        "code exchange",
        send(exchange, killed, "code exchange").await?,
        200,
    )?;
    let issued = pair_from("code exchange", &body)?;
    records[record].issued = Some(issued.clone());
    exchanges.fetch_add(1, Ordering::SeqCst);

    records[record].refresh = Refresh::Unanswered;
    let refresh = app.post(format!("{base}/o/oauth2/token")).form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", issued.refresh.as_str()),
        ("client_id", APP),
    ]);
    let (_, body) = expect_status("refresh", send(refresh, killed, "refresh").await?, 200)?;
    records[record].refresh = Refresh::Rotated(pair_from("refresh", &body)?);
    Ok(())
}

/// Run flows until the server goes away (or the deadline passes): the records, and what
/// went wrong if the server misbehaved.
async fn load_task(
    base: String,
    killed: Arc<AtomicBool>,
    exchanges: Arc<AtomicUsize>,
    deadline: Instant,
) -> (Vec<FlowRecord>, Option<String>) {
    let mut records = Vec::new();
    while Instant::now() < deadline {
        match one_flow(&base, &killed, &exchanges, &mut records).await {
            Ok(()) => {}
            Err(Stop::Down) => return (records, None),
            Err(Stop::Wrong(e)) => return (records, Some(e)),
        }
    }
    (records, None)
}

/// POST to the token endpoint of the restarted server: (status, JSON body).
async fn token_request(base: &str, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let r = client(false)
        .post(format!("{base}/o/oauth2/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    let json = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("token endpoint answered {status} with non-JSON ({e}): {body}"));
    (status, json)
}

async fn redeem(base: &str, f: &FlowRecord) -> (u16, serde_json::Value) {
    token_request(
        base,
        &[
            ("grant_type", "authorization_code"),
            ("code", &f.code),
            ("redirect_uri", REDIRECT),
            ("client_id", APP),
            ("code_verifier", &f.verifier),
        ],
    )
    .await
}

async fn refresh_with(base: &str, token: &str) -> (u16, serde_json::Value) {
    token_request(
        base,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", APP),
        ],
    )
    .await
}

fn is_invalid_grant((status, body): &(u16, serde_json::Value)) -> bool {
    *status == 400 && body["error"] == "invalid_grant"
}

/// A request the kill left unanswered may have been applied or not; either answer is fine
/// now, a server error is not.
fn settled(answer: &(u16, serde_json::Value)) -> bool {
    answer.0 == 200 || is_invalid_grant(answer)
}

async fn crash_and_restart(db: &str, backend: &str) {
    create_app(db, APP, SCOPE, &[]);
    let api_secret = create_api(db, API);
    create_user(db, "alice");
    let api = (API, api_secret.as_str());

    let (mut child, base) = start_server(db).await;
    let killed = Arc::new(AtomicBool::new(false));
    let exchanges = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(180);
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            tokio::spawn(load_task(
                base.clone(),
                killed.clone(),
                exchanges.clone(),
                deadline,
            ))
        })
        .collect();

    // Let the load run until enough exchanges have been answered, then kill mid-flight.
    let waited = Instant::now();
    while exchanges.load(Ordering::SeqCst) < KILL_AFTER {
        assert!(
            Instant::now() < waited + Duration::from_secs(120),
            "only {} code exchanges in 120 s",
            exchanges.load(Ordering::SeqCst)
        );
        if tasks.iter().all(|t| t.is_finished()) {
            let mut why = Vec::new();
            for task in tasks {
                why.extend(task.await.expect("load task panicked").1);
            }
            panic!("every load task stopped before the kill: {why:#?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    killed.store(true, Ordering::SeqCst);
    let pid = child.id().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the killed server is reaped")
        .unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&exit),
        Some(9),
        "{exit:?}"
    );
    let exchanges_at_kill = exchanges.load(Ordering::SeqCst);

    let mut flows = Vec::new();
    let mut wrong = Vec::new();
    for task in tasks {
        let (records, error) = tokio::time::timeout(REQUEST_TIMEOUT * 2, task)
            .await
            .expect("a load task stops once the server is gone")
            .expect("load task panicked");
        flows.extend(records);
        wrong.extend(error);
    }
    assert!(
        wrong.is_empty(),
        "the server misbehaved under load: {wrong:#?}"
    );

    // Restart on the same database (a new port).
    let (child, base) = start_server(db).await;

    let acknowledged = flows.iter().filter(|f| f.issued.is_some()).count();
    let refreshed = flows
        .iter()
        .filter(|f| matches!(f.refresh, Refresh::Rotated(_)))
        .count();
    let refresh_in_doubt = flows
        .iter()
        .filter(|f| f.issued.is_some() && matches!(f.refresh, Refresh::Unanswered))
        .count();
    let exchange_in_doubt = flows.len() - acknowledged;
    println!(
        "{backend}: killed after {exchanges_at_kill} exchanges answered 200; flows: {} exchanges sent, \
         {acknowledged} answered 200 ({refreshed} also refreshed, {refresh_in_doubt} refreshes unanswered), \
         {exchange_in_doubt} exchanges unanswered",
        flows.len()
    );
    assert!(acknowledged >= KILL_AFTER, "{acknowledged} acknowledged");

    // 1. Everything a client was answered 200 for is still there and active.
    let active = |token: String| {
        let base = base.clone();
        async move {
            let info = introspect(&base, api, &token).await;
            info["active"] == true
        }
    };
    for f in &flows {
        let Some(issued) = &f.issued else { continue };
        assert!(
            active(issued.access.clone()).await,
            "an access token answered 200 (code exchange) is not active after the crash"
        );
        match &f.refresh {
            Refresh::NotSent => assert!(
                active(issued.refresh.clone()).await,
                "a refresh token answered 200 (code exchange) is not active after the crash"
            ),
            Refresh::Rotated(new) => {
                assert!(
                    active(new.access.clone()).await,
                    "an access token answered 200 (refresh) is not active after the crash"
                );
                assert!(
                    active(new.refresh.clone()).await,
                    "a refresh token answered 200 (refresh) is not active after the crash"
                );
                assert!(
                    !active(issued.refresh.clone()).await,
                    "a rotated-out refresh token is active again after the crash"
                );
            }
            Refresh::Unanswered => {}
        }
    }

    // 2. Whatever was spent stays spent; presenting it again revokes the grant.
    for f in &flows {
        let Some(issued) = &f.issued else {
            // The exchange got no answer: the code may or may not have been redeemed.
            let answer = redeem(&base, f).await;
            assert!(
                settled(&answer),
                "an exchange the kill left unanswered, retried: {answer:?}"
            );
            continue;
        };
        let mut grant_tokens = vec![issued.access.clone(), issued.refresh.clone()];
        match &f.refresh {
            Refresh::Rotated(new) => {
                let answer = refresh_with(&base, &issued.refresh).await;
                assert!(
                    is_invalid_grant(&answer),
                    "a rotated-out refresh token after the crash: {answer:?}"
                );
                grant_tokens.extend([new.access.clone(), new.refresh.clone()]);
                for t in &grant_tokens {
                    assert!(
                        !active(t.clone()).await,
                        "a token of a grant revoked for refresh-token reuse is still active"
                    );
                }
            }
            Refresh::Unanswered => {
                let answer = refresh_with(&base, &issued.refresh).await;
                assert!(
                    settled(&answer),
                    "a refresh the kill left unanswered, retried: {answer:?}"
                );
            }
            Refresh::NotSent => {}
        }
        let answer = redeem(&base, f).await;
        assert!(
            is_invalid_grant(&answer),
            "a code answered 200 before the crash, presented again: {answer:?}"
        );
        // The replay (by the code's holder) revokes whatever the code issued.
        for t in &grant_tokens {
            assert!(
                !active(t.clone()).await,
                "a token of a grant revoked for code replay is still active"
            );
        }
    }

    // The restarted server still serves complete flows.
    let fresh = tokens_for(&base, APP, SCOPE, "alice").await;
    let token = oauth2::TokenResponse::access_token(&fresh).secret().clone();
    assert!(active(token).await);
    stop(child).await;
}
