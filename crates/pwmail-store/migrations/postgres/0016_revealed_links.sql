-- Links handed to the caller instead of emailed (pwmail's own operation,
-- `deliver: "response"`): only tokens made with --reveal-links may ask;
-- the audit row says the link was revealed (and, as every row, by which
-- token); such a call writes no outbox row, so its Idempotency-Key stores
-- none (outbox_id NULL means "revealed": a replay must not reveal it
-- again). The call record gains `reveal` (src/postgres/record.rs).
ALTER TABLE api_tokens ADD COLUMN reveal_links BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE audit_log ADD COLUMN link_revealed BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE idempotency_keys ALTER COLUMN outbox_id DROP NOT NULL;
ALTER TYPE pwmail_link_call ADD ATTRIBUTE reveal BOOLEAN;
