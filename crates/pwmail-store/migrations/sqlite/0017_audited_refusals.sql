-- Refused calls are audited too (a non-admin token, an unknown or disabled
-- user, a reused Idempotency-Key…): `outcome` says what the call came to
-- ('ok' for every row written before, which were all done), and a refusal
-- for an address no user has keeps the address asked for in
-- `target_address`, so its row has no target user. SQLite cannot drop a
-- NOT NULL in place: the table is rebuilt with the same rows and ids.
CREATE TABLE audit_log_rebuilt (
    id              INTEGER PRIMARY KEY,
    at              INTEGER NOT NULL,
    actor_user_id   INTEGER,
    actor_token_id  INTEGER,
    target_user_id  INTEGER,
    operation       TEXT NOT NULL,
    request_id      TEXT NOT NULL,
    outbox_id       INTEGER,
    idempotency_key TEXT,
    link_revealed   INTEGER NOT NULL DEFAULT 0,
    outcome         TEXT NOT NULL DEFAULT 'ok',
    target_address  TEXT
);
INSERT INTO audit_log_rebuilt (id, at, actor_user_id, actor_token_id, target_user_id, operation,
        request_id, outbox_id, idempotency_key, link_revealed)
    SELECT id, at, actor_user_id, actor_token_id, target_user_id, operation,
        request_id, outbox_id, idempotency_key, link_revealed
    FROM audit_log;
DROP TABLE audit_log;
ALTER TABLE audit_log_rebuilt RENAME TO audit_log;
CREATE INDEX audit_log_target ON audit_log (target_user_id);
