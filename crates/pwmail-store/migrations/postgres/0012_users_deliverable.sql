-- Whether mail can be addressed to the user's stored address (the mail
-- builder's check, run in Rust when a user is written). Rows written before
-- this are checked when a store opened by the service starts serving
-- (Store::check_addresses, at `pwmail serve` and `pwmail migrate`); until
-- then, and for rows an older replica writes (which checked the address
-- itself), true. The issue reads it, so a call never comes back to the app
-- to have a stored address checked.
ALTER TABLE users ADD COLUMN deliverable BOOLEAN NOT NULL DEFAULT true;
