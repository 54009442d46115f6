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
    assert_eq!(store.schema_version().await.unwrap().0, 1);
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
