-- One call with an Idempotency-Key: the key's lock and stored outcome, then
-- the group function's rules for a group of one, then the key's row.
-- Dropped first: its outcome's type changed with 0013, which CREATE OR
-- REPLACE cannot do (see pwmail_issue_links.sql).
DROP FUNCTION IF EXISTS pwmail_issue_link(BIGINT, BIGINT, BIGINT, TEXT, BOOLEAN, BYTEA, BIGINT, TEXT, BIGINT, BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, BIGINT, TEXT, BIGINT, TEXT, TEXT, BIGINT);
CREATE OR REPLACE FUNCTION pwmail_issue_link(
    p_actor_user BIGINT, p_actor_token BIGINT, p_target BIGINT, p_purpose TEXT,
    p_invalidates_password BOOLEAN, p_link_hash BYTEA, p_expires_at BIGINT,
    p_rate_key TEXT, p_period BIGINT, p_tau BIGINT,
    p_message_id TEXT, p_kind TEXT, p_recipient TEXT, p_subject TEXT,
    p_body_text TEXT, p_body_html TEXT, p_link TEXT, p_link_name TEXT, p_link_expires_at BIGINT,
    p_request_id TEXT, p_now BIGINT,
    p_key TEXT, p_fingerprint TEXT, p_key_expires_at BIGINT,
    OUT outcome pwmail_outcome, OUT link_id BIGINT, OUT outbox_id BIGINT,
    OUT retry_after_ms BIGINT, OUT stored_fingerprint TEXT, OUT stored_request_id TEXT)
LANGUAGE plpgsql AS $$
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

    SELECT i.outcome, i.link_id, i.outbox_id, i.retry_after_ms
      INTO outcome, link_id, outbox_id, retry_after_ms
      FROM pwmail_issue_links(
          ARRAY[p_actor_user], ARRAY[p_actor_token], ARRAY[p_target], ARRAY[p_purpose],
          ARRAY[p_invalidates_password], ARRAY[p_link_hash], ARRAY[p_expires_at],
          ARRAY[p_rate_key], p_period, p_tau,
          ARRAY[p_message_id], ARRAY[p_kind], ARRAY[p_recipient], ARRAY[p_subject],
          ARRAY[p_body_text], ARRAY[p_body_html], ARRAY[p_link], ARRAY[p_link_name],
          ARRAY[p_link_expires_at], ARRAY[p_request_id], ARRAY[p_now], ARRAY[p_key]) AS i;

    IF outcome = 'issued' AND p_key IS NOT NULL THEN
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
END;
$$;
