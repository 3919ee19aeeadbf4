//! Every statement both engines run, one text per fact, so the engines
//! cannot drift. Parameters are written `$n` (PostgreSQL's form); the SQLite
//! engine reads them as `?n`, which SQLite binds by the same number. Where
//! the dialects differ, the text takes the difference as an argument
//! ([`Dialect`]) and each engine builds its statement once. Casts make a
//! column read back as the same type from both (`CAST(… AS BIGINT)`).
//!
//! A `LIMIT` is never a bare parameter: SQLite plans a bare `LIMIT ?` with
//! the bound value, so it prepares the statement again whenever the value
//! changes (measured: more instructions than the rest of an API call).
//! `CAST($n AS BIGINT)` keeps it prepared; `sqlite::conn`'s tests check
//! every statement here.

/// What differs between the engines' SQL.
#[derive(Clone, Copy, Debug)]
pub struct Dialect {
    /// The larger of two values: `MAX` (SQLite) or `GREATEST` (PostgreSQL).
    pub greatest: &'static str,
}

pub const SQLITE: Dialect = Dialect { greatest: "MAX" };

pub const POSTGRES: Dialect = Dialect {
    greatest: "GREATEST",
};

// --- users ---------------------------------------------------------------

/// The columns `rows::user` reads.
macro_rules! user_columns {
    () => {
        "id, email, name, is_admin, disabled_at, password_hash, created_at,
         COALESCE(deliverable, TRUE) AS deliverable, locale, suppressed_at, suppressed_reason"
    };
}

/// The columns `rows::user` reads, for statements built at run time.
pub const USER_COLUMNS: &str = user_columns!();
/// $1 email, $2 email key, $3 name, $4 is admin, $5 now, $6 deliverable,
/// $7 locale.
pub const USER_INSERT: &str = concat!(
    "INSERT INTO users (email, email_key, name, is_admin, created_at, deliverable, locale)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ",
    user_columns!()
);
pub const USERS_ALL: &str = concat!("SELECT ", user_columns!(), " FROM users ORDER BY id");
/// $1 id.
pub const USER_BY_ID: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
/// $1 email key (`model::email_key`).
pub const USER_BY_EMAIL_KEY: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE email_key = $1"
);
/// PostgreSQL: [`USER_BY_EMAIL_KEY`], the row locked for the transaction.
pub const USER_LOCK_BY_EMAIL_KEY: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE email_key = $1 FOR UPDATE"
);
pub const COUNT_ADMINS: &str = "SELECT count(*) FROM users WHERE is_admin";
/// $1 email key, $2 now; keeps the first time a user was disabled.
pub const USER_DISABLE: &str = concat!(
    "UPDATE users SET disabled_at = COALESCE(disabled_at, $2) WHERE email_key = $1 RETURNING ",
    user_columns!()
);
/// $1 user; $2 whether to set the name, $3 the name; $4 a new address or
/// NULL, $5 its key, $6 whether mail can reach it (a new address lifts a
/// suppression); $7 whether to set the locale, $8 the locale; $9 admin or
/// NULL; $10 enabled or NULL, $11 now. The user as they are now.
pub const USER_UPDATE: &str = concat!(
    "UPDATE users SET
        name = CASE WHEN CAST($2 AS BOOLEAN) THEN CAST($3 AS TEXT) ELSE name END,
        email = COALESCE(CAST($4 AS TEXT), email),
        email_key = COALESCE(CAST($5 AS TEXT), email_key),
        deliverable = CASE WHEN CAST($4 AS TEXT) IS NULL THEN deliverable
                           ELSE CAST($6 AS BOOLEAN) END,
        unsuppressed_at = CASE WHEN CAST($4 AS TEXT) IS NOT NULL AND suppressed_at IS NOT NULL
                               THEN CAST($11 AS BIGINT) ELSE unsuppressed_at END,
        suppressed_at = CASE WHEN CAST($4 AS TEXT) IS NULL THEN suppressed_at ELSE NULL END,
        suppressed_reason = CASE WHEN CAST($4 AS TEXT) IS NULL THEN suppressed_reason
                                 ELSE NULL END,
        locale = CASE WHEN CAST($7 AS BOOLEAN) THEN CAST($8 AS TEXT) ELSE locale END,
        is_admin = COALESCE(CAST($9 AS BOOLEAN), is_admin),
        disabled_at = CASE WHEN CAST($10 AS BOOLEAN) IS NULL THEN disabled_at
                           WHEN CAST($10 AS BOOLEAN) THEN NULL
                           ELSE COALESCE(disabled_at, CAST($11 AS BIGINT)) END
     WHERE id = $1 RETURNING ",
    user_columns!()
);
/// $1 at, $2 user, $3 what changed (`email_changed`, `admin_granted`…),
/// $4 request id: a change to a user, audited.
pub const AUDIT_USER_CHANGE: &str =
    "INSERT INTO audit_log (at, target_user_id, operation, request_id) VALUES ($1, $2, $3, $4)";
