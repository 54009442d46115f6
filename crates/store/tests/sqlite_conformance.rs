//! The storage conformance suite on SQLite, each test on its own database file.
use std::sync::Arc;

use oauthd_store::conformance::DynStore;
use oauthd_store::sqlite::SqliteStore;

/// A store on its own file; the directory goes when the test ends.
async fn fresh() -> Option<(DynStore, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("conformance.db").display());
    Some((Arc::new(SqliteStore::connect(&url).await.unwrap()), dir))
}

oauthd_store::conformance_suite!(fresh());
