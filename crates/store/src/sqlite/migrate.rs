//! Schema migrations, embedded in the binary and applied at start, each in its own
//! transaction, so a half-applied migration never remains.
use sqlx::SqlitePool;

use crate::StoreResult;
use crate::codec::db_err;

pub(crate) const MIGRATIONS: &[(i64, &str)] =
    &[(1, include_str!("../../migrations/sqlite/0001_initial.sql"))];

pub(crate) async fn run(pool: &SqlitePool) -> StoreResult<()> {
    sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
        .execute(pool)
        .await
        .map_err(db_err)?;
    for (version, sql) in MIGRATIONS {
        let mut tx = pool.begin().await.map_err(db_err)?;
        // Claim the version first: a second process starting at the same moment waits on the
        // write lock and then finds it taken.
        let claimed = sqlx::query(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?, strftime('%s','now')) ON CONFLICT DO NOTHING",
        )
        .bind(version)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
        .rows_affected()
            == 1;
        if claimed {
            // Through `Executor::execute` (a boxed, `Send` future) rather than
            // `RawSql::execute`, whose future is not `Send` for every lifetime: callers may
            // then open the store inside `tokio::spawn`.
            sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(sql))
                .await
                .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
        }
    }
    Ok(())
}