// A user deleted, in this order, one transaction (`Users::delete_user`);
// each takes $1 the user.
/// Idempotency-Keys of their tokens, or whose stored outcome is an email
/// to them (a replay would answer from a row that is gone).
pub const USER_DELETE_KEYS: &str = "DELETE FROM idempotency_keys
     WHERE token_id IN (SELECT id FROM api_tokens WHERE user_id = $1)
        OR outbox_id IN (SELECT id FROM outbox WHERE user_id = $1)";
/// Emails to them not yet sent (a send in flight finds its row gone).
pub const USER_DELETE_UNSENT: &str =
    "DELETE FROM outbox WHERE user_id = $1 AND state IN ('queued', 'retrying', 'sending')";
/// Sent and dead emails stay, as history, without the user.
pub const USER_DETACH_SETTLED: &str = "UPDATE outbox SET user_id = NULL WHERE user_id = $1";
pub const USER_DELETE_LINKS: &str = "DELETE FROM reset_links WHERE user_id = $1";
pub const USER_DELETE_TOKENS: &str = "DELETE FROM api_tokens WHERE user_id = $1";
/// $2 their address: audit rows about them and by them keep it.
pub const AUDIT_KEEP_TARGET_ADDRESS: &str =
    "UPDATE audit_log SET target_address = COALESCE(target_address, $2) WHERE target_user_id = $1";
pub const AUDIT_KEEP_ACTOR_ADDRESS: &str =
    "UPDATE audit_log SET actor_address = $2 WHERE actor_user_id = $1";
pub const USER_DELETE: &str = "DELETE FROM users WHERE id = $1";
/// $1 at, $2 the user's former id, $3 address, $4 request id.
pub const AUDIT_USER_DELETED: &str =
    "INSERT INTO audit_log (at, target_user_id, target_address, operation, request_id)
     VALUES ($1, $2, $3, 'user_deleted', $4)";

/// $1 user, $2 whether mail can be addressed to their stored address.
pub const USER_SET_DELIVERABLE: &str = "UPDATE users SET deliverable = $2 WHERE id = $1";
/// Users whose address was never checked (`deliverable` NULL), by the
/// partial index: none once the service has started on the database.
pub const USERS_UNCHECKED: &str =
    "SELECT id, email FROM users WHERE deliverable IS NULL ORDER BY id";
/// $1 user: the disabled time (NULL when enabled); no row when no user.
pub const USER_DISABLED_AT: &str = "SELECT disabled_at FROM users WHERE id = $1";
/// $1 user.
pub const PASSWORD_HASH: &str = "SELECT password_hash FROM users WHERE id = $1";
/// $1 user, $2 PHC string, $3 now; an enabled user only.
pub const PASSWORD_SET: &str = "UPDATE users SET password_hash = $2, password_changed_at = $3,
            password_invalidated_at = NULL
     WHERE id = $1 AND disabled_at IS NULL";
/// $1 user, $2 now (ResetPasswordByAdmin: the old password stops working).
pub const PASSWORD_INVALIDATE: &str =
    "UPDATE users SET password_hash = NULL, password_invalidated_at = $2 WHERE id = $1";

// --- API tokens ----------------------------------------------------------

macro_rules! token_columns {
    () => {
        "id, user_id, label, created_at, revoked_at, reveal_links"
    };
}

/// $1 user, $2 hash, $3 label, $4 now, $5 reveal_links.
pub const TOKEN_INSERT: &str = concat!(
    "INSERT INTO api_tokens (user_id, token_hash, label, created_at, reveal_links)
     VALUES ($1, $2, $3, $4, $5)
     RETURNING ",
    token_columns!()
);
/// $1 user.
pub const TOKENS_OF_USER: &str = concat!(
    "SELECT ",
    token_columns!(),
    " FROM api_tokens WHERE user_id = $1 ORDER BY id"
);
/// $1 token id, $2 now.
pub const TOKEN_REVOKE: &str =
    "UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
/// $1 user, $2 now.
pub const TOKENS_REVOKE_OF_USER: &str =
    "UPDATE api_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL";
/// $1 token hash: the live token and its enabled owner.
pub const AUTHENTICATE: &str =
    "SELECT t.id AS token_id, t.reveal_links, u.id, u.email, u.name, u.is_admin,
        u.disabled_at, u.password_hash, u.created_at,
        COALESCE(u.deliverable, TRUE) AS deliverable, u.locale, u.suppressed_at,
        u.suppressed_reason
     FROM api_tokens t JOIN users u ON u.id = t.user_id
     WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.disabled_at IS NULL";

