-- An address whose email failed permanently for that recipient (a 5xx to
-- RCPT, a 5.1.x status, SES refusing the address) is suppressed: the user
-- becomes undeliverable (calls for them are refused before anything is
-- written), with when and why, until `pwmail user unsuppress` lifts it.
ALTER TABLE users ADD COLUMN suppressed_at BIGINT;
ALTER TABLE users ADD COLUMN suppressed_reason TEXT;
