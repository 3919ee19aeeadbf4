-- The triggers that write events (SQLite), created by
-- `Events::set_event_kinds` while a kind is chosen and dropped when none is
-- (the migration 0021 holds the tables, the view and its INSTEAD OF rule).
-- Each change's event is written in the change's own statement.
CREATE TRIGGER IF NOT EXISTS events_email_queued AFTER INSERT ON outbox
WHEN EXISTS (SELECT 1 FROM event_kinds)
BEGIN
    INSERT INTO event_new VALUES ('email.queued', NEW.queued_at, NEW.user_id, NEW.recipient,
        (SELECT id FROM reset_links WHERE user_id = NEW.user_id AND request_id = NEW.request_id
            AND NEW.kind <> 'password_changed'),
        NEW.id, NEW.request_id, NULL);
END;

CREATE TRIGGER IF NOT EXISTS events_email_state AFTER UPDATE OF state ON outbox
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

CREATE TRIGGER IF NOT EXISTS events_link_revoked AFTER UPDATE OF revoked_at ON reset_links
WHEN OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL AND EXISTS (SELECT 1 FROM event_kinds)
BEGIN
    INSERT INTO event_new VALUES ('link.revoked', NEW.revoked_at, NEW.user_id,
        (SELECT email FROM users WHERE id = NEW.user_id), NEW.id, NULL, NEW.request_id, NULL);
END;

CREATE TRIGGER IF NOT EXISTS events_link_opened AFTER UPDATE OF opened_at ON reset_links
WHEN OLD.opened_at IS NULL AND NEW.opened_at IS NOT NULL AND EXISTS (SELECT 1 FROM event_kinds)
BEGIN
    INSERT INTO event_new VALUES ('link.opened', NEW.opened_at, NEW.user_id,
        (SELECT email FROM users WHERE id = NEW.user_id), NEW.id, NULL, NEW.request_id, NULL);
END;

-- A password set on the page names the link it used (consumed at the same
-- time, in the same transaction); one an admin set names none.
CREATE TRIGGER IF NOT EXISTS events_password_set AFTER UPDATE OF password_changed_at ON users
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

CREATE TRIGGER IF NOT EXISTS events_user_suppressed AFTER UPDATE OF suppressed_at ON users
WHEN OLD.suppressed_at IS NULL AND NEW.suppressed_at IS NOT NULL
     AND EXISTS (SELECT 1 FROM event_kinds)
BEGIN
    INSERT INTO event_new VALUES ('user.suppressed', NEW.suppressed_at, NEW.id, NEW.email, NULL,
        NULL, NULL, NEW.suppressed_reason);
END;

CREATE TRIGGER IF NOT EXISTS events_user_unsuppressed AFTER UPDATE OF suppressed_at ON users
WHEN OLD.suppressed_at IS NOT NULL AND NEW.suppressed_at IS NULL
     AND EXISTS (SELECT 1 FROM event_kinds)
BEGIN
    INSERT INTO event_new VALUES ('user.unsuppressed', COALESCE(NEW.unsuppressed_at, OLD.suppressed_at), NEW.id, NEW.email,
        NULL, NULL, NULL, NULL);
END;
