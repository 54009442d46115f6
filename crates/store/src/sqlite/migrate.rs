//! Schema migrations, embedded in the binary and applied at start, each in its own
//! transaction, so a half-applied migration never remains. Then rows numbered outside their
//! expiry's slot are moved into it (`expiry_rowid`).
use rusqlite::{Connection, TransactionBehavior};

use super::engine::unavailable;
use crate::StoreResult;

pub(crate) const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_initial.sql")),
    (
        2,
        include_str!("../../migrations/sqlite/0002_cascade_indexes.sql"),
    ),
    (
        3,
        include_str!("../../migrations/sqlite/0003_client_changes.sql"),
    ),
    (
        4,
        include_str!("../../migrations/sqlite/0004_partial_codes_grant.sql"),
    ),
    (
        5,
        include_str!("../../migrations/sqlite/0005_expiry_ordered_rowids.sql"),
    ),
    (
        6,
        include_str!("../../migrations/sqlite/0006_server_secrets.sql"),
    ),
    (
        7,
        include_str!("../../migrations/sqlite/0007_slim_codes.sql"),
    ),
    (
        8,
        include_str!("../../migrations/sqlite/0008_short_hashes.sql"),
    ),
];

pub(crate) fn run(conn: &mut Connection) -> StoreResult<()> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
        .map_err(unavailable)?;
    for (version, sql) in MIGRATIONS {
        // IMMEDIATE: a second process starting at the same moment waits on the write lock
        // here and then finds the version taken.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(unavailable)?;
        let claimed = tx
            .execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, strftime('%s','now')) ON CONFLICT DO NOTHING",
                [version],
            )
            .map_err(unavailable)?
            == 1;
        if claimed {
            tx.execute_batch(sql).map_err(unavailable)?;
        }
        tx.commit().map_err(unavailable)?;
    }
    let strays = super::expiry_rowid::renumber_strays(conn).map_err(unavailable)?;
    if strays > 0 {
        tracing::info!(
            rows = strays,
            "moved codes, tokens and grants numbered from 1 (stored before schema 5, or restored from a .dump) to rowids ordered by expiry"
        );
    }
    Ok(())
}
