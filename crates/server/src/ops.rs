//! Operations: liveness, readiness, Prometheus metrics, and the request metrics.
use std::sync::OnceLock;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

/// Names of the metrics, in one place.
pub mod names {
    pub const REQUESTS: &str = "oauthd_http_requests_total";
    pub const REQUEST_SECONDS: &str = "oauthd_http_request_duration_seconds";
    pub const TOKENS_ISSUED: &str = "oauthd_tokens_issued_total";
    pub const CODE_REPLAYS: &str = "oauthd_code_replays_total";
    pub const REFRESH_REUSES: &str = "oauthd_refresh_token_reuses_total";
    pub const LIFERAY_COMPAT: &str = "oauthd_liferay_compat_uses_total";
    pub const LOGIN_FAILURES: &str = "oauthd_login_failures_total";
    pub const LOGIN_THROTTLED: &str = "oauthd_login_throttled_total";
    pub const POOL_CONNECTIONS: &str = "oauthd_db_pool_connections";
    pub const POOL_IDLE: &str = "oauthd_db_pool_idle_connections";
    pub const PURGED: &str = "oauthd_housekeeping_deleted_rows_total";
}

/// The process-wide recorder (metrics has one global recorder; every server in a process
/// shares it).
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(names::REQUEST_SECONDS.to_owned()),
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ],
            )
            .expect("static buckets are valid")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (a library user's); ours still renders.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Count a request by route and status, and time it (called by [`crate::edge::handle`] for
/// every request, refused ones included).
pub fn record_request(endpoint: &'static str, status: StatusCode, elapsed: Duration) {
    metrics::counter!(names::REQUESTS, "endpoint" => endpoint, "status" => status.as_str().to_owned())
        .increment(1);
    metrics::histogram!(names::REQUEST_SECONDS, "endpoint" => endpoint)
        .record(elapsed.as_secs_f64());
}

/// `GET /healthz`: the process answers.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: the database answers within a bound and its schema is what this binary
/// expects; a load balancer stops sending traffic otherwise.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let check = async {
        state.store.ping().await?;
        state.store.schema_version().await
    };
    let (status, body) = match tokio::time::timeout(Duration::from_secs(3), check).await {
        Ok(Ok((applied, known))) if applied == known => {
            (StatusCode::OK, serde_json::json!({ "status": "ready" }))
        }
        Ok(Ok((applied, known))) => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "status": "unavailable", "reason": format!("database schema is at version {applied}, this binary needs {known}") }),
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = ?e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({ "status": "unavailable", "reason": "database unreachable" }),
            )
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "status": "unavailable", "reason": "database did not answer in time" }),
        ),
    };
    (status, [("cache-control", "no-store")], Json(body)).into_response()
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let (open, idle) = state.store.pool_state();
    metrics::gauge!(names::POOL_CONNECTIONS).set(f64::from(open));
    metrics::gauge!(names::POOL_IDLE).set(f64::from(idle));
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        prometheus().render(),
    )
        .into_response()
}