// --- rate limits ---------------------------------------------------------

/// One GCRA step (see `gcra.rs`) as one atomic statement: $1 key, $2 now,
/// $3 period, $4 tau. Changes one row when admitted; none when refused.
/// PostgreSQL adds `RETURNING tat`; SQLite counts the changed rows (a
/// `RETURNING` costs it a temporary table).
pub fn gcra_admit(d: Dialect) -> String {
    let g = d.greatest;
    format!(
        "INSERT INTO rate_limits (key, tat) VALUES ($1, $2 + $3)
         ON CONFLICT (key) DO UPDATE SET tat = {g}(rate_limits.tat, $2) + $3
             WHERE {g}(rate_limits.tat, $2) - $2 <= $4"
    )
}

/// Cuts the state of one kind of key to a rate's ceiling (`gcra::ceiling`):
/// $1 the kind's prefix, $2 the ceiling.
pub const RATE_FIT: &str = "UPDATE rate_limits SET tat = $2 WHERE key LIKE $1 || '%' AND tat > $2";
/// The state of a refused key: $1 key.
pub const GCRA_TAT: &str = "SELECT tat FROM rate_limits WHERE key = $1";
/// Forgets keys whose limit is full again: $1 now.
pub const RATE_PURGE: &str = "DELETE FROM rate_limits WHERE tat <= $1";

// --- idempotency keys ----------------------------------------------------

/// The stored outcome of a live key: $1 token, $2 operation, $3 key, $4 now.
pub const IDEMPOTENCY_FIND: &str = "SELECT fingerprint, outbox_id, request_id FROM idempotency_keys
     WHERE token_id = $1 AND operation = $2 AND key = $3 AND expires_at > $4";

/// Stores a key's outcome, taking over an expired row of the same key; a
/// live one is left alone (no row affected). $1 token, $2 operation, $3 key,
/// $4 fingerprint, $5 outbox id, $6 request id, $7 now, $8 expires at.
pub const IDEMPOTENCY_STORE: &str = "INSERT INTO idempotency_keys
        (token_id, operation, key, fingerprint, outbox_id, request_id, created_at, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (token_id, operation, key) DO UPDATE SET
        fingerprint = excluded.fingerprint, outbox_id = excluded.outbox_id,
        request_id = excluded.request_id, created_at = excluded.created_at,
        expires_at = excluded.expires_at
     WHERE idempotency_keys.expires_at <= excluded.created_at";

/// Forgets expired keys: $1 now.
pub const IDEMPOTENCY_PURGE: &str = "DELETE FROM idempotency_keys WHERE expires_at <= $1";

// --- reset links ---------------------------------------------------------

/// $1 user, $2 now: revokes the user's open links.
pub const LINKS_REVOKE_OPEN: &str = "UPDATE reset_links SET revoked_at = $2
     WHERE user_id = $1 AND used_at IS NULL AND revoked_at IS NULL";
/// $1 user: the user's open links. SQLite revokes them one by one with
/// [`LINK_REVOKE`]: it runs [`LINKS_REVOKE_OPEN`] in two passes through a
/// temporary table (the statement changes the index it scans).
pub const LINKS_OPEN: &str =
    "SELECT id FROM reset_links WHERE user_id = $1 AND used_at IS NULL AND revoked_at IS NULL";
/// $1 link, $2 now.
pub const LINK_REVOKE: &str = "UPDATE reset_links SET revoked_at = $2 WHERE id = $1";
/// $1 user, $2 hash, $3 purpose, $4 now, $5 expires at, $6 request id,
/// $7 options (`LinkOptions`). No `RETURNING`: SQLite builds a temporary
/// table for one; it reads the new id as the last inserted rowid.
pub const LINK_INSERT: &str = "INSERT INTO reset_links
         (user_id, token_hash, purpose, created_at, expires_at, request_id, options)
     VALUES ($1, $2, $3, $4, $5, $6, $7)";
/// $1 hash, $2 now: uses the link if it is open and unexpired; returns its
/// user.
pub const LINK_CONSUME_USER: &str = "UPDATE reset_links SET used_at = $2
     WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2
     RETURNING user_id";
/// The columns `rows::link` reads.
macro_rules! link_columns {
    () => {
        "SELECT id, user_id, purpose, created_at, expires_at, used_at, revoked_at, options,
                opened_at
         FROM reset_links"
    };
}
/// $1 hash: the link whatever its state.
pub const LINK_BY_HASH: &str = concat!(link_columns!(), " WHERE token_hash = $1");
/// Every link, whatever its state, oldest first (tests).
#[cfg(any(test, feature = "testing"))]
pub const LINKS_ALL: &str = concat!(link_columns!(), " ORDER BY id");

// --- audit ---------------------------------------------------------------

/// The audit row of an admin operation: $1 at, $2 actor user, $3 actor
/// token, $4 target user, $5 operation, $6 request id, $7 outbox id (NULL
/// when revealed), $8 Idempotency-Key, $9 whether the link was revealed.
pub const AUDIT_ISSUE: &str = "INSERT INTO audit_log (at, actor_user_id, actor_token_id,
        target_user_id, operation, request_id, outbox_id, idempotency_key, link_revealed)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
