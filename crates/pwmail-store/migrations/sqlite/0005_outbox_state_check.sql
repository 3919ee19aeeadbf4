-- The outbox's state rule as comparisons instead of `IN (…five values…)`:
-- SQLite checks such an IN list through a temporary table it builds on
-- every statement that writes the state (each queued, claimed and settled
-- message), which cost more than the rest of the insert. Same rule, same
-- columns, rows and ids; SQLite cannot change a CHECK in place, so the
-- table is rebuilt with its indexes and trigger. pwmail runs the
-- migrations with foreign keys off (rows of audit_log and idempotency_keys
-- keep pointing at the same ids).
CREATE TABLE outbox_rebuilt (
    id              INTEGER PRIMARY KEY,
    message_id      TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    -- Bodies hold the link; they are cleared once the message is sent or dead.
    body_text       TEXT,
    body_html       TEXT,
    state           TEXT NOT NULL CHECK (state = 'queued' OR state = 'sending' OR state = 'sent'
                                        OR state = 'retrying' OR state = 'dead'),
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
INSERT INTO outbox_rebuilt (id, message_id, kind, recipient, subject, body_text, body_html,
        state, attempts, next_attempt_at, lease_owner, lease_until, last_error, last_reply,
        created_at, queued_at, sent_at, settled_at, request_id, user_id)
    SELECT id, message_id, kind, recipient, subject, body_text, body_html,
        state, attempts, next_attempt_at, lease_owner, lease_until, last_error, last_reply,
        created_at, queued_at, sent_at, settled_at, request_id, user_id
    FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_rebuilt RENAME TO outbox;

CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state IN ('queued', 'retrying');
CREATE INDEX outbox_leased ON outbox (lease_until) WHERE state = 'sending';
CREATE INDEX outbox_user ON outbox (user_id);
CREATE INDEX outbox_request ON outbox (request_id);
-- New: the dead messages, counted every 250 ms without reading the table.
CREATE INDEX outbox_dead ON outbox (id) WHERE state = 'dead';

-- As in 0002.
CREATE TRIGGER outbox_dead_link_email_revokes_its_link
AFTER UPDATE OF state ON outbox
WHEN NEW.state = 'dead' AND OLD.state <> 'dead' AND NEW.kind <> 'password_changed'
BEGIN
    UPDATE reset_links SET revoked_at = COALESCE(NEW.settled_at, NEW.created_at)
     WHERE user_id = NEW.user_id AND request_id = NEW.request_id
       AND used_at IS NULL AND revoked_at IS NULL;
    UPDATE outbox SET body_text = NULL, body_html = NULL WHERE id = NEW.id;
END;
