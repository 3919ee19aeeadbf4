-- One call with an Idempotency-Key: the key's lock and stored outcome, then
-- the group function's rules for a group of one, then the key's row.
-- p_call and p_user are the call's named records as pwmail_issue_links
-- reads them (migration 0015), p_call with the key, its fingerprint and
-- its expiry. A call that reveals its link (p_call.reveal) comes here even
-- without a key; its key's row keeps outbox_id NULL, which a replay reads
-- as "revealed".
-- Dropped first: CREATE OR REPLACE cannot change a function's parameters
-- or rows (see pwmail_issue_links.sql).
DROP FUNCTION IF EXISTS pwmail_issue_link(BIGINT, BIGINT, BIGINT, TEXT, BOOLEAN, BYTEA, BIGINT, TEXT, BIGINT, BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, BIGINT, TEXT, BIGINT, TEXT, TEXT, BIGINT);
DROP FUNCTION IF EXISTS pwmail_issue_link(pwmail_link_call, pwmail_link_user, BIGINT, BIGINT);
CREATE FUNCTION pwmail_issue_link(
    p_call pwmail_link_call, p_user pwmail_link_user, p_period BIGINT, p_tau BIGINT,
    OUT outcome pwmail_outcome, OUT link_id BIGINT, OUT outbox_id BIGINT,
    OUT retry_after_ms BIGINT, OUT stored_fingerprint TEXT, OUT stored_request_id TEXT)
LANGUAGE plpgsql AS $$
DECLARE
    c pwmail_link_call := p_call;
BEGIN
    IF c.idem_key IS NOT NULL THEN
        -- Replicas share the key: one call at a time does the work. The
        -- lock is the database's: its key names the schema, so another
        -- deployment's token of the same id never holds this one's key.
        IF NOT pg_try_advisory_xact_lock(hashtextextended(
                'idempotency:' || current_schema() || ':' || c.actor_token || ':' || c.purpose
                || ':' || c.idem_key, 0)) THEN
            outcome := 'key_in_flight';
            RETURN;
        END IF;
        SELECT k.fingerprint, k.outbox_id, k.request_id
          INTO stored_fingerprint, outbox_id, stored_request_id
          FROM idempotency_keys k
         WHERE k.token_id = c.actor_token AND k.operation = c.purpose AND k.key = c.idem_key
           AND k.expires_at > c.at_ms;
        IF FOUND THEN
            outcome := 'stored';
            RETURN;
        END IF;
    END IF;

    SELECT i.outcome, i.link_id, i.outbox_id, i.retry_after_ms
      INTO outcome, link_id, outbox_id, retry_after_ms
      FROM pwmail_issue_links(ARRAY[p_call], ARRAY[p_user], p_period, p_tau) AS i;

    IF outcome = 'issued' AND c.idem_key IS NOT NULL THEN
        INSERT INTO idempotency_keys
            (token_id, operation, key, fingerprint, outbox_id, request_id, created_at, expires_at)
        VALUES (c.actor_token, c.purpose, c.idem_key, c.fingerprint, outbox_id, c.request_id,
                c.at_ms, c.key_expires_at)
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
