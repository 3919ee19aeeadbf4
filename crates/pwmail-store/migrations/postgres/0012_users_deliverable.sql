-- Whether mail can be addressed to the user's stored address (the mail
-- builder's check, made in Rust when a user is written). NULL: not checked
-- yet (rows written before this, or by an older replica, which checked
-- addresses itself); read as deliverable, and checked when the service next
-- starts (Store::check_addresses at `pwmail serve` and `pwmail migrate`),
-- which reads only these rows, through the partial index. The issue reads
-- it, so a call never comes back to the app to have an address checked.
ALTER TABLE users ADD COLUMN deliverable BOOLEAN;
CREATE INDEX users_address_unchecked ON users (id) WHERE deliverable IS NULL;
