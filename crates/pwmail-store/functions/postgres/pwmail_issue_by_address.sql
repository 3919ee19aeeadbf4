-- An admin call by address, whole, for a group of calls in one statement
-- (src/postgres/addressed.rs): the callers' rate steps
-- (pwmail_charge_callers), each admitted call's user by address, and the
-- issue (pwmail_issue_links) of those whose stored address can receive mail
-- (users.deliverable; NULL, not checked yet, reads as yes). The others
-- change nothing but their caller's step and come back as
--   'throttled' (retry_after_ms), 'no_user', or 'undeliverable' (user_id),
-- and the rest with pwmail_issue_links' outcomes. Rows in the calls' order.
--
-- The caller's rate row stays locked until this statement's commit, WAL
-- flush included: groups from replicas whose calls share an API token take
-- turns at it.
--
-- p_calls are the calls' named records (pwmail_link_call, migration 0015)
-- with the caller's rate key (`caller`) and the address's key
-- (`email_key`). This function reads those two and passes the records on
-- whole to pwmail_issue_links, with the users it found (pwmail_link_user),
-- so a new field of a call needs no change here. The addresses must
-- differ, as pwmail_issue_links' targets must.
--
-- Dropped first: CREATE OR REPLACE cannot change a function's parameters
-- or rows; every signature it had is dropped.
DROP FUNCTION IF EXISTS pwmail_issue_by_address(
    TEXT[], BIGINT, BIGINT, TEXT[], TEXT[], TEXT, BIGINT[], BIGINT[], TEXT[], BOOLEAN[],
    BYTEA[], BIGINT[], BIGINT, BIGINT, TEXT[], TEXT[], TEXT[], BIGINT[], TEXT[], BIGINT[]);
DROP FUNCTION IF EXISTS pwmail_issue_by_address(
    TEXT[], BIGINT, BIGINT, TEXT[], TEXT, BIGINT[], BIGINT[], TEXT[], BOOLEAN[],
    BYTEA[], BIGINT[], BIGINT, BIGINT, TEXT[], TEXT[], TEXT[], BIGINT[], TEXT[], BIGINT[]);
DROP FUNCTION IF EXISTS pwmail_issue_by_address(
    pwmail_link_call[], TEXT, BIGINT, BIGINT, BIGINT, BIGINT);
CREATE FUNCTION pwmail_issue_by_address(
    p_calls pwmail_link_call[], p_user_key_prefix TEXT,
    p_caller_period BIGINT, p_caller_tau BIGINT, p_period BIGINT, p_tau BIGINT)
RETURNS TABLE (ord BIGINT, outcome pwmail_outcome, link_id BIGINT, outbox_id BIGINT,
               retry_after_ms BIGINT, user_id BIGINT)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_sync TEXT := current_setting('synchronous_commit');
    v_refused BIGINT[];
    v_user BIGINT[];
    v_target BIGINT[];
    v_users pwmail_link_user[];
BEGIN
    -- The callers' steps, as the separate step takes them. That function
    -- turns off this transaction's wait for its WAL flush (rate state is
    -- not worth one); this transaction also issues links, which are.
    SELECT array_agg(s.retry_after_ms ORDER BY s.ord) INTO v_refused
      FROM pwmail_charge_callers(ARRAY(SELECT c.caller FROM unnest(p_calls) AS c ORDER BY c.ord),
                                 ARRAY(SELECT c.at_ms FROM unnest(p_calls) AS c ORDER BY c.ord),
                                 p_caller_period, p_caller_tau) AS s;
    PERFORM set_config('synchronous_commit', v_sync, true);
    -- Each admitted call's user by address, one index lookup each (OFFSET 0
    -- as in pwmail_issue_links). A call that does not go on to the issue
    -- names -ord as its target: no user's id and no other call's, so
    -- pwmail_issue_links answers it 'no_user' and writes nothing for it.
    -- A link email's subject and bodies are written when it is sent (0006).
    SELECT array_agg(u.id ORDER BY c.ord), array_agg(t.target ORDER BY c.ord),
           array_agg(ROW(t.target, p_user_key_prefix || t.target, u.email, '', NULL, NULL,
                         u.name)::pwmail_link_user ORDER BY c.ord)
      INTO v_user, v_target, v_users
      FROM unnest(p_calls) AS c
      LEFT JOIN LATERAL (SELECT u.id, u.email, u.name, u.deliverable FROM users u
                          WHERE u.email_key = c.email_key AND v_refused[c.ord] IS NULL
                         OFFSET 0) AS u ON true
      CROSS JOIN LATERAL (SELECT CASE WHEN u.id IS NOT NULL AND u.deliverable IS NOT FALSE
                                      THEN u.id ELSE -c.ord END AS target) AS t;
    RETURN QUERY
    SELECT c.ord,
           CASE WHEN c.refused IS NOT NULL THEN 'throttled'
                WHEN v_user[c.ord] IS NULL THEN 'no_user'
                WHEN v_target[c.ord] < 0 THEN 'undeliverable'
                ELSE i.outcome END,
           i.link_id, i.outbox_id, COALESCE(c.refused, i.retry_after_ms), v_user[c.ord]
      FROM unnest(v_refused) WITH ORDINALITY AS c(refused, ord)
      JOIN pwmail_issue_links(p_calls, v_users, p_period, p_tau) AS i ON i.ord = c.ord
     ORDER BY c.ord;
END;
$$;
