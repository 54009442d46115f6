//! `oauthd-bench seed`: fill an oauthd database with live grants before a run, for the
//! store-size scaling benchmark (flows/s and p99 with 1 000 vs 1 000 000 live tokens).
//!
//! Each grant is stored exactly as a code exchange stores it: `redeem_code` with the code's
//! record, the grant and its first pair (one access and one refresh token), so the database
//! holds what the server itself would have written, the redeemed codes' rows included.
use std::error::Error;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use oauthd_core::code::{DEFAULT_CODE_LIFETIME, IssuedCode};
use oauthd_core::pkce::{self, CodeChallenge, PkceMode};
use oauthd_core::scope::Scope;
use oauthd_core::secret::{Secret, SecretKind, time_ordered_id};
use oauthd_store::{
    IssueTokens, NewCode, NewGrant, NewPair, NewRefresh, RedeemOutcome, Store, StoreError,
};

use crate::flow::random_b64;

/// Below this the seeded access tokens die during a benchmark (`run` warns).
const LIVE_FOR_A_BENCHMARK: i64 = 3_600;
/// Rows written per grant: the code, the grant, its access token and its refresh token.
const ROWS_PER_GRANT: f64 = 4.0;

#[derive(Parser, Debug)]
#[command(
    name = "oauthd-bench seed",
    bin_name = "oauthd-bench seed",
    about = "Insert N live grants, each with a live access and refresh token, into an oauthd database (as code exchanges store them)"
)]
struct SeedArgs {
    /// Database URL: sqlite://PATH or postgres://...
    #[arg(long, env = "OAUTHD_DATABASE_URL", hide_env_values = true)]
    database: String,
    /// The client the grants belong to (must exist).
    #[arg(long, default_value = "bench-public")]
    client_id: String,
    /// The user the grants belong to (must exist).
    #[arg(long, default_value = "bench")]
    username: String,
    /// Grants to create.
    #[arg(long)]
    grants: u64,
    /// Concurrent writers.
    #[arg(long, default_value_t = 64)]
    concurrency: u32,
}

/// What every seeded code and grant shares.
struct Template {
    client_id: String,
    user_id: String,
    redirect_uri: String,
    pkce_mode: PkceMode,
    scope: Scope,
    /// The client's lifetimes, as the server gives them (`oauthd client create
    /// --access-token-ttl`): a seeded token then sorts among the tokens the server issues
    /// to that client, by expiry, where a real one would. Seeded access tokens that outlived
    /// every new one sat after them in `access_tokens` (rows ordered by expiry), so each new
    /// token went in before them, not at the end: about two more pages per commit.
    access_ttl: i64,
    refresh_ttl: i64,
}

/// A failure with its exit code: 2 for setup (bad usage, database, missing client or user),
/// 1 when seeding itself failed.
type Failure = (u8, String);

/// `oauthd-bench seed ...`: `argv[1]` is "seed".
pub fn main() -> ExitCode {
    let args = SeedArgs::parse_from(std::env::args_os().skip(1));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("oauthd-bench seed: {message}");
            ExitCode::from(code)
        }
    }
}

