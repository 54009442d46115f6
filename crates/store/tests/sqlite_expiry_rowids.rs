//! Codes, tokens and grants numbered from 1 (stored before schema 5, or restored from a `.dump`,
//! which drops rowids) keep every row, are purged at their expiry, neither earlier nor later, and
//! move to rowids ordered by expiry when the store starts.
use std::sync::Arc;

use oauthd_core::secret::{Secret, SecretKind};
use oauthd_store::TokenStatus;
use oauthd_store::conformance::{DynStore, purge_all};
use oauthd_store::sqlite::SqliteStore;

const NOW: i64 = 1_700_000_000;

/// A database at schema 4 holding, for each expiry given, one grant with one access and one
/// refresh token and one code, all expiring then; the tokens' secrets.
fn schema_4_with(path: &std::path::Path, expiries: &[i64]) -> Vec<(Secret, Secret, Secret)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL);
         INSERT INTO schema_migrations VALUES (1, 0), (2, 0), (3, 0), (4, 0);",
    )
    .unwrap();
    for sql in [
        include_str!("../migrations/sqlite/0001_initial.sql"),
        include_str!("../migrations/sqlite/0002_cascade_indexes.sql"),
        include_str!("../migrations/sqlite/0003_client_changes.sql"),
        include_str!("../migrations/sqlite/0004_partial_codes_grant.sql"),
    ] {
        conn.execute_batch(sql).unwrap();
    }
    conn.execute_batch(
        "INSERT INTO clients VALUES ('c1', 'App', 'public', NULL, '[\"myapp://cb\"]',
             '[\"authorization_code\",\"refresh_token\"]', 'a', 0, 'strict', 600, 3600, 'opaque',
             'ES256', 'RS256', '[]', 0);
         INSERT INTO users VALUES ('u1', 'alice', '$argon2id$x', NULL, NULL, 0);",
    )
    .unwrap();
    let mut secrets = Vec::new();
    for (i, &expires_at) in expiries.iter().enumerate() {
        let grant = format!("g{i}");
        let access = Secret::generate(SecretKind::AccessToken);
        let refresh = Secret::generate(SecretKind::RefreshToken);
        let code = Secret::generate(SecretKind::AuthorizationCode);
        conn.execute(
            "INSERT INTO grants (id, client_id, user_id, scope, auth_time, created_at, expires_at)
             VALUES (?, 'c1', 'u1', 'a', 0, 0, ?)",
            rusqlite::params![grant, expires_at],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO access_tokens (hash, grant_id, scope, issued_at, expires_at)
             VALUES (?, ?, 'a', 0, ?)",
            rusqlite::params![access.hash().as_str(), grant, expires_at],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO refresh_tokens (hash, grant_id, access_hash, issued_at, expires_at)
             VALUES (?, ?, ?, 0, ?)",
            rusqlite::params![
                refresh.hash().as_str(),
                grant,
                access.hash().as_str(),
                expires_at
            ],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO codes (hash, client_id, user_id, redirect_uri, redirect_uri_sent, scope,
                                code_challenge, pkce_mode, auth_time, created_at, expires_at)
             VALUES (?, 'c1', 'u1', 'myapp://cb', 1, 'a',
                     'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', 'strict', 0, 0, ?)",
            rusqlite::params![code.hash().as_str(), expires_at],
        )
        .unwrap();
        secrets.push((access, refresh, code));
    }
    secrets
}

async fn open(path: &std::path::Path) -> DynStore {
    Arc::new(
        SqliteStore::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap(),
    )
}

/// Every row of the four tables is in its expiry's slot (n at most 1: two rows share a second
/// in these tests); how many rows each table holds.
fn rows_in_slots(path: &std::path::Path) -> Vec<i64> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut counts = Vec::new();
    for table in ["codes", "access_tokens", "refresh_tokens", "grants"] {
        let (rows, misplaced): (i64, i64) = conn
            .query_row(
                &format!(
                    "SELECT count(*), count(*) FILTER (WHERE rowid >> 22 != max(expires_at, 1048576)
                                                        OR rowid & 4194303 > 1)
                     FROM {table}"
                ),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(misplaced, 0, "{table}");
        counts.push(rows);
    }
    counts
}

