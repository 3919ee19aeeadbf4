//! A schema of its own on the machine's PostgreSQL for each test.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};

/// `PWMAIL_TEST_POSTGRES`, else the machine's PostgreSQL.
pub fn base_url() -> String {
    std::env::var("PWMAIL_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The `host:port` of [`base_url`] (`127.0.0.1:5432` when it names none):
/// where a [`TcpProxy`] in front of the test database must point.
pub fn base_addr() -> SocketAddr {
    let url = base_url();
    host_port(&url)
        .and_then(|hp| std::net::ToSocketAddrs::to_socket_addrs(hp).ok()?.next())
        .unwrap_or_else(|| panic!("PWMAIL_TEST_POSTGRES {url:?} names no reachable host:port"))
}

/// The `host[:port]` part of a `postgres://user@host:port/db` URL, with the
/// default port added.
fn host_port(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    Some(host_port)
}

/// A fresh schema; dropped by [`PgSchema::drop_schema`], or when the
/// value is dropped without it (a test that failed half-way).
pub struct PgSchema {
    pub name: String,
    base: String,
    dropped: bool,
}

impl PgSchema {
    pub async fn create() -> PgSchema {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let base = base_url();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let name = format!(
            "pwmail_t_{}_{}_{}",
            std::process::id(),
            nanos % 1_000_000_000,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&base)
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL at {base} (set PWMAIL_TEST_POSTGRES to another): {e}")
            });
        let sql = format!("CREATE SCHEMA {name}");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .expect("create schema");
        PgSchema {
            name,
            base,
            dropped: false,
        }
    }

    /// The database URL of this schema, optionally through `via` (a proxy).
    pub fn url(&self, via: Option<SocketAddr>) -> String {
        let base = match (via, host_port(&self.base)) {
            (Some(addr), Some(hp)) => self.base.replacen(hp, &addr.to_string(), 1),
            _ => self.base.clone(),
        };
        format!("{base}?options[search_path]={}", self.name)
    }

    pub async fn drop_schema(mut self) {
        drop_named(&self.base, &self.name).await;
        self.dropped = true;
    }
}

async fn drop_named(base: &str, name: &str) {
    if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(base).await {
        let sql = format!("DROP SCHEMA IF EXISTS {name} CASCADE");
        let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await;
    }
}

impl Drop for PgSchema {
    /// A test that panicked before `drop_schema` still leaves no schema:
    /// dropped on a thread of its own (with its own runtime, since this may
    /// run on the test's).
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (base, name) = (self.base.clone(), self.name.clone());
        let dropping = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                runtime.block_on(drop_named(&base, &name));
            }
        });
        let _ = dropping.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn exists(name: &str) -> bool {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&base_url())
            .await
            .unwrap();
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
        )
        .bind(name)
        .fetch_one(&mut conn)
        .await
        .unwrap()
    }

    /// A schema whose test ends without `drop_schema` (a failed assertion
    /// unwinds past it) is dropped all the same.
    #[tokio::test]
    async fn a_schema_is_dropped_even_when_its_test_fails() {
        let schema = PgSchema::create().await;
        let name = schema.name.clone();
        assert!(exists(&name).await);
        let failed = tokio::spawn(async move {
            let _schema = schema;
            panic!("a failing test");
        })
        .await;
        assert!(failed.is_err());
        assert!(!exists(&name).await, "{name} left behind");

        let schema = PgSchema::create().await;
        let name = schema.name.clone();
        schema.drop_schema().await;
        assert!(!exists(&name).await);
    }

    #[test]
    fn finds_host_and_port_in_urls() {
        assert_eq!(
            host_port("postgres://postgres@127.0.0.1:5432/test"),
            Some("127.0.0.1:5432")
        );
        assert_eq!(
            host_port("postgres://u:p@db.internal:6543?sslmode=disable"),
            Some("db.internal:6543")
        );
        assert_eq!(host_port("postgres://localhost/x"), Some("localhost"));
    }
}
