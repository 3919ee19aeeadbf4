-- An admin call by address, whole, for a group of calls in one statement
-- (src/postgres/addressed.rs): the callers' rate steps
-- (pwmail_charge_callers), each admitted call's user by address, and the
-- issue (pwmail_issue_links) of those whose stored address can receive mail
-- (users.deliverable; NULL, not checked yet, reads as yes). The others change nothing but their caller's step
-- and come back as
--   'throttled' (retry_after_ms), 'no_user', or 'undeliverable' (user_id),
-- and the rest with pwmail_issue_links' outcomes. Rows in the calls' order.
--
-- The caller's rate row stays locked until this statement's commit, WAL
-- flush included: groups from replicas whose calls share an API token take
-- turns at it.
--
-- Element i of every array is call i; the addresses (email keys) must
-- differ, as pwmail_issue_links' targets must.
--
-- Dropped first: its parameters and its rows changed with 0012 (no
-- p_checked, no user columns) and 0013 (the outcome's type), which CREATE
-- OR REPLACE cannot do.
DROP FUNCTION IF EXISTS pwmail_issue_by_address(
    TEXT[], BIGINT, BIGINT, TEXT[], TEXT[], TEXT, BIGINT[], BIGINT[], TEXT[], BOOLEAN[],
    BYTEA[], BIGINT[], BIGINT, BIGINT, TEXT[], TEXT[], TEXT[], BIGINT[], TEXT[], BIGINT[]);
DROP FUNCTION IF EXISTS pwmail_issue_by_address(
    TEXT[], BIGINT, BIGINT, TEXT[], TEXT, BIGINT[], BIGINT[], TEXT[], BOOLEAN[],
    BYTEA[], BIGINT[], BIGINT, BIGINT, TEXT[], TEXT[], TEXT[], BIGINT[], TEXT[], BIGINT[]);
CREATE OR REPLACE FUNCTION pwmail_issue_by_address(
    p_caller TEXT[], p_caller_period BIGINT, p_caller_tau BIGINT,
    p_email_key TEXT[], p_user_key_prefix TEXT,
    p_actor_user BIGINT[], p_actor_token BIGINT[], p_purpose TEXT[],
    p_invalidates_password BOOLEAN[], p_link_hash BYTEA[], p_expires_at BIGINT[],
    p_period BIGINT, p_tau BIGINT,
    p_message_id TEXT[], p_kind TEXT[], p_link TEXT[], p_link_expires_at BIGINT[],
    p_request_id TEXT[], p_now BIGINT[])
RETURNS TABLE (ord BIGINT, outcome pwmail_outcome, link_id BIGINT, outbox_id BIGINT,
               retry_after_ms BIGINT, user_id BIGINT)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_sync TEXT := current_setting('synchronous_commit');
    v_n INT := cardinality(p_email_key);
    v_refused BIGINT[];
    v_user BIGINT[];
    v_target BIGINT[];
    v_email TEXT[];
    v_name TEXT[];
BEGIN
    -- The callers' steps, as the separate step takes them. That function
    -- turns off this transaction's wait for its WAL flush (rate state is
    -- not worth one); this transaction also issues links, which are.
    SELECT array_agg(c.retry_after_ms ORDER BY c.ord) INTO v_refused
      FROM pwmail_charge_callers(p_caller, p_now, p_caller_period, p_caller_tau) AS c;
    PERFORM set_config('synchronous_commit', v_sync, true);
    -- Each admitted call's user by address, one index lookup each (OFFSET 0
    -- as in 0007). A call that does not go on to the issue names -ord as
    -- its target: no user's id and no other call's, so pwmail_issue_links
    -- answers it 'no_user' and writes nothing for it.
    SELECT array_agg(u.id ORDER BY c.ord),
           array_agg(CASE WHEN u.id IS NOT NULL AND u.deliverable IS NOT FALSE
                          THEN u.id ELSE -c.ord END ORDER BY c.ord),
           array_agg(u.email ORDER BY c.ord),
           array_agg(u.name ORDER BY c.ord)
      INTO v_user, v_target, v_email, v_name
      FROM unnest(p_email_key, v_refused)
               WITH ORDINALITY AS c(email_key, refused, ord)
      LEFT JOIN LATERAL (SELECT u.id, u.email, u.name, u.deliverable FROM users u
                          WHERE u.email_key = c.email_key AND c.refused IS NULL
                         OFFSET 0) AS u ON true;
    RETURN QUERY
    SELECT c.ord,
           CASE WHEN c.refused IS NOT NULL THEN 'throttled'
                WHEN v_user[c.ord] IS NULL THEN 'no_user'
                WHEN v_target[c.ord] < 0 THEN 'undeliverable'
                ELSE i.outcome END,
           i.link_id, i.outbox_id, COALESCE(c.refused, i.retry_after_ms), v_user[c.ord]
      FROM unnest(v_refused) WITH ORDINALITY AS c(refused, ord)
      JOIN pwmail_issue_links(
               p_actor_user, p_actor_token, v_target, p_purpose, p_invalidates_password,
               p_link_hash, p_expires_at,
               ARRAY(SELECT p_user_key_prefix || t FROM unnest(v_target) WITH ORDINALITY AS k(t, n)
                     ORDER BY n),
               p_period, p_tau, p_message_id, p_kind, v_email,
               -- A link email's subject and bodies are written when it is
               -- sent (0006); it has no Idempotency-Key.
               array_fill(''::TEXT, ARRAY[v_n]), array_fill(NULL::TEXT, ARRAY[v_n]),
               array_fill(NULL::TEXT, ARRAY[v_n]), p_link, v_name, p_link_expires_at,
               p_request_id, p_now, array_fill(NULL::TEXT, ARRAY[v_n])) AS i
           ON i.ord = c.ord
     ORDER BY c.ord;
END;
$$;
