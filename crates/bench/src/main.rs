//! oauthd-bench: drives complete native-app OAuth 2.0 flows against a server on loopback and
//! reports throughput, latency per step, errors, and the server's CPU time and memory.
//!
//! Each virtual user is a tokio task with its own cookie jar (a browser) that runs flows back to
//! back: authorize (following redirects, filling the login form, approving the consent form),
//! code exchange with PKCE S256, refresh, and introspection with resource-server credentials.
//! All users share one HTTP connection pool. See BENCHMARKS.md for the exact commands.
//!
//! `oauthd-bench seed ...` instead fills an oauthd database with live grants and tokens before
//! a run (see `seed.rs`).
mod flow;
mod html;
mod procfs;
mod seed;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use clap::Parser;
use serde::Serialize;
use url::Url;

use flow::{ClientAuth, Settings, User, Window};
use stats::{STEPS, Stats, Summary};

#[derive(Parser, Debug)]
#[command(
    name = "oauthd-bench",
    version,
    about = "Full native-app OAuth 2.0 flow load tool: authorize (real login and consent forms), PKCE code exchange, refresh, introspection",
    after_help = "To fill an oauthd database with live grants and tokens first: oauthd-bench seed --help",
    args_override_self = true
)]
struct Args {
    /// JSON file of options (keys are long option names, e.g. the peer's targets/*.json);
    /// options given on the command line win.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base_url: String,
    #[arg(long, default_value = "/o/oauth2/authorize")]
    authorize_path: String,
    #[arg(long, default_value = "/o/oauth2/token")]
    token_path: String,
    #[arg(long, default_value = "/o/oauth2/introspect")]
    introspect_path: String,
    /// The public (app) client.
    #[arg(long, default_value = "bench-public")]
    client_id: String,
    /// Token endpoint authentication of the app client.
    #[arg(long, value_enum, default_value = "none")]
    token_auth: ClientAuth,
    #[arg(long)]
    client_secret: Option<String>,
    #[arg(long, default_value = "myapp://oauth2redirect")]
    redirect_uri: String,
    /// Requested scope (omitted from the request when empty).
    #[arg(long, default_value = "")]
    scope: String,
    /// Raw query parameters appended to the authorize URL (e.g. "prompt=consent").
    #[arg(long)]
    extra_authorize_params: Option<String>,
    /// The user typed into the login form (when one appears).
    #[arg(long, default_value = "bench")]
    username: String,
    #[arg(long, default_value = "bench-password")]
    password: String,
    /// How the resource server authenticates at the introspection endpoint.
    #[arg(long, value_enum, default_value = "basic")]
    introspect_auth: ClientAuth,
    #[arg(long, default_value = "bench-rs")]
    introspect_client_id: String,
    #[arg(long, default_value = "bench-rs-secret")]
    introspect_client_secret: String,
    /// Steps after authorize, in flow order (a subset of token,refresh,introspect).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "authorize,token,refresh,introspect"
    )]
    steps: Vec<String>,
    /// Refreshes per flow (each uses the previous rotated refresh token).
    #[arg(long, default_value_t = 1)]
    refresh_repeat: u32,
    /// Introspections per flow.
    #[arg(long, default_value_t = 1)]
    introspect_repeat: u32,
    /// Virtual users; a list runs each value in turn ("1,8,64").
    #[arg(long, value_delimiter = ',', default_value = "8")]
    concurrency: Vec<u32>,
    /// Measured seconds per concurrency value (≤ 600).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Warm-up seconds before each measured window (≤ 60); not counted.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Upper bound on flows started per concurrency value (warm-up included).
    #[arg(long, default_value_t = 500_000)]
    max_flows: u64,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Most hops (redirects and form posts) in one authorize.
    #[arg(long, default_value_t = 10)]
    max_redirects: u32,
    /// A fresh cookie jar for every flow (a login every time) instead of one per user (SSO
    /// after the first flow).
    #[arg(long)]
    fresh_cookies: bool,
    /// The server's PID: report its CPU seconds per flow (utime+stime from /proc) and RSS.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Label of this run in the report and JSON.
    #[arg(long, default_value = "")]
    label: String,
    /// Write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Allow a target that is not on loopback (127.0.0.0/8, ::1, localhost).
    #[arg(long)]
    allow_non_loopback: bool,
    /// Worker threads of the driver (1 = a single-threaded runtime, the most efficient on
    /// one pinned core).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Print every hop of the first few flows to stderr.
    #[arg(long)]
    verbose: bool,
}

