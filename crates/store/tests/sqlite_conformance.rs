//! The storage conformance suite on SQLite, each test on its own database file.
use std::sync::Arc;

use oauthd_store::conformance::DynStore;
use oauthd_store::sqlite::SqliteStore;

async fn fresh() -> DynStore {
    // The directory is leaked on purpose: it must outlive the store for the whole test.
    let dir = tempfile::tempdir().unwrap().keep();
    let url = format!("sqlite://{}", dir.join("conformance.db").display());
    Arc::new(SqliteStore::connect(&url).await.unwrap())
}

oauthd_store::conformance_suite!(fresh());
