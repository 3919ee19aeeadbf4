-- Events (migration 0021): the one rule for writing an event on this
-- engine, and what each change reports. The triggers call them in the
-- transaction of the change.

-- Queues one event if its kind is delivered, taking the link's next
-- sequence number in the same transaction (the link's row lock orders
-- them).
CREATE OR REPLACE FUNCTION pwmail_event(p_kind TEXT, p_at BIGINT, p_user BIGINT, p_email TEXT,
    p_link BIGINT, p_outbox BIGINT, p_request TEXT, p_detail TEXT) RETURNS void AS $$
DECLARE
    v_seq BIGINT;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM event_kinds WHERE kind = p_kind) THEN
        RETURN;
    END IF;
    IF p_link IS NOT NULL THEN
        UPDATE reset_links SET event_seq = event_seq + 1 WHERE id = p_link
        RETURNING event_seq INTO v_seq;
    END IF;
    INSERT INTO events (event_id, kind, at, user_id, email, link_id, outbox_id, seq, request_id,
                        detail, next_attempt_at)
    VALUES ('evt_' || replace(gen_random_uuid()::text, '-', ''), p_kind, p_at, p_user, p_email,
            p_link, p_outbox, v_seq, p_request, p_detail, p_at);
END;
$$ LANGUAGE plpgsql;

-- An email queued (inserted, or a dead one queued again), sent, retrying
-- or dead.
CREATE OR REPLACE FUNCTION pwmail_events_of_outbox() RETURNS trigger AS $$
DECLARE
    v_link BIGINT;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM event_kinds) THEN
        RETURN NULL;
    END IF;
    IF NEW.kind <> 'password_changed' THEN
        SELECT id INTO v_link FROM reset_links
         WHERE user_id = NEW.user_id AND request_id = NEW.request_id;
    END IF;
    PERFORM pwmail_event('email.' || NEW.state,
        CASE WHEN NEW.state = 'queued' THEN NEW.queued_at ELSE NEW.settled_at END,
        NEW.user_id, NEW.recipient, v_link, NEW.id, NEW.request_id,
        CASE WHEN NEW.state IN ('retrying', 'dead') THEN NEW.last_error END);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

-- A link revoked, or opened for the first time.
CREATE OR REPLACE FUNCTION pwmail_events_of_link() RETURNS trigger AS $$
DECLARE
    v_email TEXT;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM event_kinds) THEN
        RETURN NULL;
    END IF;
    SELECT email INTO v_email FROM users WHERE id = NEW.user_id;
    IF OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL THEN
        PERFORM pwmail_event('link.revoked', NEW.revoked_at, NEW.user_id, v_email, NEW.id, NULL,
                             NEW.request_id, NULL);
    END IF;
    IF OLD.opened_at IS NULL AND NEW.opened_at IS NOT NULL THEN
        PERFORM pwmail_event('link.opened', NEW.opened_at, NEW.user_id, v_email, NEW.id, NULL,
                             NEW.request_id, NULL);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

-- A password set (on the page: naming the link it used, consumed at the
-- same time in the same transaction; by an admin: no link), a suppression
-- and its lifting.
CREATE OR REPLACE FUNCTION pwmail_events_of_user() RETURNS trigger AS $$
DECLARE
    v_link BIGINT;
    v_request TEXT;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM event_kinds) THEN
        RETURN NULL;
    END IF;
    IF NEW.password_changed_at IS NOT NULL
       AND NEW.password_changed_at IS DISTINCT FROM OLD.password_changed_at THEN
        SELECT id, request_id INTO v_link, v_request FROM reset_links
         WHERE user_id = NEW.id AND used_at = NEW.password_changed_at
         ORDER BY id DESC LIMIT 1;
        PERFORM pwmail_event('password.set', NEW.password_changed_at, NEW.id, NEW.email, v_link,
                             NULL, v_request, NULL);
    END IF;
    IF OLD.suppressed_at IS NULL AND NEW.suppressed_at IS NOT NULL THEN
        PERFORM pwmail_event('user.suppressed', NEW.suppressed_at, NEW.id, NEW.email, NULL, NULL,
                             NULL, NEW.suppressed_reason);
    ELSIF OLD.suppressed_at IS NOT NULL AND NEW.suppressed_at IS NULL THEN
        PERFORM pwmail_event('user.unsuppressed',
                             COALESCE(NEW.unsuppressed_at, OLD.suppressed_at), NEW.id, NEW.email,
                             NULL, NULL, NULL, NULL);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