/// Purges at the given times, checking after each which rows' tokens are still stored; then
/// that the last row's code is kept an hour past its expiry at NOW + 30.
async fn purges_are_exact(store: &DynStore, old: &[(Secret, Secret, Secret)]) {
    for (now, live) in [
        (NOW + 9, [true, true, true, false, true]),
        (NOW + 10, [true, false, true, false, true]),
        (NOW + 19, [true, false, true, false, true]),
        (NOW + 20, [false, false, false, false, true]),
    ] {
        purge_all(store, now).await;
        for (i, (access, refresh, _)) in old.iter().enumerate() {
            let want = if live[i] {
                TokenStatus::Active
            } else {
                TokenStatus::Unknown
            };
            // Status as of 1970, so only whether the row is stored decides it.
            let access = store
                .access_token_status(&access.hash(), -10)
                .await
                .unwrap();
            let refresh = store
                .refresh_token_status(&refresh.hash(), -10)
                .await
                .unwrap();
            assert_eq!(
                (access, refresh),
                (want, want),
                "row {i} after purge at {now}"
            );
        }
    }
    purge_all(store, NOW + 30 + 3599).await;
    assert!(store.code(&old[4].2.hash()).await.unwrap().is_some());
    purge_all(store, NOW + 30 + 3600).await;
    assert!(store.code(&old[4].2.hash()).await.unwrap().is_none());
}

/// Out of expiry order, two in one second, one before 1970 (clamped to the first slot,
/// 1970-01-13).
const EXPIRIES: [i64; 5] = [NOW + 20, NOW + 10, NOW + 20, -5, NOW + 30];

#[tokio::test]
async fn rows_stored_before_migration_5_are_renumbered_and_purged_at_their_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("schema4.db");
    let old = schema_4_with(&path, &EXPIRIES);

    let store = open(&path).await;
    assert_eq!(store.schema_version().await.unwrap(), (8, 8));
    assert_eq!(rows_in_slots(&path), [5, 5, 5, 5]);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let expiry_indexes: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name IN
             ('codes_expiry', 'access_tokens_expiry', 'refresh_tokens_expiry', 'grants_expiry')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(expiry_indexes, 0);
    let fk_violations: i64 = conn
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(fk_violations, 0);
    purges_are_exact(&store, &old).await;
}

/// Renumbers every row of the four tables from 1, as restoring a sqlite3 shell `.dump` does (it
/// drops rowids).
fn number_from_1(path: &std::path::Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    for table in ["codes", "access_tokens", "refresh_tokens", "grants"] {
        conn.execute(
            &format!(
                "UPDATE {table} SET rowid = (SELECT count(*) FROM {table} AS u WHERE u.rowid <= {table}.rowid)"
            ),
            [],
        )
        .unwrap();
    }
}

/// Rows numbered from 1, below every slot, under a running store: housekeeping purges them by
/// their expiry, not all at once.
#[tokio::test]
async fn rows_numbered_from_1_under_a_running_store_are_purged_by_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("restored.db");
    let old = schema_4_with(&path, &EXPIRIES);
    let store = open(&path).await;
    number_from_1(&path);
    purges_are_exact(&store, &old).await;
}

/// A restored dump (rows numbered from 1) is moved back into its slots when the store starts.
#[tokio::test]
async fn rows_numbered_from_1_are_moved_into_their_slots_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("restored.db");
    let old = schema_4_with(&path, &EXPIRIES);
    drop(open(&path).await);
    number_from_1(&path);
    let store = open(&path).await;
    assert_eq!(rows_in_slots(&path), [5, 5, 5, 5]);
    purges_are_exact(&store, &old).await;
}