/// The audit row of a reset on the page: $1 at, $2 user, $3 request id, $4 outbox id.
pub const AUDIT_PASSWORD_CHANGED: &str =
    "INSERT INTO audit_log (at, target_user_id, operation, request_id, outbox_id)
     VALUES ($1, $2, 'password_changed', $3, $4)";
/// The audit row of a refused call, its only write: $1 at, $2 actor user,
/// $3 actor token, $4 target user or NULL, $5 the address asked for, $6
/// operation, $7 request id, $8 Idempotency-Key, $9 outcome.
pub const AUDIT_REFUSAL: &str = "INSERT INTO audit_log (at, actor_user_id, actor_token_id,
        target_user_id, target_address, operation, request_id, idempotency_key, outcome)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
/// Audit rows for an operator, with the emails of actor and target (for a
/// refusal no user had, the address it asked for), newest first: $1 a user
/// (actor or target) or NULL, $2 request id or NULL, $3 from (inclusive) or
/// NULL, $4 until (exclusive) or NULL, $5 limit, $6 an address refusals
/// asked for or NULL (with $1: rows matching either), $7 an outcome,
/// 'refused' (every outcome but 'ok') or NULL.
pub const AUDIT_LIST: &str = "SELECT a.id, a.at, a.actor_user_id,
        COALESCE(au.email, a.actor_address) AS actor_email,
        a.actor_token_id, a.target_user_id, COALESCE(tu.email, a.target_address) AS target_email,
        a.operation, a.request_id, a.outbox_id, a.idempotency_key, a.link_revealed, a.outcome
     FROM audit_log a
     LEFT JOIN users au ON au.id = a.actor_user_id
     LEFT JOIN users tu ON tu.id = a.target_user_id
     WHERE ((CAST($1 AS BIGINT) IS NULL AND CAST($6 AS TEXT) IS NULL)
            OR a.target_user_id = $1 OR a.actor_user_id = $1 OR a.target_address = $6
            OR a.actor_address = $6)
       AND (CAST($2 AS TEXT) IS NULL OR a.request_id = $2)
       AND (CAST($3 AS BIGINT) IS NULL OR a.at >= $3)
       AND (CAST($4 AS BIGINT) IS NULL OR a.at < $4)
       AND (CAST($7 AS TEXT) IS NULL OR a.outcome = $7
            OR ($7 = 'refused' AND a.outcome <> 'ok'))
     ORDER BY a.id DESC LIMIT CAST($5 AS BIGINT)";

// --- retention -----------------------------------------------------------

/// One aging table's statements: `window` ($1 after id, $2 rows) counts
/// the next rows in id order and gives the last id and newest time among
/// them; `delete` and `count` ($1 cutoff, $2 after id, $3 last id, and $4
/// now when `takes_now`) delete or count the rows due with ids in
/// ($2, $3]: one rule for both.
#[derive(Clone, Copy, Debug)]
pub struct PurgeStatements {
    pub window: &'static str,
    pub delete: &'static str,
    pub count: &'static str,
    pub takes_now: bool,
}

macro_rules! purge_statements {
    ($table:literal, $time:literal, $due:literal, $takes_now:literal) => {
        PurgeStatements {
            window: concat!(
                "SELECT count(*) AS scanned, max(id) AS last_id, max(",
                $time,
                ") AS newest FROM (SELECT id, ",
                $time,
                " FROM ",
                $table,
                " WHERE id > $1 ORDER BY id LIMIT CAST($2 AS BIGINT)) w"
            ),
            delete: concat!(
                "DELETE FROM ",
                $table,
                " WHERE id > $2 AND id <= $3 AND ",
                $due
            ),
            count: concat!(
                "SELECT count(*) AS due FROM ",
                $table,
                " WHERE id > $2 AND id <= $3 AND ",
                $due
            ),
            takes_now: $takes_now,
        }
    };
}

