//! Starting the server: open the store, bind, serve until told to stop, drain.
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use oauthd_store::Store;

use crate::clock::Clock;
use crate::config::Config;
use crate::keys::KeyRing;
use crate::passwords::Passwords;
use crate::state::{AppState, Policy, Shared};
use crate::throttle::LoginThrottle;
use crate::{edge, routes};
use oauthd_core::code_sealing::CodeKey;
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
    #[error("the key codes are sealed with: {0}")]
    CodeKey(String),
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
    code_key: CodeKey,
    clock: Arc<dyn Clock>,
) -> AppState {
    // Install the metrics recorder before anything counts.
    crate::ops::prometheus();
    AppState::new(Shared {
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
            header_read_timeout: Duration::from_secs(config.header_read_timeout),
        }),
        clock,
        throttle: Arc::new(LoginThrottle::default()),
        client_rate: Arc::new(crate::throttle::RateLimiter::new(
            config.client_requests_per_second,
        )),
        passwords: Arc::new(Passwords::default()),
        code_key,
    })
}

/// The server secret holding the code key when no key encryption key is configured.
const CODE_KEY_SECRET: &str = "code_sealing_key";

/// The key authorization codes are sealed with (`oauthd_core::code_sealing`), the same at every
/// instance and across restarts: derived from the key encryption key when there is one
/// (nothing is stored), otherwise a random key stored once in the database.
pub async fn code_key(config: &Config, store: &dyn Store, now: i64) -> Result<CodeKey, StartError> {
    if let Some(secret) = &config.key_encryption_key {
        return CodeKey::derive(&secret.0).map_err(|e| StartError::CodeKey(e.to_string()));
    }
    let stored = store
        .server_secret(CODE_KEY_SECRET, &CodeKey::generate_stored(), now)
        .await
        .map_err(|e| StartError::CodeKey(e.to_string()))?;
    CodeKey::from_stored(&stored).ok_or_else(|| {
        StartError::CodeKey(format!(
            "the stored one is damaged; delete the row {CODE_KEY_SECRET:?} of server_secrets to make a new one (codes issued before stop working)"
        ))
    })
}

/// The largest request head (request line and headers) read; larger ones get 431.
const MAX_HEAD_BYTES: usize = 32 * 1024;

/// Serve until `shutdown` resolves, then stop accepting, let in-flight requests finish and
/// close idle connections.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::server::graceful::GracefulShutdown;

    // A client must send a whole request head within the timeout, and an idle keep-alive
    // connection is closed after it: slow or silent connections cannot pile up.
    let header_read_timeout = state.policy.header_read_timeout;
    let app = routes::router(state);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    let builder = Arc::new(builder.http1_only());
    let _earlier_timer = AbortOnDrop(tokio::spawn(keep_an_earlier_timer(header_read_timeout)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                let app = app.clone();
                async move { Ok::<_, Infallible>(edge::handle(app, request).await) }
            },
        );
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // Errors here are clients going away or timing out; nothing to report.
            let _ = connection.await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Keep a timer pending that expires before any header-read timer set now would, for ever.
///
/// Why: tokio wakes its I/O driver (an eventfd `write`, then one more `epoll_wait`) whenever a
/// timer is registered that expires before every timer pending when it last parked. Each
/// request's header-read timer is such a timer whenever no other one is pending, which on a
/// busy server is most of the time: 1.4 wake-ups per flow at c=8 (BENCHMARKS.md, tenth
/// session). With this one pending, a new header-read timer is never the earliest. It costs
/// one wake-up per half timeout.
async fn keep_an_earlier_timer(header_read_timeout: Duration) {
    let turn = header_read_timeout / 2;
    if turn.is_zero() {
        return;
    }
    loop {
        tokio::time::sleep(turn).await;
    }
}

/// A task that stops when its handle goes.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
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
        let code_key = code_key(config, store.as_ref(), clock.now()).await?;
        let state = state(
            config,
            issuer_for(config, addr),
            store,
            keys,
            code_key,
            clock,
        );
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
