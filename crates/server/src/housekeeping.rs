//! Housekeeping: delete expired rows in small batches so tables do not grow without bound.
//! Every instance may run it at once: each batch is an independent, idempotent delete.
use std::sync::Arc;
use std::time::Duration;

use oauthd_store::{Purge, Store, StoreResult};

use crate::clock::Clock;
use crate::ops::names;

/// Rows per delete: small enough that a batch never holds locks for long.
pub const BATCH: i64 = 500;

/// One full pass over every kind of expired row; returns how many rows went.
pub async fn run_once(store: &dyn Store, now: i64) -> StoreResult<u64> {
    let mut total = 0;
    for what in Purge::ALL {
        loop {
            let deleted = store.purge(what, now, BATCH).await?;
            total += deleted;
            if deleted < BATCH as u64 {
                break;
            }
            // Let other work in between batches.
            tokio::task::yield_now().await;
        }
    }
    metrics::counter!(names::PURGED).increment(total);
    Ok(total)
}

/// Run a pass every `every`, forever; failures are logged and retried next time.
pub fn spawn(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match run_once(store.as_ref(), clock.now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "housekeeping removed expired rows"),
                Err(e) => tracing::warn!(error = ?e, "housekeeping failed; will retry"),
            }
        }
    })
}
