//! The storage conformance suite on SQLite, each test on its own database file.
use std::sync::Arc;

use oauthd_store::ClientStore as _;
use oauthd_store::conformance::DynStore;
use oauthd_store::sqlite::SqliteStore;

/// A store on its own file; the directory goes when the test ends.
async fn fresh() -> Option<(DynStore, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("conformance.db").display());
    Some((Arc::new(SqliteStore::connect(&url).await.unwrap()), dir))
}

oauthd_store::conformance_suite!(fresh());

/// The server and the admin CLI each open the file: a change made by one is seen by the
/// other's next lookup, though it keeps decoded clients in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_changes_elsewhere_are_seen() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    let here: DynStore = Arc::new(SqliteStore::connect(&url).await.unwrap());
    let elsewhere: DynStore = Arc::new(SqliteStore::connect(&url).await.unwrap());
    oauthd_store::conformance::client_changes_elsewhere_are_seen(here, elsewhere).await;
}

/// A client changed by hand (the sqlite3 shell, a script) is seen by the store's next lookup.
#[tokio::test]
async fn client_changes_by_hand_are_seen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("by-hand.db");
    let store = SqliteStore::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    store
        .insert_client(&oauthd_store::conformance::sample_client("c1"))
        .await
        .unwrap();
    assert_eq!(store.client("c1").await.unwrap().unwrap().name, "Sample");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE clients SET name = 'Renamed' WHERE client_id = 'c1'",
        [],
    )
    .unwrap();
    drop(conn);
    assert_eq!(store.client("c1").await.unwrap().unwrap().name, "Renamed");
}

/// In memory, reads queue inside the writer's transaction: the combined read must not open a
/// transaction of its own there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_and_reads_alongside_in_memory() {
    let store: DynStore = Arc::new(SqliteStore::connect("sqlite::memory:").await.unwrap());
    oauthd_store::conformance::client_and_reads_alongside(store).await;
}
