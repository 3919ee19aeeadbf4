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

/// A fresh schema; dropped by [`PgSchema::drop_schema`].
pub struct PgSchema {
    pub name: String,
    base: String,
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
        PgSchema { name, base }
    }

    /// The database URL of this schema, optionally through `via` (a proxy).
    pub fn url(&self, via: Option<SocketAddr>) -> String {
        let base = match (via, host_port(&self.base)) {
            (Some(addr), Some(hp)) => self.base.replacen(hp, &addr.to_string(), 1),
            _ => self.base.clone(),
        };
        format!("{base}?options[search_path]={}", self.name)
    }

    pub async fn drop_schema(self) {
        if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(&self.base).await {
            let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
            let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
