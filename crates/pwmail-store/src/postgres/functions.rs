//! PL/pgSQL functions as repeatable migrations (Flyway's idea): each
//! function's current text lives in exactly one file under
//! `functions/postgres/`, and opening the store re-applies a file (its
//! `CREATE OR REPLACE`) whenever the file's checksum differs from the one
//! `pwmail_functions` (migration 0011) recorded. A change to a function is an
//! edit of its file; the numbered migrations stay released history.

use std::collections::HashMap;

use sha2::Digest as _;
use sqlx::Connection as _;
use sqlx::postgres::PgConnection;

use crate::Result;

/// Each function's file, those another calls first.
const FUNCTIONS: &[(&str, &str)] = &[
    (
        "pwmail_charge_callers",
        include_str!("../../functions/postgres/pwmail_charge_callers.sql"),
    ),
    (
        "pwmail_issue_links",
        include_str!("../../functions/postgres/pwmail_issue_links.sql"),
    ),
    (
        "pwmail_issue_link",
        include_str!("../../functions/postgres/pwmail_issue_link.sql"),
    ),
    (
        "pwmail_issue_by_address",
        include_str!("../../functions/postgres/pwmail_issue_by_address.sql"),
    ),
    (
        "pwmail_events",
        include_str!("../../functions/postgres/pwmail_events.sql"),
    ),
    (
        "outbox_dead_link_email_revokes_its_link",
        include_str!("../../functions/postgres/outbox_dead_link_email_revokes_its_link.sql"),
    ),
];

/// The advisory lock replicas that start together take turns at (the
/// migrations' own lock is released when they finish).
const LOCK: i64 = 0x7077_6d61_696c_0001;

fn checksum(text: &str) -> String {
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Applies every function whose file changed since it was last applied,
/// in one transaction; returns the names applied.
pub(super) async fn apply(conn: &mut PgConnection) -> Result<Vec<&'static str>> {
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(LOCK)
        .execute(&mut *tx)
        .await?;
    let recorded: HashMap<String, String> =
        sqlx::query_as("SELECT name, checksum FROM pwmail_functions")
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
    let mut applied = Vec::new();
    for &(name, text) in FUNCTIONS {
        let sum = checksum(text);
        if recorded.get(name) == Some(&sum) {
            continue;
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(text))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO pwmail_functions (name, checksum) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET checksum = excluded.checksum, applied_at = now()",
        )
        .bind(name)
        .bind(&sum)
        .execute(&mut *tx)
        .await?;
        applied.push(name);
    }
    tx.commit().await?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr as _;

    use sqlx::postgres::PgConnectOptions;

    use super::*;

    #[tokio::test]
    async fn a_function_is_applied_when_its_file_changed_and_only_then() {
        let schema = pwmail_testkit::pg::PgSchema::create().await;
        let store = crate::PgStore::open(&schema.url(None), crate::PoolOptions::default())
            .await
            .unwrap();
        drop(store);
        let options = PgConnectOptions::from_str(&schema.url(None)).unwrap();
        let mut conn = PgConnection::connect_with(&options).await.unwrap();
        assert_eq!(
            apply(&mut conn).await.unwrap(),
            Vec::<&str>::new(),
            "all current"
        );

        // A file that changed since: its function is replaced, the others kept.
        sqlx::query("UPDATE pwmail_functions SET checksum = 'older' WHERE name = $1")
            .bind("pwmail_issue_link")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::raw_sql(
            "CREATE OR REPLACE FUNCTION outbox_dead_link_email_revokes_its_link() RETURNS trigger
             AS $$ BEGIN RETURN NEW; END $$ LANGUAGE plpgsql",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::query("UPDATE pwmail_functions SET checksum = 'older' WHERE name = $1")
            .bind("outbox_dead_link_email_revokes_its_link")
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            apply(&mut conn).await.unwrap(),
            [
                "pwmail_issue_link",
                "outbox_dead_link_email_revokes_its_link"
            ]
        );
        let body: String = sqlx::query_scalar(
            "SELECT prosrc FROM pg_proc WHERE proname = 'outbox_dead_link_email_revokes_its_link'
               AND pronamespace = current_schema()::regnamespace",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert!(body.contains("revoked_at"), "the file's text again: {body}");
        assert_eq!(apply(&mut conn).await.unwrap(), Vec::<&str>::new());
        let _ = conn.close().await;
        schema.drop_schema().await;
    }
}