/// What is due, per table, in one place: a sent or dead email settled
/// before the cutoff that no live Idempotency-Key points to (a replay
/// answers from it; keys expired at now are deleted first, so none holds
/// one back); a link used, revoked or (if neither) expired before it; an
/// audit row written before it.
pub fn purge(table: crate::Aging) -> PurgeStatements {
    use crate::Aging;
    match table {
        Aging::Emails => purge_statements!(
            "outbox",
            "created_at",
            "state IN ('sent', 'dead') AND settled_at < $1
             AND NOT EXISTS (SELECT 1 FROM idempotency_keys k
                             WHERE k.outbox_id = outbox.id AND k.expires_at > $4)",
            true
        ),
        Aging::Links => purge_statements!(
            "reset_links",
            "created_at",
            "COALESCE(used_at, revoked_at, expires_at) < $1",
            false
        ),
        Aging::Audit => purge_statements!("audit_log", "at", "at < $1", false),
    }
}

// --- outbox --------------------------------------------------------------

macro_rules! outbox_insert {
    () => {
        "INSERT INTO outbox (message_id, kind, recipient, subject, body_text, body_html,
                             link, link_name, link_expires_at, state,
                             next_attempt_at, created_at, queued_at, request_id, user_id, options)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'queued', $10, $10, $10, $11, $12, $13)"
    };
}
/// Queues a message: $1 Message-ID, $2 kind, $3 recipient, $4–$9 its
/// content (`rows::ContentColumns`), $10 now, $11 request id, $12 user,
/// $13 its link's options.
/// SQLite reads the id as the last inserted rowid (a `RETURNING` costs it a
/// temporary table).
pub const OUTBOX_INSERT: &str = outbox_insert!();
/// [`OUTBOX_INSERT`] returning the id (PostgreSQL).
pub const OUTBOX_INSERT_RETURNING_ID: &str = concat!(outbox_insert!(), " RETURNING id");

// The claim policy, one for both engines: up to a limit of the messages
// whose time has come, earliest due first (ties by id): queued or retrying
// rows past `next_attempt_at`, and sending rows whose lease ran out. Each
// kind is one bounded range scan of its partial index (an `OR` over both
// would scan the table on every claim).

/// Due waiting rows: $2 now, $4 limit; (id, due). $1 and $3 are the
/// claim's other parameters, unused here.
pub const CLAIM_DUE: &str = "SELECT id, next_attempt_at AS due FROM outbox
     WHERE state IN ('queued', 'retrying') AND next_attempt_at <= $2
     ORDER BY next_attempt_at LIMIT CAST($4 AS BIGINT)";
/// Rows whose lease ran out: $2 now, $4 limit; (id, due).
pub const CLAIM_EXPIRED: &str = "SELECT id, lease_until AS due FROM outbox
     WHERE state = 'sending' AND lease_until <= $2
     ORDER BY lease_until LIMIT CAST($4 AS BIGINT)";
/// What a claim sets and returns; the statement ends `WHERE id …`.
macro_rules! claim_lease {
    () => {
        "UPDATE outbox
         SET state = 'sending', lease_owner = $1, lease_until = $2 + $3, attempts = attempts + 1"
    };
}
/// The columns `rows::outbox_message` reads.
macro_rules! claimed_columns {
    () => {
        "id, message_id, kind, recipient, subject, body_text, body_html, link, link_name,
         link_expires_at, options, CAST(attempts AS BIGINT) AS attempts, created_at, queued_at, request_id,
         user_id, (SELECT u.locale FROM users u WHERE u.id = outbox.user_id) AS user_locale,
         (SELECT u.name FROM users u WHERE u.id = outbox.user_id) AS user_name"
    };
}

/// Leases up to $4 due messages to $1 until $2 + $3 ($2 is now) in one
/// statement (PostgreSQL, whose dispatchers claim concurrently: the row
/// locks are taken with `FOR UPDATE SKIP LOCKED`).
pub fn claim_outbox_locked() -> String {
    claim_locked(CLAIM_DUE, CLAIM_EXPIRED, claim_lease!(), claimed_columns!())
}

/// One claim statement from its parts: the due rows and the rows whose
/// lease ran out (each `$2` now, `$4` limit; `(id, due)`), locked with
/// `SKIP LOCKED` so concurrent claimers take different rows, the earliest
/// due first (ties by id); `lease` (an `UPDATE … SET`) leases them and the
/// statement returns `columns`. The outbox's claim and the events' are
/// this one rule.
fn claim_locked(due: &str, expired: &str, lease: &str, columns: &str) -> String {
    let lock = "FOR UPDATE SKIP LOCKED";
    format!(
        "WITH due AS ({due} {lock}), expired AS ({expired} {lock}),
         picked AS (
             SELECT id FROM (SELECT id, due FROM due UNION ALL SELECT id, due FROM expired) AS d
             ORDER BY due, id LIMIT CAST($4 AS BIGINT))
         {lease} WHERE id IN (SELECT id FROM picked) RETURNING {columns}"
    )
}

