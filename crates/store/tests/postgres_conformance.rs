//! The storage conformance suite on PostgreSQL, each test in a fresh schema of the database
//! that `OAUTHD_TEST_POSTGRES_URL` names (e.g. `postgres://postgres@127.0.0.1:5432/test`).
//! Without that variable every test here says it skipped, on stderr, and passes.
use std::hash::{BuildHasher as _, RandomState};
use std::io::Write as _;
use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use oauthd_core::scope::Scope;
use oauthd_core::secret::SecretHash;
use oauthd_store::conformance::DynStore;
use oauthd_store::postgres::PostgresStore;
use oauthd_store::{OpsStore as _, Purge, Store};

const URL_VAR: &str = "OAUTHD_TEST_POSTGRES_URL";

/// The database URL, or `None` after saying the test is skipped. Written to the process's
/// stderr directly, so the line shows even where the test harness captures output.
fn base_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let _ = writeln!(std::io::stderr(), "skipped: {URL_VAR} is not set");
            None
        }
    }
}

/// A plain connection to the database itself, for creating and dropping schemas.
async fn admin(url: &str) -> Result<PgConnection, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?.options([("statement_timeout", "30s")]);
    PgConnection::connect_with(&options).await
}

/// A fresh schema, dropped with everything in it when the guard goes (also when the test
/// fails).
struct Schema {
    base: String,
    name: String,
    /// The database URL with this schema as the search path.
    url: String,
}

impl Schema {
    async fn create(base: &str) -> Schema {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let seed = (
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now(),
        );
        let name = format!("t_{:016x}", RandomState::new().hash_one(seed));
        let mut conn = admin(base).await.expect("connect to the test database");
        let create = format!("CREATE SCHEMA {name}");
        sqlx::raw_sql(&create)
            .execute(&mut conn)
            .await
            .expect("create a schema");
        let _ = conn.close().await;
        let sep = if base.contains('?') { '&' } else { '?' };
        Schema {
            url: format!("{base}{sep}options[search_path]={name}"),
            base: base.to_owned(),
            name,
        }
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on; a thread with a
        // runtime of its own does the work, and the test waits for it.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let mut conn = admin(&base).await?;
                let drop = format!("DROP SCHEMA IF EXISTS {name} CASCADE");
                sqlx::raw_sql(&drop).execute(&mut conn).await?;
                conn.close().await
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop schema {}: {e}", self.name),
            Err(_) => eprintln!("could not drop schema {}: the cleanup panicked", self.name),
        }
    }
}

/// A store in its own schema; the schema goes when the test ends.
async fn fresh() -> Option<(DynStore, Schema)> {
    let base = base_url()?;
    let schema = Schema::create(&base).await;
    let store = PostgresStore::connect(&schema.url)
        .await
        .expect("connect the store");
    Some((Arc::new(store), schema))
}

oauthd_store::conformance_suite!(fresh());

/// Two instances on one schema: a client change made through one is seen by the other's next
/// lookup, though it keeps decoded clients in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_changes_elsewhere_are_seen() {
    let Some((here, schema)) = fresh().await else {
        return;
    };
    let elsewhere: DynStore = Arc::new(PostgresStore::connect(&schema.url).await.unwrap());
    oauthd_store::conformance::client_changes_elsewhere_are_seen(here, elsewhere).await;
}

/// A client changed by hand from another session, whose search path does not name the store's
/// schema (psql, another tool), is seen by the store's next lookup: the trigger still finds
/// the schema's change counter.
#[tokio::test]
async fn client_changes_by_hand_are_seen() {
    let Some((store, schema)) = fresh().await else {
        return;
    };
    store
        .insert_client(&oauthd_store::conformance::sample_client("c1"))
        .await
        .unwrap();
    assert_eq!(store.client("c1").await.unwrap().unwrap().name, "Sample");
    let mut conn = admin(&schema.base).await.unwrap();
    let rename = format!(
        "UPDATE {}.clients SET name = 'Renamed' WHERE client_id = 'c1'",
        schema.name
    );
    sqlx::query(&rename).execute(&mut conn).await.unwrap();
    let _ = conn.close().await;
    assert_eq!(store.client("c1").await.unwrap().unwrap().name, "Renamed");
}

