-- Links issued many at a time. pwmail_issue_link (0004, 0006) ran the issue
-- as eight statements inside plpgsql, each with its own executor start-up,
-- snapshot and trigger queue; measured with pgbench, one call cost about as
-- much PostgreSQL CPU as the rest of pwmail's request. This function is the
-- same transaction's rules for a whole group of calls as one statement: one
-- executor, one commit and WAL flush for the group. Each replica gathers the
-- calls waiting and sends them here together (src/postgres/issue.rs).
--
-- Element i of every array is call i. The targets must differ (a row can
-- change once per statement); the cooldown ($period, $tau) is one for the
-- group. Rows come back in the calls' order with:
--   outcome 'issued' (link_id, outbox_id), 'no_user', 'disabled', or
--   'cooling_down' (retry_after_ms).
-- A disabled or unknown user's call changes nothing and does not charge the
-- user's cooldown; a refused one changes nothing else.
CREATE FUNCTION pwmail_issue_links(
    p_actor_user BIGINT[], p_actor_token BIGINT[], p_target BIGINT[], p_purpose TEXT[],
    p_invalidates_password BOOLEAN[], p_link_hash BYTEA[], p_expires_at BIGINT[],
    p_rate_key TEXT[], p_period BIGINT, p_tau BIGINT,
    p_message_id TEXT[], p_kind TEXT[], p_recipient TEXT[], p_subject TEXT[],
    p_body_text TEXT[], p_body_html TEXT[], p_link TEXT[], p_link_name TEXT[],
    p_link_expires_at BIGINT[], p_request_id TEXT[], p_now BIGINT[], p_key TEXT[])
RETURNS TABLE (ord BIGINT, outcome TEXT, link_id BIGINT, outbox_id BIGINT,
               retry_after_ms BIGINT)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    IF (SELECT count(DISTINCT t) FROM unnest(p_target) AS t) <> cardinality(p_target) THEN
        RAISE EXCEPTION 'pwmail_issue_links: a target appears twice in one group';
    END IF;
    RETURN QUERY
    WITH calls AS (
        SELECT * FROM unnest(p_actor_user, p_actor_token, p_target, p_purpose,
                             p_invalidates_password, p_link_hash, p_expires_at, p_rate_key,
                             p_message_id, p_kind, p_recipient, p_subject, p_body_text,
                             p_body_html, p_link, p_link_name, p_link_expires_at,
                             p_request_id, p_now, p_key)
            WITH ORDINALITY AS c(actor_user, actor_token, target, purpose, invalidates,
                                 link_hash, expires_at, rate_key, message_id, kind,
                                 recipient, subject, body_text, body_html, link, link_name,
                                 link_expires_at, request_id, at_ms, idem_key, ord)
    ),
    -- Each user and rate state by its key, one index lookup per call
    -- (`OFFSET 0` keeps the lookup per row: as a join the planner chose a
    -- scan of the whole table for a group of 32, measured).
    found AS (
        SELECT c.*, u.id IS NOT NULL AS known, u.disabled_at IS NOT NULL AS disabled
          FROM calls c
          LEFT JOIN LATERAL (SELECT u.id, u.disabled_at FROM users u
                              WHERE u.id = c.target OFFSET 0) AS u ON true
    ),
    -- The per-user cooldown (GCRA, as sql::gcra_admit). excluded.tat is the
    -- call's now + period, so excluded.tat - p_period is its now. Rows are
    -- locked in target order, as every group locks them.
    admit AS (
        INSERT INTO rate_limits AS r (key, tat)
        SELECT f.rate_key, f.at_ms + p_period FROM found f
         WHERE f.known AND NOT f.disabled ORDER BY f.target
        ON CONFLICT (key) DO UPDATE
            SET tat = GREATEST(r.tat, excluded.tat - p_period) + p_period
          WHERE GREATEST(r.tat, excluded.tat - p_period) - (excluded.tat - p_period) <= p_tau
        RETURNING r.key
    ),
    admitted AS (
        SELECT f.* FROM found f JOIN admit a ON a.key = f.rate_key
    ),
    -- The two updates name their users by array, not by joining
    -- `admitted`: a join makes each updated row carry a copy of the joined
    -- row (for the recheck under concurrent updates), which cost more than
    -- the rest of the statement.
    revoked AS (
        UPDATE reset_links l
           SET revoked_at = (SELECT a.at_ms FROM admitted a WHERE a.target = l.user_id)
         WHERE l.user_id = ANY (ARRAY(SELECT a.target FROM admitted a))
           AND l.used_at IS NULL AND l.revoked_at IS NULL
    ),
    links AS (
        INSERT INTO reset_links (user_id, token_hash, purpose, created_at, expires_at, request_id)
        SELECT a.target, a.link_hash, a.purpose, a.at_ms, a.expires_at, a.request_id
          FROM admitted a ORDER BY a.target
        RETURNING id, user_id
    ),
    invalidated AS (
        UPDATE users u
           SET password_hash = NULL,
               password_invalidated_at = (SELECT a.at_ms FROM admitted a WHERE a.target = u.id)
         WHERE u.id = ANY (ARRAY(SELECT a.target FROM admitted a WHERE a.invalidates))
    ),
    queued AS (
        INSERT INTO outbox (message_id, kind, recipient, subject, body_text, body_html,
                            link, link_name, link_expires_at, state,
                            next_attempt_at, created_at, queued_at, request_id, user_id)
        SELECT a.message_id, a.kind, a.recipient, a.subject, a.body_text, a.body_html,
               a.link, a.link_name, a.link_expires_at, 'queued',
               a.at_ms, a.at_ms, a.at_ms, a.request_id, a.target
          FROM admitted a ORDER BY a.target
        RETURNING id, user_id
    ),
    audited AS (
        INSERT INTO audit_log (at, actor_user_id, actor_token_id, target_user_id, operation,
                               request_id, outbox_id, idempotency_key)
        SELECT a.at_ms, a.actor_user, a.actor_token, a.target, a.purpose, a.request_id, q.id,
               a.idem_key
          FROM admitted a JOIN queued q ON q.user_id = a.target
    )
    SELECT f.ord,
           CASE WHEN NOT f.known THEN 'no_user'
                WHEN f.disabled THEN 'disabled'
                WHEN q.id IS NULL THEN 'cooling_down'
                ELSE 'issued' END,
           l.id,
           q.id,
           -- A refusal reads the state as the statement's snapshot saw it.
           CASE WHEN f.known AND NOT f.disabled AND q.id IS NULL
                THEN GREATEST(COALESCE(r.tat, f.at_ms) - p_tau - f.at_ms, 1) END
      FROM found f
      LEFT JOIN links l ON l.user_id = f.target
      LEFT JOIN queued q ON q.user_id = f.target
      LEFT JOIN LATERAL (SELECT r.tat FROM rate_limits r
                          WHERE r.key = f.rate_key OFFSET 0) AS r ON true
     ORDER BY f.ord;
