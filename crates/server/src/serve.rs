//! Starting the server: open the store, bind, serve until told to stop, drain.
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use oauthd_store::Store;

use crate::clock::Clock;
use crate::config::Config;
use crate::keys::KeyRing;
use crate::passwords::Passwords;
use crate::routes;
use crate::state::{AppState, Policy};
use crate::throttle::LoginThrottle;
use oauthd_core::key_sealing::Kek;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the database {url}: {source}")]
    Store {
        url: String,
        source: oauthd_store::StoreError,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("signing keys: {0}")]
    Keys(String),
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
}

pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StartError> {
    oauthd_store::open(&config.database_url)
        .await
        .map_err(|e| StartError::Store {
            url: redact_url(&config.database_url),
            source: detailed(e),
        })
}

/// A database URL for messages: any password replaced.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Startup errors go to an operator, so the cause is spelled out.
fn detailed(e: oauthd_store::StoreError) -> oauthd_store::StoreError {
    match e {
        oauthd_store::StoreError::Unavailable(inner) => {
            oauthd_store::StoreError::Corrupt(inner.to_string())
        }
        other => other,
    }
}

/// The issuer: as configured, or this server's own loopback address.
pub fn issuer_for(config: &Config, bound: SocketAddr) -> String {
    match &config.issuer {
        Some(i) => i.clone(),
        None if bound.ip().is_loopback() || bound.ip().is_unspecified() => {
            format!("http://localhost:{}", bound.port())
        }
        None => format!("http://{bound}"),
    }
}

/// The signing keys, with a key for every algorithm ready (generated on first start).
pub async fn key_ring(
    config: &Config,
    store: Arc<dyn Store>,
    now: i64,
) -> Result<Arc<KeyRing>, StartError> {
    let kek = match &config.key_encryption_key {
        Some(secret) => Some(Kek::derive(&secret.0).map_err(|e| StartError::Keys(e.to_string()))?),
        None => None,
    };
    let ring = KeyRing::new(store, kek);
    ring.ensure_active_keys(now)
        .await
        .map_err(|e| StartError::Keys(e.to_string()))?;
    Ok(Arc::new(ring))
}

pub fn state(
    config: &Config,
    issuer: String,
    store: Arc<dyn Store>,
    keys: Arc<KeyRing>,
    clock: Arc<dyn Clock>,
) -> AppState {
    // Install the metrics recorder before anything counts.
    crate::ops::prometheus();
    AppState {
        keys,
        store,
        policy: Arc::new(Policy {
            secure_cookies: issuer.starts_with("https://"),
            issuer,
            code_lifetime: config.code_lifetime,
            refresh_grace_period: config.refresh_grace_period,
            refresh_absolute_lifetime: config.refresh_absolute_lifetime,
            session_lifetime: config.session_lifetime,
            pending_lifetime: config.pending_lifetime,
        }),
        clock,
        throttle: Arc::new(LoginThrottle::default()),
        passwords: Arc::new(Passwords::default()),
    }
}

/// Serve until `shutdown` resolves, then let in-flight requests finish.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = routes::router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

pub async fn bind(config: &Config) -> Result<TcpListener, StartError> {
    let addr = config.listen_addr()?;
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen.clone(),
            source,
        })
}

/// The background housekeeping task, unless turned off.
pub fn spawn_housekeeping(config: &Config, state: &AppState) -> Option<JoinHandle<()>> {
    (config.housekeeping_interval > 0).then(|| {
        crate::housekeeping::spawn(
            state.store.clone(),
            state.clock.clone(),
            std::time::Duration::from_secs(config.housekeeping_interval),
        )
    })
}

/// A server running in this process (used by the HTTP tests and by `serve`).
pub struct RunningServer {
    housekeeping: Option<JoinHandle<()>>,
    pub addr: SocketAddr,
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    pub async fn start(
        config: &Config,
        clock: Arc<dyn Clock>,
    ) -> Result<RunningServer, StartError> {
        let store = open_store(config).await?;
        let listener = bind(config).await?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen.clone(),
            source,
        })?;
        let keys = key_ring(config, store.clone(), clock.now()).await?;
        let state = state(config, issuer_for(config, addr), store, keys, clock);
        let housekeeping = spawn_housekeeping(config, &state);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run(listener, state.clone(), async {
            let _ = stopped.await;
        }));
        Ok(RunningServer {
            housekeeping,
            addr,
            state,
            stop: Some(stop),
            task,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop accepting, finish in-flight requests, return.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(h) = self.housekeeping.take() {
            h.abort();
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.unwrap_or(Ok(()))
    }
}

/// Install the SIGINT and SIGTERM handlers now, before the server says it is listening, and
/// return a future that resolves on either: a signal that arrives in between still drains.
pub fn termination_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
    })
}
