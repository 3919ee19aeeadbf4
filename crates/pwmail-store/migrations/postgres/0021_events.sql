-- Events: what happened to a link, its emails and its user, queued for the
-- operator's receiver (`--events-url`) by triggers, so each is written in
-- the transaction of the change it reports, whoever makes the change. The
-- triggers' functions live in functions/postgres/pwmail_events.sql (applied
-- after the migrations); here they are created empty, for the triggers.
--
-- Which kinds are queued: `pwmail serve` writes the kinds it delivers
-- here at start (none without --events-url).
CREATE TABLE event_kinds (kind TEXT PRIMARY KEY);

CREATE TABLE events (
    id              BIGSERIAL PRIMARY KEY,
    -- The receiver dedupes on it (Standard Webhooks' webhook-id): random,
    -- so a new database never repeats one.
    event_id        TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    at              BIGINT NOT NULL,
    user_id         BIGINT,
    email           TEXT,
    link_id         BIGINT,
    outbox_id       BIGINT,
    -- The link's events in the order they happened: 1, 2, 3…
    seq             BIGINT,
    request_id      TEXT,
    -- Why (retrying, dead, suppressed); never a link.
    detail          TEXT,
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivering', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    last_error      TEXT
);
CREATE INDEX events_due ON events (next_attempt_at) WHERE state = 'pending';
CREATE INDEX events_leased ON events (lease_until) WHERE state = 'delivering';
CREATE INDEX events_failed ON events (id) WHERE state = 'failed';

ALTER TABLE reset_links ADD COLUMN opened_at BIGINT;
ALTER TABLE reset_links ADD COLUMN event_seq BIGINT NOT NULL DEFAULT 0;
-- An email's link: the one its call (request id) issued to its user.
CREATE INDEX reset_links_user_request ON reset_links (user_id, request_id);
ALTER TABLE users ADD COLUMN unsuppressed_at BIGINT;

CREATE FUNCTION pwmail_events_of_outbox() RETURNS trigger AS $$
BEGIN RETURN NULL; END $$ LANGUAGE plpgsql;
CREATE FUNCTION pwmail_events_of_link() RETURNS trigger AS $$
BEGIN RETURN NULL; END $$ LANGUAGE plpgsql;
CREATE FUNCTION pwmail_events_of_user() RETURNS trigger AS $$
BEGIN RETURN NULL; END $$ LANGUAGE plpgsql;

CREATE TRIGGER pwmail_events_of_outbox_insert AFTER INSERT ON outbox
FOR EACH ROW EXECUTE FUNCTION pwmail_events_of_outbox();
CREATE TRIGGER pwmail_events_of_outbox_state AFTER UPDATE OF state ON outbox
FOR EACH ROW WHEN (NEW.state IS DISTINCT FROM OLD.state
                   AND NEW.state IN ('queued', 'sent', 'retrying', 'dead'))
EXECUTE FUNCTION pwmail_events_of_outbox();
CREATE TRIGGER pwmail_events_of_link AFTER UPDATE OF revoked_at, opened_at ON reset_links
FOR EACH ROW WHEN ((OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
                   OR (OLD.opened_at IS NULL AND NEW.opened_at IS NOT NULL))
EXECUTE FUNCTION pwmail_events_of_link();
CREATE TRIGGER pwmail_events_of_user AFTER UPDATE OF password_changed_at, suppressed_at ON users
FOR EACH ROW WHEN ((NEW.password_changed_at IS NOT NULL
                    AND NEW.password_changed_at IS DISTINCT FROM OLD.password_changed_at)
                   OR NEW.suppressed_at IS DISTINCT FROM OLD.suppressed_at)
EXECUTE FUNCTION pwmail_events_of_user();
