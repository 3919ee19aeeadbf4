-- A link email is rendered when it is sent, not when it is queued: its row
-- holds the link and what the templates need (the user's name, the link's
-- expiry), and its subject and bodies stay empty (subject '', bodies NULL).
-- The ~3 KiB of rendered text and HTML were written (and TOASTed) with the
-- row, and rewritten when it was claimed and when it settled. Notices (no
-- link) are still stored rendered. Rows queued before this keep their bodies
-- and are sent as they are.
ALTER TABLE outbox ADD COLUMN link TEXT, ADD COLUMN link_name TEXT,
    ADD COLUMN link_expires_at BIGINT;

-- As in 0002, and the link goes with the bodies.
CREATE OR REPLACE FUNCTION outbox_dead_link_email_revokes_its_link() RETURNS trigger AS $$
BEGIN
    IF NEW.state = 'dead' AND OLD.state <> 'dead' AND NEW.kind <> 'password_changed' THEN
        UPDATE reset_links SET revoked_at = COALESCE(NEW.settled_at, NEW.created_at)
         WHERE user_id = NEW.user_id AND request_id = NEW.request_id
           AND used_at IS NULL AND revoked_at IS NULL;
        NEW.body_text := NULL;
        NEW.body_html := NULL;
        NEW.link := NULL;
        NEW.link_name := NULL;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

-- pwmail_issue_link (0004) with the link's three columns. The old one is
-- dropped, so that a replica of an earlier version left running fails its
-- API calls loudly. (Its dispatcher would send a link email queued by this
-- version with empty bodies: stop every replica before this migration runs.)
DROP FUNCTION pwmail_issue_link(
    BIGINT, BIGINT, BIGINT, TEXT, BOOLEAN, BYTEA, BIGINT, TEXT, BIGINT, BIGINT,
    TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, BIGINT, TEXT, TEXT, BIGINT);
CREATE FUNCTION pwmail_issue_link(
    p_actor_user BIGINT, p_actor_token BIGINT, p_target BIGINT, p_purpose TEXT,
    p_invalidates_password BOOLEAN, p_link_hash BYTEA, p_expires_at BIGINT,
    p_rate_key TEXT, p_period BIGINT, p_tau BIGINT,
    p_message_id TEXT, p_kind TEXT, p_recipient TEXT, p_subject TEXT,
    p_body_text TEXT, p_body_html TEXT, p_link TEXT, p_link_name TEXT, p_link_expires_at BIGINT,
    p_request_id TEXT, p_now BIGINT,
    p_key TEXT, p_fingerprint TEXT, p_key_expires_at BIGINT,
    OUT outcome TEXT, OUT link_id BIGINT, OUT outbox_id BIGINT,
    OUT retry_after_ms BIGINT, OUT stored_fingerprint TEXT, OUT stored_request_id TEXT)
LANGUAGE plpgsql AS $$
DECLARE
    v_disabled BIGINT;
    v_tat BIGINT;
BEGIN
    IF p_key IS NOT NULL THEN
        -- Replicas share the key: one call at a time does the work.
        IF NOT pg_try_advisory_xact_lock(hashtextextended(
                'idempotency:' || p_actor_token || ':' || p_purpose || ':' || p_key, 0)) THEN
            outcome := 'key_in_flight';
            RETURN;
        END IF;
        SELECT k.fingerprint, k.outbox_id, k.request_id
          INTO stored_fingerprint, outbox_id, stored_request_id
          FROM idempotency_keys k
         WHERE k.token_id = p_actor_token AND k.operation = p_purpose AND k.key = p_key
           AND k.expires_at > p_now;
        IF FOUND THEN
            outcome := 'stored';
            RETURN;
        END IF;
    END IF;

    SELECT u.disabled_at INTO v_disabled FROM users u WHERE u.id = p_target;
    IF NOT FOUND THEN
        outcome := 'no_user';
        RETURN;
    END IF;
    IF v_disabled IS NOT NULL THEN
        outcome := 'disabled';
        RETURN;
    END IF;

    INSERT INTO rate_limits (key, tat) VALUES (p_rate_key, p_now + p_period)
    ON CONFLICT (key) DO UPDATE SET tat = GREATEST(rate_limits.tat, p_now) + p_period
        WHERE GREATEST(rate_limits.tat, p_now) - p_now <= p_tau
    RETURNING tat INTO v_tat;
    IF NOT FOUND THEN
        SELECT r.tat INTO v_tat FROM rate_limits r WHERE r.key = p_rate_key;
        outcome := 'cooling_down';
        retry_after_ms := GREATEST(v_tat - p_tau - p_now, 1);
        RETURN;
    END IF;

    UPDATE reset_links SET revoked_at = p_now
     WHERE user_id = p_target AND used_at IS NULL AND revoked_at IS NULL;
    INSERT INTO reset_links (user_id, token_hash, purpose, created_at, expires_at, request_id)
    VALUES (p_target, p_link_hash, p_purpose, p_now, p_expires_at, p_request_id)
    RETURNING id INTO link_id;
    IF p_invalidates_password THEN
        UPDATE users SET password_hash = NULL, password_invalidated_at = p_now
         WHERE id = p_target;
    END IF;
    INSERT INTO outbox (message_id, kind, recipient, subject, body_text, body_html,
                        link, link_name, link_expires_at, state,
                        next_attempt_at, created_at, queued_at, request_id, user_id)
    VALUES (p_message_id, p_kind, p_recipient, p_subject, p_body_text, p_body_html,
            p_link, p_link_name, p_link_expires_at, 'queued',
            p_now, p_now, p_now, p_request_id, p_target)
    RETURNING id INTO outbox_id;
    IF p_key IS NOT NULL THEN
        INSERT INTO idempotency_keys
            (token_id, operation, key, fingerprint, outbox_id, request_id, created_at, expires_at)
        VALUES (p_actor_token, p_purpose, p_key, p_fingerprint, outbox_id, p_request_id, p_now,
                p_key_expires_at)
        ON CONFLICT (token_id, operation, key) DO UPDATE SET
            fingerprint = excluded.fingerprint, outbox_id = excluded.outbox_id,
            request_id = excluded.request_id, created_at = excluded.created_at,
            expires_at = excluded.expires_at
        WHERE idempotency_keys.expires_at <= excluded.created_at;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'idempotency key in flight' USING ERRCODE = 'PWM01';
        END IF;
    END IF;
    INSERT INTO audit_log (at, actor_user_id, actor_token_id, target_user_id, operation,
                           request_id, outbox_id, idempotency_key)
    VALUES (p_now, p_actor_user, p_actor_token, p_target, p_purpose, p_request_id, outbox_id,
            p_key);
    outcome := 'issued';
END;
$$;