/// The same claim step by step, for SQLite's one writer (nothing else
/// runs between the steps): [`CLAIM_DUE`] and [`CLAIM_EXPIRED`], merged by
/// due time, then each picked row leased with this (row $4 to $1 until
/// $2 + $3) and read with [`CLAIMED`]. Cheaper there than the one
/// statement or a `RETURNING`, whose temporary tables cost more than the
/// rest of the claim.
pub const CLAIM_ONE: &str = concat!(claim_lease!(), " WHERE id = $4");
/// $1 id: a claimed message, as [`CLAIM_ONE`] left it.
pub const CLAIMED: &str = concat!("SELECT ", claimed_columns!(), " FROM outbox WHERE id = $1");

/// What settling a message as sent sets, given where its reply and time
/// come from. The bodies and the link are dropped once sent.
macro_rules! sent {
    ($reply:literal, $at:literal) => {
        concat!(
            "state = 'sent', last_reply = ",
            $reply,
            ", sent_at = ",
            $at,
            ", settled_at = ",
            $at,
            ", lease_owner = NULL, lease_until = NULL, next_attempt_at = NULL,
            body_text = NULL, body_html = NULL, link = NULL, link_name = NULL"
        )
    };
}
/// $1 id, $2 lease owner, $3 reply, $4 now.
pub const SETTLE_SENT: &str = concat!(
    "UPDATE outbox SET ",
    sent!("$3", "$4"),
    " WHERE id = $1 AND state = 'sending' AND lease_owner = $2"
);
/// PostgreSQL: [`SETTLE_SENT`] for many messages, one array of each
/// parameter; returns the ids it settled.
pub const SETTLE_SENT_MANY: &str = concat!(
    "UPDATE outbox SET ",
    sent!("b.reply", "b.at"),
    " FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[]) AS b(id, owner, reply, at)
     WHERE outbox.id = b.id AND outbox.state = 'sending' AND outbox.lease_owner = b.owner
     RETURNING outbox.id"
);
/// $1 id, $2 lease owner, $3 error, $4 now, $5 next attempt.
pub const SETTLE_RETRY: &str =
    "UPDATE outbox SET state = 'retrying', last_error = $3, next_attempt_at = $5,
            lease_owner = NULL, lease_until = NULL, settled_at = $4
     WHERE id = $1 AND state = 'sending' AND lease_owner = $2";
/// $1 id, $2 lease owner, $3 error, $4 now. A trigger revokes a dead link
/// email's link and clears its bodies and link (migrations 0002, 0006).
pub const SETTLE_DEAD: &str = "UPDATE outbox SET state = 'dead', last_error = $3, settled_at = $4,
            lease_owner = NULL, lease_until = NULL, next_attempt_at = NULL
     WHERE id = $1 AND state = 'sending' AND lease_owner = $2";
/// $1 dead message's id, $2 now, $3 reason: its recipient's user is
/// suppressed (undeliverable, with when and why), in the transaction that
/// settled the message dead.
pub const USER_SUPPRESS: &str =
    "UPDATE users SET deliverable = FALSE, suppressed_at = $2, suppressed_reason = $3
     WHERE id = (SELECT user_id FROM outbox WHERE id = $1)";
/// $1 dead message's id, $2 now: the suppression's audit row (its request
/// id is the call's that queued the message).
pub const AUDIT_SUPPRESSED: &str =
    "INSERT INTO audit_log (at, target_user_id, operation, request_id, outbox_id)
     SELECT $2, user_id, 'suppressed', COALESCE(request_id, ''), id FROM outbox
     WHERE id = $1 AND user_id IS NOT NULL";
/// $1 email key, $2 now: a suppressed user made deliverable again; the
/// user as it was (its suppression's date and reason).
pub const USER_UNSUPPRESS: &str = concat!(
    "UPDATE users SET deliverable = TRUE, suppressed_at = NULL, suppressed_reason = NULL,
            unsuppressed_at = $2
     WHERE email_key = $1 AND suppressed_at IS NOT NULL
     RETURNING ",
    user_columns!()
);
/// $1 at, $2 user, $3 request id: the lifting's audit row.
pub const AUDIT_UNSUPPRESSED: &str =
    "INSERT INTO audit_log (at, target_user_id, operation, request_id)
     VALUES ($1, $2, 'unsuppressed', $3)";
/// $1 id, $2 lease owner, $3 new end of the lease: a sent message whose
/// result cannot be recorded yet stays leased to the worker that sent it.
pub const LEASE_EXTEND: &str = "UPDATE outbox SET lease_until = $3
     WHERE id = $1 AND state = 'sending' AND lease_owner = $2";
/// $1 now: every lease ends now. Only for a process that holds the
/// database alone (SQLite, under the server lock): a lease it finds was
/// left by a process that died.
pub const LEASES_END: &str = "UPDATE outbox SET lease_until = $1
     WHERE state = 'sending' AND lease_until > $1";
