-- Links handed to the caller instead of emailed (see
-- migrations/postgres/0016): the permission on a token, the audit mark,
-- and Idempotency-Keys whose call wrote no outbox row (outbox_id NULL: the
-- link was revealed, and a replay must not reveal it again). SQLite cannot
-- drop NOT NULL in place: idempotency_keys is rebuilt with the same rows.
ALTER TABLE api_tokens ADD COLUMN reveal_links INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit_log ADD COLUMN link_revealed INTEGER NOT NULL DEFAULT 0;
CREATE TABLE idempotency_keys_rebuilt (
    token_id    INTEGER NOT NULL REFERENCES api_tokens (id),
    operation   TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    outbox_id   INTEGER REFERENCES outbox (id),
    request_id  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (token_id, operation, key)
);
INSERT INTO idempotency_keys_rebuilt
        (token_id, operation, key, fingerprint, outbox_id, request_id, created_at, expires_at)
    SELECT token_id, operation, key, fingerprint, outbox_id, request_id, created_at, expires_at
    FROM idempotency_keys;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_rebuilt RENAME TO idempotency_keys;
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
