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

-- What each change reports (the triggers on outbox, reset_links and users)
-- is not created here: `Events::set_event_kinds` creates them when a kind
-- is chosen and drops them when none is (src/events/sqlite_triggers.sql).
-- A trigger costs SQLite a sub-program frame on every statement it is
-- attached to, whether its WHEN holds or not (measured: ~76,000
-- instructions per API call and its email with them attached, events off).