END;
$$;

-- One call with an Idempotency-Key: the key's lock and stored outcome, then
-- the group function's rules for a group of one, then the key's row.
CREATE OR REPLACE FUNCTION pwmail_issue_link(
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

-- The first step of many admin calls at once: each call's step of its
-- caller's rate (GCRA, as sql::gcra_admit; a key named n times takes n steps
-- at the latest of its calls' times). Rows in the calls' order:
-- retry_after_ms NULL when admitted. Committed without waiting for the WAL
-- flush, as the one-call statement (src/postgres/mod.rs, RATE_LIMIT): rate
-- state is not worth an fsync, and its hot row stays locked until the
-- commit.
CREATE FUNCTION pwmail_charge_callers(p_key TEXT[], p_now BIGINT[], p_period BIGINT,
                                      p_tau BIGINT)
RETURNS TABLE (ord BIGINT, retry_after_ms BIGINT)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_keys TEXT[];
    v_tats BIGINT[];
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    -- A key with no state is one whose time has passed (tat 0).
    INSERT INTO rate_limits (key, tat)
    SELECT DISTINCT k, 0 FROM unnest(p_key) AS k ORDER BY 1
    ON CONFLICT (key) DO NOTHING;
    -- Each key's newest state, its row locked until the commit (in key
    -- order, as every group locks them).
    SELECT array_agg(r.key ORDER BY r.key), array_agg(r.tat ORDER BY r.key)
      INTO v_keys, v_tats
      FROM (SELECT key, tat FROM rate_limits WHERE key = ANY (p_key)
             ORDER BY key FOR UPDATE) AS r;
    RETURN QUERY
    WITH calls AS (
        SELECT c.key, c.at_ms, c.ord,
               row_number() OVER (PARTITION BY c.key ORDER BY c.ord) AS nth
          FROM unnest(p_key, p_now) WITH ORDINALITY AS c(key, at_ms, ord)
    ),
    steps AS (
        SELECT k.key, k.at_ms, GREATEST(s.tat, k.at_ms) AS base,
               CASE WHEN GREATEST(s.tat, k.at_ms) - k.at_ms > p_tau THEN 0
                    ELSE LEAST(k.n, (p_tau - (GREATEST(s.tat, k.at_ms) - k.at_ms)) / p_period + 1)
               END AS admitted
          FROM (SELECT key, count(*) AS n, max(at_ms) AS at_ms FROM calls GROUP BY key) AS k
          JOIN unnest(v_keys, v_tats) AS s(key, tat) ON s.key = k.key
    ),
    charged AS (
        UPDATE rate_limits r SET tat = st.base + st.admitted * p_period
          FROM steps st
         WHERE r.key = st.key AND st.admitted > 0
    )
    SELECT c.ord,
           CASE WHEN c.nth <= st.admitted THEN NULL
                ELSE GREATEST(st.base + st.admitted * p_period - p_tau - st.at_ms, 1) END
      FROM calls c JOIN steps st ON st.key = c.key
     ORDER BY c.ord;
END;
$$;
