-- A deleted user's audit rows keep the address as it was: target_address
-- (migration 0017) for what was done to them, actor_address for what they
-- did, read where the user's row is gone.
ALTER TABLE audit_log ADD COLUMN actor_address TEXT;
