//! Helpers shared by the test binaries (`#[path]`-included; not a test target itself).

/// The value of a hidden input in a page.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// A fresh PostgreSQL schema for one test, dropped when this guard goes.
pub struct PgSchema {
    pub url: String,
    base: String,
    name: String,
}

impl PgSchema {
    /// A schema on the server at `base` (a `postgres://` URL); `url` connects to it.
    pub async fn create(base: &str) -> PgSchema {
        use sqlx::Connection as _;
        let name = format!(
            "t_{}",
            oauthd_core::secret::random_id()
                .to_lowercase()
                .replace(['-', '_'], "")
        );
        let mut conn = sqlx::PgConnection::connect(base)
            .await
            .expect("connect to OAUTHD_TEST_POSTGRES_URL");
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        PgSchema {
            url: format!("{base}{sep}options[search_path]={name}"),
            base: base.to_owned(),
            name,
        }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        // Drop runs inside a runtime; do the async cleanup on a thread of its own.
        let _ = std::thread::spawn(move || {
            use sqlx::Connection as _;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&base).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA {name} CASCADE"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// The PostgreSQL server tests may use, if any (`OAUTHD_TEST_POSTGRES_URL`).
pub fn postgres_url() -> Option<String> {
    std::env::var("OAUTHD_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
}
