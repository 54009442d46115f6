//! Schema migrations, embedded in the binary and applied at start, each in its own
//! transaction (PostgreSQL DDL is transactional, so a half-applied migration never remains).
//!
//! Several instances may start at once against one database: each migration transaction
//! first takes a transaction-scoped advisory lock, so exactly one of them applies a given
//! version and the others, once the lock is theirs, find it recorded and skip it.
use sqlx::PgPool;

use crate::StoreResult;
use crate::codec::db_err;

pub(crate) const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        include_str!("../../migrations/postgres/0001_initial.sql"),
    ),
    (
        2,
        include_str!("../../migrations/postgres/0002_client_changes.sql"),
    ),
    (
        3,
        include_str!("../../migrations/postgres/0003_server_secrets.sql"),
    ),
    (
        4,
        include_str!("../../migrations/postgres/0004_slim_codes.sql"),
    ),
    (
        5,
        include_str!("../../migrations/postgres/0005_short_hashes.sql"),
    ),
];

/// The advisory lock key of oauthd's migrations ("oauthd" in ASCII). Advisory locks are per
/// database, so stores in different schemas of one database take turns too (harmlessly).
pub(crate) const MIGRATION_LOCK: i64 = 0x6f61_7574_6864;

/// The newest version this binary knows.
pub(crate) fn known() -> i64 {
    MIGRATIONS.iter().map(|(v, _)| *v).max().unwrap_or(0)
}

pub(crate) async fn run(pool: &PgPool) -> StoreResult<()> {
    for (version, sql) in MIGRATIONS {
        let mut tx = pool.begin().await.map_err(db_err)?;
        // A migration may take longer than a request's statement timeout; waiting for
        // another instance's migration is bounded by the lock timeout instead.
        // (Through `Executor::execute`, as below: `RawSql::execute`'s future is not `Send`
        // for every lifetime, which would keep callers from opening a store in a task.)
        sqlx::Executor::execute(
            &mut *tx,
            sqlx::raw_sql("SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = '60s'"),
        )
        .await
        .map_err(db_err)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        // Under the lock, so concurrent starts never race on creating it.
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let applied: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)",
        )
        .bind(version)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        if applied {
            tx.rollback().await.map_err(db_err)?;
            continue;
        }
        sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(sql))
            .await
            .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, EXTRACT(EPOCH FROM now())::BIGINT)",
        )
        .bind(version)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
    }
    Ok(())
}
