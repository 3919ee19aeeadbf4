-- The audit log is history: a row says who did what to which ids, and it
-- must outlive what it names (an outbox row purged once sent, a token
-- revoked and removed), so it has no foreign keys (PostgreSQL's 0008
-- drops them too; there they cost each API call four checks). SQLite
-- cannot drop a foreign key in place: the table is rebuilt with the same
-- columns, rows and ids.
CREATE TABLE audit_log_rebuilt (
    id              INTEGER PRIMARY KEY,
    at              INTEGER NOT NULL,
    actor_user_id   INTEGER,
    actor_token_id  INTEGER,
    target_user_id  INTEGER NOT NULL,
    operation       TEXT NOT NULL,
    request_id      TEXT NOT NULL,
    outbox_id       INTEGER,
    idempotency_key TEXT
);
INSERT INTO audit_log_rebuilt (id, at, actor_user_id, actor_token_id, target_user_id, operation,
        request_id, outbox_id, idempotency_key)
    SELECT id, at, actor_user_id, actor_token_id, target_user_id, operation,
        request_id, outbox_id, idempotency_key
    FROM audit_log;
DROP TABLE audit_log;
ALTER TABLE audit_log_rebuilt RENAME TO audit_log;
CREATE INDEX audit_log_target ON audit_log (target_user_id);
