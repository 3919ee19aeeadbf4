-- Whether mail can be addressed to the user's stored address; NULL until
-- checked (see migrations/postgres/0012).
ALTER TABLE users ADD COLUMN deliverable INTEGER CHECK (deliverable IN (0, 1));
CREATE INDEX users_address_unchecked ON users (id) WHERE deliverable IS NULL;
