-- The admin operations' transaction (Store::issue_link) as one server-side
-- function, so that an API call pays one round trip for it instead of one per
-- statement. The steps, their order and their statements are those the SQLite
-- engine runs one by one (and `pwmail-store/src/sql.rs` holds for both); the
-- store's behaviour suite runs the same cases on both engines.
--
-- A refusal writes nothing: every early RETURN comes before the first write
-- (the cooldown's upsert changes no row when it refuses). A live key found
-- after the writes cannot happen under the advisory lock; should it, the
-- function raises PWM01 and the whole statement rolls back.
CREATE FUNCTION pwmail_issue_link(
    p_actor_user BIGINT, p_actor_token BIGINT, p_target BIGINT, p_purpose TEXT,
    p_invalidates_password BOOLEAN, p_link_hash BYTEA, p_expires_at BIGINT,
    p_rate_key TEXT, p_period BIGINT, p_tau BIGINT,
    p_message_id TEXT, p_kind TEXT, p_recipient TEXT, p_subject TEXT,
    p_body_text TEXT, p_body_html TEXT,
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
    INSERT INTO outbox (message_id, kind, recipient, subject, body_text, body_html, state,
                        next_attempt_at, created_at, queued_at, request_id, user_id)
    VALUES (p_message_id, p_kind, p_recipient, p_subject, p_body_text, p_body_html, 'queued',
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
