-- pwmail schema (PostgreSQL). Times are Unix milliseconds, as on SQLite.

CREATE TABLE users (
    id                      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email                   TEXT NOT NULL,
    -- lower(email): lookups are case-insensitive, and unique that way.
    email_key               TEXT NOT NULL UNIQUE,
    name                    TEXT,
    is_admin                BOOLEAN NOT NULL DEFAULT FALSE,
    disabled_at             BIGINT,
    -- PHC string (argon2id). NULL: no password set, or invalidated.
    password_hash           TEXT,
    password_changed_at     BIGINT,
    password_invalidated_at BIGINT,
    created_at              BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id),
    token_hash  BYTEA NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    label       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE reset_links (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id),
    token_hash  BYTEA NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    purpose     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    revoked_at  BIGINT,
    request_id  TEXT NOT NULL
);
CREATE INDEX reset_links_open ON reset_links (user_id) WHERE used_at IS NULL AND revoked_at IS NULL;

CREATE TABLE outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id      TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    -- Bodies hold the link; they are cleared once the message is sent.
    body_text       TEXT,
    body_html       TEXT,
    state           TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'retrying', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    lease_owner     TEXT,
    lease_until     BIGINT,
    last_error      TEXT,
    last_reply      TEXT,
    created_at      BIGINT NOT NULL,
    queued_at       BIGINT NOT NULL,
    sent_at         BIGINT,
    settled_at      BIGINT,
    request_id      TEXT,
    user_id         BIGINT REFERENCES users (id)
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state IN ('queued', 'retrying');
CREATE INDEX outbox_leased ON outbox (lease_until) WHERE state = 'sending';
CREATE INDEX outbox_user ON outbox (user_id);
CREATE INDEX outbox_request ON outbox (request_id);
CREATE INDEX outbox_state ON outbox (state);

CREATE TABLE audit_log (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at              BIGINT NOT NULL,
    actor_user_id   BIGINT REFERENCES users (id),
    actor_token_id  BIGINT REFERENCES api_tokens (id),
    target_user_id  BIGINT NOT NULL REFERENCES users (id),
    operation       TEXT NOT NULL,
    request_id      TEXT NOT NULL,
    outbox_id       BIGINT REFERENCES outbox (id)
);
CREATE INDEX audit_log_target ON audit_log (target_user_id);

-- GCRA state: the theoretical arrival time of the next call, per key.
CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY,
    tat BIGINT NOT NULL
);
