-- Retention deletes sent and dead emails no Idempotency-Key points to: the
-- check, and the foreign key's own on each delete, look keys up by outbox id.
CREATE INDEX idempotency_keys_outbox ON idempotency_keys (outbox_id) WHERE outbox_id IS NOT NULL;