/// Turn `--config FILE` into `--key value` arguments placed before the command line's.
fn argv_with_config() -> Result<Vec<String>, String> {
    let argv: Vec<String> = std::env::args().collect();
    let mut file = None;
    for (i, a) in argv.iter().enumerate() {
        if let Some(f) = a.strip_prefix("--config=") {
            file = Some(f.to_owned());
        } else if a == "--config" {
            file = argv.get(i + 1).cloned();
        }
    }
    let Some(file) = file else { return Ok(argv) };
    let text = std::fs::read_to_string(&file).map_err(|e| format!("--config {file}: {e}"))?;
    let obj: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text).map_err(|e| format!("--config {file}: {e}"))?;
    let mut out = vec![argv[0].clone()];
    for (k, v) in obj {
        match v {
            serde_json::Value::Bool(true) => out.push(format!("--{k}")),
            serde_json::Value::Bool(false) | serde_json::Value::Null => {}
            serde_json::Value::String(s) => out.push(format!("--{k}={s}")),
            serde_json::Value::Number(n) => out.push(format!("--{k}={n}")),
            serde_json::Value::Array(a) => out.push(format!(
                "--{k}={}",
                a.iter()
                    .map(|x| x
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| x.to_string()))
                    .collect::<Vec<_>>()
                    .join(",")
            )),
            serde_json::Value::Object(_) => {
                return Err(format!("--config {file}: {k} is an object"));
            }
        }
    }
    out.extend(argv.into_iter().skip(1));
    Ok(out)
}

#[derive(Serialize)]
struct RunReport {
    label: String,
    base_url: String,
    concurrency: u32,
    warmup_s: f64,
    measured_s: f64,
    flows: u64,
    flows_per_s: f64,
    requests: u64,
    requests_per_s: f64,
    errors: u64,
    steps: Vec<(String, Summary)>,
    server_cpu_s: Option<f64>,
    server_cpu_ms_per_flow: Option<f64>,
    server_cpu_percent_of_core: Option<f64>,
    server_rss_kib: Option<u64>,
    server_hwm_kib: Option<u64>,
    driver_cpu_percent_of_core: Option<f64>,
    other_load_cores: Option<f64>,
}

