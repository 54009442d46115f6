//! Schema 8 keeps 128 bits of each stored SHA-256 digest: a database written before it, with
//! whole digests, is migrated in place, and every secret in it is still found.
use std::sync::Arc;

use oauthd_store::conformance::{
    DynStore, secrets_stored_before_short_hashes_are_found, store_secrets_before_short_hashes,
};
use oauthd_store::sqlite::SqliteStore;

async fn open(path: &std::path::Path) -> DynStore {
    Arc::new(
        SqliteStore::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap(),
    )
}

#[tokio::test]
async fn secrets_hashed_in_full_before_schema_8_are_found_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("schema7.db");
    let store = open(&path).await;
    let before = store_secrets_before_short_hashes(&store).await;
    drop(store);

    // Back to schema 7 as it was: every hash column holds the whole digest.
    let conn = rusqlite::Connection::open(&path).unwrap();
    for (table, column, short, full) in before.lengthen() {
        assert_eq!(short.len() + 32, full.len());
        let changed = conn
            .execute(
                &format!("UPDATE {table} SET {column} = ?1 WHERE {column} = ?2"),
                [&full, &short],
            )
            .unwrap();
        assert!(changed >= 1, "{table}.{column}");
    }
    conn.execute("DELETE FROM schema_migrations WHERE version = 8", [])
        .unwrap();
    drop(conn);

    let store = open(&path).await;
    assert_eq!(store.schema_version().await.unwrap(), (8, 8));
    let conn = rusqlite::Connection::open(&path).unwrap();
    for (table, column, short, _) in before.lengthen() {
        let found: i64 = conn
            .query_row(
                &format!("SELECT count(*) FROM {table} WHERE {column} = ?1"),
                [&short],
                |r| r.get(0),
            )
            .unwrap();
        assert!(found >= 1, "{table}.{column} shortened");
    }
    drop(conn);
    secrets_stored_before_short_hashes_are_found(&store, &before).await;
}

/// A value of another length was not written by oauthd as a hash: the migration leaves it.
#[tokio::test]
async fn the_migration_shortens_only_what_has_a_hash_length() {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE sessions (id_hash TEXT PRIMARY KEY);
         CREATE TABLE pending_authorizations (id_hash TEXT, browser_hash TEXT, login_session TEXT);
         CREATE TABLE codes (hash TEXT);
         CREATE TABLE access_tokens (hash TEXT);
         CREATE TABLE refresh_tokens (hash TEXT, access_hash TEXT, successor_hash TEXT);",
    )
    .unwrap();
    let digest = "ab".repeat(32);
    let timed = format!("18bcfe5687b{digest}");
    for value in [
        digest.as_str(),
        timed.as_str(),
        "x".repeat(63).as_str(),
        "short",
    ] {
        conn.execute("INSERT INTO sessions VALUES (?)", [value])
            .unwrap();
    }
    conn.execute_batch(include_str!("../migrations/sqlite/0008_short_hashes.sql"))
        .unwrap();
    let stored: Vec<String> = conn
        .prepare("SELECT id_hash FROM sessions ORDER BY id_hash")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // In ORDER BY id_hash's order: digits before letters.
    let expected = vec![
        "18bcfe5687b".to_owned() + &"ab".repeat(16),
        "ab".repeat(16),
        "short".to_owned(),
        "x".repeat(63),
    ];
    assert_eq!(stored, expected);
}
