//! The first store a process opens sets SQLite up before anything starts
//! it: each write's savepoint journal in one piece of memory (a malloc and
//! a free per write, where 1 KiB pieces took about 77 of each per API
//! call). Its own test binary: another test opening SQLite first would
//! leave the process on the fallback.

use pwmail_store::SqliteStore;

#[tokio::test]
async fn the_store_sets_the_journal_up_before_the_migrations_start_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("j.db").display());
    let store = SqliteStore::open(&url).await.unwrap();
    assert!(SqliteStore::journal_in_one_piece());
    drop(store);
}
