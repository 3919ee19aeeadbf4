-- Idempotency-Key: the outcome of a successful admin call, stored in the
-- transaction that queued its email, so a retry with the same key repeats
-- the answer instead of emailing again. Scoped to the calling API token and
-- the operation; kept until expires_at, then purged.
CREATE TABLE idempotency_keys (
    token_id    INTEGER NOT NULL REFERENCES api_tokens (id),
    operation   TEXT NOT NULL,
    key         TEXT NOT NULL,
    -- SHA-256 (hex) of the operation and the request's meaning.
    fingerprint TEXT NOT NULL,
    outbox_id   INTEGER NOT NULL REFERENCES outbox (id),
    request_id  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (token_id, operation, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

ALTER TABLE audit_log ADD COLUMN idempotency_key TEXT;