/// $1 now, $2 [`SPACE_PROBE_BYTES`] bytes: a write that needs new space,
/// removed again by [`SPACE_PROBE_DELETE`] in the same transaction.
pub const SPACE_PROBE_INSERT: &str = "INSERT INTO space_probe (at, pad) VALUES ($1, $2)";
pub const SPACE_PROBE_DELETE: &str = "DELETE FROM space_probe";
/// What a space probe writes: 16 pages of SQLite's 4 KiB, more than a
/// call's rows, stored uncompressed on both engines (migration 0010).
pub const SPACE_PROBE_BYTES: usize = 64 * 1024;
/// $1 id, $2 now: a dead message queued again with a fresh attempt budget.
pub const REQUEUE_DEAD: &str =
    "UPDATE outbox SET state = 'queued', attempts = 0, next_attempt_at = $2, queued_at = $2,
            settled_at = NULL
     WHERE id = $1 AND state = 'dead'";

/// The columns `rows::outbox_status` reads.
macro_rules! status_columns {
    () => {
        "id, message_id, kind, recipient, state, CAST(attempts AS BIGINT) AS attempts,
         last_error, last_reply, created_at, queued_at, next_attempt_at, sent_at, request_id,
         link_expires_at,
         (SELECT u.suppressed_at FROM users u WHERE u.id = outbox.user_id) AS recipient_suppressed_at"
    };
}

/// $1 id.
pub const OUTBOX_STATUS: &str = concat!("SELECT ", status_columns!(), " FROM outbox WHERE id = $1");
/// $1 state or NULL for all, $2 limit; newest first.
pub const OUTBOX_LIST: &str = concat!(
    "SELECT ",
    status_columns!(),
    " FROM outbox WHERE (CAST($1 AS TEXT) IS NULL OR state = $1) ORDER BY id DESC LIMIT CAST($2 AS BIGINT)"
);
/// $1 user or NULL, $2 request id or NULL, $3 limit; newest first.
pub const OUTBOX_FOR: &str = concat!(
    "SELECT ",
    status_columns!(),
    " FROM outbox
     WHERE (CAST($1 AS BIGINT) IS NULL OR user_id = $1)
       AND (CAST($2 AS TEXT) IS NULL OR request_id = $2)
     ORDER BY id DESC LIMIT CAST($3 AS BIGINT)"
);
/// The states a message is in until it is sent, each counted through its
/// partial index, so the cost follows the backlog, not the table: what the
/// backlog watcher counts every 250 ms ([`OUTBOX_UNSENT`]).
macro_rules! unsent_depth {
    () => {
        "SELECT state, CAST(count(*) AS BIGINT) AS n FROM outbox
      WHERE state IN ('queued', 'retrying') GROUP BY state
     UNION ALL
     SELECT 'sending', CAST(count(*) AS BIGINT) FROM outbox WHERE state = 'sending'
     UNION ALL
     SELECT 'dead', CAST(count(*) AS BIGINT) FROM outbox WHERE state = 'dead'"
    };
}
pub const OUTBOX_UNSENT: &str = unsent_depth!();
/// Messages per state: [`OUTBOX_UNSENT`] and all rows (`'all'`, through the
/// smallest index); the rest were sent (`rows::outbox_depth`). The count of
/// all rows grows with the table (nothing is purged), so the watcher runs
/// it less often as the table grows, not every 250 ms. A `GROUP BY state` read every row,
/// bodies and all.
pub const OUTBOX_DEPTH: &str = concat!(
    unsent_depth!(),
    "
     UNION ALL
     SELECT 'all', CAST(count(*) AS BIGINT) FROM outbox"
);
/// The earliest time a waiting message is due or a lease runs out.
pub const OUTBOX_NEXT_DUE: &str = "SELECT min(t) FROM (
         SELECT min(next_attempt_at) AS t FROM outbox WHERE state IN ('queued', 'retrying')
         UNION ALL
         SELECT min(lease_until) AS t FROM outbox WHERE state = 'sending') AS due";

// --- events ----------------------------------------------------------------
// Written by triggers (migration 0021), in the transaction of each change;
// these statements choose what is written, deliver and list them.

/// Which kinds the triggers queue: cleared, then each added ($1 kind).
pub const EVENT_KINDS_CLEAR: &str = "DELETE FROM event_kinds";
/// A kind named twice is written once.
pub const EVENT_KIND_ADD: &str =
    "INSERT INTO event_kinds (kind) VALUES ($1) ON CONFLICT (kind) DO NOTHING";
pub const EVENT_KINDS: &str = "SELECT kind FROM event_kinds ORDER BY kind";

/// $1 link, $2 now: the first time the link's page was opened (its
/// `link.opened` event comes with it).
pub const LINK_OPENED: &str =
    "UPDATE reset_links SET opened_at = $2 WHERE id = $1 AND opened_at IS NULL";