fn main() -> ExitCode {
    if std::env::args_os().nth(1).is_some_and(|a| a == "seed") {
        return seed::main();
    }
    let argv = match argv_with_config() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("oauthd-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let args = Args::parse_from(argv);
    let settings = match settings(&args) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("oauthd-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    }
    .expect("tokio runtime");
    let reports = rt.block_on(run_all(&args, settings));
    if let Some(path) = &args.json {
        let doc = serde_json::json!({ "tool": "oauthd-bench", "runs": reports });
        if let Err(e) = std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap()) {
            eprintln!("oauthd-bench: writing {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if reports.iter().any(|r| r.flows > 0) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn settings(a: &Args) -> Result<Settings, String> {
    if !(a.duration > 0.0 && a.duration <= 600.0) {
        return Err("--duration must be in (0, 600]".into());
    }
    if !(0.0..=60.0).contains(&a.warmup) {
        return Err("--warmup must be in [0, 60]".into());
    }
    if a.concurrency.is_empty() || a.concurrency.iter().any(|&c| c == 0 || c > 10_000) {
        return Err("--concurrency values must be in 1..=10000".into());
    }
    let base = Url::parse(&a.base_url).map_err(|e| format!("--base-url: {e}"))?;
    if !a.allow_non_loopback && !flow::is_loopback(&base) {
        return Err(format!(
            "{base} is not a loopback address; pass --allow-non-loopback to load it anyway"
        ));
    }
    let join = |p: &str| base.join(p).map_err(|e| format!("path {p}: {e}"));
    for s in &a.steps {
        if !["authorize", "token", "refresh", "introspect"].contains(&s.as_str()) {
            return Err(format!("unknown step {s}"));
        }
    }
    let has = |s: &str| a.steps.iter().any(|x| x == s);
    if a.token_auth != ClientAuth::None && a.client_secret.is_none() {
        return Err("--token-auth basic|post needs --client-secret".into());
    }
    Ok(Settings {
        authorize: join(&a.authorize_path)?,
        token: join(&a.token_path)?,
        introspect: join(&a.introspect_path)?,
        base,
        client_id: a.client_id.clone(),
        client_secret: a.client_secret.clone(),
        token_auth: a.token_auth,
        redirect_uri: a.redirect_uri.clone(),
        scope: Some(a.scope.clone()).filter(|s| !s.is_empty()),
        extra_authorize_params: a.extra_authorize_params.clone(),
        username: a.username.clone(),
        password: a.password.clone(),
        introspect_auth: a.introspect_auth,
        introspect_client_id: a.introspect_client_id.clone(),
        introspect_client_secret: a.introspect_client_secret.clone(),
        do_token: has("token") || has("refresh") || has("introspect"),
        do_refresh: has("refresh"),
        do_introspect: has("introspect"),
        refresh_repeat: a.refresh_repeat,
        introspect_repeat: a.introspect_repeat,
        max_redirects: a.max_redirects,
        fresh_cookies: a.fresh_cookies,
        allow_non_loopback: a.allow_non_loopback,
        verbose: a.verbose,
    })
}

async fn run_all(args: &Args, cfg: Arc<Settings>) -> Vec<RunReport> {
    let mut reports = Vec::new();
    for &c in &args.concurrency {
        let r = run_one(args, cfg.clone(), c).await;
        print_report(&r);
        reports.push(r);
    }
    reports
}

async fn run_one(args: &Args, cfg: Arc<Settings>, concurrency: u32) -> RunReport {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(concurrency as usize * 2)
        .pool_idle_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs_f64(args.timeout))
        .build()
        .expect("HTTP client");
    let now = Instant::now();
    let start = now + Duration::from_secs_f64(args.warmup);
    let window = Arc::new(Window {
        start,
        end: start + Duration::from_secs_f64(args.duration),
        launched: AtomicU64::new(0),
        max_flows: args.max_flows,
        verbose_left: AtomicU64::new(if args.verbose { 2 } else { 0 }),
    });
    let mut users = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        users.spawn(User::new(http.clone(), cfg.clone(), window.clone()).run());
    }
    // CPU snapshots at the window's start and end (or when the last user stops, if earlier).
    let pid = args.server_pid;
    let first = Arc::new(std::sync::Mutex::new(None));
    let last = Arc::new(std::sync::Mutex::new(None));
    let sampler = {
        let (first, last, window) = (first.clone(), last.clone(), window.clone());
        tokio::spawn(async move {
            tokio::time::sleep_until(window.start.into()).await;
            *first.lock().unwrap() = Some(procfs::Snapshot::take(pid));
            tokio::time::sleep_until(window.end.into()).await;
            *last.lock().unwrap() = Some(procfs::Snapshot::take(pid));
        })
    };
    let mut stats = Stats::default();
    while let Some(r) = users.join_next().await {
        if let Ok(s) = r {
            stats.merge(s);
        }
    }
    let early = procfs::Snapshot::take(pid);
    sampler.abort();
    let a = first.lock().unwrap().unwrap_or(early);
    let b = last.lock().unwrap().unwrap_or(early);
    let measured_s = (b.at - a.at).as_secs_f64().max(1e-9);
    let memory = pid.and_then(procfs::memory_kib);

    let server_cpu = a.server.zip(b.server).map(|(x, y)| y - x);
    let driver_cpu = a.driver.zip(b.driver).map(|(x, y)| y - x);
    let machine = a.machine.zip(b.machine).map(|(x, y)| y - x);
    let mut steps = Vec::new();
    let mut errors = 0;
    for name in STEPS {
        if let Some(s) = stats.steps.get_mut(name) {
            let sum = stats::summarize(s);
            errors += sum.errors;
            steps.push((name.to_owned(), sum));
        }
    }
    RunReport {
        label: args.label.clone(),
        base_url: cfg.base.to_string(),
        concurrency,
        warmup_s: args.warmup,
        measured_s,
        flows: stats.flows,
        flows_per_s: stats.flows as f64 / measured_s,
        requests: stats.requests,
        requests_per_s: stats.requests as f64 / measured_s,
        errors,
        steps,
        server_cpu_s: server_cpu,
        server_cpu_ms_per_flow: server_cpu
            .filter(|_| stats.flows > 0)
            .map(|s| s * 1000.0 / stats.flows as f64),
        server_cpu_percent_of_core: server_cpu.map(|s| s * 100.0 / measured_s),
        server_rss_kib: memory.map(|m| m.0),
        server_hwm_kib: memory.map(|m| m.1),
        driver_cpu_percent_of_core: driver_cpu.map(|s| s * 100.0 / measured_s),
        other_load_cores: machine
            .map(|m| (m - server_cpu.unwrap_or(0.0) - driver_cpu.unwrap_or(0.0)) / measured_s),
    }
}

fn print_report(r: &RunReport) {
    let label = if r.label.is_empty() {
        r.base_url.clone()
    } else {
        format!("{} ({})", r.label, r.base_url)
    };
    println!(
        "\n== {label}  concurrency {}  measured {:.2} s after {:.0} s warm-up",
        r.concurrency, r.measured_s, r.warmup_s
    );
    println!(
        "flows {} ({:.1}/s)   requests {} ({:.1}/s)   errors {}",
        r.flows, r.flows_per_s, r.requests, r.requests_per_s, r.errors
    );
    println!(
        "{:<11} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7}",
        "step (ms)", "n", "mean", "p50", "p90", "p99", "max", "errors"
    );
    for (name, s) in &r.steps {
        println!(
            "{:<11} {:>8} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.2} {:>7}",
            name, s.n, s.mean, s.p50, s.p90, s.p99, s.max, s.errors
        );
        for (m, n) in &s.error_messages {
            println!("    {n}× {m}");
        }
    }
    if let (Some(cpu), Some(pct)) = (r.server_cpu_s, r.server_cpu_percent_of_core) {
        println!(
            "server CPU {:.2} s ({:.0}% of one core), {} ms CPU/flow",
            cpu,
            pct,
            r.server_cpu_ms_per_flow
                .map(|x| format!("{x:.3}"))
                .unwrap_or_else(|| "—".into())
        );
    }
    if let (Some(rss), Some(hwm)) = (r.server_rss_kib, r.server_hwm_kib) {
        println!(
            "server memory: RSS {:.1} MiB, peak (VmHWM) {:.1} MiB",
            rss as f64 / 1024.0,
            hwm as f64 / 1024.0
        );
    }
    if let Some(d) = r.driver_cpu_percent_of_core {
        print!("driver CPU {d:.0}% of one core");
        if let Some(o) = r.other_load_cores {
            print!(
                "   other load {o:.2} cores{}",
                if o > 0.15 {
                    " (CONTAMINATED: another tenant was busy)"
                } else {
                    ""
                }
            );
        }
        println!();
    }
}
