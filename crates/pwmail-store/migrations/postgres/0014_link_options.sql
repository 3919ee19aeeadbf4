-- What a call asked of its link beyond the server's settings (LinkOptions,
-- src/model.rs), as one JSON document beside the link and beside its email;
-- NULL when it asked for nothing. A new per-call field is a field of the
-- document, never a column or a function parameter.
ALTER TABLE reset_links ADD COLUMN options TEXT;
ALTER TABLE outbox ADD COLUMN options TEXT;