/// Due pending events: $2 now, $4 limit; (id, due). As the outbox's claim
/// ([`CLAIM_DUE`]): one bounded range scan of a partial index per kind.
pub const EVENTS_CLAIM_DUE: &str = "SELECT id, next_attempt_at AS due FROM events
     WHERE state = 'pending' AND next_attempt_at <= $2
     ORDER BY next_attempt_at LIMIT CAST($4 AS BIGINT)";
/// Events whose delivery lease ran out: $2 now, $4 limit; (id, due).
pub const EVENTS_CLAIM_EXPIRED: &str = "SELECT id, lease_until AS due FROM events
     WHERE state = 'delivering' AND lease_until <= $2
     ORDER BY lease_until LIMIT CAST($4 AS BIGINT)";
macro_rules! event_lease {
    () => {
        "UPDATE events
         SET state = 'delivering', lease_owner = $1, lease_until = $2 + $3, attempts = attempts + 1"
    };
}
/// The columns `rows::event` reads: the event, its email's Message-ID and
/// kind (while the email is kept).
macro_rules! event_columns {
    () => {
        "id, event_id, kind, at, user_id, email, link_id, outbox_id, seq, request_id, detail,
         state, CAST(attempts AS BIGINT) AS attempts, next_attempt_at, last_error,
         (SELECT o.message_id FROM outbox o WHERE o.id = events.outbox_id) AS message_id,
         (SELECT o.kind FROM outbox o WHERE o.id = events.outbox_id) AS message_kind"
    };
}
/// SQLite leases each picked event with this ($4 the event, to $1 until
/// $2 + $3), then reads it with [`EVENT_CLAIMED`].
pub const EVENT_CLAIM_ONE: &str = concat!(event_lease!(), " WHERE id = $4");
/// $1 id.
pub const EVENT_CLAIMED: &str = concat!("SELECT ", event_columns!(), " FROM events WHERE id = $1");

/// The claim as one statement, for PostgreSQL's concurrent deliverers
/// (`FOR UPDATE SKIP LOCKED`: each event goes to one replica).
pub fn claim_events_locked() -> String {
    claim_locked(
        EVENTS_CLAIM_DUE,
        EVENTS_CLAIM_EXPIRED,
        event_lease!(),
        event_columns!(),
    )
}

/// $1 id, $2 lease owner: delivered, so forgotten (the receiver has it).
pub const EVENT_DELIVERED: &str =
    "DELETE FROM events WHERE id = $1 AND state = 'delivering' AND lease_owner = $2";
/// $1 id, $2 lease owner, $3 error, $4 next attempt.
pub const EVENT_RETRY: &str = "UPDATE events SET state = 'pending', last_error = $3,
            next_attempt_at = $4, lease_owner = NULL, lease_until = NULL
     WHERE id = $1 AND state = 'delivering' AND lease_owner = $2";
/// $1 id, $2 lease owner, $3 error: given up (`pwmail events retry`).
pub const EVENT_FAILED: &str = "UPDATE events SET state = 'failed', last_error = $3,
            lease_owner = NULL, lease_until = NULL
     WHERE id = $1 AND state = 'delivering' AND lease_owner = $2";
/// $1 now: every delivery lease ends now (SQLite, under the server lock:
/// a lease it finds was left by a process that died).
pub const EVENT_LEASES_END: &str = "UPDATE events SET lease_until = $1
     WHERE state = 'delivering' AND lease_until > $1";
/// $1 now: every failed event pending again, with a fresh budget.
pub const EVENTS_RETRY_FAILED: &str =
    "UPDATE events SET state = 'pending', attempts = 0, next_attempt_at = $1
     WHERE state = 'failed'";
/// $1 state or NULL for all, $2 limit; oldest first (the order they go).
pub const EVENTS_LIST: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events WHERE (CAST($1 AS TEXT) IS NULL OR state = $1)
     ORDER BY id LIMIT CAST($2 AS BIGINT)"
);
/// Events per state, each through its partial index.
pub const EVENTS_DEPTH: &str =
    "SELECT 'pending' AS state, CAST(count(*) AS BIGINT) AS n FROM events WHERE state = 'pending'
     UNION ALL
     SELECT 'delivering', CAST(count(*) AS BIGINT) FROM events WHERE state = 'delivering'
     UNION ALL
     SELECT 'failed', CAST(count(*) AS BIGINT) FROM events WHERE state = 'failed'";
/// The earliest time a pending event is due or a delivery lease runs out.
pub const EVENTS_NEXT_DUE: &str = "SELECT min(t) FROM (
         SELECT min(next_attempt_at) AS t FROM events WHERE state = 'pending'
         UNION ALL
         SELECT min(lease_until) AS t FROM events WHERE state = 'delivering') AS due";
