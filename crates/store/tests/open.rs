//! `oauthd_store::open`: the backend is chosen by the URL's scheme.
use std::time::{Duration, Instant};

use oauthd_store::StoreError;

/// Also: opening is a `Send` future, so a server may open its store inside a task.
#[tokio::test]
async fn sqlite_urls_open_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("open.db").display());
    let store = tokio::spawn(async move { oauthd_store::open(&url).await })
        .await
        .unwrap()
        .unwrap();
    store.ping().await.unwrap();
    let (applied, known) = store.schema_version().await.unwrap();
    assert_eq!((applied, known), (8, 8));
}

/// A database made by the first release (schema 1) gains the later migrations when opened,
/// data kept.
#[tokio::test]
async fn a_version_1_sqlite_database_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL);
             INSERT INTO schema_migrations VALUES (1, 0);",
        )
        .unwrap();
        conn.execute_batch(include_str!("../migrations/sqlite/0001_initial.sql"))
            .unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, username, password_hash, created_at) VALUES ('u1', 'alice', 'x', 0);
             INSERT INTO clients VALUES ('app', 'App', 'public', NULL, 'myapp://cb', 'authorization_code',
                                         'api', 0, 'strict', 600, 3600, 'opaque', 'ES256', 'RS256', '', 0);",
        )
        .unwrap();
    }
    let store = oauthd_store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert_eq!(store.schema_version().await.unwrap(), (8, 8));
    assert!(store.user_by_username("alice").await.unwrap().is_some());
    // The client counter starts with the upgrade: a client from before is found, and a change
    // to it is seen.
    assert_eq!(store.client("app").await.unwrap().unwrap().name, "App");
    assert!(store.delete_client("app").await.unwrap());
    assert_eq!(store.client("app").await.unwrap(), None);
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let index: String = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'codes_grant'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(index.ends_with("WHERE grant_id IS NOT NULL"), "{index}");
    // What the cascade from a deleted grant runs: a search by the (partial) index, not a scan
    // of every stored code.
    let plan: String = conn
        .query_row(
            "EXPLAIN QUERY PLAN SELECT rowid FROM codes WHERE grant_id = ?",
            ["g1"],
            |r| r.get(3),
        )
        .unwrap();
    assert!(plan.contains("INDEX codes_grant (grant_id=?)"), "{plan}");
}

#[tokio::test]
async fn other_schemes_are_refused_without_echoing_the_url() {
    for (url, scheme) in [
        ("mysql://root:hunter2@db/oauthd", "mysql"),
        ("postgres:/no-authority", "postgres"),
        ("/var/lib/oauthd.db", "none"),
        ("", "none"),
    ] {
        match oauthd_store::open(url).await {
            Err(e @ StoreError::UnsupportedUrl(_)) => {
                let message = e.to_string();
                assert!(message.contains(&format!("{scheme:?}")), "{message}");
                assert!(!message.contains("hunter2"), "{message}");
            }
            Err(e) => panic!("{url}: {e}"),
            Ok(_) => panic!("{url}: opened"),
        }
    }
}

/// Nothing listens on port 1: the error comes at once, as `Unavailable`, not a hang.
#[tokio::test]
async fn an_unreachable_postgres_fails_in_bounded_time() {
    let started = Instant::now();
    let result = oauthd_store::open("postgres://oauthd@127.0.0.1:1/oauthd").await;
    assert!(matches!(result, Err(StoreError::Unavailable(_))));
    assert!(started.elapsed() < Duration::from_secs(10));
}
