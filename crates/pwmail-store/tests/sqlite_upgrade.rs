//! An SQLite database made by an earlier pwmail opens with every row kept:
//! migration 0005 rebuilds the outbox table, 0006 adds the link columns,
//! 0008 rebuilds the audit log without foreign keys, and 0017 with a target
//! user that may be absent.

use std::str::FromStr;

use pwmail_store::*;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

const T0: UnixMillis = 1_700_000_000_000;

/// Every row of `table`, its `columns` quoted and joined, in id order.
async fn rows_as_text(pool: &SqlitePool, table: &str, columns: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = columns.iter().map(|c| format!("quote({c})")).collect();
    // The table and column names are this file's own constants.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM {table} ORDER BY id",
        quoted.join(" || ',' || ")
    )))
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|row| row.get::<String, _>(0))
    .collect()
}

/// Every outbox row, every column, as text.
async fn outbox_rows(pool: &SqlitePool) -> Vec<String> {
    let columns = [
        "id",
        "message_id",
        "kind",
        "recipient",
        "subject",
        "body_text",
        "body_html",
        "state",
        "attempts",
        "next_attempt_at",
        "lease_owner",
        "lease_until",
        "last_error",
        "last_reply",
        "created_at",
        "queued_at",
        "sent_at",
        "settled_at",
        "request_id",
        "user_id",
    ];
    rows_as_text(pool, "outbox", &columns).await
}

/// Every audit row, every column, as text.
async fn audit_rows(pool: &SqlitePool) -> Vec<String> {
    let columns = [
        "id",
        "at",
        "actor_user_id",
        "actor_token_id",
        "target_user_id",
        "operation",
        "request_id",
        "outbox_id",
        "idempotency_key",
    ];
    rows_as_text(pool, "audit_log", &columns).await
}

