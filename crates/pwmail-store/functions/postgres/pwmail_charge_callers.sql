-- The first step of many admin calls at once: each call's step of its
-- caller's rate (GCRA, as sql::gcra_admit; a key named n times takes n steps
-- at the latest of its calls' times). Rows in the calls' order:
-- retry_after_ms NULL when admitted. Committed without waiting for the WAL
-- flush, as the one-call statement (src/postgres/mod.rs, RATE_LIMIT): rate
-- state is not worth an fsync, and its hot row stays locked until the
-- commit.
CREATE OR REPLACE FUNCTION pwmail_charge_callers(p_key TEXT[], p_now BIGINT[], p_period BIGINT,
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
