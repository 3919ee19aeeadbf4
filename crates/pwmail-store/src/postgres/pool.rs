//! PostgreSQL connections, pooled without sqlx's pool.
//!
//! sqlx's pool pings a connection when it is handed out and again when it
//! comes back: two extra round trips around every statement, which on an API
//! call of four statements and a send of two was two thirds of the round
//! trips. Here a connection is pinged only when it has sat idle a while, and
//! one that may be in an unknown state is never reused: a [`Conn`] goes
//! back only through [`Conn::release`], after its statements succeeded; one
//! dropped on an error or a cancelled request is closed (it has no `Drop`
//! of its own: dropping it drops the connection).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::{Result, StoreError};

/// A connection idle this long is pinged before use: a database restart
/// or a cut network shows up there, not in the caller's statement.
const PING_IF_IDLE: Duration = Duration::from_secs(1);
/// Idle longer than this, a connection is closed rather than pinged.
const CLOSE_IF_IDLE: Duration = Duration::from_secs(600);
/// A connection older than this is closed when it comes back, so the
/// server can free what a long session accumulates.
const MAX_LIFETIME: Duration = Duration::from_secs(1800);

struct Idle {
    conn: PgConnection,
    born: Instant,
    since: Instant,
}

pub(super) struct Pool {
    options: PgConnectOptions,
    acquire_timeout: Duration,
    max: usize,
    /// One permit per connection in use, so at most `max` exist.
    permits: Semaphore,
    idle: Mutex<Vec<Idle>>,
    /// Connections opened so far (tests check that calls reuse them).
    opened: AtomicU64,
}

/// A connection lent out. Dropped without [`Conn::release`], it is closed.
pub(super) struct Conn<'a> {
    conn: PgConnection,
    born: Instant,
    pool: &'a Pool,
    _permit: SemaphorePermit<'a>,
}

impl Pool {
    pub(super) fn new(options: PgConnectOptions, sized: crate::PoolOptions) -> Self {
        let max = sized.max_connections.max(1) as usize;
        Pool {
            options,
            acquire_timeout: sized.acquire_timeout,
            max,
            permits: Semaphore::new(max),
            idle: Mutex::new(Vec::new()),
            opened: AtomicU64::new(0),
        }
    }

    /// A live connection, within `acquire_timeout` (waiting for a free
    /// one, connecting, pinging); else the database counts as unavailable.
    pub(super) async fn acquire(&self) -> Result<Conn<'_>> {
        match tokio::time::timeout(self.acquire_timeout, self.acquire_now()).await {
            Ok(conn) => conn,
            Err(_) => Err(StoreError::from(sqlx::Error::PoolTimedOut)),
        }
    }

    async fn acquire_now(&self) -> Result<Conn<'_>> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::from(sqlx::Error::PoolClosed))?;
        loop {
            // The most recently used first: it is the likeliest to be warm.
            let idle = self.lock().pop();
            let Some(mut idle) = idle else {
                let conn = PgConnection::connect_with(&self.options).await?;
                self.opened.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("opened a PostgreSQL connection");
                return Ok(Conn {
                    conn,
                    born: Instant::now(),
                    pool: self,
                    _permit: permit,
                });
            };
            let idle_for = idle.since.elapsed();
            if idle_for >= CLOSE_IF_IDLE {
                tracing::debug!("closed a PostgreSQL connection idle too long");
                continue;
            }
            if idle_for >= PING_IF_IDLE && idle.conn.ping().await.is_err() {
                tracing::debug!("a PostgreSQL connection idle a while failed its ping");
                continue;
            }
            return Ok(Conn {
                conn: idle.conn,
                born: idle.born,
                pool: self,
                _permit: permit,
            });
        }
    }

    #[cfg(feature = "testing")]
    pub(super) fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Conn<'_> {
    /// Gives the connection back for reuse: call only after its last
    /// statement (or transaction) finished without error.
    pub(super) fn release(self) {
        let Conn {
            conn,
            born,
            pool,
            _permit: permit,
        } = self;
        {
            let mut idle = pool.lock();
            if born.elapsed() < MAX_LIFETIME && idle.len() < pool.max {
                idle.push(Idle {
                    conn,
                    born,
                    since: Instant::now(),
                });
            }
        }
        // Only now may a waiting caller look for an idle connection.
        drop(permit);
    }
}

impl std::ops::Deref for Conn<'_> {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    async fn backend(conn: &mut PgConnection) -> i32 {
        sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(conn)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_released_connection_is_lent_again_and_a_dropped_one_never() {
        let options = PgConnectOptions::from_str(&pwmail_testkit::pg::base_url()).unwrap();
        let pool = Pool::new(
            options,
            crate::PoolOptions {
                acquire_timeout: Duration::from_secs(5),
                max_connections: 2,
            },
        );
        let mut first = pool.acquire().await.unwrap();
        let pid = backend(&mut first).await;
        first.release();
        let mut again = pool.acquire().await.unwrap();
        assert_eq!(backend(&mut again).await, pid, "released: reused");
        again.release();
        tokio::time::sleep(PING_IF_IDLE + Duration::from_millis(100)).await;
        let mut pinged = pool.acquire().await.unwrap();
        assert_eq!(
            backend(&mut pinged).await,
            pid,
            "idle a while: pinged, reused"
        );
        drop(pinged);
        let mut fresh = pool.acquire().await.unwrap();
        assert_ne!(
            backend(&mut fresh).await,
            pid,
            "dropped: closed, never lent again"
        );
        fresh.release();
    }
}
