-- What a call asked of its link, as one JSON document (see
-- migrations/postgres/0014).
ALTER TABLE reset_links ADD COLUMN options TEXT;
ALTER TABLE outbox ADD COLUMN options TEXT;
