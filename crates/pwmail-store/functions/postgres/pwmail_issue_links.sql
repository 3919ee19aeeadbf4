-- Links issued many at a time. pwmail_issue_link (0004, 0006) ran the issue
-- as eight statements inside plpgsql, each with its own executor start-up,
-- snapshot and trigger queue; measured with pgbench, one call cost about as
-- much PostgreSQL CPU as the rest of pwmail's request. This function is the
-- same transaction's rules for a whole group of calls as one statement: one
-- executor, one commit and WAL flush for the group. Each replica gathers the
-- calls waiting and sends them here together (src/postgres/issue.rs).
--
-- p_calls[i] is what call i asks and p_users[i] whom it is for: named
-- records (migration 0015, src/postgres/record.rs), read by name in
-- `calls` below. The targets must differ (a row can change once per
-- statement); the cooldown ($period, $tau) is one for the group. Rows come
-- back in the calls' order (`ord`) with:
--   outcome 'issued' (link_id, outbox_id; outbox_id NULL when the call
--   asked for its link in its answer, `reveal`: no email is queued), 'no_user',
--   'disabled', or 'cooling_down' (retry_after_ms).
-- A disabled or unknown user's call changes nothing and does not charge the
-- user's cooldown; a refused one changes nothing else.
--
-- Dropped first: CREATE OR REPLACE cannot change a function's parameters
-- or rows; dropping every signature it had makes the file apply the same
-- way every time.
DROP FUNCTION IF EXISTS pwmail_issue_links(BIGINT[], BIGINT[], BIGINT[], TEXT[], BOOLEAN[], BYTEA[], BIGINT[], TEXT[], BIGINT, BIGINT, TEXT[], TEXT[], TEXT[], TEXT[], TEXT[], TEXT[], TEXT[], TEXT[], BIGINT[], TEXT[], BIGINT[], TEXT[]);
DROP FUNCTION IF EXISTS pwmail_issue_links(pwmail_link_call[], pwmail_link_user[], BIGINT, BIGINT);
CREATE FUNCTION pwmail_issue_links(p_calls pwmail_link_call[], p_users pwmail_link_user[],
                                   p_period BIGINT, p_tau BIGINT)
RETURNS TABLE (ord BIGINT, outcome pwmail_outcome, link_id BIGINT, outbox_id BIGINT,
               retry_after_ms BIGINT)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    IF (SELECT count(DISTINCT u.target) <> count(*) FROM unnest(p_users) AS u) THEN
        RAISE EXCEPTION 'pwmail_issue_links: a target appears twice in one group';
    END IF;
    RETURN QUERY
    WITH calls AS (
        SELECT * FROM unnest(p_calls, p_users)
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
        INSERT INTO reset_links (user_id, token_hash, purpose, created_at, expires_at, request_id,
                                 options)
        SELECT a.target, a.link_hash, a.purpose, a.at_ms, a.expires_at,
               a.request_id, a.options
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
                            link, link_name, link_expires_at, options, state,
                            next_attempt_at, created_at, queued_at, request_id, user_id)
        SELECT a.message_id, a.kind, a.recipient, a.subject, a.body_text, a.body_html,
               a.link, a.link_name, a.link_expires_at, a.options, 'queued',
               a.at_ms, a.at_ms, a.at_ms, a.request_id, a.target
          FROM admitted a WHERE a.reveal IS NOT TRUE ORDER BY a.target
        RETURNING id, user_id
    ),
    audited AS (
        INSERT INTO audit_log (at, actor_user_id, actor_token_id, target_user_id, operation,
                               request_id, outbox_id, idempotency_key, link_revealed)
        SELECT a.at_ms, a.actor_user, a.actor_token, a.target, a.purpose, a.request_id, q.id,
               a.idem_key, a.reveal IS TRUE
          FROM admitted a LEFT JOIN queued q ON q.user_id = a.target
    )
    SELECT f.ord::BIGINT,
           (CASE WHEN NOT f.known THEN 'no_user'
                 WHEN f.disabled THEN 'disabled'
                 WHEN l.id IS NULL THEN 'cooling_down'
                 ELSE 'issued' END)::pwmail_outcome,
           l.id,
           q.id,
           -- A refusal reads the state as the statement's snapshot saw it.
           CASE WHEN f.known AND NOT f.disabled AND l.id IS NULL
                THEN GREATEST(COALESCE(r.tat, f.at_ms) - p_tau - f.at_ms, 1) END
      FROM found f
      LEFT JOIN links l ON l.user_id = f.target
      LEFT JOIN queued q ON q.user_id = f.target
      LEFT JOIN LATERAL (SELECT r.tat FROM rate_limits r
                          WHERE r.key = f.rate_key OFFSET 0) AS r ON true
     ORDER BY f.ord;
END;
$$;
