//! A write whose savepoint journal outgrows what SQLite keeps in memory
//! spills to a temporary file and succeeds. With the in-memory piece set
//! past what SQLite's unix file layer writes in one call (1 MiB did), the
//! spill came out short and the write failed with SQLITE_FULL, "database
//! or disk is full": a purge window of a few hundred emails, and any other
//! write that changes as many pages. In a process of its own, as the
//! journal is set before SQLite starts (`SqliteStore::open` does it first).

use std::str::FromStr;

use pwmail_store::*;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

#[tokio::test]
async fn a_window_of_two_thousand_emails_is_deleted_in_one_write() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("big.db").display());
    let store = SqliteStore::open(&url).await.unwrap();
    let pool = SqlitePool::connect_with(SqliteConnectOptions::from_str(&url).unwrap())
        .await
        .unwrap();
    // Sent long ago, with Message-IDs in random order (as real ones are),
    // so each deleted row touches its own pages of the indexes.
    sqlx::query(
        "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 50000)
         INSERT INTO outbox (message_id, kind, recipient, subject, state, attempts, created_at,
                             queued_at, sent_at, settled_at, request_id)
         SELECT hex(randomblob(16)) || '@test', 'send_password_email', 'u@example.com', 's',
                'sent', 1, 1, 1, 2, 2, hex(randomblob(16)) FROM s",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let window = store
        .purge_window(Aging::Emails, 0, 2000, 1_000, 1_000)
        .await
        .expect("a write this large spills and succeeds")
        .expect("SQLite has no other purge");
    assert_eq!((window.scanned, window.deleted), (2000, 2000));
    assert_eq!(
        store.count_due(Aging::Emails, 1_000, 1_000).await.unwrap(),
        48_000
    );
}
