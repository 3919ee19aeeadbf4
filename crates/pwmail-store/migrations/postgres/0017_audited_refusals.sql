-- Refused calls are audited too (a non-admin token, an unknown or disabled
-- user, a reused Idempotency-Key…): `outcome` says what the call came to
-- ('ok' for every row written before, which were all done), and a refusal
-- for an address no user has keeps the address asked for in
-- `target_address`, so its row has no target user.
ALTER TABLE audit_log ALTER COLUMN target_user_id DROP NOT NULL;
ALTER TABLE audit_log ADD COLUMN outcome TEXT NOT NULL DEFAULT 'ok';
ALTER TABLE audit_log ADD COLUMN target_address TEXT;
