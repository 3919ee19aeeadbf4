-- Events: what happened to a link, its emails and its user, queued for the
-- operator's receiver (`--events-url`) by triggers, so each is written in
-- the transaction of the change it reports, whoever makes the change.
--
-- Which kinds are queued: `pwmail serve` writes the kinds it delivers
-- here at start (none without --events-url), so nothing is queued for a
-- receiver nobody configured.
CREATE TABLE event_kinds (kind TEXT PRIMARY KEY) WITHOUT ROWID;

CREATE TABLE events (
    id              INTEGER PRIMARY KEY,
    -- The receiver dedupes on it (Standard Webhooks' webhook-id): random,
    -- so a new database never repeats one.
    event_id        TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    at              INTEGER NOT NULL,
    user_id         INTEGER,
    email           TEXT,
    link_id         INTEGER,
    outbox_id       INTEGER,
    -- The link's events in the order they happened: 1, 2, 3…
    seq             INTEGER,
    request_id      TEXT,
    -- Why (retrying, dead, suppressed); never a link.
    detail          TEXT,
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivering', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_owner     TEXT,
    lease_until     INTEGER,
    last_error      TEXT
);
CREATE INDEX events_due ON events (next_attempt_at) WHERE state = 'pending';
CREATE INDEX events_leased ON events (lease_until) WHERE state = 'delivering';
CREATE INDEX events_failed ON events (id) WHERE state = 'failed';

ALTER TABLE reset_links ADD COLUMN opened_at INTEGER;
ALTER TABLE reset_links ADD COLUMN event_seq INTEGER NOT NULL DEFAULT 0;
-- An email's link: the one its call (request id) issued to its user.
CREATE INDEX reset_links_user_request ON reset_links (user_id, request_id);
ALTER TABLE users ADD COLUMN unsuppressed_at BIGINT;

-- The one rule for writing an event on this engine: only a kind that is
-- delivered, the link's next sequence number taken in the same write.
CREATE VIEW event_new AS
    SELECT kind, at, user_id, email, link_id, outbox_id, request_id, detail FROM events WHERE 0;
CREATE TRIGGER event_new_insert INSTEAD OF INSERT ON event_new
WHEN EXISTS (SELECT 1 FROM event_kinds WHERE kind = NEW.kind)
BEGIN
    UPDATE reset_links SET event_seq = event_seq + 1 WHERE id = NEW.link_id;
    INSERT INTO events (event_id, kind, at, user_id, email, link_id, outbox_id, seq, request_id,
                        detail, next_attempt_at)
    VALUES ('evt_' || lower(hex(randomblob(16))), NEW.kind, NEW.at, NEW.user_id, NEW.email,
            NEW.link_id, NEW.outbox_id,
            (SELECT event_seq FROM reset_links WHERE id = NEW.link_id),
            NEW.request_id, NEW.detail, NEW.at);
END;

-- What each change reports. `EXISTS (SELECT 1 FROM event_kinds)` first:
-- with events off, a change costs one look at an empty table.
CREATE TRIGGER events_email_queued AFTER INSERT ON outbox
WHEN EXISTS (SELECT 1 FROM event_kinds)
BEGIN
    INSERT INTO event_new VALUES ('email.queued', NEW.queued_at, NEW.user_id, NEW.recipient,
        (SELECT id FROM reset_links WHERE user_id = NEW.user_id AND request_id = NEW.request_id
            AND NEW.kind <> 'password_changed'),
        NEW.id, NEW.request_id, NULL);
END;

CREATE TRIGGER events_email_state AFTER UPDATE OF state ON outbox
WHEN NEW.state <> OLD.state AND NEW.state IN ('queued', 'sent', 'retrying', 'dead')
     AND EXISTS (SELECT 1 FROM event_kinds)
BEGIN
    INSERT INTO event_new VALUES ('email.' || NEW.state,
        CASE WHEN NEW.state = 'queued' THEN NEW.queued_at ELSE NEW.settled_at END,
        NEW.user_id, NEW.recipient,
        (SELECT id FROM reset_links WHERE user_id = NEW.user_id AND request_id = NEW.request_id
            AND NEW.kind <> 'password_changed'),
        NEW.id, NEW.request_id,
        CASE WHEN NEW.state IN ('retrying', 'dead') THEN NEW.last_error END);
END;

CREATE TRIGGER events_link_revoked AFTER UPDATE OF revoked_at ON reset_links
WHEN OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL AND EXISTS (SELECT 1 FROM event_kinds)
BEGIN
    INSERT INTO event_new VALUES ('link.revoked', NEW.revoked_at, NEW.user_id,
        (SELECT email FROM users WHERE id = NEW.user_id), NEW.id, NULL, NEW.request_id, NULL);
END;

CREATE TRIGGER events_link_opened AFTER UPDATE OF opened_at ON reset_links
WHEN OLD.opened_at IS NULL AND NEW.opened_at IS NOT NULL AND EXISTS (SELECT 1 FROM event_kinds)
BEGIN
    INSERT INTO event_new VALUES ('link.opened', NEW.opened_at, NEW.user_id,
        (SELECT email FROM users WHERE id = NEW.user_id), NEW.id, NULL, NEW.request_id, NULL);
END;

-- A password set on the page names the link it used (consumed at the same
-- time, in the same transaction); one an admin set names none.
CREATE TRIGGER events_password_set AFTER UPDATE OF password_changed_at ON users
WHEN NEW.password_changed_at IS NOT NULL
     AND NEW.password_changed_at IS NOT OLD.password_changed_at
     AND EXISTS (SELECT 1 FROM event_kinds)
BEGIN
    INSERT INTO event_new
    SELECT 'password.set', NEW.password_changed_at, NEW.id, NEW.email, l.id, NULL, l.request_id, NULL
      FROM (SELECT 1) LEFT JOIN reset_links l
        ON l.id = (SELECT id FROM reset_links
                    WHERE user_id = NEW.id AND used_at = NEW.password_changed_at
                    ORDER BY id DESC LIMIT 1);
END;

CREATE TRIGGER events_user_suppressed AFTER UPDATE OF suppressed_at ON users
WHEN OLD.suppressed_at IS NULL AND NEW.suppressed_at IS NOT NULL
     AND EXISTS (SELECT 1 FROM event_kinds)
BEGIN
    INSERT INTO event_new VALUES ('user.suppressed', NEW.suppressed_at, NEW.id, NEW.email, NULL,
        NULL, NULL, NEW.suppressed_reason);
END;

CREATE TRIGGER events_user_unsuppressed AFTER UPDATE OF suppressed_at ON users
WHEN OLD.suppressed_at IS NOT NULL AND NEW.suppressed_at IS NULL
     AND EXISTS (SELECT 1 FROM event_kinds)
BEGIN
    INSERT INTO event_new VALUES ('user.unsuppressed', COALESCE(NEW.unsuppressed_at, OLD.suppressed_at), NEW.id, NEW.email,
        NULL, NULL, NULL, NULL);
END;
