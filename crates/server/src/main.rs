#![forbid(unsafe_code)]

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser as _;

use oauthd::admin::{self, Failure};
use oauthd::cli::{Cli, ClientCommand, Command, KeysCommand, ServeArgs, UserCommand};
use oauthd::clock::{Clock, SystemClock};
use oauthd::config::{Config, Overrides};
use oauthd::{demo, serve};

/// mimalloc instead of glibc's malloc: 7-15 % less CPU per flow at c=64 (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OAUTHD_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    // On one CPU (a container limit, or pinned with taskset) a work-stealing pool has no one
    // to steal from: one thread running every task does the same work with less
    // synchronisation. Blocking work (Argon2, SQLite's writer) has threads of its own.
    let one_cpu = std::thread::available_parallelism().is_ok_and(|n| n.get() == 1);
    let mut builder = if one_cpu {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    if one_cpu {
        tracing::info!("one CPU available: every request runs on one thread");
    }
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.exit_code)
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let mut overrides = Overrides {
        database_url: cli.database.clone(),
        ..Overrides::default()
    };
    if let Command::Serve(args) = &cli.command {
        overrides.listen = args.listen.clone();
        overrides.issuer = args.issuer.clone();
    }
    let config =
        Config::load(cli.config.as_deref(), &overrides).map_err(|e| Failure::bad_input(e.0))?;
    let clock = SystemClock;
    match cli.command {
        Command::Serve(args) => serve_command(config, &args).await,
        Command::Client(cmd) => {
            let store = serve::open_store(&config).await?;
            let store = store.as_ref();
            match cmd {
                ClientCommand::Create(args) => {
                    admin::client::run_create(store, &args, clock.now()).await
                }
                ClientCommand::List { json } => admin::client::run_list(store, json).await,
                ClientCommand::Show { client_id, json } => {
                    admin::client::run_show(store, &client_id, json).await
                }
                ClientCommand::Delete { client_id } => {
                    admin::client::run_delete(store, &client_id).await
                }
                ClientCommand::RotateSecret { client_id, json } => {
                    admin::client::run_rotate_secret(store, &client_id, json).await
                }
            }
        }
        Command::Keys(cmd) => keys_command(&config, cmd, clock.now()).await,
        Command::User(cmd) => {
            let store = serve::open_store(&config).await?;
            let store = store.as_ref();
            match cmd {
                UserCommand::Create {
                    username,
                    email,
                    name,
                    password,
                } => {
                    let password = admin::user::read_password(&password)?;
                    let profile = admin::user::Profile {
                        email,
                        display_name: name,
                    };
                    admin::user::create(store, &username, &password, profile, clock.now()).await?;
                    println!("Created user {username}.");
                    Ok(())
                }
                UserCommand::List { json } => admin::user::run_list(store, json).await,
                UserCommand::Delete { username } => admin::user::run_delete(store, &username).await,
                UserCommand::SetPassword { username, password } => {
                    let password = admin::user::read_password(&password)?;
                    admin::user::run_set_password(store, &username, &password).await
                }
            }
        }
    }
}

async fn keys_command(config: &Config, cmd: KeysCommand, now: i64) -> Result<(), Failure> {
    let store = serve::open_store(config).await?;
    match cmd {
        KeysCommand::List { json } => admin::keys::run_list(store.as_ref(), now, json).await,
        KeysCommand::Rotate { alg } => {
            let ring = serve::key_ring(config, store.clone(), now).await?;
            admin::keys::run_rotate(store.as_ref(), &ring, alg.as_deref(), now).await
        }
        KeysCommand::Retire { kid } => admin::keys::run_retire(store.as_ref(), &kid, now).await,
    }
}

async fn serve_command(mut config: Config, args: &ServeArgs) -> Result<(), Failure> {
    // The demo database lives in a temporary directory removed at exit.
    let demo_dir = if args.demo {
        let dir = tempfile::tempdir()
            .map_err(|e| Failure::failed(format!("cannot create the demo directory: {e}")))?;
        config.database_url = demo::database_url(dir.path());
        Some(dir)
    } else {
        None
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = serve::open_store(&config).await?;
    let listener = serve::bind(&config).await?;
    let addr = listener
        .local_addr()
        .map_err(|e| Failure::failed(format!("cannot read the listen address: {e}")))?;
    let issuer = serve::issuer_for(&config, addr);
    if demo_dir.is_some() {
        let seeded = demo::seed(store.as_ref(), clock.now()).await?;
        println!("{}", demo::instructions(&issuer, &seeded));
    }
    let keys = serve::key_ring(&config, store.clone(), clock.now()).await?;
    let code_key = serve::code_key(&config, store.as_ref(), clock.now()).await?;
    let stop = serve::termination_signal()
        .map_err(|e| Failure::failed(format!("cannot install signal handlers: {e}")))?;
    tracing::info!("oauthd listening on http://{addr} with issuer {issuer}");
    let state = serve::state(&config, issuer, store, keys, code_key, clock);
    let _housekeeping = serve::spawn_housekeeping(&config, &state);
    serve::run(listener, state, stop)
        .await
        .map_err(|e| Failure::failed(format!("server error: {e}")))?;
    tracing::info!("oauthd stopped");
    drop(demo_dir);
    Ok(())
}
