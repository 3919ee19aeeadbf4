-- pwmail schema (SQLite). Times are Unix milliseconds.

CREATE TABLE users (
    id                      INTEGER PRIMARY KEY,
    email                   TEXT NOT NULL,
    -- lower(email): lookups are case-insensitive, and unique that way.
    email_key               TEXT NOT NULL UNIQUE,
    name                    TEXT,
    is_admin                INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    disabled_at             INTEGER,
    -- PHC string (argon2id). NULL: no password set, or invalidated.
    password_hash           TEXT,
    password_changed_at     INTEGER,
    password_invalidated_at INTEGER,
    created_at              INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id),
    token_hash  BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    label       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE reset_links (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id),
    token_hash  BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    purpose     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    revoked_at  INTEGER,
    request_id  TEXT NOT NULL
);
CREATE INDEX reset_links_open ON reset_links (user_id) WHERE used_at IS NULL AND revoked_at IS NULL;

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    message_id      TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    -- Bodies hold the link; they are cleared once the message is sent or dead.
    body_text       TEXT,
    body_html       TEXT,
    state           TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'retrying', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    lease_owner     TEXT,
    lease_until     INTEGER,
    last_error      TEXT,
    last_reply      TEXT,
    created_at      INTEGER NOT NULL,
    -- When the current attempt budget started: created_at, or a manual requeue.
    queued_at       INTEGER NOT NULL,
    sent_at         INTEGER,
    settled_at      INTEGER,
    request_id      TEXT,
    user_id         INTEGER REFERENCES users (id)
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state IN ('queued', 'retrying');
CREATE INDEX outbox_leased ON outbox (lease_until) WHERE state = 'sending';
CREATE INDEX outbox_user ON outbox (user_id);
CREATE INDEX outbox_request ON outbox (request_id);

CREATE TABLE audit_log (
    id              INTEGER PRIMARY KEY,
    at              INTEGER NOT NULL,
    actor_user_id   INTEGER REFERENCES users (id),
    actor_token_id  INTEGER REFERENCES api_tokens (id),
    target_user_id  INTEGER NOT NULL REFERENCES users (id),
    operation       TEXT NOT NULL,
    request_id      TEXT NOT NULL,
    outbox_id       INTEGER REFERENCES outbox (id)
);
CREATE INDEX audit_log_target ON audit_log (target_user_id);

-- GCRA state: the theoretical arrival time of the next call, per key.
CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY,
    tat INTEGER NOT NULL
);