async fn pool(url: &str) -> SqlitePool {
    let options = SqliteConnectOptions::from_str(url)
        .unwrap()
        .create_if_missing(true)
        .foreign_keys(true);
    sqlx::pool::PoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_database_of_migration_3_opens_with_its_outbox_intact() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("old.db").display());

    // The schema as pwmail left it before 0005, with rows that point at the
    // outbox from other tables.
    let old = pool(&url).await;
    sqlx::migrate!("./migrations/sqlite")
        .run_to(3, &old)
        .await
        .unwrap();
    for statement in [
        "INSERT INTO users (id, email, email_key, name, is_admin, created_at)
         VALUES (1, 'A@example.com', 'a@example.com', 'A', 1, 1)",
        "INSERT INTO api_tokens (id, user_id, token_hash, label, created_at)
         VALUES (7, 1, zeroblob(32), 'bootstrap', 1)",
        "INSERT INTO reset_links (id, user_id, token_hash, purpose, created_at, expires_at, request_id)
         VALUES (3, 1, randomblob(32), 'send_password_email', 1, 9000000000000, 'r-1')",
        "INSERT INTO outbox (id, message_id, kind, recipient, subject, body_text, body_html, state,
                             next_attempt_at, created_at, queued_at, request_id, user_id)
         VALUES (11, 'm-11', 'send_password_email', 'A@example.com', 'Set', 'text', '<p>html</p>',
                 'queued', 5, 1, 1, 'r-1', 1)",
        "INSERT INTO outbox (id, message_id, kind, recipient, subject, state, attempts,
                             last_reply, created_at, queued_at, sent_at, settled_at, request_id, user_id)
         VALUES (12, 'm-12', 'send_password_email', 'A@example.com', 'Set', 'sent', 1,
                 '250 ok', 1, 1, 2, 2, 'r-0', 1)",
        "INSERT INTO outbox (id, message_id, kind, recipient, subject, body_text, body_html, state,
                             attempts, last_error, created_at, queued_at, settled_at, request_id, user_id)
         VALUES (13, 'm-13', 'password_changed', 'A@example.com', 'Changed', 't', 'h', 'dead',
                 8, '550 no', 1, 1, 3, 'r-2', 1)",
        "INSERT INTO audit_log (at, actor_user_id, actor_token_id, target_user_id, operation,
                                request_id, outbox_id)
         VALUES (1, 1, 7, 1, 'send_password_email', 'r-1', 11)",
        "INSERT INTO idempotency_keys (token_id, operation, key, fingerprint, outbox_id,
                                       request_id, created_at, expires_at)
         VALUES (7, 'send_password_email', 'k', 'f', 11, 'r-1', 1, 9000000000000)",
    ] {
        sqlx::query(statement).execute(&old).await.unwrap();
    }
    let before = outbox_rows(&old).await;
    assert_eq!(before.len(), 3);
    let audit_before = audit_rows(&old).await;
    assert_eq!(audit_before.len(), 1);
    old.close().await;

    let store = SqliteStore::open(&url).await.unwrap();

    let new = pool(&url).await;
    assert_eq!(outbox_rows(&new).await, before, "every row and column kept");
    let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY 1")
        .fetch_all(&new)
        .await
        .unwrap();
    assert_eq!(
        versions,
        [1, 2, 3, 5, 6, 8, 10, 12, 14, 16, 17, 18, 19, 20, 21, 22]
    );
    // 0016 rebuilt idempotency_keys (outbox_id may be NULL now): the live
    // key is kept as it was, and its index with it.
    let key: (i64, String, String, String, Option<i64>, String, i64, i64) = sqlx::query_as(
        "SELECT token_id, operation, key, fingerprint, outbox_id, request_id, created_at,
                expires_at FROM idempotency_keys",
    )
    .fetch_one(&new)
    .await
    .unwrap();
    assert_eq!(
        key,
        (
            7,
            "send_password_email".into(),
            "k".into(),
            "f".into(),
            Some(11),
            "r-1".into(),
            1,
            9000000000000
        )
    );
    let index: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sqlite_schema WHERE name = 'idempotency_keys_expiry'",
    )
    .fetch_one(&new)
    .await
    .unwrap();
    assert_eq!(index, 1);
    assert_eq!(
        audit_rows(&new).await,
        audit_before,
        "every audit row and column kept"
    );
    // 0017 rebuilt the audit log (a refusal may have no target user): the
    // rows written before it were all calls that went through.
    let outcomes: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT outcome, target_address FROM audit_log ORDER BY id")
            .fetch_all(&new)
            .await
            .unwrap();
    assert_eq!(outcomes, [("ok".to_string(), None)]);
    let audit_index: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sqlite_schema WHERE name = 'audit_log_target'")
            .fetch_one(&new)
            .await
            .unwrap();
    assert_eq!(audit_index, 1);
    // History outlives what it names: an audit row may name an outbox row
    // that is gone (a purged message).
    let audit_keys: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pragma_foreign_key_list('audit_log')")
            .fetch_one(&new)
            .await
            .unwrap();
    assert_eq!(audit_keys, 0, "the audit log has no foreign keys");
    let dangling: Vec<String> =
        sqlx::query_scalar("SELECT \"table\" FROM pragma_foreign_key_check")
            .fetch_all(&new)
            .await
            .unwrap();
    assert!(dangling.is_empty(), "rows pointing nowhere: {dangling:?}");
    let mut schema: Vec<String> = sqlx::query_scalar(
        "SELECT type || ' ' || name FROM sqlite_schema WHERE tbl_name = 'outbox' AND sql IS NOT NULL",
    )
    .fetch_all(&new)
    .await
    .unwrap();
    schema.sort();
    assert_eq!(
        schema,
        [
            "index outbox_dead",
            "index outbox_due",
            "index outbox_leased",
            "index outbox_request",
            "index outbox_user",
            "table outbox",
            "trigger outbox_dead_link_email_revokes_its_link",
        ]
    );
    // The state rule still holds.
    let bad = sqlx::query("UPDATE outbox SET state = 'lost' WHERE id = 11")
        .execute(&new)
        .await;
    assert!(
        bad.unwrap_err().to_string().contains("CHECK constraint"),
        "a state outside the five is refused"
    );
    new.close().await;

    // The store reads the kept row: the queued message goes out as it was.
    let claimed = store
        .claim_outbox(&Claim {
            owner: "w".into(),
            now: T0,
            lease_ms: 1000,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, 11);
    assert_eq!(
        claimed[0].message.content,
        Content::Rendered {
            subject: "Set".into(),
            text: "text".into(),
            html: "<p>html</p>".into()
        }
    );
    assert_eq!(claimed[0].attempts, 1);
    // The trigger was rebuilt: the link email given up revokes its link.
    store
        .settle_outbox(
            11,
            "w",
            &Settlement::Dead {
                error: "550 no such user".into(),
                at: T0 + 1,
                suppress: false,
            },
        )
        .await
        .unwrap();
    let new = pool(&url).await;
    let revoked: Option<i64> =
        sqlx::query_scalar("SELECT revoked_at FROM reset_links WHERE id = 3")
            .fetch_one(&new)
            .await
            .unwrap();
    assert_eq!(revoked, Some(T0 + 1));
    let held: Option<String> =
        sqlx::query_scalar("SELECT COALESCE(body_text, body_html, link) FROM outbox WHERE id = 11")
            .fetch_one(&new)
            .await
            .unwrap();
    assert_eq!(held, None, "and its bodies are cleared");
}