async fn run(a: SeedArgs) -> Result<(), Failure> {
    if !(1..=10_000).contains(&a.concurrency) {
        return Err((2, "--concurrency must be in 1..=10000".into()));
    }
    let store = oauthd_store::open(&a.database)
        .await
        .map_err(|e| (2, format!("opening the database: {}", describe(&e))))?;
    let client = store
        .client(&a.client_id)
        .await
        .map_err(|e| (2, describe(&e)))?
        .ok_or_else(|| (2, format!("no client {:?} in the database", a.client_id)))?;
    let user = store
        .user_by_username(&a.username)
        .await
        .map_err(|e| (2, describe(&e)))?
        .ok_or_else(|| (2, format!("no user {:?} in the database", a.username)))?;
    let redirect_uri = client
        .redirect_uris
        .first()
        .ok_or_else(|| (2, format!("client {:?} has no redirect URI", a.client_id)))?;
    let template = Arc::new(Template {
        client_id: client.client_id.clone(),
        user_id: user.id,
        redirect_uri: redirect_uri.as_str().to_owned(),
        pkce_mode: client.pkce,
        scope: Scope::parse("api").expect("a valid scope"),
        access_ttl: client.access_token_ttl,
        refresh_ttl: client.refresh_token_ttl,
    });
    if client.access_token_ttl < LIVE_FOR_A_BENCHMARK {
        eprintln!(
            "oauthd-bench seed: client {:?} gives access tokens {} s; the seeded ones expire \
             that soon (crates/bench/run.sh creates it with --access-token-ttl 86400)",
            a.client_id, client.access_token_ttl
        );
    }

    let total = a.grants;
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let progress = tokio::spawn(report_progress(done.clone(), total));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..u64::from(a.concurrency).min(total) {
        let (store, template, next, done) =
            (store.clone(), template.clone(), next.clone(), done.clone());
        workers.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < total {
                seed_one(&*store, &template).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, String>(())
        });
    }
    let mut failure = None;
    while let Some(r) = workers.join_next().await {
        if let Err(e) = r.map_err(|e| e.to_string()).and_then(|r| r) {
            failure.get_or_insert(e);
            workers.abort_all();
        }
    }
    progress.abort();
    let done = done.load(Ordering::Relaxed);
    if let Some(e) = failure {
        return Err((1, format!("failed after {done} grants: {e}")));
    }
    println!(
        "seeded {done} grants ({done} access + {done} refresh tokens) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One grant, as a code exchange makes it: redeem a code into the grant and its first access
/// and refresh token.
async fn seed_one(store: &dyn Store, t: &Template) -> Result<(), String> {
    // Stamped with the issue time, as the server stamps what it issues.
    let millis = unix_millis();
    let now = millis / 1000;
    let challenge = CodeChallenge::parse(&pkce::s256_challenge(&random_b64(32)))
        .expect("an S256 challenge is well formed");
    let code = NewCode {
        hash: Secret::generate_at(SecretKind::AuthorizationCode, millis).hash(),
        code: IssuedCode {
            client_id: t.client_id.clone(),
            user_id: t.user_id.clone(),
            redirect_uri: t.redirect_uri.clone(),
            redirect_uri_sent: true,
            scope: t.scope.clone(),
            code_challenge: challenge,
            pkce_mode: t.pkce_mode,
            auth_time: now,
            expires_at: now + DEFAULT_CODE_LIFETIME,
            nonce: None,
        },
    };
    let grant = NewGrant {
        id: time_ordered_id(millis),
        client_id: t.client_id.clone(),
        user_id: t.user_id.clone(),
        scope: t.scope.clone(),
        auth_time: now,
        created_at: now,
        expires_at: now + oauthd_core::refresh::DEFAULT_ABSOLUTE_LIFETIME,
    };
    let pair = NewPair {
        access_hash: Secret::generate_at(SecretKind::AccessToken, millis).hash(),
        access_scope: t.scope.clone(),
        access_expires_at: now + t.access_ttl,
        access_kid: None,
        refresh: Some(NewRefresh {
            hash: Secret::generate_at(SecretKind::RefreshToken, millis).hash(),
            expires_at: (now + t.refresh_ttl).min(grant.expires_at),
        }),
    };
    match store
        .redeem_code(&code, now, &IssueTokens { grant, pair })
        .await
        .map_err(|e| describe(&e))?
    {
        RedeemOutcome::Redeemed => Ok(()),
        other => Err(format!("redeeming a fresh code gave {other:?}")),
    }
}

/// Every ~5 s to stderr: grants so far, the rate since the last line, and an estimate of
/// the time left.
async fn report_progress(done: Arc<AtomicU64>, total: u64) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.tick().await;
    let (mut last_n, mut last_t) = (0, Instant::now());
    loop {
        tick.tick().await;
        let (n, t) = (done.load(Ordering::Relaxed), Instant::now());
        let rate = (n - last_n) as f64 / (t - last_t).as_secs_f64();
        let left = if rate > 0.0 {
            format!("{:.0} s", (total - n) as f64 / rate)
        } else {
            "?".into()
        };
        eprintln!(
            "seed: {n}/{total} grants, {rate:.0} grants/s ({:.0} rows/s), about {left} left",
            rate * ROWS_PER_GRANT
        );
        (last_n, last_t) = (n, t);
    }
}

/// The error and its causes on one line (the store's own message hides the cause).
fn describe(e: &StoreError) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(&format!(": {c}"));
        cause = c.source();
    }
    s
}

fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_millis() as i64
}
