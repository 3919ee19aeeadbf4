-- The issue functions' named records (src/postgres/record.rs writes them;
-- sqlx sends them in binary): what a call asks (pwmail_link_call) and whom
-- it is for (pwmail_link_user). They replace JSON records, whose parsing
-- cost about 0.4 ms of PostgreSQL's time per group of 32 calls (measured:
-- 11 % of the API rate on PostgreSQL). A binary record is matched by
-- position, so record.rs checks its field order against these names
-- (a test). A call's per-call options travel in `options` (LinkOptions,
-- one JSON document), so these rarely change; a new attribute is an
-- ALTER TYPE in a new migration.
CREATE TYPE pwmail_link_call AS (
    ord INT, actor_user BIGINT, actor_token BIGINT, purpose TEXT, invalidates BOOLEAN,
    link_hash BYTEA, expires_at BIGINT, message_id TEXT, kind TEXT, link TEXT,
    link_expires_at BIGINT, options TEXT, request_id TEXT, at_ms BIGINT,
    idem_key TEXT, fingerprint TEXT, key_expires_at BIGINT,
    -- By address only (pwmail_issue_by_address): the caller's rate key and
    -- the address's key.
    caller TEXT, email_key TEXT);
CREATE TYPE pwmail_link_user AS (
    target BIGINT, rate_key TEXT, recipient TEXT, subject TEXT, body_text TEXT,
    body_html TEXT, link_name TEXT);
