-- The user's language (a BCP 47 tag, checked by the app before it is
-- stored); NULL: the server's default. Emails and the reset page follow it
-- unless the call that issued the link named another.
ALTER TABLE users ADD COLUMN locale TEXT;