/// Three instances (three pools, as three processes would have) starting at once on an empty
/// schema: every one starts, the schema is migrated exactly once, and all agree on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_migrations_apply_once() {
    let Some(base) = base_url() else { return };
    let schema = Schema::create(&base).await;
    let starts: Vec<_> = (0..3)
        .map(|_| {
            let url = schema.url.clone();
            tokio::spawn(async move { PostgresStore::connect(&url).await })
        })
        .collect();
    let mut stores = Vec::new();
    for start in starts {
        stores.push(start.await.unwrap().expect("every instance starts"));
    }
    let mut versions = Vec::new();
    for store in &stores {
        versions.push(store.schema_version().await.unwrap());
    }
    let (applied, known) = versions[0];
    assert!(known >= 1 && applied == known, "{versions:?}");
    assert!(versions.iter().all(|v| *v == versions[0]), "{versions:?}");

    let mut conn = admin(&base).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1
         ORDER BY table_name COLLATE \"C\"",
    )
    .bind(&schema.name)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        tables,
        [
            "access_tokens",
            "change_counters",
            "clients",
            "codes",
            "consents",
            "grants",
            "pending_authorizations",
            "refresh_tokens",
            "schema_migrations",
            "server_secrets",
            "sessions",
            "signing_keys",
            "users",
        ]
    );
    let select = format!(
        "SELECT version FROM {}.schema_migrations ORDER BY version",
        schema.name
    );
    let recorded: Vec<i64> = sqlx::query_scalar(&select)
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        recorded,
        (1..=known).collect::<Vec<_>>(),
        "each migration recorded once"
    );
    let _ = conn.close().await;

    // A later start finds nothing to do.
    let again = PostgresStore::connect(&schema.url).await.unwrap();
    assert_eq!(again.schema_version().await.unwrap(), (known, known));
}

/// `open` picks the backend by URL scheme.
#[tokio::test]
async fn open_chooses_postgres() {
    let Some(base) = base_url() else { return };
    let schema = Schema::create(&base).await;
    let store: Arc<dyn Store> = oauthd_store::open(&schema.url).await.unwrap();
    store.ping().await.unwrap();
    let postgresql = schema.url.replacen("postgres://", "postgresql://", 1);
    let store = oauthd_store::open(&postgresql).await.unwrap();
    let (applied, known) = store.schema_version().await.unwrap();
    assert_eq!(applied, known);
}

/// Rotations of one algorithm racing on several instances take turns: every one succeeds,
/// each retires the key before it, and exactly one key is left active.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_key_rotations_take_turns() {
    let Some((store, _schema)) = fresh().await else {
        return;
    };
    let key = |kid: String| oauthd_store::StoredKey {
        kid,
        alg: "ES256".into(),
        private_key: "plain:x".into(),
        public_jwk: "{}".into(),
        created_at: 1_700_000_000,
        rotated_at: None,
        publish_until: None,
        retired_at: None,
    };
    assert!(store.insert_active_key(&key("k0".into())).await.unwrap());
    let rotations: Vec<_> = (1..=8)
        .map(|i| {
            let (store, key) = (store.clone(), key(format!("k{i}")));
            tokio::spawn(async move { store.rotate_key(&key, 1_700_000_010, 1_700_000_100).await })
        })
        .collect();
    let mut previous = Vec::new();
    for rotation in rotations {
        previous.push(rotation.await.unwrap().expect("every rotation succeeds"));
    }
    let mut previous: Vec<String> = previous.into_iter().map(Option::unwrap).collect();
    previous.sort();
    let keys = store.signing_keys().await.unwrap();
    let active: Vec<_> = keys.iter().filter(|k| k.is_active()).collect();
    assert_eq!(active.len(), 1, "{keys:?}");
    // Every key but the last one active was the previous key of exactly one rotation.
    let mut expected: Vec<String> = keys
        .iter()
        .filter(|k| !k.is_active())
        .map(|k| k.kid.clone())
        .collect();
    expected.sort();
    assert_eq!(previous, expected);
}

/// Approvals of one user and client on several instances at once all count: each merges
/// into what the one before it wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_consents_merge() {
    let Some((store, _schema)) = fresh().await else {
        return;
    };
    let client = oauthd_store::conformance::sample_client("c1");
    store.insert_client(&client).await.unwrap();
    let user = oauthd_store::User {
        id: "u1".into(),
        username: "alice".into(),
        password_hash: "$argon2id$x".into(),
        email: None,
        display_name: None,
        created_at: 1_700_000_000,
    };
    store.insert_user(&user).await.unwrap();
    let approvals: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let scope = Scope::parse(&format!("s{i}")).unwrap();
                store
                    .remember_consent("u1", "c1", &scope, 1_700_000_000)
                    .await
            })
        })
        .collect();
    for approval in approvals {
        approval.await.unwrap().unwrap();
    }
    assert_eq!(
        store.consent("u1", "c1").await.unwrap(),
        Some(Scope::parse("s0 s1 s2 s3 s4 s5 s6 s7").unwrap())
    );
}

/// Housekeeping on several instances at once: none waits on another's batch, and between
/// them every expired row goes exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_purges_share_the_work() {
    let Some((store, _schema)) = fresh().await else {
        return;
    };
    let user = oauthd_store::User {
        id: "u1".into(),
        username: "alice".into(),
        password_hash: "$argon2id$x".into(),
        email: None,
        display_name: None,
        created_at: 1_700_000_000,
    };
    store.insert_user(&user).await.unwrap();
    for i in 0..60 {
        store
            .insert_session(&oauthd_store::NewSession {
                id_hash: SecretHash::of(&format!("session {i}")),
                user_id: "u1".into(),
                auth_time: 1_700_000_000,
                expires_at: 1_700_000_010,
            })
            .await
            .unwrap();
    }
    let purgers: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut deleted = 0;
                loop {
                    let n = store
                        .purge(Purge::Sessions, 1_700_000_010, 5)
                        .await
                        .unwrap();
                    if n == 0 {
                        return deleted;
                    }
                    deleted += n;
                }
            })
        })
        .collect();
    let mut total = 0;
    for purger in purgers {
        total += purger.await.unwrap();
    }
    assert_eq!(total, 60);
    assert_eq!(
        store
            .purge(Purge::Sessions, 1_700_000_010, 5)
            .await
            .unwrap(),
        0
    );
}

/// PostgreSQL text cannot hold NUL; a lookup by a value with one (a request can send it)
/// finds nothing instead of failing.
#[tokio::test]
async fn lookups_by_values_with_nul_find_nothing() {
    let Some((store, _schema)) = fresh().await else {
        return;
    };
    assert_eq!(store.client("c\0").await.unwrap(), None);
    assert_eq!(store.user_by_username("alice\0").await.unwrap(), None);
    assert_eq!(store.user_by_id("\0").await.unwrap(), None);
}

/// Schema 5 keeps 128 bits of each stored SHA-256 digest: a schema written before it, with
/// whole digests, is migrated in place, and every secret in it is still found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_hashed_in_full_before_schema_5_are_found_after_it() {
    use oauthd_store::conformance::{
        secrets_stored_before_short_hashes_are_found, store_secrets_before_short_hashes,
    };
    let Some(base) = base_url() else { return };
    let schema = Schema::create(&base).await;
    let store: DynStore = Arc::new(PostgresStore::connect(&schema.url).await.unwrap());
    let before = store_secrets_before_short_hashes(&store).await;
    drop(store);

    // Back to schema 4 as it was: every hash column holds the whole digest.
    let mut conn = admin(&base).await.unwrap();
    for (table, column, short, full) in before.lengthen() {
        let update = format!(
            "UPDATE {}.{table} SET {column} = $1 WHERE {column} = $2",
            schema.name
        );
        let changed = sqlx::query(&update)
            .bind(&full)
            .bind(&short)
            .execute(&mut conn)
            .await
            .unwrap()
            .rows_affected();
        assert!(changed >= 1, "{table}.{column}");
    }
    let forget = format!(
        "DELETE FROM {}.schema_migrations WHERE version = 5",
        schema.name
    );
    sqlx::query(&forget).execute(&mut conn).await.unwrap();
    let _ = conn.close().await;

    let store: DynStore = Arc::new(PostgresStore::connect(&schema.url).await.unwrap());
    assert_eq!(store.schema_version().await.unwrap(), (5, 5));
    secrets_stored_before_short_hashes_are_found(&store, &before).await;
}
